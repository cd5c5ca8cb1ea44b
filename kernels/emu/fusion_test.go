//go:build cgo

package emu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// reluInputs are pool inputs for the ReLU fusion: random normals; mostly
// negative values with ties, signed zeros and a few NaNs (windows whose
// maximum is 0, -0 or negative, where the fusion takes the first element);
// all negative.
func reluInputs(r *rand.Rand, n int) map[string][]float32 {
	normal, mixed, neg := make([]float32, n), make([]float32, n), make([]float32, n)
	choices := []float32{-2, -1, -1, float32(math.Copysign(0, -1)), 0, -0.5, 1}
	for i := range n {
		normal[i] = float32(r.NormFloat64())
		mixed[i] = choices[r.IntN(len(choices))]
		if r.IntN(40) == 0 {
			mixed[i] = float32(math.NaN())
		}
		neg[i] = -1 - r.Float32()
	}
	return map[string][]float32{"normal": normal, "mixed": mixed, "negative": neg}
}

// bitsEqual fails unless got and want hold the same bits.
func bitsEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := bits(got), bits(want)
	for i := range w {
		if g[i] != w[i] {
			t.Fatalf("%s[%d]: %#x, want %#x (unfused)", what, i, g[i], w[i])
		}
	}
}

// TestMaxPoolReLU: the ReLU fused into maxpool_fwd_f32 gives the y and
// argmax of relu_fwd_f32 followed by the plain pool, and maxpool_bwd_f32
// with the mask gives the dx of the plain pool's backward followed by
// relu_bwd_f32 (mask: the ReLU's output), bit for bit, under every launch
// configuration, for every pool geometry (overlapping windows too), on
// inputs where windows peak at zero, at -0, below zero or at NaN.
func TestMaxPoolReLU(t *testing.T) {
	for _, g := range poolGeoms {
		for kind, x := range reluInputs(rand1(g), g.Planes*g.H*g.W) {
			t.Run(fmt.Sprintf("%+v/%s", g, kind), func(t *testing.T) {
				in, out := g.Planes*g.H*g.W, g.Planes*g.OH*g.OW
				fused := each(t, func(cfg Config) ([]any, error) {
					y, am := nans(out), make([]int32, out)
					return []any{y, am}, MaxPoolReLUForward(cfg, g, x, y, am)
				})
				r, y, am := nans(in), nans(out), make([]int32, out)
				if err := ReLUForward(GPU, x, r, in); err != nil {
					t.Fatal(err)
				}
				if err := MaxPoolForward(GPU, g, r, y, am); err != nil {
					t.Fatal(err)
				}
				bitsEqual(t, "y", fused[0], y)
				bitsEqual(t, "argmax", fused[1], am)

				dy := randF32(rng(t), out)
				got := each(t, func(cfg Config) ([]any, error) {
					dx := nans(in)
					return []any{dx}, MaxPoolReLUBackward(cfg, g, dy, y, am, dx)
				})
				dx := nans(in)
				if err := MaxPoolBackward(GPU, g, dy, am, dx); err != nil {
					t.Fatal(err)
				}
				if err := ReLUBackward(GPU, r, dx, dx, in); err != nil {
					t.Fatal(err)
				}
				bitsEqual(t, "dx", got[0], dx)
			})
		}
	}
}

// TestActBiasGrad: bias_grad_f32 with an activation's backward equals
// relu_bwd_f32 or gelu_bwd_f32 followed by bias_grad_f32 without it, bit for
// bit: the dy it writes back and db, under every launch configuration
// (blocks of 7 and 32 threads, reversed: the barrier emulation's
// interleavings), for shapes of one unit and of many (a last block adding
// the unit sums, more of them than there are lanes in the last shape), and
// it leaves its tickets at zero (BiasGrad checks).
func TestActBiasGrad(t *testing.T) {
	for _, s := range append(biasShapes, [3]int{1, 1, 1<<20 + 12345}) { // the last: 260 units
		for _, act := range []device.Act{device.ActReLU, device.ActGELU} {
			t.Run(fmt.Sprintf("%v/%v", s, act), func(t *testing.T) {
				outer, c, inner := s[0], s[1], s[2]
				n := outer * c * inner
				r := rng(t)
				dy0, a := randF32(r, n), randF32(r, n)
				for i := range a {
					if r.IntN(5) == 0 {
						a[i] = 0 // the ReLU's zeros
					}
				}
				got := each(t, func(cfg Config) ([]any, error) {
					dy, db := append([]float32(nil), dy0...), nans(c)
					return []any{dy, db}, ActBiasGrad(cfg, act, a, dy, db, outer, c, inner)
				})
				dy, db := append([]float32(nil), dy0...), nans(c)
				var err error
				if act == device.ActReLU {
					err = ReLUBackward(GPU, a, dy, dy, n)
				} else {
					err = GELUBackward(GPU, a, dy, dy, n)
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := BiasGrad(GPU, dy, db, outer, c, inner); err != nil {
					t.Fatal(err)
				}
				bitsEqual(t, "dy", got[0], dy)
				bitsEqual(t, "db", got[1], db)
			})
		}
	}
}

// TestBiasAct: bias_act_f32 with the GELU equals the bias add (bias_act_f32
// with no activation) followed by gelu_fwd_f32, bit for bit, z and y, and
// in place (y = z) with the ReLU it is AddBias's reference.
func TestBiasAct(t *testing.T) {
	for _, s := range biasShapes[:6] {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			outer, c, inner := s[0], s[1], s[2]
			n := outer * c * inner
			r := rng(t)
			z0, bias := randF32(r, n), randF32(r, c)
			got := each(t, func(cfg Config) ([]any, error) {
				z, y := append([]float32(nil), z0...), nans(n)
				return []any{z, y}, BiasAct(cfg, z, y, bias, outer, c, inner, device.ActGELU)
			})
			z, y := append([]float32(nil), z0...), nans(n)
			if err := AddBias(GPU, z, bias, outer, c, inner, false); err != nil {
				t.Fatal(err)
			}
			if err := GELUForward(GPU, z, y, n); err != nil {
				t.Fatal(err)
			}
			bitsEqual(t, "z", got[0], z)
			bitsEqual(t, "y", got[1], y)
			zr := append([]float32(nil), z0...)
			if err := BiasAct(GPU, zr, zr, bias, outer, c, inner, device.ActReLU); err != nil {
				t.Fatal(err)
			}
			bitsEqual(t, "relu in place", zr, refAddBias(z0, bias, outer, c, inner, true))
		})
	}
}

// TestBatchNormActBackward: the activation's backward fused into the first
// pass of BatchNorm's dbeta sums equals relu_bwd_f32 or gelu_bwd_f32 followed
// by the unfused backward, bit for bit: dz (written over dy), dx, dgamma and
// dbeta, under every launch configuration, for shapes of one, two and three
// reduction passes, dx apart and in place.
func TestBatchNormActBackward(t *testing.T) {
	const eps = 1e-3
	for _, s := range bnShapes {
		for _, act := range []device.Act{device.ActReLU, device.ActGELU} {
			t.Run(fmt.Sprintf("%v/%v", s, act), func(t *testing.T) {
				outer, c, inner := s[0], s[1], s[2]
				n := outer * c * inner
				x := bnInput(t, outer, c, inner)
				mean, variance, gamma, _ := bnParams(t, x, outer, c, inner)
				r := rng(t)
				dy0, a := randF32(r, n), randF32(r, n)
				for i := range a {
					if r.IntN(4) == 0 {
						a[i] = 0
					}
				}
				got := each(t, func(cfg Config) ([]any, error) {
					dy, dx, dg, db := clone(dy0), nans(n), nans(c), nans(c)
					if err := BatchNormActBackward(cfg, act, a, x, dy, mean, variance, gamma, outer, c, inner, eps, dx, dg, db); err != nil {
						return nil, err
					}
					d2, dg2, db2 := clone(dy0), nans(c), nans(c)
					return []any{dy, dx, dg, db, d2}, BatchNormActBackward(cfg, act, a, x, d2, mean, variance, gamma, outer, c, inner, eps, d2, dg2, db2)
				})
				dz, dx, dg, db := clone(dy0), nans(n), nans(c), nans(c)
				var err error
				if act == device.ActReLU {
					err = ReLUBackward(GPU, a, dz, dz, n)
				} else {
					err = GELUBackward(GPU, a, dz, dz, n)
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := BatchNormBackward(GPU, x, dz, mean, variance, gamma, outer, c, inner, eps, dx, dg, db); err != nil {
					t.Fatal(err)
				}
				bitsEqual(t, "dz", got[0], dz)
				bitsEqual(t, "dx", got[1], dx)
				bitsEqual(t, "dgamma", got[2], dg)
				bitsEqual(t, "dbeta", got[3], db)
				bitsEqual(t, "dx in place", got[4], dx)
			})
		}
	}
}

// TestOptimizerSegments: one launch of adam_seg_f32, sgd_seg_f32 or
// rmsprop_seg_f32 over a table of segments (different learning-rate factors
// and weight decays, gaps between them) equals adam_f32, sgd_f32 or
// rmsprop_f32 launched on each segment with device.OptimStep.Scalars, bit
// for bit, parameters and state, under every launch configuration; the
// elements in the gaps are not touched. Five steps, so that the bias
// correction changes.
func TestOptimizerSegments(t *testing.T) {
	segs := []device.OptimSegment{{Off: 0, N: 700, LRFactor: 1, WeightDecay: 5e-4}, {Off: 700, N: 31, LRFactor: 1, WeightDecay: 0},
		{Off: 731, N: 1000, LRFactor: 0.37, WeightDecay: 1e-2}, {Off: 1800, N: 333, LRFactor: 64, WeightDecay: 0}} // a gap at 1731..1800
	n := device.SegmentsEnd(segs)
	for _, s := range []device.OptimStep{
		{Kind: device.OptimAdam, LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7},
		{Kind: device.OptimAdamW, LR: 3e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-8},
		{Kind: device.OptimSGD, LR: 0.1, Momentum: 0.9, Nesterov: true},
		{Kind: device.OptimSGD, LR: 0.05},
		{Kind: device.OptimRMSprop, LR: 0.01, Alpha: 0.99, Eps: 1e-8, Momentum: 0.5},
		{Kind: device.OptimRMSprop, LR: 0.01, Alpha: 0.9, Eps: 1e-8},
	} {
		t.Run(fmt.Sprintf("%v momentum %v", s.Kind, s.Momentum), func(t *testing.T) {
			r := rng(t)
			p0, m0 := randF32(r, n), randF32(r, n)
			v0 := make([]float32, n)
			for i := range v0 {
				v0[i] = r.Float32()
			}
			grads := make([][]float32, 5)
			for i := range grads {
				grads[i] = randF32(r, n)
			}
			got := each(t, func(cfg Config) ([]any, error) {
				p, m, v := clone(p0), clone(m0), clone(v0)
				for i, g := range grads {
					st := s
					st.T = i + 1
					if err := OptimizerStep(cfg, p, g, m, v, segs, st); err != nil {
						return nil, err
					}
				}
				return []any{p, m, v}, nil
			})
			p, m, v := clone(p0), clone(m0), clone(v0)
			for i, g := range grads {
				st := s
				st.T = i + 1
				for _, sg := range segs {
					c, lo, hi := st.Scalars(sg), sg.Off, sg.Off+sg.N
					var err error
					switch s.Kind {
					case device.OptimAdam, device.OptimAdamW:
						err = Adam(GPU, p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], sg.N, c.LR, float32(s.Beta1), float32(s.Beta2), c.Eps, c.L2, c.Decay)
					case device.OptimSGD:
						err = SGD(GPU, p[lo:hi], g[lo:hi], m[lo:hi], sg.N, c.LR, float32(s.Momentum), c.L2, s.Nesterov)
					case device.OptimRMSprop:
						err = RMSprop(GPU, p[lo:hi], g[lo:hi], v[lo:hi], m[lo:hi], sg.N, c.LR, float32(s.Alpha), c.Eps, c.L2, float32(s.Momentum))
					}
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			bitsEqual(t, "p", got[0], p)
			bitsEqual(t, "m", got[1], m)
			bitsEqual(t, "v", got[2], v)
			for i := 1731; i < 1800; i++ {
				if math.Float32bits(got[0].([]float32)[i]) != math.Float32bits(p0[i]) {
					t.Fatalf("p[%d] in the gap changed", i)
				}
			}
		})
	}
}
