//go:build cgo

package gpu

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/model"
)

// seedLaunches runs training steps of the default model (the seed CNN) at
// batch bs on the GPU backend over the emulator and returns the launches
// of one steady-state step: gather, forward, loss, backward and the
// optimiser, what a training loop queues per step besides augmentation.
func seedLaunches(t *testing.T, bs int) Launches {
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
	return per[2]
}

// TestSeedLaunches counts the launches of one training step of the seed
// CNN at batch 32 (the figure the issue measures on the device). Every
// weighted layer makes one GEMM forward and one for its weight gradient,
// and each but the first one more for its input gradient; the kernel count
// is reported.
func TestSeedLaunches(t *testing.T) {
	const bs = 32
	got := seedLaunches(t, bs)
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
	if want := 3*weighted - 1; got.Gemms != want {
		t.Errorf("%d GEMMs per step, want %d for %d weighted layers", got.Gemms, want, weighted)
	}
	if got.Kernels < 1 {
		t.Fatalf("no kernel launched in a step")
	}
	t.Logf("seed CNN, batch %d: %d kernel launches and %d cuBLAS GEMMs per training step", bs, got.Kernels, got.Gemms)
}
