//go:build cgo

package gpu

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/trainer-go/trainer/kernels/emu"
	"github.com/trainer-go/trainer/model"
)

// TestMemoryReturns: build a network, warm up, train an epoch with
// validation, evaluate with test-time augmentation, then close the trainer
// and the network, four times on one GPU backend. After the first cycle
// (which leaves the backend's own lasting state: the reduction scratch,
// cuBLAS's workspace), every cycle ends with the device's free memory
// (cuMemGetInfo) exactly where it started; during the cycle it was lower.
// On the emulator the same holds for the number of live device blocks. The
// datasets (3 MiB of images on the GPU) are larger than the driver's
// allocation granularity, so leaking one would show.
func TestMemoryReturns(t *testing.T) {
	eachGPU(t, func(t *testing.T, p *pair) {
		g := p.g.(*Backend)
		spec, in, n, opt := model.DefaultSpec, model.Shape{C: 3, H: 32, W: 32}, 1024, model.TrainOptions{Batch: 32, Seed: 1}
		if p.emu { // the emulator's reference GEMM is slow: a small network
			spec = filepath.Join(t.TempDir(), "net.json")
			os.WriteFile(spec, []byte(residualNet), 0o644)
			in, n = model.Shape{C: 3, H: 16, W: 16}, 24
			opt = model.TrainOptions{Batch: 6, LR: 0.05, Seed: 1, Optim: model.OptimConfig{Kind: "sgd", Momentum: 0.9},
				EMA: model.EMAOptions{Decay: 0.8}, Augment: true, Augmentation: model.Augmentation{Pad: 2}}
		}
		used := func() uint64 { // what the device has handed out, in the measure at hand
			if p.emu {
				return uint64(emu.Live())
			}
			free, total, err := g.MemInfo()
			if err != nil {
				t.Fatal(err)
			}
			return total - free
		}
		rng := rand.New(rand.NewPCG(6, 6))
		var start uint64
		for cycle := range 4 {
			peak := memoryCycle(t, p, spec, in, n, opt, rng, used)
			now := used()
			t.Logf("cycle %d: %d in use at the end, %d at the peak", cycle, now, peak)
			if cycle == 0 {
				start = now
				continue
			}
			if now != start || peak <= start {
				t.Fatalf("cycle %d: %d in use after Close, %d after the first cycle (peak %d)", cycle, now, start, peak)
			}
		}
	})
}

// memoryCycle runs one build/train/eval/close cycle and returns used() at
// its peak (before the trainer is closed).
func memoryCycle(t *testing.T, p *pair, spec string, in model.Shape, n int, opt model.TrainOptions, rng *rand.Rand, used func() uint64) uint64 {
	t.Helper()
	net, err := model.Plan(spec, in)
	if err != nil {
		t.Fatal(err)
	}
	data := func(n int) *model.Data {
		d := &model.Data{Images: make([]uint8, n*in.Size()), Labels: make([]int32, n), N: n}
		for i := range d.Images {
			d.Images[i] = uint8(rng.IntN(256))
		}
		for i := range d.Labels {
			d.Labels[i] = int32(rng.IntN(net.Classes))
		}
		return d
	}
	train, val := data(n), data(n/2)
	if err := net.Build(p.g, opt.Batch, 3); err != nil {
		t.Fatal(err)
	}
	tr, err := model.NewTrainer(net, train, val, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WarmUp(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.RunEpoch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := model.EvaluateReport(net, val, opt.Batch, model.TTAFlip); err != nil {
		t.Fatal(err)
	}
	peak := used()
	tr.Close()
	net.Close()
	if err := p.g.Sync(); err != nil {
		t.Fatal(err)
	}
	return peak
}
