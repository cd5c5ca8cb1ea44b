//go:build cgo

package gpu

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
)

// residualNet has every layer kind of a model file: BatchNorm with each
// activation (and a frozen scale), a projection shortcut, residual adds, a
// read of one layer by two, global average pooling, dropout, a scaled
// bias-free head.
const residualNet = `{"layers": [
 {"name": "norm", "type": "normalize", "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.25, 0.3]},
 {"name": "conv1", "type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
 {"name": "bn1", "type": "batchnorm", "act": "relu"},
 {"name": "b.conv1", "type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
 {"name": "b.bn1", "type": "batchnorm", "act": "gelu"},
 {"name": "b.conv2", "type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
 {"name": "b.bn2", "type": "batchnorm", "train_weight": false},
 {"name": "b.add", "type": "add", "inputs": ["b.bn2", "bn1"], "act": "relu"},
 {"name": "d.conv", "type": "conv", "filters": 12, "kernel": 3, "stride": 2, "padding": 1},
 {"name": "d.short", "type": "conv", "input": "b.add", "filters": 12, "kernel": 1, "stride": 2, "bias": false},
 {"name": "d.add", "type": "add", "inputs": ["d.conv", "d.short"]},
 {"name": "pool", "type": "globalavgpool"},
 {"name": "drop", "type": "dropout", "p": 0.2},
 {"name": "head", "type": "dense", "units": 10, "bias": false, "scale": 0.5}]}`

// TestNetworkParity trains the residual network for a few steps with
// SGD-Nesterov, label smoothing and reflect augmentation on the CPU and on
// the GPU backend (the emulator in CI, the GPU under cuda): the parameters
// and running statistics after the steps, and the validation loss through
// the EMA binding, agree within float32 reduction-order tolerance.
func TestNetworkParity(t *testing.T) {
	eachGPU(t, func(t *testing.T, p *pair) {
		file := filepath.Join(t.TempDir(), "net.json")
		os.WriteFile(file, []byte(residualNet), 0o644)
		const bs, n, steps = 6, 24, 4
		rng := rand.New(rand.NewPCG(8, 8))
		d := &model.Data{Images: make([]uint8, n*3*16*16), Labels: make([]int32, n), N: n}
		for i := range d.Images {
			d.Images[i] = uint8(rng.IntN(256))
		}
		for i := range d.Labels {
			d.Labels[i] = int32(rng.IntN(10))
		}
		opt := model.TrainOptions{Batch: bs, LR: 0.05, Seed: 4, Smoothing: 0.1,
			Optim: model.OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
			EMA:   model.EMAOptions{Decay: 0.8}, Augment: true, Augmentation: model.Augmentation{Pad: 2, Reflect: true}}
		run := func(b device.Backend) ([]float32, []float32) {
			net, err := model.Plan(file, model.Shape{C: 3, H: 16, W: 16})
			if err != nil {
				t.Fatal(err)
			}
			if err := net.Build(b, bs, 9); err != nil {
				t.Fatal(err)
			}
			tr, err := model.NewTrainer(net, d, d, opt)
			if err != nil {
				t.Fatal(err)
			}
			for s := 0; s < steps; s++ {
				tr.Step(s)
			}
			loss, _, err := tr.Validate()
			if err != nil {
				t.Fatal(err)
			}
			params, err := net.GetParams()
			if err != nil {
				t.Fatal(err)
			}
			return params, []float32{float32(loss)}
		}
		cp, cl := run(p.c)
		gp, gl := run(p.g)
		for i := range cp {
			if math.Abs(float64(cp[i]-gp[i])) > 2e-4+2e-3*math.Abs(float64(cp[i])) {
				t.Fatalf("flat[%d] after %d steps: cpu %v, gpu %v", i, steps, cp[i], gp[i])
			}
		}
		if math.Abs(float64(cl[0]-gl[0])) > 1e-3*math.Max(1, float64(cl[0])) {
			t.Fatalf("validation loss (EMA weights): cpu %v, gpu %v", cl[0], gl[0])
		}
	})
}
