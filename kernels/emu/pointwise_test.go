//go:build cgo

package emu

import (
	"fmt"
	"math"
	"testing"
)

// Tests of the optimisers of optim.cu, the kernels of pointwise.cu and
// translate_f32 against the references of ref_test.go, under every launch
// config (each).

func clone(s []float32) []float32 { return append([]float32(nil), s...) }

func TestSGD(t *testing.T) {
	for _, c := range []struct {
		n                int
		momentum, l2     float32
		nesterov, bufNil bool
	}{
		{1, 0, 0, false, true}, {33, 0, 1e-2, false, true}, {5000, 0.9, 0, false, false},
		{33, 0.9, 5e-3, true, false}, {5000, 0.5, 1e-4, true, false},
	} {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			r := rng(t)
			p0, buf0 := randF32(r, c.n), randF32(r, c.n)
			grads := [][]float32{randF32(r, c.n), randF32(r, c.n), randF32(r, c.n)}
			if c.bufNil {
				buf0 = nil
			}
			const lr = 0.05
			out := each(t, func(cfg Config) ([]any, error) {
				p, buf := clone(p0), clone(buf0)
				for _, g := range grads {
					if err := SGD(cfg, p, g, buf, c.n, lr, c.momentum, c.l2, c.nesterov); err != nil {
						return nil, err
					}
				}
				if buf == nil {
					buf = []float32{}
				}
				return []any{p, buf}, nil
			})
			p, buf := clone(p0), clone(buf0)
			for _, g := range grads {
				refSGD(p, g, buf, lr, c.momentum, c.l2, c.nesterov)
			}
			// No fused multiply-adds: bit for bit the float32 expression.
			equalF32(t, "p", out[0].([]float32), p)
			if buf != nil {
				equalF32(t, "buf", out[1].([]float32), buf)
			}
		})
	}
}

func TestRMSprop(t *testing.T) {
	for _, c := range []struct {
		n            int
		momentum, l2 float32
		bufNil       bool
	}{
		{1, 0, 0, true}, {33, 0, 1e-2, true}, {5000, 0.9, 0, false}, {33, 0.5, 5e-3, false},
	} {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			r := rng(t)
			p0, buf0 := randF32(r, c.n), randF32(r, c.n)
			sq0 := make([]float32, c.n)
			for i := range sq0 {
				sq0[i] = float32(r.Float64())
			}
			grads := [][]float32{randF32(r, c.n), randF32(r, c.n), randF32(r, c.n)}
			if c.bufNil {
				buf0 = nil
			}
			const lr, alpha, eps = 0.01, 0.99, 1e-8
			out := each(t, func(cfg Config) ([]any, error) {
				p, sq, buf := clone(p0), clone(sq0), clone(buf0)
				for _, g := range grads {
					if err := RMSprop(cfg, p, g, sq, buf, c.n, lr, alpha, eps, c.l2, c.momentum); err != nil {
						return nil, err
					}
				}
				if buf == nil {
					buf = []float32{}
				}
				return []any{p, sq, buf}, nil
			})
			p, sq, buf := clone(p0), clone(sq0), clone(buf0)
			for _, g := range grads {
				refRMSprop(p, g, sq, buf, lr, alpha, eps, c.l2, c.momentum)
			}
			equalF32(t, "p", out[0].([]float32), p)
			equalF32(t, "sq", out[1].([]float32), sq)
			if buf != nil {
				equalF32(t, "buf", out[2].([]float32), buf)
			}
		})
	}
}

// geluInputs are n values spread over [-8, 8] with zeros, tiny and large
// values among them.
func geluInputs(t *testing.T, n int) []float32 {
	x := randF32(rng(t), n)
	for i := range x {
		x[i] *= 8
	}
	for i, v := range []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 8, -8, -5.5, 3} {
		if i < n {
			x[i] = v
		}
	}
	return x
}

// TestGELU: forward and backward against float64, within the tolerance
// pointwise.cu states (a few 1e-7 absolute per unit of |x|, a few float32
// ulps relative): |got-want| <= 1e-5*|want| + 2e-6*mag with mag = max(|x|,
// 1e-3)... for the forward and |dy| for the backward.
func TestGELU(t *testing.T) {
	for _, n := range []int{1, 7, 1000, 30001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			x := geluInputs(t, n)
			dy := randF32(rng(t), n)
			want, wantDx := make([]float64, n), make([]float64, n)
			magY, magDx := make([]float64, n), make([]float64, n)
			for i, v := range x {
				y, d := refGELU(float64(v))
				want[i], wantDx[i] = y, float64(dy[i])*d
				magY[i], magDx[i] = math.Abs(float64(v)), math.Abs(float64(dy[i]))
			}
			out := each(t, func(cfg Config) ([]any, error) {
				y, inPlace := nans(n), clone(x)
				if err := GELUForward(cfg, x, y, n); err != nil {
					return nil, err
				}
				return []any{y, inPlace}, GELUForward(cfg, inPlace, inPlace, n)
			})
			closeF64(t, "y", out[0].([]float32), want, magY)
			equalF32(t, "y in place", out[1].([]float32), out[0].([]float32))
			out = each(t, func(cfg Config) ([]any, error) {
				dx, inPlace := nans(n), clone(dy)
				if err := GELUBackward(cfg, x, dy, dx, n); err != nil {
					return nil, err
				}
				return []any{dx, inPlace}, GELUBackward(cfg, x, inPlace, inPlace, n)
			})
			closeF64(t, "dx", out[0].([]float32), wantDx, magDx)
			equalF32(t, "dx in place", out[1].([]float32), out[0].([]float32))
		})
	}
}

// TestAddAxpby: one float32 operation per step, so bit for bit.
func TestAddAxpby(t *testing.T) {
	for _, n := range []int{1, 257, 70001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := rng(t)
			a, b := randF32(r, n), randF32(r, n)
			b[0] = -a[0] // a sum of exactly 0
			for _, relu := range []bool{false, true} {
				want := make([]float32, n)
				for i := range want {
					want[i] = a[i] + b[i]
					if relu && want[i] < 0 {
						want[i] = 0
					}
				}
				out := each(t, func(cfg Config) ([]any, error) {
					y, ya := nans(n), clone(a)
					if err := Add(cfg, a, b, y, n, relu); err != nil {
						return nil, err
					}
					return []any{y, ya}, Add(cfg, ya, b, ya, n, relu) // y = a
				})
				equalBits(t, fmt.Sprintf("add relu=%v", relu), out[0].([]float32), want)
				equalBits(t, fmt.Sprintf("add relu=%v in place", relu), out[1].([]float32), want)
			}
			for _, c := range [][2]float32{{1, 0}, {0.3, 0}, {0.001, 0.999}, {-2, 0.5}} {
				alpha, beta := c[0], c[1]
				y0 := randF32(r, n)
				if beta == 0 {
					y0 = nans(n) // not read
				}
				want := make([]float32, n)
				for i := range want {
					want[i] = alpha * a[i]
					if beta != 0 {
						want[i] = float32(alpha*a[i]) + float32(beta*y0[i])
					}
				}
				out := each(t, func(cfg Config) ([]any, error) {
					y := clone(y0)
					return []any{y}, Axpby(cfg, a, y, n, alpha, beta)
				})
				equalBits(t, fmt.Sprintf("axpby %v", c), out[0].([]float32), want)
			}
		})
	}
}

// TestDropout: the mask and the scaling are exact, so bit for bit; the
// draws depend on the element index only (in place, two launches agree).
func TestDropout(t *testing.T) {
	for _, n := range []int{1, 1000, 70001} {
		for _, p := range []float32{0, 0.1, 0.5, 0.9, 1} {
			for _, d := range []struct {
				seed uint64
				step int
			}{{7, 0}, {0xdeadbeefcafef00d, 1<<33 + 5}} {
				t.Run(fmt.Sprintf("%d/p=%v/%v", n, p, d), func(t *testing.T) {
					x := augmentSrc(rng(t), n)
					if p != 0 {
						for i, v := range x {
							if v != v {
								x[i] = 0.5 // NaN payloads survive only a copy (p = 0)
							}
						}
					}
					want := refDropout(x, p, d.seed, d.step)
					out := each(t, func(cfg Config) ([]any, error) {
						y, yx := nans(n), clone(x)
						if err := Dropout(cfg, x, y, n, p, d.seed, d.step); err != nil {
							return nil, err
						}
						return []any{y, yx}, Dropout(cfg, yx, yx, n, p, d.seed, d.step)
					})
					equalBits(t, "y", out[0].([]float32), want)
					equalBits(t, "y in place", out[1].([]float32), want)
					if n >= 1000 && p > 0 && p < 1 {
						kept := 0
						for _, v := range want {
							if v != 0 {
								kept++
							}
						}
						if f := float64(kept) / float64(n); math.Abs(f-float64(1-p)) > 0.05 {
							t.Errorf("kept %.3f of the elements, want about %.3f", f, 1-p)
						}
					}
				})
			}
		}
	}
}

// TestTranslate: a pure copy, bit for bit, for shifts in every direction up
// to the image size minus one, with and without the flip.
func TestTranslate(t *testing.T) {
	for _, s := range [][4]int{{3, 4, 8, 8}, {2, 3, 5, 7}, {1, 5, 1, 6}, {1, 2, 4, 1}, {3, 2, 32, 32}} {
		c, n, h, w := s[0], s[1], s[2], s[3]
		for _, sh := range [][2]int{{0, 0}, {1, -2}, {-3, 4}, {h - 1, -(w - 1)}, {-(h - 1), w - 1}} {
			dy, dx := max(min(sh[0], h-1), 1-h), max(min(sh[1], w-1), 1-w)
			for _, flip := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/%d,%d/flip=%v", s, dy, dx, flip), func(t *testing.T) {
					src := augmentSrc(rng(t), c*n*h*w)
					out := each(t, func(cfg Config) ([]any, error) {
						dst := nans(len(src))
						return []any{dst}, Translate(cfg, src, dst, c, n, h, w, dy, dx, flip)
					})
					equalBits(t, "dst", out[0].([]float32), refTranslate(src, c, n, h, w, dy, dx, flip))
				})
			}
		}
	}
}
