package cpu_test

import (
	"fmt"
	"math"
	"testing"
)

// The optimiser steps: bit for bit against the float32 order that
// device.Backend documents (each product rounded, no FMA), and within a
// tolerance against PyTorch's update rules written out in float64, over
// several steps. 1031 elements: odd, and over the pool's threshold for
// Adam and RMSprop.

const optN = 1031

// optState is the float64 state of a PyTorch reference optimiser.
type optState struct{ p, m, v []float64 }

// The float64 references take the hyperparameters as the backend gets
// them, rounded to float32 (float32(0.999) alone moves 1-b2 by 1.3e-5).
func r32(x float64) float64 { return float64(float32(x)) }

// TestAdamL2Decay: Adam with an L2 penalty (torch.optim.Adam weight_decay)
// and with decoupled decay (torch.optim.AdamW), the backend given lrT =
// lr*sqrt(1-b2^t)/(1-b1^t) and eps*sqrt(1-b2^t).
func TestAdamL2Decay(t *testing.T) {
	const lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.05
	for _, adamw := range []bool{false, true} {
		for _, threads := range testThreads {
			t.Run(fmt.Sprintf("adamw=%v/threads=%d", adamw, threads), func(t *testing.T) {
				b := newBackend(t, threads)
				r := newRand(7)
				p0 := randn(r, optN)
				ref := optState{p: f64(p0), m: make([]float64, optN), v: make([]float64, optN)}
				p32, m32, v32 := clone32(p0), make([]float32, optN), make([]float32, optN)
				bb := bufs(t, b, p0, m32, v32)
				var l2, decay float32
				for step := 1; step <= 5; step++ {
					g := randn(r, optN)
					bc1, bc2 := 1-math.Pow(r32(b1), float64(step)), 1-math.Pow(r32(b2), float64(step))
					lrT, epsT := float32(lr*math.Sqrt(bc2)/bc1), float32(eps*math.Sqrt(bc2))
					if adamw {
						l2, decay = 0, lr*wd
					} else {
						l2, decay = wd, 0
					}
					b.Adam(bb[0], upload(t, b, g), bb[1], bb[2], optN, lrT, b1, b2, epsT, l2, decay)
					adam32(p32, g, m32, v32, lrT, b1, b2, epsT, l2, decay)
					torchAdam(ref, f64(g), step, lr, r32(b1), r32(b2), eps, r32(wd), adamw)
					what := fmt.Sprintf("step %d", step)
					sameF32(t, what+" p", download(t, b, bb[0]), p32)
					sameF32(t, what+" m", download(t, b, bb[1]), m32)
					sameF32(t, what+" v", download(t, b, bb[2]), v32)
					near(t, what+" p vs PyTorch", p32, ref.p, 0, 2e-6)
					near(t, what+" m vs PyTorch", m32, ref.m, 1e-5, 1e-7)
					near(t, what+" v vs PyTorch", v32, ref.v, 1e-5, 1e-10)
				}
			})
		}
	}
}

// TestAdamPlainUnchanged: with l2 and decay 0, Adam is the plain update,
// bit for bit (the float32 order without the new terms).
func TestAdamPlainUnchanged(t *testing.T) {
	for _, threads := range testThreads {
		b := newBackend(t, threads)
		r := newRand(8)
		p, m, v := randn(r, optN), randn(r, optN), randn(r, optN)
		for i := range v {
			v[i] = float32(math.Abs(float64(v[i])))
		}
		g := randn(r, optN)
		bb := bufs(t, b, p, g, m, v)
		b.Adam(bb[0], bb[1], bb[2], bb[3], optN, 1e-3, 0.9, 0.999, 1e-7, 0, 0)
		var lrT, b1, b2, eps float32 = 1e-3, 0.9, 0.999, 1e-7
		for i := range p { // the update as it was before l2 and decay
			mi := float32(b1*m[i]) + float32((1-b1)*g[i])
			vi := float32(b2*v[i]) + float32((1-b2)*g[i]*g[i])
			m[i], v[i] = mi, vi
			p[i] -= lrT * mi / (float32(math.Sqrt(float64(vi))) + eps)
		}
		sameF32(t, "p", download(t, b, bb[0]), p)
		sameF32(t, "m", download(t, b, bb[2]), m)
		sameF32(t, "v", download(t, b, bb[3]), v)
	}
}

func clone32(v []float32) []float32 { return append([]float32(nil), v...) }

// adam32 is the documented float32 order of Backend.Adam.
func adam32(p, g, m, v []float32, lrT, b1, b2, eps, l2, decay float32) {
	for i := range p {
		pi, gi := p[i], g[i]
		if l2 != 0 {
			gi = gi + float32(l2*pi)
		}
		if decay != 0 {
			pi = pi - float32(decay*pi)
		}
		m[i] = float32(b1*m[i]) + float32((1-b1)*gi)
		v[i] = float32(b2*v[i]) + float32(float32((1-b2)*gi)*gi)
		p[i] = pi - float32(lrT*m[i])/(float32(math.Sqrt(float64(v[i])))+eps)
	}
}

// torchAdam is one step t of torch.optim.Adam (weight_decay wd, an L2
// penalty) or torch.optim.AdamW (decoupled decay), in float64.
func torchAdam(s optState, g []float64, t int, lr, b1, b2, eps, wd float64, adamw bool) {
	bc1, bc2 := 1-math.Pow(b1, float64(t)), 1-math.Pow(b2, float64(t))
	for i := range s.p {
		gi := g[i]
		if adamw {
			s.p[i] *= 1 - lr*wd
		} else {
			gi += wd * s.p[i]
		}
		s.m[i] = b1*s.m[i] + (1-b1)*gi
		s.v[i] = b2*s.v[i] + (1-b2)*gi*gi
		s.p[i] -= lr / bc1 * s.m[i] / (math.Sqrt(s.v[i])/math.Sqrt(bc2) + eps)
	}
}

// TestSGD: plain, with momentum, with Nesterov momentum, each with and
// without L2, against torch.optim.SGD (dampening 0).
func TestSGD(t *testing.T) {
	const lr = 0.05
	for _, c := range []struct {
		momentum, l2 float32
		nesterov     bool
	}{{0, 0, false}, {0, 0.01, false}, {0.9, 0, false}, {0.9, 0.01, false}, {0.9, 0, true}, {0.8, 0.02, true}} {
		for _, threads := range testThreads {
			t.Run(fmt.Sprintf("%+v/threads=%d", c, threads), func(t *testing.T) {
				b := newBackend(t, threads)
				r := newRand(9)
				p0 := randn(r, optN)
				ref := optState{p: f64(p0), m: make([]float64, optN)}
				p32, buf32 := clone32(p0), make([]float32, optN)
				pb := upload(t, b, p0)
				bufb := upload(t, b, buf32)
				if c.momentum == 0 {
					bufb = nil // not touched
				}
				for step := 1; step <= 5; step++ {
					g := randn(r, optN)
					b.SGD(pb, upload(t, b, g), bufb, optN, lr, c.momentum, c.l2, c.nesterov)
					sgd32(p32, g, buf32, lr, c.momentum, c.l2, c.nesterov)
					torchSGD(ref, f64(g), step, r32(lr), float64(c.momentum), float64(c.l2), c.nesterov)
					what := fmt.Sprintf("step %d", step)
					sameF32(t, what+" p", download(t, b, pb), p32)
					if bufb != nil {
						sameF32(t, what+" buf", download(t, b, bufb), buf32)
						near(t, what+" buf vs PyTorch", buf32, ref.m, 1e-5, 1e-6)
					}
					near(t, what+" p vs PyTorch", p32, ref.p, 0, 2e-6)
				}
			})
		}
	}
}

func sgd32(p, g, buf []float32, lr, mom, l2 float32, nesterov bool) {
	for i := range p {
		gi := g[i]
		if l2 != 0 {
			gi = gi + float32(l2*p[i])
		}
		if mom != 0 {
			buf[i] = float32(mom*buf[i]) + gi
			if nesterov {
				gi = gi + float32(mom*buf[i])
			} else {
				gi = buf[i]
			}
		}
		p[i] = p[i] - float32(lr*gi)
	}
}

// torchSGD is step t of torch.optim.SGD: the momentum buffer is a copy
// of the gradient at the first step.
func torchSGD(s optState, g []float64, t int, lr, mom, wd float64, nesterov bool) {
	for i := range s.p {
		gi := g[i] + wd*s.p[i]
		if mom != 0 {
			if t == 1 {
				s.m[i] = gi
			} else {
				s.m[i] = mom*s.m[i] + gi
			}
			if nesterov {
				gi += mom * s.m[i]
			} else {
				gi = s.m[i]
			}
		}
		s.p[i] -= lr * gi
	}
}

// TestRMSprop: with and without momentum and L2, against
// torch.optim.RMSprop (centered=False).
func TestRMSprop(t *testing.T) {
	const lr, alpha, eps = 0.01, 0.99, 1e-8
	for _, c := range []struct{ momentum, l2 float32 }{{0, 0}, {0, 0.01}, {0.9, 0}, {0.9, 0.01}} {
		for _, threads := range testThreads {
			t.Run(fmt.Sprintf("%+v/threads=%d", c, threads), func(t *testing.T) {
				b := newBackend(t, threads)
				r := newRand(10)
				p0 := randn(r, optN)
				ref := optState{p: f64(p0), m: make([]float64, optN), v: make([]float64, optN)}
				p32, sq32, buf32 := clone32(p0), make([]float32, optN), make([]float32, optN)
				pb, sqb, bufb := upload(t, b, p0), upload(t, b, sq32), upload(t, b, buf32)
				if c.momentum == 0 {
					bufb = nil
				}
				for step := 1; step <= 5; step++ {
					g := randn(r, optN)
					b.RMSprop(pb, upload(t, b, g), sqb, bufb, optN, lr, alpha, eps, c.l2, c.momentum)
					rmsprop32(p32, g, sq32, buf32, lr, alpha, eps, c.l2, c.momentum)
					torchRMSprop(ref, f64(g), r32(lr), r32(alpha), r32(eps), float64(c.l2), float64(c.momentum))
					what := fmt.Sprintf("step %d", step)
					sameF32(t, what+" p", download(t, b, pb), p32)
					sameF32(t, what+" sq", download(t, b, sqb), sq32)
					if bufb != nil {
						sameF32(t, what+" buf", download(t, b, bufb), buf32)
					}
					near(t, what+" sq vs PyTorch", sq32, ref.v, 1e-5, 1e-10)
					near(t, what+" p vs PyTorch", p32, ref.p, 0, 2e-6)
				}
			})
		}
	}
}

func rmsprop32(p, g, sq, buf []float32, lr, alpha, eps, l2, mom float32) {
	for i := range p {
		gi := g[i]
		if l2 != 0 {
			gi = gi + float32(l2*p[i])
		}
		sq[i] = float32(alpha*sq[i]) + float32(float32((1-alpha)*gi)*gi)
		a := float32(math.Sqrt(float64(sq[i]))) + eps
		if mom != 0 {
			buf[i] = float32(mom*buf[i]) + gi/a
			p[i] = p[i] - float32(lr*buf[i])
		} else {
			p[i] = p[i] - float32(lr*gi)/a
		}
	}
}

// torchRMSprop is one step of torch.optim.RMSprop; s.m is the momentum
// buffer, s.v the square average.
func torchRMSprop(s optState, g []float64, lr, alpha, eps, wd, mom float64) {
	for i := range s.p {
		gi := g[i] + wd*s.p[i]
		s.v[i] = alpha*s.v[i] + (1-alpha)*gi*gi
		avg := math.Sqrt(s.v[i]) + eps
		if mom > 0 {
			s.m[i] = mom*s.m[i] + gi/avg
			s.p[i] -= lr * s.m[i]
		} else {
			s.p[i] -= lr * gi / avg
		}
	}
}
