package model

import "math"

// Float64 reference implementations of every layer, on NCHW data (one image
// after another, as PyTorch stores it), written from the definitions and
// sharing no code with the backends.

// refLayer runs one layer in float64. x is [n, in.Size()] in NCHW order.
func refLayer(l layer, x, p []float64, n int) []float64 {
	y := make([]float64, n*l.out().Size())
	switch l := l.(type) {
	case *conv:
		refConv(l, x, p, n, y)
	case *pool:
		refPool(l, x, n, y)
	case *relu:
		for i, v := range x[:len(y)] {
			y[i] = math.Max(v, 0)
		}
	case *flatten:
		copy(y, x) // NCHW is already PyTorch's flatten order
	case *dense:
		refDense(l, x, p, n, y)
	default:
		panic("no reference for layer")
	}
	return y
}

// refConv is a convolution (cross-correlation, zero padding) by its definition.
func refConv(l *conv, x, p []float64, n int, y []float64) {
	is, os := l.in(), l.out()
	k, s := l.ls.K, l.ls.S
	w, b := p[l.w.Off:], p[l.bias.Off:]
	for i := 0; i < n; i++ {
		for o := 0; o < os.C; o++ {
			for oy := 0; oy < os.H; oy++ {
				for ox := 0; ox < os.W; ox++ {
					sum := b[o]
					for c := 0; c < is.C; c++ {
						for ky := 0; ky < k; ky++ {
							for kx := 0; kx < k; kx++ {
								iy, ix := oy*s-l.padH+ky, ox*s-l.padW+kx
								if iy < 0 || ix < 0 || iy >= is.H || ix >= is.W {
									continue
								}
								sum += w[((o*is.C+c)*k+ky)*k+kx] * x[((i*is.C+c)*is.H+iy)*is.W+ix]
							}
						}
					}
					if l.ls.ReLU {
						sum = math.Max(sum, 0)
					}
					y[((i*os.C+o)*os.H+oy)*os.W+ox] = sum
				}
			}
		}
	}
}

// refPool is max or average pooling (valid windows) by its definition.
func refPool(l *pool, x []float64, n int, y []float64) {
	is, os := l.in(), l.out()
	k, s := l.ls.K, l.ls.S
	for pl := 0; pl < n*is.C; pl++ {
		for oy := 0; oy < os.H; oy++ {
			for ox := 0; ox < os.W; ox++ {
				acc := math.Inf(-1)
				if !l.max {
					acc = 0
				}
				for ky := 0; ky < k; ky++ {
					for kx := 0; kx < k; kx++ {
						v := x[(pl*is.H+oy*s+ky)*is.W+ox*s+kx]
						if l.max {
							acc = math.Max(acc, v)
						} else {
							acc += v / float64(k*k)
						}
					}
				}
				y[(pl*os.H+oy)*os.W+ox] = acc
			}
		}
	}
}

// refDense is a fully connected layer by its definition.
func refDense(l *dense, x, p []float64, n int, y []float64) {
	is := l.in()
	w, b := p[l.w.Off:], p[l.bias.Off:]
	for i := 0; i < n; i++ {
		for o := 0; o < l.ls.Units; o++ {
			sum := b[o]
			for j := 0; j < is.C; j++ {
				sum += w[o*is.C+j] * x[i*is.C+j]
			}
			if l.ls.ReLU {
				sum = math.Max(sum, 0)
			}
			y[i*l.ls.Units+o] = sum
		}
	}
}

// refForward runs layers in float64.
func refForward(ls []layer, x, p []float64, n int) []float64 {
	for _, l := range ls {
		x = refLayer(l, x, p, n)
	}
	return x
}

// refXent is the mean softmax cross-entropy of logits [n, k].
func refXent(logits []float64, labels []int32, n, k int) float64 {
	var loss float64
	for i := 0; i < n; i++ {
		row := logits[i*k : (i+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - mx)
		}
		loss += math.Log(s) + mx - row[labels[i]]
	}
	return loss / float64(n)
}

// nchwToCNHW reorders n images of shape s.
func nchwToCNHW(x []float64, n int, s Shape) []float32 {
	out := make([]float32, len(x))
	hw := s.H * s.W
	for i := 0; i < n; i++ {
		for c := 0; c < s.C; c++ {
			for p := 0; p < hw; p++ {
				out[(c*n+i)*hw+p] = float32(x[(i*s.C+c)*hw+p])
			}
		}
	}
	return out
}

func cnhwToNCHW(x []float32, n int, s Shape) []float64 {
	out := make([]float64, len(x))
	hw := s.H * s.W
	for i := 0; i < n; i++ {
		for c := 0; c < s.C; c++ {
			for p := 0; p < hw; p++ {
				out[(i*s.C+c)*hw+p] = float64(x[(c*n+i)*hw+p])
			}
		}
	}
	return out
}
