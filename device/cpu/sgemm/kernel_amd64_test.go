package sgemm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"golang.org/x/sys/cpu"
)

// skipNoAVX2 skips tests of the assembly on CPUs without AVX2 and FMA.
func skipNoAVX2(tb testing.TB) {
	if avx2OrGeneric() != &avx2Kernel {
		tb.Skip("no AVX2+FMA")
	}
}

// skipNoAVX512 skips tests of the AVX-512 kernel on CPUs without it.
func skipNoAVX512(tb testing.TB) {
	skipNoAVX2(tb)
	if !cpu.X86.HasAVX512F {
		tb.Skip("no AVX-512F")
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

// BenchmarkPackT measures the transposing packers on a wgrad_conv1-like
// operand (rows x 28800, k blocks of 256), in ns per element.
func BenchmarkPackT(b *testing.B) {
	skipNoAVX2(b)
	rng := rand.New(rand.NewSource(1))
	const rows, k, kc = 32, 28800, 256
	src := randSlice(rng, rows*k)
	dst := alignedFloats(2 * 144 * 256)
	b.Run("A6", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for p0 := 0; p0+kc <= k; p0 += kc {
				packA6(dst, src, k, false, 0, rows, p0, kc, 6)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows*(k/kc)*kc), "ns/elem")
	})
	b.Run("B16", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for p0 := 0; p0+kc <= k; p0 += kc {
				packB16(dst, src, k, true, p0, kc, 0, rows, 16)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows*(k/kc)*kc), "ns/elem")
	})
}

// TestDotKernel checks the dot-product kernel against float64 sums.
func TestDotKernel(t *testing.T) {
	skipNoAVX2(t)
	rng := rand.New(rand.NewSource(1))
	for _, kb := range []int{8, 64, 1024} {
		x := randSlice(rng, 7*kb)
		var rows [7]*float32
		for i := range rows {
			rows[i] = &x[i*kb]
		}
		var out [12]float32
		dot3x4(kb, &rows, &out)
		for i := 0; i < 3; i++ {
			for j := 0; j < 4; j++ {
				var s, mag float64
				for p := 0; p < kb; p++ {
					v := float64(x[i*kb+p]) * float64(x[(3+j)*kb+p])
					s += v
					mag += math.Abs(v)
				}
				if d := math.Abs(s - float64(out[i*4+j])); d > float64(kb)*mag/(1<<23) {
					t.Fatalf("kb=%d: out[%d,%d] = %g, want %g", kb, i, j, out[i*4+j], s)
				}
			}
		}
	}
}
