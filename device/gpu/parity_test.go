//go:build cgo

package gpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/model"
)

// stepper runs training steps of the default model on one backend and
// returns each step's mean loss.
type stepper struct {
	b             device.Backend
	net           *model.Network
	images, label device.Buffer
	idx           []device.Buffer
	stats         device.Buffer
	opt           *model.Optimizer
}

func newStepper(t *testing.T, b device.Backend, bs int, imgs []uint8, labels []int32, order []int32) *stepper {
	t.Helper()
	net, err := model.Plan(model.DefaultSpec, model.Shape{C: 3, H: 32, W: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, bs, 11); err != nil {
		t.Fatal(err)
	}
	s := &stepper{b: b, net: net}
	s.opt, err = model.NewOptimizer(net, model.DefaultAdam)
	if err != nil {
		t.Fatal(err)
	}
	s.images, _ = b.Alloc("images", device.U8, len(imgs))
	s.label, _ = b.Alloc("labels", device.I32, len(labels))
	ord, _ := b.Alloc("order", device.I32, len(order))
	s.stats, _ = b.Alloc("stats", device.F32, 2)
	b.UploadU8(s.images, 0, imgs)
	b.UploadI32(s.label, 0, labels)
	b.UploadI32(ord, 0, order)
	for off := 0; off+bs <= len(order); off += bs {
		s.idx = append(s.idx, b.View(ord, off, bs))
	}
	return s
}

func (s *stepper) step(i, bs int) float64 {
	s.b.Fill(s.stats, 2, 0)
	s.net.LoadBatch(s.images, s.label, s.idx[i%len(s.idx)], bs)
	s.net.TrainStep(bs, s.opt, 1e-3, 0, s.stats)
	var h [2]float32
	s.b.DownloadF32(s.stats, 0, h[:])
	return float64(h[0]) / float64(bs)
}

// TestParity: same seed, same data, 20 training steps of the default model
// on the CPU and the GPU (TF32 off); the losses must agree step by step
// within 1e-3 relative.
func TestParity(t *testing.T) {
	g := newGPU(t, "parity")
	defer g.Close()
	c, _ := cpu.New(device.Options{Threads: 2})
	defer c.Close()
	const bs, n, steps = 32, 640, 20
	rng := rand.New(rand.NewPCG(5, 5))
	imgs := make([]uint8, n*3072)
	labels := make([]int32, n)
	for i := range imgs {
		imgs[i] = uint8(rng.IntN(256))
	}
	// A learnable signal: the label shifts the brightness of a corner.
	for i := range labels {
		labels[i] = int32(rng.IntN(10))
		for p := 0; p < 64; p++ {
			imgs[i*3072+p] = uint8(25 * labels[i])
		}
	}
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(rng.IntN(n))
	}
	sc, sg := newStepper(t, c, bs, imgs, labels, order), newStepper(t, g, bs, imgs, labels, order)
	for i := 0; i < steps; i++ {
		lc, lg := sc.step(i, bs), sg.step(i, bs)
		t.Logf("step %2d: loss cpu %.6f gpu %.6f", i+1, lc, lg)
		if math.Abs(lc-lg) > 1e-3*math.Abs(lc) {
			t.Fatalf("step %d: loss cpu %.6f, gpu %.6f: more than 1e-3 relative apart", i+1, lc, lg)
		}
	}
}

// TestStepAllocatesNothing: a steady-state GPU training step makes no Go
// allocation (and so cannot hide a host synchronisation in a buffer copy).
func TestStepAllocatesNothing(t *testing.T) {
	g := newGPU(t, "the allocation check")
	defer g.Close()
	const bs, n = 32, 256
	s := newStepper(t, g, bs, make([]uint8, n*3072), make([]int32, n), make([]int32, n))
	s.step(0, bs)
	i := 0
	allocs := testing.AllocsPerRun(20, func() {
		s.net.LoadBatch(s.images, s.label, s.idx[i%len(s.idx)], bs)
		s.net.TrainStep(bs, s.opt, 1e-3, 0, s.stats)
		i++
	})
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("a GPU training step allocates %v times", allocs)
	}
}
