package sgemm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// skipNoAVX2 skips tests of the assembly on CPUs without AVX2 and FMA.
func skipNoAVX2(tb testing.TB) {
	if bestKernel() != &avx2Kernel {
		tb.Skip("no AVX2+FMA")
	}
}

// BenchmarkKernelOnly is the 6x16 kernel alone with k = 256, data in L1:
// the peak the rest can reach.
func BenchmarkKernelOnly(b *testing.B) {
	skipNoAVX2(b)
	kc := 256
	a := alignedFloats(6 * kc)
	bb := alignedFloats(16 * kc)
	c := make([]float32, 6*16)
	t0 := cpuTime()
	for i := 0; i < b.N; i++ {
		kernel6x16(kc, 6, &a[0], &bb[0], &c[0], 16, 1, 1)
	}
	b.ReportMetric(2*6*16*float64(kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(2*6*16*float64(kc)*float64(b.N)/(cpuTime()-t0).Seconds()/1e9, "GFLOP/cpu-s")
}

// TestPackAsm compares the AVX packing routines with the portable ones on
// full and edge panels, k blocks with and without a remainder of 8.
func TestPackAsm(t *testing.T) {
	skipNoAVX2(t)
	rng := rand.New(rand.NewSource(5))
	for _, trans := range []bool{false, true} {
		for _, kc := range []int{1, 7, 8, 9, 16, 27, 144, 256} {
			for _, rows := range []int{1, 5, 6, 11, 12, 13, 16, 17, 27, 32} {
				ld := max(rows, kc) + 3
				x := randSlice(rng, (max(rows, kc)+2)*ld+8)
				p0, i0 := 1, 2
				want := make([]float32, roundUp(rows, 48)*kc)
				got := make([]float32, len(want))
				for i := range got {
					got[i] = float32(math.NaN())
				}
				packA(want, x, ld, trans, i0, rows, p0, kc, 6)
				packA6(got, x, ld, trans, i0, rows, p0, kc, 6)
				cmpPack(t, fmt.Sprintf("A trans=%v kc=%d rows=%d", trans, kc, rows), got[:roundUp(rows, 6)*kc], want[:roundUp(rows, 6)*kc])
				for i := range got {
					got[i] = float32(math.NaN())
				}
				packB(want, x, ld, trans, p0, kc, i0, rows, 16)
				packB16(got, x, ld, trans, p0, kc, i0, rows, 16)
				cmpPack(t, fmt.Sprintf("B trans=%v kc=%d cols=%d", trans, kc, rows), got[:roundUp(rows, 16)*kc], want[:roundUp(rows, 16)*kc])
			}
		}
	}
}

func cmpPack(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %g, want %g", name, i, got[i], want[i])
		}
	}
}

// BenchmarkKernelShortK is the kernel alone on 5 tiles with k = 27 (the
// first convolution), data in L1.
func BenchmarkKernelShortK(b *testing.B) {
	skipNoAVX2(b)
	kc, mr := 27, 30
	a := alignedFloats(mr * kc)
	bb := alignedFloats(16 * kc)
	c := make([]float32, mr*16)
	t0 := cpuTime()
	for i := 0; i < b.N; i++ {
		kernel6x16(kc, mr, &a[0], &bb[0], &c[0], 16, 1, 0)
	}
	f := 2 * float64(mr) * 16 * float64(kc) * float64(b.N)
	b.ReportMetric(f/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(f/(cpuTime()-t0).Seconds()/1e9, "GFLOP/cpu-s")
}
