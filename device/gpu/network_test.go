//go:build cgo

package gpu

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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

// TestExplainParity: model.Explain of the residual network (BatchNorm's
// running statistics moved off the identity) on the GPU backend against the
// CPU backend: the logits, Grad-CAM's layer gradient and map, the input
// gradient (through normalize) and the saliency map, for the default layer
// and the most likely class, and for another layer and class.
func TestExplainParity(t *testing.T) {
	eachGPU(t, func(t *testing.T, p *pair) {
		file := filepath.Join(t.TempDir(), "net.json")
		os.WriteFile(file, []byte(residualNet), 0o644)
		in := model.Shape{C: 3, H: 16, W: 16}
		plan := func() *model.Network {
			net, err := model.Plan(file, in)
			if err != nil {
				t.Fatal(err)
			}
			return net
		}
		flat := plan().InitParams(5)
		rng := rand.New(rand.NewPCG(5, 5))
		for _, ts := range plan().Tensors(flat) {
			for i := range ts.Data {
				switch {
				case strings.HasSuffix(ts.Name, ".running_mean"):
					ts.Data[i] = float32(rng.Float64() - 0.5)
				case strings.HasSuffix(ts.Name, ".running_var"):
					ts.Data[i] = float32(0.3 + 1.7*rng.Float64())
				case strings.HasPrefix(ts.Name, "bn") || strings.Contains(ts.Name, ".bn"):
					ts.Data[i] += float32(0.4 * (rng.Float64() - 0.5))
				}
			}
		}
		x := make([]float32, in.Size())
		for i := range x {
			x[i] = rng.Float32()
		}
		explain := func(b device.Backend, class int, layer string) *model.Explanation {
			net := plan()
			if err := net.Build(b, 2, 1); err != nil {
				t.Fatal(err)
			}
			if err := net.SetParams(flat); err != nil {
				t.Fatal(err)
			}
			e, err := net.Explain(x, class, layer)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		for _, c := range []struct {
			class int
			layer string
		}{{-1, ""}, {3, "b.add"}} {
			ce, ge := explain(p.c, c.class, c.layer), explain(p.g, c.class, c.layer)
			if ce.Class != ge.Class || ce.Layer != ge.Layer {
				t.Fatalf("cpu explains class %d on %s, gpu class %d on %s", ce.Class, ce.Layer, ge.Class, ge.Layer)
			}
			for _, v := range []struct {
				what     string
				cpu, gpu []float32
			}{
				{"logits", ce.Logits, ge.Logits},
				{"layer gradient", ce.LayerGrad, ge.LayerGrad},
				{"Grad-CAM map", ce.CAM, ge.CAM},
				{"input gradient", ce.InputGrad, ge.InputGrad},
				{"saliency", ce.Saliency, ge.Saliency},
			} {
				var scale float64
				for _, w := range v.cpu {
					scale = math.Max(scale, math.Abs(float64(w)))
				}
				if scale == 0 {
					t.Fatalf("%s %s: all zero on the CPU: the comparison would be vacuous", ce.Layer, v.what)
				}
				for i := range v.cpu {
					if d := math.Abs(float64(v.cpu[i] - v.gpu[i])); d > 1e-3*scale || math.IsNaN(float64(v.gpu[i])) {
						t.Fatalf("%s, class %d: %s[%d]: cpu %v, gpu %v (largest %v)", ce.Layer, ce.Class, v.what, i, v.cpu[i], v.gpu[i], scale)
					}
				}
			}
		}
	})
}
