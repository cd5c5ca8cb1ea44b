package cpu_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// ewN is odd and over the pool's threshold (16K elements of work).
const ewN = 20011

// geluRef is x*Phi(x) with Phi from erfc, accurate also far in the left
// tail where 1+erf cancels.
func geluRef(x float64) float64 { return x * 0.5 * math.Erfc(-x/math.Sqrt2) }

// geluInputs are N(0, 3^2) values and some edges.
func geluInputs(n int) []float32 {
	x := randn(newRand(11), n)
	for i := range x {
		x[i] *= 3
	}
	copy(x, []float32{0, float32(math.Copysign(0, -1)), 1, -1, 10, -10, 40, -40, 1e-30, -1e-30, float32(math.Inf(1))})
	return x
}

// TestGELUForward: against the float64 reference, the one rounding of the
// result allowed (plus a tiny absolute slack for the left tail, where the
// backend's 1+erf form loses its relative accuracy); in place too.
func TestGELUForward(t *testing.T) {
	x := geluInputs(ewN)
	want := make([]float64, ewN)
	for i, v := range x {
		want[i] = geluRef(float64(v))
	}
	var first []float32
	for _, threads := range testThreads {
		b := newBackend(t, threads)
		xb, yb := upload(t, b, x), upload(t, b, make([]float32, ewN))
		b.GELUForward(xb, yb, ewN)
		got := download(t, b, yb)
		near(t, "gelu", got, want, 1.2e-7, 1e-14)
		if first == nil {
			first = got
		}
		sameF32(t, "gelu threads", got, first)
		b.GELUForward(xb, xb, ewN)
		sameF32(t, "gelu in place", download(t, b, xb), first)
	}
}

// TestGELUBackward: dx against dy times float64 central differences of
// the reference GELU; in place too.
func TestGELUBackward(t *testing.T) {
	x := geluInputs(ewN)
	x[10] = 3 // not +Inf: no difference quotient there
	dy := randn(newRand(12), ewN)
	want := make([]float64, ewN)
	for i, v := range x {
		xd := float64(v)
		h := 1e-6 * max(1, math.Abs(xd))
		want[i] = float64(dy[i]) * (geluRef(xd+h) - geluRef(xd-h)) / (2 * h)
	}
	var first []float32
	for _, threads := range testThreads {
		b := newBackend(t, threads)
		xb, dyb, dxb := upload(t, b, x), upload(t, b, dy), upload(t, b, make([]float32, ewN))
		b.GELUBackward(xb, dyb, dxb, ewN)
		got := download(t, b, dxb)
		near(t, "gelu'", got, want, 1e-6, 1e-8)
		if first == nil {
			first = got
		}
		sameF32(t, "gelu' threads", got, first)
		b.GELUBackward(xb, dyb, dyb, ewN)
		sameF32(t, "gelu' in place", download(t, b, dyb), first)
	}
}

// TestAdd: y = a + b (a float32 sum is the float64 sum rounded once), then
// max(0, .); into a new buffer, into a and into b.
func TestAdd(t *testing.T) {
	r := newRand(13)
	a, bb := randn(r, ewN), randn(r, ewN)
	for _, relu := range []bool{false, true} {
		want := make([]float32, ewN)
		for i := range want {
			s := float32(float64(a[i]) + float64(bb[i]))
			if relu && s < 0 {
				s = 0
			}
			want[i] = s
		}
		for _, threads := range testThreads {
			b := newBackend(t, threads)
			what := fmt.Sprintf("relu %v threads %d", relu, threads)
			ab, bbb, yb := upload(t, b, a), upload(t, b, bb), upload(t, b, make([]float32, ewN))
			b.Add(ab, bbb, yb, ewN, relu)
			sameF32(t, what, download(t, b, yb), want)
			b.Add(ab, bbb, ab, ewN, relu)
			sameF32(t, what+" into a", download(t, b, ab), want)
			ab = upload(t, b, a)
			b.Add(ab, bbb, bbb, ewN, relu)
			sameF32(t, what+" into b", download(t, b, bbb), want)
		}
	}
}

// TestAxpby: y = alpha*x + beta*y against float64; with beta 0 y is not
// read (NaNs in y do not propagate) and alpha 1 copies.
func TestAxpby(t *testing.T) {
	r := newRand(14)
	x, y := randn(r, ewN), randn(r, ewN)
	nans := make([]float32, ewN)
	for i := range nans {
		nans[i] = float32(math.NaN())
	}
	for _, c := range [][2]float32{{0.25, 0.75}, {-1.5, 1}, {0.001, 0.999}, {1, 0}, {-3, 0}} {
		alpha, beta := c[0], c[1]
		// Each product and the sum are rounded once: the error is within
		// 2^-23 (|alpha*x| + |beta*y|).
		want, mag := make([]float64, ewN), make([]float64, ewN)
		for i := range want {
			want[i] = float64(alpha) * float64(x[i])
			mag[i] = math.Abs(want[i])
			if beta != 0 {
				want[i] += float64(beta) * float64(y[i])
				mag[i] += math.Abs(float64(beta) * float64(y[i]))
			}
		}
		for _, threads := range testThreads {
			b := newBackend(t, threads)
			what := fmt.Sprintf("alpha %v beta %v threads %d", alpha, beta, threads)
			yin := y
			if beta == 0 {
				yin = nans
			}
			xb, yb := upload(t, b, x), upload(t, b, yin)
			b.Axpby(xb, yb, ewN, alpha, beta)
			got := download(t, b, yb)
			for i := range got {
				if d := math.Abs(float64(got[i]) - want[i]); !(d <= 0x1p-23*mag[i]) {
					t.Fatalf("%s: y[%d] = %v, want %v", what, i, got[i], want[i])
				}
			}
			if alpha == 1 && beta == 0 {
				sameF32(t, what+" copy", got, x)
			}
		}
	}
}

// TestDropout: about 1-p of the elements are kept, each as x*(1/(1-p))
// (bit for bit float32 x * float32(1/(1-p)), and within one rounding of
// x/(1-p)), the others 0; the mask is device.DropoutKeep's, the same for
// the same seed and step (the backward pass) whatever the thread count,
// and another for another step or seed. p 0 copies.
func TestDropout(t *testing.T) {
	x := randn(newRand(15), ewN)
	for i := range x {
		if x[i] == 0 {
			x[i] = 1
		}
	}
	for _, p := range []float32{0.1, 0.5, 0.9, 0.3} {
		scale := float32(1 / (1 - float64(p)))
		var first []float32
		for _, threads := range testThreads {
			b := newBackend(t, threads)
			xb, yb := upload(t, b, x), upload(t, b, make([]float32, ewN))
			b.Dropout(xb, yb, ewN, p, 42, 7)
			y := download(t, b, yb)
			checkDropout(t, x, y, p, scale, 42, 7)
			if first == nil {
				first = y
			}
			sameF32(t, fmt.Sprintf("p %v threads %d", p, threads), y, first)
			b.Dropout(xb, xb, ewN, p, 42, 7) // in place, as the backward on dy
			sameF32(t, fmt.Sprintf("p %v in place", p), download(t, b, xb), first)
			for _, other := range [][2]int{{42, 8}, {43, 7}} {
				b.Dropout(upload(t, b, x), yb, ewN, p, uint64(other[0]), other[1])
				if o := download(t, b, yb); sameMask(o, first) {
					t.Fatalf("p %v: seed/step %v gives the mask of 42/7", p, other)
				}
			}
		}
	}
	b := newBackend(t, 1)
	xb, yb := upload(t, b, x), upload(t, b, make([]float32, ewN))
	b.Dropout(xb, yb, ewN, 0, 42, 7)
	sameF32(t, "p 0", download(t, b, yb), x)
}

func checkDropout(t *testing.T, x, y []float32, p, scale float32, seed uint64, step int) {
	t.Helper()
	kept := 0
	for i := range x {
		if !device.DropoutKeep(seed, step, i, p) {
			if math.Float32bits(y[i]) != 0 {
				t.Fatalf("p %v: dropped element %d = %v, want +0", p, i, y[i])
			}
			continue
		}
		kept++
		want := float64(x[i]) / (1 - float64(p))
		if y[i] != x[i]*scale || math.Abs(float64(y[i])-want) > 1.2e-7*math.Abs(want) {
			t.Fatalf("p %v: kept element %d = %v, want %v*%v = %v", p, i, y[i], x[i], scale, want)
		}
	}
	// kept is binomial(n, 1-p): allow 5 standard deviations.
	n, q := float64(len(x)), 1-float64(p)
	if d := math.Abs(float64(kept) - n*q); d > 5*math.Sqrt(n*q*(1-q)) {
		t.Fatalf("p %v: %d of %d kept, expected %.0f", p, kept, len(x), n*q)
	}
}

// sameMask reports whether a and b are zero at the same places.
func sameMask(a, b []float32) bool {
	for i := range a {
		if (a[i] == 0) != (b[i] == 0) {
			return false
		}
	}
	return true
}
