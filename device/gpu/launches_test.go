//go:build cgo

package gpu

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/cuda"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
	"github.com/trainer-go/trainer/model"
)

// seedLaunches runs three training steps of the default model (the seed
// CNN) at batch bs on the GPU backend over the emulator, with the fused
// ops or without, and returns the launches of one steady-state step
// (gather, forward, loss, backward and the optimiser: what a training
// loop queues per step besides augmentation) and the parameters after the
// steps.
func seedLaunches(t *testing.T, bs int, fuse bool) (Launches, []float32) {
	t.Helper()
	g := newEmuBackend(t)
	defer g.Close()
	const n = 64
	rng := rand.New(rand.NewPCG(3, 3))
	imgs, labels, order := make([]uint8, n*3072), make([]int32, n), make([]int32, n)
	for i := range imgs {
		imgs[i] = uint8(rng.IntN(256))
	}
	for i := range labels {
		labels[i], order[i] = int32(rng.IntN(10)), int32(rng.IntN(n))
	}
	s := newStepper(t, g, bs, imgs, labels, order)
	defer s.net.Close()
	s.net.SetFusion(fuse)
	var per []Launches
	for i := range 3 {
		before := g.Launches()
		s.net.LoadBatch(s.images, s.label, s.idx[i%len(s.idx)], bs)
		s.net.TrainStep(bs, s.opt, 1e-3, 0, s.stats)
		after := g.Launches()
		per = append(per, Launches{Kernels: after.Kernels - before.Kernels, Gemms: after.Gemms - before.Gemms})
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	if per[1] != per[2] {
		t.Fatalf("steps 2 and 3 queue different launches: %+v, %+v", per[1], per[2])
	}
	params, err := s.net.GetParams()
	if err != nil {
		t.Fatal(err)
	}
	return per[2], params
}

// TestSeedLaunches counts the launches of one training step of the seed
// CNN at batch 32 (the figure the issue measures on the device), with the
// fused ops and without. Every weighted layer makes one GEMM forward and
// one for its weight gradient, and each but the first one more for its
// input gradient; the fused step queues fewer kernels and computes the
// same parameters bit for bit.
func TestSeedLaunches(t *testing.T) {
	const bs = 32
	got, fused := seedLaunches(t, bs, true)
	unf, plain := seedLaunches(t, bs, false)
	net, err := model.Plan(model.DefaultSpec, model.Shape{C: 3, H: 32, W: 32})
	if err != nil {
		t.Fatal(err)
	}
	weighted := 0
	for _, r := range net.Summary() {
		if strings.HasPrefix(r.Type, "conv") || strings.HasPrefix(r.Type, "dense") {
			weighted++
		}
	}
	if want := 3*weighted - 1; got.Gemms != want || unf.Gemms != want {
		t.Errorf("%d GEMMs per step fused, %d unfused, want %d for %d weighted layers", got.Gemms, unf.Gemms, want, weighted)
	}
	if got.Kernels < 1 || got.Kernels >= unf.Kernels {
		t.Errorf("%d kernel launches per step fused, %d unfused", got.Kernels, unf.Kernels)
	}
	for i := range plain {
		if math.Float32bits(fused[i]) != math.Float32bits(plain[i]) {
			t.Fatalf("flat[%d] after 3 steps: fused %v, unfused %v", i, fused[i], plain[i])
		}
	}
	t.Logf("seed CNN, batch %d, per training step: %d kernel launches fused (%d unfused) and %d cuBLAS GEMMs", bs, got.Kernels, unf.Kernels, got.Gemms)
}

// dryDev is emuDev that counts without computing: a launch's packing is
// checked against the kernel's signature, nothing runs, and GEMMs and
// memsets do nothing (the memory stays untouched, so large models cost
// little); for counting the launches of large models quickly.
type dryDev struct{ emuDev }

func (d *dryDev) MemsetD8(p cuda.DevicePtr, v uint8, bytes int) error { return nil }

func (d *dryDev) Launch(k *kernels.Kernel, grid, block int, args *cuda.Args) error {
	if args.Err() != nil {
		return args.Err()
	}
	return checkPacking(k, args)
}

func (d *dryDev) Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error {
	return nil
}

func (d *dryDev) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error {
	return nil
}

// TestPresetLaunches counts the launches of a training step of each preset
// with its recipe's optimiser (resnet20 and airbench94 at batch 128,
// the seed CNN at 32 and 128), with the fused ops and without: the fused
// step launches fewer kernels and the same GEMMs.
func TestPresetLaunches(t *testing.T) {
	nwd := 2.08e-5
	for _, c := range []struct {
		spec string
		bs   int
		opt  model.OptimConfig
	}{
		{"seed", 32, model.DefaultAdam},
		{"seed", 128, model.DefaultAdam},
		{"resnet20", 128, model.OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4}},
		{"airbench94", 128, model.OptimConfig{Kind: "sgd", Momentum: 0.85, Nesterov: true, WeightDecay: 0.00133, NormLRFactor: 64, NormWeightDecay: &nwd}},
	} {
		var got [2]Launches
		for i, fuse := range []bool{true, false} {
			g := newBackend(&dryDev{emuDev{t: t}}, "GPU backend, launches counted only", 1<<40, device.PrecisionFP32, true)
			if err := g.setGraphs(device.GraphsOff); err != nil { // op by op: a captured step is one graph launch
				t.Fatal(err)
			}
			net, err := model.Plan(c.spec, model.Shape{C: 3, H: 32, W: 32})
			if err != nil {
				t.Fatal(err)
			}
			net.SetFusion(fuse)
			if err := net.Build(g, c.bs, 1); err != nil {
				t.Fatal(err)
			}
			n := 2 * c.bs
			d := &model.Data{Images: make([]uint8, n*3072), Labels: make([]int32, n), N: n}
			tr, err := model.NewTrainer(net, d, nil, model.TrainOptions{Batch: c.bs, LR: 0.01, Optim: c.opt, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			err = tr.Step(0)
			before := g.Launches()
			err = errors.Join(err, tr.Step(1))
			after := g.Launches()
			if err != nil {
				t.Fatal(err)
			}
			got[i] = Launches{Kernels: after.Kernels - before.Kernels, Gemms: after.Gemms - before.Gemms}
			tr.Close()
			net.Close()
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if got[0].Kernels >= got[1].Kernels || got[0].Gemms != got[1].Gemms {
			t.Errorf("%s batch %d: fused %+v, unfused %+v", c.spec, c.bs, got[0], got[1])
		}
		t.Logf("%s, batch %d, per training step: %d kernel launches fused (%d unfused), %d GEMMs", c.spec, c.bs, got[0].Kernels, got[1].Kernels, got[0].Gemms)
	}
}
