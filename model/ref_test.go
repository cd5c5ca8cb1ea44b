package model

import (
	"math"

	"github.com/trainer-go/trainer/device"
)

// Float64 reference implementations of every layer, on NCHW data (one image
// after another, as PyTorch stores it), written from the definitions and
// sharing no code with the backends.

// refLayer runs one layer in float64 in training mode (BatchNorm uses the
// batch's statistics; dropout must not be tested here). x is [n,
// in.Size()] in NCHW order; x2 is an add's second input.
func refLayer(l layer, x, p []float64, n int, x2 ...[]float64) []float64 {
	y := make([]float64, n*l.out().Size())
	switch l := l.(type) {
	case *conv:
		refConv(l, x, p, n, y)
	case *pool:
		refPool(l, x, n, y)
	case *activation:
		for i, v := range x[:len(y)] {
			y[i] = refAct(l.act, v)
		}
	case *flatten:
		copy(y, x) // NCHW is already PyTorch's flatten order
	case *dense:
		refDense(l, x, p, n, y)
	case *gap:
		hw := l.is.H * l.is.W
		for i := range y {
			var s float64
			for _, v := range x[i*hw : (i+1)*hw] {
				s += v
			}
			y[i] = s / float64(hw)
		}
	case *batchnorm:
		refBatchNorm(l, x, p, n, y)
	case *add:
		for i := range y {
			y[i] = x[i] + x2[0][i]
			if l.relu {
				y[i] = math.Max(y[i], 0)
			}
		}
	case *dropout: // the mask of seed 0, step 0 (checkLayer's pass), drawn per CNHW position
		scale := float64(float32(1 / (1 - float64(l.p))))
		hw, c := l.s.H*l.s.W, l.s.C
		for i := range y {
			img, ch, p := i/(c*hw), i/hw%c, i%hw
			if device.DropoutKeep(l.salt, 0, (ch*n+img)*hw+p, l.p) {
				y[i] = x[i] * scale
			}
		}
	case *normalize:
		hw := l.s.H * l.s.W
		for i := range y {
			c := i / hw % l.s.C
			y[i] = (x[i] - l.d.Mean[c]) / l.d.Std[c]
		}
	default:
		panic("no reference for layer")
	}
	return y
}

func refAct(a device.Act, v float64) float64 {
	switch a {
	case device.ActReLU:
		return math.Max(v, 0)
	case device.ActGELU:
		return 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
	}
	return v
}

// refBatchNorm normalises with the batch's mean and biased variance per
// channel, then scales, shifts and activates.
func refBatchNorm(l *batchnorm, x, p []float64, n int, y []float64) {
	c := l.s.C
	hw := l.s.H * l.s.W
	if l.s.Flat {
		hw = 1
	}
	g, b := p[l.weight.Off:], p[l.bias.Off:]
	for ch := 0; ch < c; ch++ {
		var mean, vr float64
		for i := 0; i < n; i++ {
			for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
				mean += v
			}
		}
		m := float64(n * hw)
		mean /= m
		for i := 0; i < n; i++ {
			for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
				vr += (v - mean) * (v - mean)
			}
		}
		vr /= m
		inv := 1 / math.Sqrt(vr+float64(l.eps))
		for i := 0; i < n; i++ {
			for j := (i*c + ch) * hw; j < (i*c+ch+1)*hw; j++ {
				y[j] = refAct(l.act, (x[j]-mean)*inv*g[ch]+b[ch])
			}
		}
	}
}

// refConv is a convolution (cross-correlation, zero padding) by its definition.
func refConv(l *conv, x, p []float64, n int, y []float64) {
	is, os := l.in(), l.out()
	k, s := l.d.Kernel, l.d.Stride
	w := p[l.w.Off:]
	for i := 0; i < n; i++ {
		for o := 0; o < os.C; o++ {
			for oy := 0; oy < os.H; oy++ {
				for ox := 0; ox < os.W; ox++ {
					sum := 0.0
					if l.bias != nil {
						sum = p[l.bias.Off+o]
					}
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
					y[((i*os.C+o)*os.H+oy)*os.W+ox] = refAct(l.act, sum)
				}
			}
		}
	}
}

// refPool is max or average pooling (valid windows) by its definition.
func refPool(l *pool, x []float64, n int, y []float64) {
	is, os := l.in(), l.out()
	k, s := l.d.Kernel, l.d.Stride
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
	is, u := l.in(), l.d.Units
	w := p[l.w.Off:]
	for i := 0; i < n; i++ {
		for o := 0; o < u; o++ {
			var sum float64
			for j := 0; j < is.C; j++ {
				sum += w[o*is.C+j] * x[i*is.C+j]
			}
			sum *= l.d.Scale
			if l.bias != nil {
				sum += p[l.bias.Off+o]
			}
			y[i*u+o] = refAct(l.act, sum)
		}
	}
}

// refNet runs a planned network in float64, training mode, node by node.
func refNet(net *Network, x, p []float64, n int) []float64 {
	outs := make([][]float64, len(net.nodes))
	in := func(j int) []float64 {
		if j < 0 {
			return x
		}
		return outs[j]
	}
	for i, nd := range net.nodes {
		if len(nd.inputs) == 2 {
			outs[i] = refLayer(nd.l, in(nd.inputs[0]), p, n, in(nd.inputs[1]))
		} else {
			outs[i] = refLayer(nd.l, in(nd.inputs[0]), p, n)
		}
	}
	return outs[len(outs)-1]
}

// refXentSmooth is the mean label-smoothed cross-entropy (PyTorch's).
func refXentSmooth(logits []float64, labels []int32, n, k int, eps float64) float64 {
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
		lse := math.Log(s) + mx
		for j, v := range row {
			q := eps / float64(k)
			if j == int(labels[i]) {
				q += 1 - eps
			}
			loss += q * (lse - v)
		}
	}
	return loss / float64(n)
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
