//go:build cgo

package emu

// Straightforward Go references, written from the op semantics in
// device/backend.go, independent of the kernels' formulation (scatter where
// the kernels gather, float64 where they sum in float32). Sums return the
// float64 value and the sum of the absolute values of the terms, the scale
// for the rounding tolerance.

import (
	"math"

	"github.com/trainer-go/trainer/device"
)

func refIm2Col(g device.ConvGeom, x []float32) []float32 {
	col := make([]float32, g.ColRows()*g.ColCols())
	for c := 0; c < g.C; c++ {
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				row := (c*g.KH+ky)*g.KW + kx
				for n := 0; n < g.N; n++ {
					for oy := 0; oy < g.OH; oy++ {
						for ox := 0; ox < g.OW; ox++ {
							iy, ix := oy*g.SH-g.PadH+ky, ox*g.SW-g.PadW+kx
							var v float32
							if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
								v = x[((c*g.N+n)*g.H+iy)*g.W+ix]
							}
							col[row*g.ColCols()+(n*g.OH+oy)*g.OW+ox] = v
						}
					}
				}
			}
		}
	}
	return col
}

// refCol2Im scatters every col entry back to the input element it was read
// from: in float64 (sum, mag), and in float32 in col's row order (seq).
func refCol2Im(g device.ConvGeom, col []float32) (sum, mag []float64, seq []float32) {
	n := g.C * g.N * g.H * g.W
	sum, mag, seq = make([]float64, n), make([]float64, n), make([]float32, n)
	for r := 0; r < g.ColRows(); r++ {
		c, ky, kx := r/(g.KH*g.KW), r/g.KW%g.KH, r%g.KW
		for q := 0; q < g.ColCols(); q++ {
			nn, oy, ox := q/(g.OH*g.OW), q/g.OW%g.OH, q%g.OW
			iy, ix := oy*g.SH-g.PadH+ky, ox*g.SW-g.PadW+kx
			if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
				continue
			}
			v := col[r*g.ColCols()+q]
			i := ((c*g.N+nn)*g.H+iy)*g.W + ix
			sum[i] += float64(v)
			mag[i] += math.Abs(float64(v))
			seq[i] += v
		}
	}
	return sum, mag, seq
}

// window lists the plane indices of output (oy, ox)'s window.
func window(g device.PoolGeom, oy, ox int) []int {
	var w []int
	for ky := 0; ky < g.KH; ky++ {
		for kx := 0; kx < g.KW; kx++ {
			w = append(w, (oy*g.SH+ky)*g.W+ox*g.SW+kx)
		}
	}
	return w
}

// refMaxPool finds the window maximum, then the smallest plane index holding
// it (the first maximum).
func refMaxPool(g device.PoolGeom, x []float32) ([]float32, []int32) {
	y := make([]float32, g.Planes*g.OH*g.OW)
	am := make([]int32, len(y))
	for p := 0; p < g.Planes; p++ {
		plane := x[p*g.H*g.W:][:g.H*g.W]
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				w := window(g, oy, ox)
				m := float32(math.Inf(-1))
				for _, i := range w {
					m = max(m, plane[i])
				}
				first := math.MaxInt
				for _, i := range w {
					if plane[i] == m {
						first = min(first, i)
					}
				}
				o := (p*g.OH+oy)*g.OW + ox
				y[o], am[o] = m, int32(first)
			}
		}
	}
	return y, am
}

// refMaxPoolBwd zeroes dx, then adds each dy to dx[argmax] in output order.
func refMaxPoolBwd(g device.PoolGeom, dy []float32, am []int32) []float32 {
	dx := make([]float32, g.Planes*g.H*g.W)
	for o, v := range dy[:g.Planes*g.OH*g.OW] {
		p := o / (g.OH * g.OW)
		dx[p*g.H*g.W+int(am[o])] += v
	}
	return dx
}

func refAvgPool(g device.PoolGeom, x []float32) (y, mag []float64) {
	y, mag = make([]float64, g.Planes*g.OH*g.OW), make([]float64, g.Planes*g.OH*g.OW)
	area := float64(g.KH * g.KW)
	for p := 0; p < g.Planes; p++ {
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				o := (p*g.OH+oy)*g.OW + ox
				for _, i := range window(g, oy, ox) {
					v := float64(x[p*g.H*g.W+i])
					y[o] += v / area
					mag[o] += math.Abs(v) / area
				}
			}
		}
	}
	return y, mag
}

func refAvgPoolBwd(g device.PoolGeom, dy []float32) (dx, mag []float64) {
	dx, mag = make([]float64, g.Planes*g.H*g.W), make([]float64, g.Planes*g.H*g.W)
	area := float64(g.KH * g.KW)
	for p := 0; p < g.Planes; p++ {
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				v := float64(dy[(p*g.OH+oy)*g.OW+ox]) / area
				for _, i := range window(g, oy, ox) {
					dx[p*g.H*g.W+i] += v
					mag[p*g.H*g.W+i] += math.Abs(v)
				}
			}
		}
	}
	return dx, mag
}

func refAddBias(y, bias []float32, outer, c, inner int, relu bool) []float32 {
	out := make([]float32, outer*c*inner)
	for o := 0; o < outer; o++ {
		for ch := 0; ch < c; ch++ {
			for i := 0; i < inner; i++ {
				k := (o*c+ch)*inner + i
				v := y[k] + bias[ch]
				if relu && v < 0 {
					v = 0
				}
				out[k] = v
			}
		}
	}
	return out
}

func refBiasGrad(dy []float32, outer, c, inner int) (db, mag []float64) {
	db, mag = make([]float64, c), make([]float64, c)
	for o := 0; o < outer; o++ {
		for ch := 0; ch < c; ch++ {
			for i := 0; i < inner; i++ {
				v := float64(dy[(o*c+ch)*inner+i])
				db[ch] += v
				mag[ch] += math.Abs(v)
			}
		}
	}
	return db, mag
}

func refSwap(src []float32, a, b, inner int) []float32 {
	dst := make([]float32, a*b*inner)
	for i := 0; i < a; i++ {
		for j := 0; j < b; j++ {
			copy(dst[(j*a+i)*inner:][:inner], src[(i*b+j)*inner:][:inner])
		}
	}
	return dst
}

// refSoftmax returns the loss sum, the correct count and the gradient, in
// float64, with label smoothing eps: the target is q = (1-eps)*onehot +
// eps/k, the loss -sum_j q_j*log p_j, the gradient (p - q)*gradScale.
func refSoftmax(logits []float32, labels []int32, n, k int, gradScale, smoothing float32) (loss, correct float64, grad []float64) {
	grad = make([]float64, n*k)
	eps := float64(smoothing)
	for r := 0; r < n; r++ {
		row := logits[r*k : (r+1)*k]
		lab := int(labels[r])
		first := 0
		for j := range row {
			if row[j] > row[first] {
				first = j
			}
		}
		m := float64(row[first])
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - m)
		}
		for j, v := range row {
			logp := float64(v) - m - math.Log(s)
			q := eps / float64(k)
			if j == lab {
				q += 1 - eps
			}
			loss -= q * logp
			grad[r*k+j] = (math.Exp(logp) - q) * float64(gradScale)
		}
		if first == lab {
			correct++
		}
	}
	return loss, correct, grad
}

// refAdam is the float32 step, each operation rounded as written (explicit
// conversions stop Go from fusing multiply-adds), with the L2 penalty and
// the decoupled decay skipped when 0.
func refAdam(p, g, m, v []float32, lrT, b1, b2, eps, l2, decay float32) {
	for i := range p {
		gi, pi := g[i], p[i]
		if l2 != 0 {
			gi = gi + float32(l2*pi)
		}
		if decay != 0 {
			pi = pi - float32(decay*pi)
		}
		mi := float32(float32(b1*m[i]) + float32(float32(1-b1)*gi))
		vi := float32(float32(b2*v[i]) + float32(float32(float32(1-b2)*gi)*gi))
		m[i], v[i] = mi, vi
		step := float32(float32(lrT*mi) / float32(float32(math.Sqrt(float64(vi)))+eps))
		p[i] = pi - step
	}
}

// refSGD is PyTorch's SGD step in float32, each operation rounded.
func refSGD(p, g, buf []float32, lr, momentum, l2 float32, nesterov bool) {
	for i := range p {
		gi := g[i]
		if l2 != 0 {
			gi = gi + float32(l2*p[i])
		}
		if momentum != 0 {
			buf[i] = float32(momentum*buf[i]) + gi
			if nesterov {
				gi = gi + float32(momentum*buf[i])
			} else {
				gi = buf[i]
			}
		}
		p[i] = p[i] - float32(lr*gi)
	}
}

// refRMSprop is PyTorch's RMSprop step in float32, each operation rounded.
func refRMSprop(p, g, sq, buf []float32, lr, alpha, eps, l2, momentum float32) {
	for i := range p {
		gi := g[i]
		if l2 != 0 {
			gi = gi + float32(l2*p[i])
		}
		sq[i] = float32(alpha*sq[i]) + float32(float32(float32(1-alpha)*gi)*gi)
		a := float32(math.Sqrt(float64(sq[i]))) + eps
		if momentum != 0 {
			buf[i] = float32(momentum*buf[i]) + gi/a
			p[i] = p[i] - float32(lr*buf[i])
		} else {
			p[i] = p[i] - float32(lr*gi)/a
		}
	}
}

func refGather(src []uint8, idx []int32, n, c, hw int, scale float32, labels []int32) ([]float32, []int32) {
	dst := make([]float32, c*n*hw)
	var dl []int32
	if labels != nil {
		dl = make([]int32, n)
	}
	for j := 0; j < n; j++ {
		img := int(idx[j])
		for ch := 0; ch < c; ch++ {
			for p := 0; p < hw; p++ {
				dst[(ch*n+j)*hw+p] = float32(src[img*c*hw+ch*hw+p]) * scale
			}
		}
		if labels != nil {
			dl[j] = labels[img]
		}
	}
	return dst, dl
}

// refAugmentHash is the hash of Backend.Augment written again from its
// documentation (splitmix64: key = output number step of the generator
// seeded with seed, h = output number j of the one seeded with key), not
// shared with device.AugmentHash or the kernel.
func refAugmentHash(seed, step, j uint64) uint64 {
	next := func(state *uint64) uint64 { // splitmix64
		*state += 0x9E3779B97F4A7C15
		z := *state
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		return z ^ (z >> 31)
	}
	s := seed + step*0x9E3779B97F4A7C15 // skip step outputs
	key := next(&s)
	s = key + j*0x9E3779B97F4A7C15
	return next(&s)
}

// refReflect mirrors i into [0, size) without repeating the edge
// (PyTorch's "reflect" padding), by walking: every step outside the range
// bounces back.
func refReflect(i, size int) int {
	if size == 1 {
		return 0
	}
	for i < 0 || i >= size {
		if i < 0 {
			i = -i
		} else {
			i = 2*(size-1) - i
		}
	}
	return i
}

// refAugment is Backend.Augment as its documentation tells it: pad each
// plane with pad zeros (or its mirror image, reflect) on every side, crop
// h x w at (dy, dx), mirror the crop when flip is set (and not noFlip). dy,
// dx and flip come from the bits of refAugmentHash (dy: bits 0..31, dx:
// bits 32..62, flip: bit 63, scaled by 2*pad+1).
func refAugment(src []float32, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step int) []float32 {
	dst := make([]float32, len(src))
	ph, pw := h+2*pad, w+2*pad
	padded := make([]float32, ph*pw)
	crop := make([]float32, h*w)
	r := uint64(2*pad + 1)
	for j := 0; j < n; j++ {
		hv := refAugmentHash(seed, uint64(step), uint64(j))
		dy := int(uint64(uint32(hv)) * r >> 32)
		dx := int(uint64(uint32(hv>>32)&0x7FFFFFFF) * r >> 31)
		flip := hv&(1<<63) != 0 && !noFlip
		for ch := 0; ch < c; ch++ {
			plane := src[(ch*n+j)*h*w:][:h*w]
			clear(padded)
			for y := -pad; y < h+pad; y++ {
				for x := -pad; x < w+pad; x++ {
					if reflect {
						padded[(y+pad)*pw+x+pad] = plane[refReflect(y, h)*w+refReflect(x, w)]
					} else if y >= 0 && y < h && x >= 0 && x < w {
						padded[(y+pad)*pw+x+pad] = plane[y*w+x]
					}
				}
			}
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					crop[y*w+x] = padded[(y+dy)*pw+x+dx]
				}
			}
			out := dst[(ch*n+j)*h*w:][:h*w]
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					if flip {
						out[y*w+x] = crop[y*w+w-1-x]
					} else {
						out[y*w+x] = crop[y*w+x]
					}
				}
			}
		}
	}
	return dst
}

// refTranslate is Backend.Translate: every plane shifted by (dy, dx) with
// reflect padding, the result mirrored left-right when flip.
func refTranslate(src []float32, c, n, h, w, dy, dx int, flip bool) []float32 {
	dst := make([]float32, len(src))
	for p := 0; p < c*n; p++ {
		plane, out := src[p*h*w:][:h*w], dst[p*h*w:][:h*w]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				xs := x
				if flip {
					xs = w - 1 - x
				}
				out[y*w+x] = plane[refReflect(y+dy, h)*w+refReflect(xs+dx, w)]
			}
		}
	}
	return dst
}

// refDropout is Backend.Dropout from its documentation: element i kept
// when the top 24 bits of refAugmentHash(seed, step, i), as a fraction of
// 2^24, are >= p, then multiplied by the float32 nearest 1/(1-p).
func refDropout(x []float32, p float32, seed uint64, step int) []float32 {
	y := make([]float32, len(x))
	scale := float32(1 / (1 - float64(p)))
	for i, v := range x {
		u := float64(refAugmentHash(seed, uint64(step), uint64(i))>>40) / (1 << 24)
		if u >= float64(p) {
			y[i] = v * scale
			if p == 0 {
				y[i] = v
			}
		}
	}
	return y
}

// refGELU is the exact GELU and its derivative in float64.
func refGELU(x float64) (y, dydx float64) {
	cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
	return x * cdf, cdf + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
}

// refBNStats is the per-channel mean and biased variance of x viewed as
// [outer, c, inner] in float64, and the mean of |x| (the scale of the
// mean's rounding).
func refBNStats(x []float32, outer, c, inner int) (mean, variance, mag []float64) {
	mean, variance, mag = make([]float64, c), make([]float64, c), make([]float64, c)
	m := float64(outer * inner)
	each := func(ch int, f func(v float64)) {
		for o := 0; o < outer; o++ {
			for _, v := range x[(o*c+ch)*inner:][:inner] {
				f(float64(v))
			}
		}
	}
	for ch := range c {
		each(ch, func(v float64) { mean[ch] += v; mag[ch] += math.Abs(v) })
		mean[ch] /= m
		mag[ch] /= m
		each(ch, func(v float64) { variance[ch] += (v - mean[ch]) * (v - mean[ch]) })
		variance[ch] /= m
	}
	return mean, variance, mag
}
