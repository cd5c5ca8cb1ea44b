package model

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// errFault stands for an asynchronous device fault (an illegal address).
var errFault = errors.New("CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)")

// faultyBackend is the CPU backend acting as a GPU (queued ops, lazy
// set-up) on which the optimiser step of global step faultAt raises a
// fault that, as on a GPU, is reported only by the next wait (Sync or a
// download), once. It counts the optimiser calls by kind.
type faultyBackend struct {
	device.Backend
	faultAt int
	steps   map[string]int // optimiser calls by kind
	lastN   int            // the length of the last optimiser call
	pending bool
}

func newFaulty(t *testing.T, faultAt int) *faultyBackend {
	return &faultyBackend{Backend: newCPU(t, 1), faultAt: faultAt, steps: map[string]int{}}
}

func (f *faultyBackend) Caps() device.Caps {
	c := f.Backend.Caps()
	c.Async, c.LazyInit = true, true
	return c
}

// opt counts one optimiser call; the first segment of step faultAt faults.
func (f *faultyBackend) opt(kind string) {
	f.steps[kind]++
	if f.steps[kind] == f.faultAt {
		f.pending = true
	}
}

func (f *faultyBackend) wait() error {
	if f.pending {
		f.pending = false
		return errFault
	}
	return nil
}

func (f *faultyBackend) Sync() error {
	if err := f.Backend.Sync(); err != nil {
		return err
	}
	return f.wait()
}

func (f *faultyBackend) DownloadF32(src device.Buffer, off int, dst []float32) error {
	if err := f.wait(); err != nil {
		return err
	}
	return f.Backend.DownloadF32(src, off, dst)
}

// OptimizerStep counts the optimiser's one op per step (adam for adamw).
func (f *faultyBackend) OptimizerStep(params, grads, m, v device.Buffer, segs []device.OptimSegment, s device.OptimStep) {
	kind := s.Kind
	if kind == device.OptimAdamW {
		kind = device.OptimAdam
	}
	f.opt(kind.String())
	f.Backend.OptimizerStep(params, grads, m, v, segs, s)
}

// smallNet is a fast network for many steps: 64 steps of batch 2.
func smallNet(t *testing.T, b device.Backend) (*Network, *Data) {
	t.Helper()
	net, err := Plan("conv4k3,maxpool2,flatten,dense10", Shape{C: 3, H: 8, W: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, 2, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(net.Close)
	return net, randData(rand.New(rand.NewPCG(9, 9)), 128, net.Input, net.Classes)
}

// TestSyncEveryNamesTheStep: a fault raised by the optimiser in step 7 of
// an epoch on an asynchronous backend is reported by the next wait. By
// default that is the loss check at step 50, and the error gives the range
// of steps and the flag; with SyncEvery 1 it names step 7 itself, with
// SyncEvery 4 the steps 5 to 8.
func TestSyncEveryNamesTheStep(t *testing.T) {
	for _, c := range []struct {
		every int
		where string
	}{
		{0, "between steps 1 and 50 of epoch 1: " + errFault.Error() + " (the device reports a fault at the next wait; --sync-every 1 names the step that raised it)"},
		{1, "at step 7 of epoch 1 (global step 7): " + errFault.Error()},
		{4, "between steps 5 and 8 of epoch 1 (global step 8): " + errFault.Error()},
	} {
		b := newFaulty(t, 7)
		net, d := smallNet(t, b)
		tr, err := NewTrainer(net, d, nil, TrainOptions{Batch: 2, Optim: DefaultAdam, SyncEvery: c.every})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.RunEpoch(context.Background())
		if !errors.Is(err, errFault) || err.Error() != c.where {
			t.Errorf("SyncEvery %d: err = %v, want %q", c.every, err, c.where)
		}
		tr.Close()
	}
}

// TestWarmUpRunsTheOptimizer: WarmUp runs the optimiser's step once (one
// op for all its segments), on the network's own buffers, and
// leaves the parameters, the optimiser's state and the step count exactly
// as they were, for each optimiser kind.
func TestWarmUpRunsTheOptimizer(t *testing.T) {
	for _, kind := range Optimizers {
		t.Run(kind, func(t *testing.T) {
			b := newFaulty(t, 0)
			net, d := smallNet(t, b)
			o := DefaultOptim(kind)
			o.Momentum = 0.9 // sgd and rmsprop then use their buffers too
			tr, err := NewTrainer(net, d, d, TrainOptions{Batch: 2, Optim: o, LR: 0.1})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			before := trainState(t, tr)
			if _, err := tr.WarmUp(); err != nil {
				t.Fatal(err)
			}
			calls := 0
			for _, n := range b.steps {
				calls += n
			}
			name := map[string]string{"adamw": "adam"}[kind]
			if name == "" {
				name = kind
			}
			if calls != 1 || b.steps[name] != calls {
				t.Errorf("warm-up optimiser calls: %v, want 1 of %s", b.steps, name)
			}
			after := trainState(t, tr)
			for i, x := range [][2][]float32{{before.Params, after.Params}, {before.M, after.M}, {before.V, after.V}} {
				for j := range x[0] {
					if x[0][j] != x[1][j] {
						t.Fatalf("state vector %d element %d: %v before the warm-up, %v after", i, j, x[0][j], x[1][j])
					}
				}
			}
			if after.AdamStep != before.AdamStep {
				t.Errorf("step count %d after the warm-up, %d before", after.AdamStep, before.AdamStep)
			}
			// A step after the warm-up must change the parameters (the
			// comparison above is not vacuous).
			tr.Step(0)
			if moved := trainState(t, tr); slices.Equal(moved.Params, before.Params) {
				t.Error("a training step left the parameters unchanged")
			}
		})
	}
}

func trainState(t *testing.T, tr *Trainer) *State {
	t.Helper()
	s, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
