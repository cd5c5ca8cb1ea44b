//go:build cgo

package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
)

// TestMaxPoolReLU: the ReLU fused into max-pooling, forward (y, argmax)
// and backward (dx), on the GPU against the CPU, bit for bit (both are bit
// for bit the unfused ReLU and pool, see their own tests), on random
// values and on windows that peak at or below zero.
func TestMaxPoolReLU(t *testing.T) { eachGPU(t, testMaxPoolReLU) }

func testMaxPoolReLU(t *testing.T, p *pair) {
	mk := func(pl, h, w, k, s int) device.PoolGeom {
		return device.PoolGeom{Planes: pl, H: h, W: w, KH: k, KW: k, SH: s, SW: s, OH: (h-k)/s + 1, OW: (w-k)/s + 1}
	}
	for _, g := range []device.PoolGeom{mk(32*4, 30, 30, 2, 2), mk(6, 7, 5, 2, 2), mk(4, 7, 7, 3, 2), mk(3, 5, 5, 3, 1)} {
		n, nout := g.Planes*g.H*g.W, g.Planes*g.OH*g.OW
		choices := []float32{-2, -1, float32(math.Copysign(0, -1)), 0, -0.5, 1}
		mixed := make([]float32, n)
		for i := range mixed {
			mixed[i] = choices[p.rng.IntN(len(choices))]
		}
		for name, in := range map[string]bufs{"random": p.rand(n, 1), "mixed": p.f32(mixed)} {
			y, am := p.nan(nout), p.i32(make([]int32, nout))
			p.c.MaxPoolReLUForward(g, in.c, y.c, am.c)
			p.g.MaxPoolReLUForward(g, in.g, y.g, am.g)
			what := fmt.Sprintf("maxpool+relu %s %+v", name, g)
			p.checkBits(what+" y", y)
			p.checkI32(what+" argmax", am)
			dy, dx := p.rand(nout, 1), p.nan(n)
			p.c.MaxPoolReLUBackward(g, dy.c, y.c, am.c, dx.c)
			p.g.MaxPoolReLUBackward(g, dy.g, y.g, am.g, dx.g)
			p.checkBits(what+" dx", dx)
		}
	}
}

// TestActBiasGrad: an activation's backward fused into the bias gradient
// on the GPU against the CPU (the two ops one after the other): dy bit for
// bit with the ReLU and within the GELU's tolerance (2e-6 + 1e-5 relative,
// float32 erff/expf against float64), db within BiasGrad's (2e-7 per term
// + 1e-5 relative, plus the GELU's per term). And the bias add fused with
// the GELU (BiasAct): z bit for bit, y within the GELU's tolerance.
func TestActBiasGrad(t *testing.T) { eachGPU(t, testActBiasGrad) }

func testActBiasGrad(t *testing.T, p *pair) {
	for _, s := range [][3]int{{1, 32, 28800}, {1, 64, 512}, {32, 64, 1}, {3, 5, 7}, {1, 64, 131072}} {
		outer, c, inner := s[0], s[1], s[2]
		n, m := outer*c*inner, float64(outer*inner)
		for _, act := range []device.Act{device.ActReLU, device.ActGELU} {
			a := p.rand(n, 3)
			dy, db := p.rand(n, 1), p.nan(c)
			p.c.ActBiasGrad(act, a.c, dy.c, db.c, outer, c, inner)
			p.g.ActBiasGrad(act, a.g, dy.g, db.g, outer, c, inner)
			what := fmt.Sprintf("%v+bias grad %v", act, s)
			if act == device.ActReLU {
				p.checkBits(what+" dy", dy)
				p.check(what+" db", db, 2e-7*m, 1e-5)
			} else {
				p.check(what+" dy", dy, 2e-6, 1e-5)
				p.check(what+" db", db, 2.2e-6*m, 1e-5)
			}
		}
		z, bias := p.rand(n, 3), p.rand(c, 1)
		y := p.nan(n)
		p.c.BiasAct(z.c, y.c, bias.c, outer, c, inner, device.ActGELU)
		p.g.BiasAct(z.g, y.g, bias.g, outer, c, inner, device.ActGELU)
		p.checkBits(fmt.Sprintf("bias+gelu %v z", s), z)
		p.check(fmt.Sprintf("bias+gelu %v y", s), y, 2e-6, 1e-5)
	}
}

// TestFusionBitIdenticalGPU: training with the fused ops and without gives
// the same parameters and validation loss bit for bit on the GPU backend
// (the emulator in CI), for networks with every fusion: a conv's ReLU in a
// max-pool, ReLU and GELU backward in the bias gradient, the bias add with
// the GELU (pointwiseNet), and batch norms, residual adds, dropout and an
// EMA around them (residualNet); and it queues fewer kernels.
func TestFusionBitIdenticalGPU(t *testing.T) {
	for _, kind := range []string{"cuda", "emu"} {
		t.Run(kind, func(t *testing.T) {
			var g *Backend
			if kind == "emu" {
				g = newEmuBackend(t)
			} else {
				g = newGPU(t, "the fusion check")
			}
			defer g.Close()
			const bs, n, steps = 6, 24, 3
			rng := rand.New(rand.NewPCG(4, 4))
			d := &model.Data{Images: make([]uint8, n*3*16*16), Labels: make([]int32, n), N: n}
			for i := range d.Images {
				d.Images[i] = uint8(rng.IntN(256))
			}
			for i := range d.Labels {
				d.Labels[i] = int32(rng.IntN(10))
			}
			opt := model.TrainOptions{Batch: bs, LR: 0.05, Seed: 4, Smoothing: 0.1,
				Optim: model.OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
				EMA:   model.EMAOptions{Decay: 0.8}}
			for _, name := range []string{"pointwise", "residual"} {
				file := filepath.Join(t.TempDir(), name+".json")
				os.WriteFile(file, []byte(map[string]string{"residual": residualNet, "pointwise": pointwiseNet}[name]), 0o644)
				run := func(fuse bool) ([]float32, float64, int) {
					net, err := model.Plan(file, model.Shape{C: 3, H: 16, W: 16})
					if err != nil {
						t.Fatal(err)
					}
					net.SetFusion(fuse)
					if err := net.Build(g, bs, 9); err != nil {
						t.Fatal(err)
					}
					defer net.Close()
					tr, err := model.NewTrainer(net, d, d, opt)
					if err != nil {
						t.Fatal(err)
					}
					defer tr.Close()
					before := g.Launches().Kernels
					for s := range steps {
						tr.Step(s)
					}
					launched := g.Launches().Kernels - before
					loss, _, err := tr.Validate()
					if err != nil {
						t.Fatal(err)
					}
					params, err := net.GetParams()
					if err != nil {
						t.Fatal(err)
					}
					return params, loss, launched
				}
				fp, fl, fk := run(true)
				up, ul, uk := run(false)
				for i := range up {
					if math.Float32bits(fp[i]) != math.Float32bits(up[i]) {
						t.Fatalf("%s: flat[%d] fused %v, unfused %v", name, i, fp[i], up[i])
					}
				}
				if fl != ul {
					t.Fatalf("%s: validation loss fused %v, unfused %v", name, fl, ul)
				}
				if fk >= uk {
					t.Errorf("%s: %d kernels fused, %d unfused in %d steps", name, fk, uk, steps)
				}
				t.Logf("%s: %d steps, %d kernel launches fused, %d unfused", name, steps, fk, uk)
			}
		})
	}
}

// TestBatchNormActBackward: BatchNorm's backward with the activation's
// fused in, on the GPU against the CPU (the two ops), with BatchNorm's
// backward tolerances (see TestBatchNorm; the GELU's derivative adds its
// own, 2e-6 + 1e-5 relative per element).
func TestBatchNormActBackward(t *testing.T) { eachGPU(t, testBatchNormActBackward) }

func testBatchNormActBackward(t *testing.T, p *pair) {
	const eps = 1e-5
	for _, s := range bnShapes {
		outer, c, inner := s[0], s[1], s[2]
		n, m := outer*c*inner, float64(outer*inner)
		x, dy := bnInput(p, outer, c, inner)
		mean, variance := p.nan(c), p.nan(c)
		p.c.BatchNormStats(x.c, mean.c, variance.c, outer, c, inner)
		cm, cv := p.f32(p.host(mean)), p.f32(p.host(variance))
		gv := make([]float32, c)
		for i := range gv {
			gv[i] = 0.5 + p.rng.Float32()
		}
		gamma := p.f32(gv)
		for _, act := range []device.Act{device.ActReLU, device.ActGELU} {
			a, d := p.rand(n, 2), p.f32(p.host(dy))
			dx, dg, db := p.nan(n), p.nan(c), p.nan(c)
			p.c.BatchNormActBackward(act, a.c, x.c, d.c, cm.c, cv.c, gamma.c, outer, c, inner, eps, dx.c, dg.c, db.c)
			p.g.BatchNormActBackward(act, a.g, x.g, d.g, cm.g, cv.g, gamma.g, outer, c, inner, eps, dx.g, dg.g, db.g)
			what := fmt.Sprintf("bn+%v bwd %v", act, s)
			p.check(what+" dz", d, 2e-6, 1e-5)
			p.check(what+" dbeta", db, 2.2e-6*m, 1e-5)
			p.check(what+" dgamma", dg, 4e-6*m, 1e-5)
			p.check(what+" dx", dx, 1e-4, 1e-4)
		}
	}
}

// TestOptimizerStep: the one-launch optimiser update over segments with
// different learning-rate factors and weight decays (and a gap) on the GPU
// against the CPU (each segment's plain update), bit for bit, parameters
// and state, three steps of every update rule; one kernel launch a step,
// the table uploaded once.
func TestOptimizerStep(t *testing.T) { eachGPU(t, testOptimizerStep) }

func testOptimizerStep(t *testing.T, p *pair) {
	segs := []device.OptimSegment{{Off: 0, N: 5000, LRFactor: 1, WeightDecay: 5e-4}, {Off: 5000, N: 77, LRFactor: 1, WeightDecay: 0},
		{Off: 5077, N: 3000, LRFactor: 0.25, WeightDecay: 1e-2}, {Off: 9000, N: 1234, LRFactor: 10, WeightDecay: 0}}
	n := device.SegmentsEnd(segs)
	for _, s := range []device.OptimStep{
		{Kind: device.OptimAdam, LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7},
		{Kind: device.OptimAdamW, LR: 3e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{Kind: device.OptimSGD, LR: 0.1, Momentum: 0.9, Nesterov: true},
		{Kind: device.OptimRMSprop, LR: 0.01, Alpha: 0.99, Eps: 1e-8, Momentum: 0.5},
	} {
		par, m := p.rand(n, 1), p.rand(n, 0.1)
		v := p.f32(positive(p, n, 0.01))
		g := p.rand(n, 1)
		var launches []int
		for step := 1; step <= 3; step++ {
			s.T = step
			before := 0
			if gb, ok := p.g.(*Backend); ok {
				before = gb.Launches().Kernels
			}
			p.c.OptimizerStep(par.c, g.c, m.c, v.c, segs, s)
			p.g.OptimizerStep(par.g, g.g, m.g, v.g, segs, s)
			if gb, ok := p.g.(*Backend); ok {
				launches = append(launches, gb.Launches().Kernels-before)
			}
		}
		what := fmt.Sprintf("optimizer step %v", s.Kind)
		p.checkBits(what+" params", par)
		p.checkBits(what+" m", m)
		p.checkBits(what+" v", v)
		for i, l := range launches {
			if l != 1 {
				t.Errorf("%s: step %d launched %d kernels", what, i+1, l)
			}
		}
	}
}
