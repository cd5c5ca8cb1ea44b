package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

// TestBF16Logits: under --precision bf16 a dense layer computes, from the
// float32 master weights, logits = bf16(x) . bf16(W)^T + b (bf16: rounded
// to bfloat16, ties to even), accumulated in float32: against a float64
// reference of the operands rounded by device.RoundBF16, on random weights
// and inputs, within float32 accumulation error (the bfloat16 error itself,
// ~2^-9 relative, is ~100 times larger, and the float32 network's logits are
// checked to be that far off). After SetParams and through the EMA binding
// the copy follows the weights.
func TestBF16Logits(t *testing.T) {
	b, err := cpu.New(device.Options{Threads: 2, Precision: device.PrecisionBF16})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in := Shape{C: 3, H: 4, W: 4}
	const cnt = 5
	net, err := Plan("flatten,dense10", in)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, cnt, 3); err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, cnt*in.Size())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for round := range 2 {
		flat := net.InitParams(uint64(10 + round))
		for i := range flat {
			flat[i] = float32(rng.NormFloat64()) // weights and biases far from the bfloat16 grid
		}
		if err := net.SetParams(flat); err != nil {
			t.Fatal(err)
		}
		if round == 1 {
			// Through the EMA binding: the same weights as an average.
			if err := net.enableEMA(true); err != nil {
				t.Fatal(err)
			}
			if err := b.UploadF32(net.EMA, 0, flat); err != nil {
				t.Fatal(err)
			}
			net.bindTo(net.EMA)
			if err := b.UploadF32(net.Params, 0, make([]float32, len(flat))); err != nil {
				t.Fatal(err)
			}
		}
		got, err := net.Logits(x, cnt)
		if err != nil {
			t.Fatal(err)
		}
		f := in.Size()
		w, bias := flat[:10*f], flat[10*f:10*f+10]
		off := 0.0
		for i := range cnt {
			for j := range 10 {
				ref, exact, mag := float64(bias[j]), float64(bias[j]), 0.0
				for k := range f {
					p := float64(device.RoundBF16(x[i*f+k])) * float64(device.RoundBF16(w[j*f+k]))
					ref += p
					exact += float64(x[i*f+k]) * float64(w[j*f+k])
					mag += math.Abs(p)
				}
				tol := float64(f) * 0x1p-24 * (mag + math.Abs(float64(bias[j])))
				if d := math.Abs(float64(got[i*10+j]) - ref); d > tol {
					t.Fatalf("round %d: logit [%d, %d] = %v, want %v (bfloat16 operands) within %.3g", round, i, j, got[i*10+j], ref, tol)
				}
				off = math.Max(off, math.Abs(exact-ref)/tol)
			}
		}
		if off < 10 {
			t.Errorf("round %d: the float32 logits are within %.3g tolerances of the bfloat16 ones: the test cannot tell them apart", round, off)
		}
	}
}
