package model

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// randData is n random images of shape s with labels below classes.
func randData(rng *rand.Rand, n int, s Shape, classes int) *Data {
	d := &Data{Images: make([]uint8, n*s.Size()), Labels: make([]int32, n), N: n}
	for i := range d.Images {
		d.Images[i] = uint8(rng.IntN(256))
	}
	for i := range d.Labels {
		d.Labels[i] = int32(rng.IntN(classes))
	}
	return d
}

// closeCases are networks and training settings that between them use
// every kind of buffer: the default model with Adam, and the residual
// test network (BatchNorm, GELU, adds, fan-out) with SGD, augmentation and
// a weight average.
var closeCases = []struct {
	name, spec string
	in         Shape
	opt        TrainOptions
}{
	{"default", DefaultSpec, Shape{C: 3, H: 32, W: 32}, TrainOptions{Batch: 8, Optim: DefaultAdam, Seed: 1}},
	{"tiny-resnet", "testdata/tiny-resnet.json", Shape{C: 3, H: 16, W: 16}, TrainOptions{Batch: 6, LR: 0.05, Seed: 2,
		Optim: OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true}, EMA: EMAOptions{Decay: 0.9},
		Augment: true, Augmentation: Augmentation{Pad: 2, Reflect: true}}},
}

// TestCloseFreesEverything: build, warm up, train an epoch with
// validation, evaluate with test-time augmentation, predict, then close
// the trainer and the network: every buffer the backend handed out (Alloc,
// and the datasets' HostU8/HostI32, which are device copies on a GPU) has
// been freed exactly once, and no view was freed. Three cycles on one
// backend, for each case.
func TestCloseFreesEverything(t *testing.T) {
	for _, c := range closeCases {
		t.Run(c.name, func(t *testing.T) {
			b := newCounting(newCPU(t, 2))
			b.lazy = true // WarmUp runs as on a GPU
			rng := rand.New(rand.NewPCG(3, 3))
			for cycle := range 3 {
				before := b.allocs
				runCycle(t, b, c.spec, c.in, c.opt, rng)
				if leaks := b.leaks(); leaks != "" {
					t.Fatalf("cycle %d: still live after Close: %s", cycle, leaks)
				}
				if b.allocs == before {
					t.Fatalf("cycle %d allocated nothing", cycle)
				}
			}
		})
	}
}

// runCycle builds spec on b, trains an epoch, evaluates and predicts, then
// closes the trainer and the network.
func runCycle(t *testing.T, b device.Backend, spec string, in Shape, opt TrainOptions, rng *rand.Rand) {
	t.Helper()
	net, err := Plan(spec, in)
	if err != nil {
		t.Fatal(err)
	}
	train, val := randData(rng, 20, net.Input, net.Classes), randData(rng, 9, net.Input, net.Classes)
	if err := net.Build(b, opt.Batch, 4); err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(net, train, val, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WarmUp(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.RunEpoch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := EvaluateReport(net, val, opt.Batch, TTAFlip); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*net.Input.Size())
	if _, err := net.Predict(x, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Explain(x[:net.Input.Size()], 0, ""); err != nil { // allocates the input gradient
		t.Fatal(err)
	}
	tr.Close()
	tr.Close() // a second Close does nothing
	net.Close()
	net.Close()
}

// TestFailedBuildFreesEverything: whichever request of Build, NewTrainer
// or EvaluateReport runs out of memory, the call fails with the
// out-of-memory error and leaves nothing allocated but what its owner
// frees on Close.
func TestFailedBuildFreesEverything(t *testing.T) {
	for _, c := range closeCases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			net, err := Plan(c.spec, c.in)
			if err != nil {
				t.Fatal(err)
			}
			train, val := randData(rng, 20, net.Input, net.Classes), randData(rng, 9, net.Input, net.Classes)
			// Count the requests of a good run first.
			b := newCounting(newCPU(t, 1))
			if err = net.Build(b, c.opt.Batch, 4); err != nil {
				t.Fatal(err)
			}
			nBuild := b.calls
			tr, err := NewTrainer(net, train, val, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			nTrainer := b.calls - nBuild
			tr.Close()
			if _, err := EvaluateReport(net, val, c.opt.Batch, TTANone); err != nil {
				t.Fatal(err)
			}
			nEval := b.calls - nBuild - nTrainer
			net.Close()
			for k := 1; k <= nBuild+nTrainer+nEval; k++ {
				failedStep(t, c.spec, c.in, c.opt, train, val, k)
			}
		})
	}
}

// failedStep runs build, trainer and evaluation with the k-th request
// failing, and checks what is left.
func failedStep(t *testing.T, spec string, in Shape, opt TrainOptions, train, val *Data, k int) {
	t.Helper()
	b := newCounting(newCPU(t, 1))
	b.failAt = k
	net, _ := Plan(spec, in)
	var oom *device.OutOfMemoryError
	err := net.Build(b, opt.Batch, 4)
	if err == nil {
		var tr *Trainer
		if tr, err = NewTrainer(net, train, val, opt); err == nil {
			tr.Close()
			_, err = EvaluateReport(net, val, opt.Batch, TTANone)
		}
		net.Close()
	}
	if !errors.As(err, &oom) {
		t.Fatalf("request %d failing: err = %v, want the out-of-memory error", k, err)
	}
	if leaks := b.leaks(); leaks != "" {
		t.Fatalf("request %d failing (%s): still live: %s", k, oom.What, leaks)
	}
}
