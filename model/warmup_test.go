package model

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// lazy is the CPU backend claiming a GPU's capabilities (queued ops, lazy
// set-up), so WarmUp runs as it would on a GPU.
type lazy struct{ device.Backend }

func (l lazy) Caps() device.Caps {
	c := l.Backend.Caps()
	c.Async, c.LazyInit = true, true
	return c
}

// TestWarmUpChangesNothing: a run with the warm-up pass ends bit-identical
// to one without it.
func TestWarmUpChangesNothing(t *testing.T) {
	const bs, n = 8, 64
	rng := rand.New(rand.NewPCG(2, 2))
	d := &Data{Images: make([]uint8, n*3072), Labels: make([]int32, n), N: n}
	for i := range d.Images {
		d.Images[i] = uint8(rng.IntN(256))
	}
	for i := range d.Labels {
		d.Labels[i] = int32(rng.IntN(10))
	}
	run := func(warm bool) *State {
		b := lazy{newCPU(t, 2)}
		net, _ := Plan(DefaultSpec, Shape{C: 3, H: 32, W: 32})
		if err := net.Build(b, bs, 5); err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(net, d, d, TrainOptions{Batch: bs, Optim: DefaultAdam, Seed: 5, Augment: true})
		if err != nil {
			t.Fatal(err)
		}
		if warm {
			if dur, err := tr.WarmUp(); err != nil || dur == 0 {
				t.Fatalf("warm-up: %v, %v", dur, err)
			}
		}
		if _, err := tr.RunEpoch(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, err := tr.State()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	a, b := run(false), run(true)
	for i := range a.Params {
		if a.Params[i] != b.Params[i] || a.M[i] != b.M[i] || a.V[i] != b.V[i] {
			t.Fatalf("parameter %d differs after the warm-up pass", i)
		}
	}
}
