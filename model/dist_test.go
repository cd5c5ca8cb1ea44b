package model

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// loopWorld is a data-parallel world of goroutines in one process: an
// independent transport (host copies and a barrier) for testing the
// Trainer's use of a Reducer without MPI. Every collective adds the ranks'
// contributions in rank order, so every rank gets the same result.
type loopWorld struct {
	n     int
	mu    sync.Mutex
	cond  *sync.Cond
	gen   int
	count int
	parts [][]float64
	out   []float64
}

func newLoopWorld(n int) *loopWorld {
	w := &loopWorld{n: n, parts: make([][]float64, n)}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// exchange deposits x for rank, waits for every rank, and returns
// combine(parts) (computed once, by the last rank to arrive).
func (w *loopWorld) exchange(rank int, x []float64, combine func([][]float64) []float64) []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	gen := w.gen
	w.parts[rank] = x
	w.count++
	if w.count == w.n {
		w.out = combine(w.parts)
		w.count = 0
		w.gen++
		w.cond.Broadcast()
	} else {
		for gen == w.gen {
			w.cond.Wait()
		}
	}
	return append([]float64(nil), w.out...)
}

// loopRank is one rank's Reducer over a loopWorld.
type loopRank struct {
	w    *loopWorld
	rank int
	b    device.Backend
}

func (r *loopRank) Rank() int { return r.rank }
func (r *loopRank) Size() int { return r.w.n }

func (r *loopRank) download(buf device.Buffer, n int) []float64 {
	h := make([]float32, n)
	if err := r.b.DownloadF32(buf, 0, h); err != nil {
		panic(err)
	}
	x := make([]float64, n)
	for i, v := range h {
		x[i] = float64(v)
	}
	return x
}

func (r *loopRank) upload(buf device.Buffer, x []float64) error {
	h := make([]float32, len(x))
	for i, v := range x {
		h[i] = float32(v)
	}
	return r.b.UploadF32(buf, 0, h)
}

func (r *loopRank) AllReduce(buf device.Buffer, n int, avg bool) error {
	out := r.w.exchange(r.rank, r.download(buf, n), func(parts [][]float64) []float64 {
		s := make([]float32, len(parts[0]))
		for _, p := range parts {
			for i, v := range p {
				s[i] += float32(v)
			}
		}
		o := make([]float64, len(s))
		for i, v := range s {
			if avg {
				v /= float32(len(parts))
			}
			o[i] = float64(v)
		}
		return o
	})
	return r.upload(buf, out)
}

func (r *loopRank) Broadcast(buf device.Buffer, n int) error {
	out := r.w.exchange(r.rank, r.download(buf, n), func(parts [][]float64) []float64 { return parts[0] })
	return r.upload(buf, out)
}

func (r *loopRank) MaxHost(x []float64) error {
	out := r.w.exchange(r.rank, append([]float64(nil), x...), func(parts [][]float64) []float64 {
		m := append([]float64(nil), parts[0]...)
		for _, p := range parts[1:] {
			for i, v := range p {
				m[i] = math.Max(m[i], v)
			}
		}
		return m
	})
	copy(x, out)
	return nil
}

func randomData(seed uint64, n int) *Data {
	rng := rand.New(rand.NewPCG(seed, seed))
	d := &Data{Images: make([]uint8, n*3072), Labels: make([]int32, n), N: n}
	for i := range d.Images {
		d.Images[i] = uint8(rng.IntN(256))
	}
	for i := range d.Labels {
		d.Labels[i] = int32(rng.IntN(10))
	}
	return d
}

// distModel has no BatchNorm (per-rank batch statistics differ from one
// process's at the whole batch) and no dropout.
const distModel = "conv8k3,maxpool2,conv8k3,maxpool2,flatten,dense16,dense10"

// trainWorld trains one epoch of distModel on world ranks (goroutines) at
// batch bs per rank and returns rank 0's state and result; world 1 is a
// plain Trainer without a Reducer.
func trainWorld(t *testing.T, world, bs int, train, val *Data, opt OptimConfig) (*State, EpochResult) {
	t.Helper()
	w := newLoopWorld(world)
	states := make([]*State, world)
	results := make([]EpochResult, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newCPU(t, 1)
			net, err := Plan(distModel, Shape{C: 3, H: 32, W: 32})
			if err != nil {
				errs[r] = err
				return
			}
			// Each rank draws its own initial weights (seed 10+r): SyncRanks
			// must make them rank 0's.
			if err := net.Build(b, bs, uint64(10+r)); err != nil {
				errs[r] = err
				return
			}
			o := TrainOptions{Batch: bs, Optim: opt, LR: 0.02, Seed: 5}
			if world > 1 {
				o.Dist = &loopRank{w: w, rank: r, b: b}
			}
			tr, err := NewTrainer(net, train, val, o)
			if err == nil {
				err = tr.SyncRanks()
			}
			if err == nil {
				results[r], err = tr.RunEpoch(context.Background())
			}
			if err == nil {
				states[r], err = tr.State()
			}
			errs[r] = err
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d of %d: %v", r, world, err)
		}
	}
	for r := 1; r < world; r++ {
		for i, v := range states[r].Params {
			if v != states[0].Params[i] {
				t.Fatalf("rank %d's params[%d] = %v, rank 0's %v: the ranks' weights drifted apart", r, i, v, states[0].Params[i])
			}
		}
	}
	return states[0], results[0]
}

// TestDataParallelMatchesOneProcess: 2 ranks at batch 8 for 20 steps end
// with the weights of one process at batch 16, to 1e-5 relative, with the
// same epoch loss and validation result: each step's two shares are the
// single process's batch, and the averaged gradient is its gradient.
// SGD with momentum (the update is linear in the gradient: float rounding
// in the gradients stays rounding in the weights; Adam divides by sqrt(v),
// which magnifies it for parameters whose gradient is near 0).
func TestDataParallelMatchesOneProcess(t *testing.T) {
	train, val := randomData(1, 320), randomData(2, 50)
	opt := OptimConfig{Kind: "sgd", Momentum: 0.9}
	ref, rr := trainWorld(t, 1, 16, train, val, opt)
	got, gr := trainWorld(t, 2, 8, train, val, opt)
	if ref.AdamStep != 20 || got.AdamStep != 20 {
		t.Fatalf("steps: one process %d, 2 ranks %d; want 20", ref.AdamStep, got.AdamStep)
	}
	var diff, scale float64
	for i, v := range ref.Params {
		diff = max(diff, math.Abs(float64(got.Params[i]-v)))
		scale = max(scale, math.Abs(float64(v)))
	}
	if diff > 1e-5*scale {
		t.Fatalf("after 20 steps the weights of 2 ranks and of one process differ by up to %.3g, %.2g of the largest weight (more than 1e-5)", diff, diff/scale)
	}
	t.Logf("%d weights after 20 steps: largest difference %.2g of the largest weight", len(ref.Params), diff/scale)
	for _, c := range [][2]float64{{rr.Loss, gr.Loss}, {rr.Accuracy, gr.Accuracy}, {rr.ValLoss, gr.ValLoss}, {rr.ValAccuracy, gr.ValAccuracy}} {
		if math.Abs(c[0]-c[1]) > 1e-5*max(1, math.Abs(c[0])) {
			t.Fatalf("epoch result: one process %+v, 2 ranks %+v", rr, gr)
		}
	}
}

// TestShardIsDistributedSampler compares shardOf with PyTorch's
// DistributedSampler(drop_last=False) written out as its source has it:
// indices += indices[:padding] (repeated while short), then
// indices[rank:total:world].
func TestShardIsDistributedSampler(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for range 200 {
		n, world := 1+rng.IntN(40), 1+rng.IntN(9)
		perm := make([]int32, n)
		for i, j := range rng.Perm(n) {
			perm[i] = int32(j)
		}
		numSamples := int(math.Ceil(float64(n) / float64(world)))
		total := numSamples * world
		indices := append([]int32(nil), perm...)
		for pad := total - len(indices); pad > 0; pad = total - len(indices) {
			indices = append(indices, indices[:min(pad, len(indices))]...)
		}
		seen := map[int32]bool{}
		for rank := range world {
			var want []int32
			for i := rank; i < total; i += world {
				want = append(want, indices[i])
			}
			got := make([]int32, shardLen(n, world))
			shardOf(got, perm, rank, world)
			if len(got) != len(want) {
				t.Fatalf("n %d world %d rank %d: %d indices, want %d", n, world, rank, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("n %d world %d rank %d: %v, want %v", n, world, rank, got, want)
				}
				seen[got[i]] = true
			}
		}
		if len(seen) != n {
			t.Fatalf("n %d world %d: the shards cover %d images", n, world, len(seen))
		}
	}
}
