package model

import (
	"math/rand/v2"
	"testing"
)

// TestDeterministic100Steps: same seed, same data, 100 CPU training steps of
// the default model run twice give bit-identical weights and Adam moments,
// with the same thread count and also across 1, 2, 3 and 8 threads (every
// op and GEMM rounds the same whatever the number of workers; only who
// computes what changes).
func TestDeterministic100Steps(t *testing.T) {
	const bs, n = 16, 320
	rng := rand.New(rand.NewPCG(8, 8))
	d := &Data{Images: make([]uint8, n*3072), Labels: make([]int32, n), N: n}
	for i := range d.Images {
		d.Images[i] = uint8(rng.IntN(256))
	}
	for i := range d.Labels {
		d.Labels[i] = int32(rng.IntN(10))
	}
	train := func(threads int) *State {
		b := newCPU(t, threads)
		net, err := Plan(DefaultSpec, Shape{C: 3, H: 32, W: 32})
		if err != nil {
			t.Fatal(err)
		}
		if err := net.Build(b, bs, 3); err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(net, d, nil, TrainOptions{Batch: bs, Optim: DefaultAdam, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < 100; s++ {
			tr.Step(s)
		}
		st, err := tr.State()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	ref := train(2)
	for _, threads := range []int{2, 1, 3, 8} {
		got := train(threads)
		for name, pair := range map[string][2][]float32{"params": {ref.Params, got.Params}, "m": {ref.M, got.M}, "v": {ref.V, got.V}} {
			for i := range pair[0] {
				if pair[0][i] != pair[1][i] {
					t.Fatalf("%d threads: %s[%d] = %v, first run %v: not bit-identical", threads, name, i, pair[1][i], pair[0][i])
				}
			}
		}
	}
}
