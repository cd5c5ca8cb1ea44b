package cpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// Helpers of the tests of the ops of issue 10 against independent
// references (float64 loops, finite differences, PyTorch's update rules).

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x15510)) }

// randn is n N(0,1) floats.
func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// f64 widens a float32 slice.
func f64(v []float32) []float64 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return w
}

// near fails when some |got[i] - want[i]| > rel*|want[i]| + abs.
func near(t *testing.T, what string, got []float32, want []float64, rel, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := float64(got[i]), want[i]
		if math.IsNaN(g) != math.IsNaN(w) || math.Abs(g-w) > rel*math.Abs(w)+abs {
			t.Fatalf("%s[%d] = %v, want %v (diff %.3g)", what, i, g, w, g-w)
		}
	}
}

// sameF32 compares bit patterns.
func sameF32(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// bufs uploads each slice to a new buffer.
func bufs(t *testing.T, b device.Backend, vs ...[]float32) []device.Buffer {
	t.Helper()
	out := make([]device.Buffer, len(vs))
	for i, v := range vs {
		out[i] = upload(t, b, v)
	}
	return out
}

func uploadI32(t *testing.T, b device.Backend, v []int32) device.Buffer {
	t.Helper()
	buf, err := b.Alloc("test", device.I32, len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.UploadI32(buf, 0, v); err != nil {
		t.Fatal(err)
	}
	return buf
}

// fdGrad is the float64 central difference of f in each element of v.
func fdGrad(v []float64, f func() float64) []float64 {
	g := make([]float64, len(v))
	for i := range v {
		h := 1e-6 * max(1, math.Abs(v[i]))
		old := v[i]
		v[i] = old + h
		lp := f()
		v[i] = old - h
		lm := f()
		v[i] = old
		g[i] = (lp - lm) / (2 * h)
	}
	return g
}

// testThreads are the worker counts the tests run the ops with.
var testThreads = []int{1, 3}
