package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device/cpu"
)

// TestWinogradTrainingMatchesIm2col: the default model and a ResNet block
// stack, trained for two epochs with the CPU backend's Winograd
// convolutions and with im2col and GEMM only (TRAINER_CPU_NOWINOGRAD=1),
// from the same weights on the same batches: the epoch losses agree to
// 1e-4 relative and the weights stay close.
func TestWinogradTrainingMatchesIm2col(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		in    Shape
		bs, n int
		wino  int // layers with a Winograd plan
	}{
		// conv2 (dw as im2col); conv3's 4x4 output is too small at batch 16
		{DefaultSpec, Shape{C: 3, H: 32, W: 32}, 16, 96, 1},
		// odd sizes; the last conv's data gradient as im2col
		{"conv16k3same,conv16k3same,maxpool2,conv16k3same,maxpool2,conv32k3,flatten,dense10", Shape{C: 3, H: 25, W: 24}, 64, 192, 3},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			bs, n := tc.bs, tc.n
			rng := rand.New(rand.NewPCG(9, 9))
			d := &Data{Images: make([]uint8, n*tc.in.Size()), Labels: make([]int32, n), N: n}
			for i := range d.Images {
				d.Images[i] = uint8(rng.IntN(256))
			}
			for i := range d.Labels {
				d.Labels[i] = int32(rng.IntN(10))
			}
			train := func(noWino bool) ([]EpochResult, []float32, int) {
				if noWino {
					t.Setenv(cpu.EnvNoWinograd, "1")
				} else {
					t.Setenv(cpu.EnvNoWinograd, "")
				}
				b := newCPU(t, 2)
				net, err := Plan(tc.spec, tc.in)
				if err != nil {
					t.Fatal(err)
				}
				if err := net.Build(b, bs, 3); err != nil {
					t.Fatal(err)
				}
				wino := 0
				for _, r := range net.Summary() {
					if r.Algo != "" {
						wino++
					}
				}
				tr, err := NewTrainer(net, d, nil, TrainOptions{Batch: bs, Optim: DefaultAdam, Seed: 3})
				if err != nil {
					t.Fatal(err)
				}
				var res []EpochResult
				for range 2 {
					r, err := tr.RunEpoch(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					res = append(res, r)
				}
				p, err := net.GetParams()
				if err != nil {
					t.Fatal(err)
				}
				return res, p, wino
			}
			ref, pref, w0 := train(true)
			got, pgot, w1 := train(false)
			if w0 != 0 || w1 != tc.wino {
				t.Fatalf("%d Winograd layers with TRAINER_CPU_NOWINOGRAD=1, %d without, want 0 and %d", w0, w1, tc.wino)
			}
			for e := range ref {
				if rel := math.Abs(got[e].Loss-ref[e].Loss) / ref[e].Loss; rel > 1e-4 {
					t.Errorf("epoch %d: loss %.7f with Winograd, %.7f with im2col (relative difference %.2g)", e+1, got[e].Loss, ref[e].Loss, rel)
				}
			}
			var worst, scale float64
			for i := range pref {
				worst = max(worst, math.Abs(float64(pgot[i]-pref[i])))
				scale = max(scale, math.Abs(float64(pref[i])))
			}
			if worst > 1e-3*scale {
				t.Errorf("weights differ by up to %.3g (largest weight %.3g)", worst, scale)
			}
			t.Logf("%d Winograd layers; losses %.7f %.7f (im2col %.7f %.7f); weights differ by up to %.3g",
				w1, got[0].Loss, got[1].Loss, ref[0].Loss, ref[1].Loss, worst)
		})
	}
}
