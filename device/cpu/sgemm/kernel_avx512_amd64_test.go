package sgemm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// TestAVX512BitIdentical checks that the AVX-512 engine gives the same bits
// as the AVX2 one on random shapes: edge tiles in m, n and k, transposed
// operands, padded strides, alpha and beta (beta 0 with NaNs in C), the k
// split and dot mode, with 1 to 3 threads.
func TestAVX512BitIdentical(t *testing.T) {
	skipNoAVX512(t)
	defer func(v int) { parallelMinFMA = v }(parallelMinFMA)
	rng := rand.New(rand.NewSource(7))
	var pairs [][2]*Engine
	for th := 1; th <= 3; th++ {
		pairs = append(pairs, [2]*Engine{newEngine(th, nil, &avx512Kernel), newEngine(th, nil, &avx2Kernel)})
	}
	defer func() {
		for _, p := range pairs {
			p[0].Close()
			p[1].Close()
		}
	}()
	shapes := testShapes(rng)
	// Every n mod 32 and m mod 8, short and long k.
	for n := 1; n <= 70; n++ {
		ss := shape{rng.Intn(2) == 0, rng.Intn(2) == 0, 1 + rng.Intn(40), n, 1 + rng.Intn(300)}
		shapes = append(shapes, ss)
	}
	shapes = append(shapes, shape{false, false, 16, 4000, 144}, shape{true, false, 144, 2000, 16},
		shape{false, true, 32, 288, 3000}, shape{false, true, 16, 144, 5000}, shape{false, true, 40, 100, 3000})
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.7, 0.5}, {2, 0}, {1.3, -0.37}, {0.1, 1}}
	for si, s := range shapes {
		ab := scalars[si%len(scalars)]
		pad := []int{0, 3, 1}[si%3]
		p := newProblem(rng, s, ab[0], ab[1], pad)
		for _, minFMA := range []int{1 << 19, 0} {
			parallelMinFMA = minFMA
			for _, pr := range pairs {
				got, want := p.run(pr[0]), p.run(pr[1])
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v a=%g b=%g pad=%d threads=%d min=%d: element %d (%d,%d) = %g, AVX2 gave %g",
							s, p.alpha, p.beta, pad, pr[0].Threads(), minFMA, i, i/p.ldc, i%p.ldc, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestKernel8x32 checks the kernel alone on one or more panels, partial
// last panels and k with and without a remainder of 4, against float64 sums
// and against the 6x16 kernel on the same products (bit for bit).
func TestKernel8x32(t *testing.T) {
	skipNoAVX512(t)
	rng := rand.New(rand.NewSource(8))
	for _, kc := range []int{1, 3, 4, 5, 16, 27, 256} {
		for _, mr := range []int{1, 7, 8, 9, 16, 23} {
			for _, beta := range []float32{0, 1, 0.3} {
				np := ceilDiv(mr, 8)
				a := randSlice(rng, np*8*kc)
				b := randSlice(rng, 32*kc)
				ldc := 35
				c0 := randSlice(rng, (np*8+1)*ldc)
				if beta == 0 {
					for i := range c0 {
						c0[i] = float32(math.NaN())
					}
				}
				c := append([]float32(nil), c0...)
				alpha := float32(0.75)
				kernel8x32(kc, mr, &a[0], &b[0], &c[0], ldc, alpha, beta)
				// The same product with 6x16 tiles: A repacked in 6-row
				// panels, B in two 16-column panels.
				a6 := make([]float32, roundUp(mr, 6)*kc)
				for i := 0; i < mr; i++ {
					for p := 0; p < kc; p++ {
						a6[(i/6)*6*kc+p*6+i%6] = a[(i/8)*8*kc+p*8+i%8]
					}
				}
				c6 := append([]float32(nil), c0...)
				for h := 0; h < 2; h++ {
					b16 := make([]float32, 16*kc)
					for p := 0; p < kc; p++ {
						copy(b16[p*16:p*16+16], b[p*32+16*h:])
					}
					kernel6x16(kc, mr, &a6[0], &b16[0], &c6[16*h], ldc, alpha, beta)
				}
				name := fmt.Sprintf("kc=%d mr=%d beta=%g", kc, mr, beta)
				for i := range c {
					row, col := i/ldc, i%ldc
					if row >= mr || col >= 32 {
						if math.Float32bits(c[i]) != math.Float32bits(c0[i]) {
							t.Fatalf("%s: C[%d,%d] outside the tile changed", name, row, col)
						}
						continue
					}
					if math.Float32bits(c[i]) != math.Float32bits(c6[i]) {
						t.Fatalf("%s: C[%d,%d] = %g, 6x16 kernel gave %g", name, row, col, c[i], c6[i])
					}
					var s, mag float64
					for p := 0; p < kc; p++ {
						x := float64(a[(row/8)*8*kc+p*8+row%8]) * float64(b[p*32+col])
						s += x
						mag += math.Abs(x)
					}
					want := float64(alpha) * s
					if beta != 0 {
						want += float64(beta) * float64(c0[i])
						mag += math.Abs(float64(beta) * float64(c0[i]))
					}
					if d := math.Abs(float64(c[i]) - want); d > float64(kc+2)*mag/(1<<23)+1e-30 {
						t.Fatalf("%s: C[%d,%d] = %g, want %g", name, row, col, c[i], want)
					}
				}
			}
		}
	}
}

// TestPackAsm512 compares the packing routines of the 8x32 kernel with the
// portable ones on full and edge panels.
func TestPackAsm512(t *testing.T) {
	skipNoAVX512(t)
	rng := rand.New(rand.NewSource(9))
	for _, trans := range []bool{false, true} {
		for _, kc := range []int{1, 7, 8, 9, 16, 27, 144, 256} {
			for _, rows := range []int{1, 5, 8, 11, 16, 17, 31, 32, 33, 40, 64, 70} {
				ld := max(rows, kc) + 3
				x := randSlice(rng, (max(rows, kc)+2)*ld+8)
				p0, i0 := 1, 2
				want := make([]float32, roundUp(rows, 32)*kc)
				got := make([]float32, len(want))
				for i := range got {
					got[i] = float32(math.NaN())
				}
				packA(want, x, ld, trans, i0, rows, p0, kc, 8)
				packA8(got, x, ld, trans, i0, rows, p0, kc, 8)
				cmpPack(t, fmt.Sprintf("A trans=%v kc=%d rows=%d", trans, kc, rows), got[:roundUp(rows, 8)*kc], want[:roundUp(rows, 8)*kc])
				for i := range got {
					got[i] = float32(math.NaN())
				}
				packB(want, x, ld, trans, p0, kc, i0, rows, 32)
				packB32(got, x, ld, trans, p0, kc, i0, rows, 32)
				cmpPack(t, fmt.Sprintf("B trans=%v kc=%d cols=%d", trans, kc, rows), got[:roundUp(rows, 32)*kc], want[:roundUp(rows, 32)*kc])
			}
		}
	}
}

// TestNoAVX512Env checks that TRAINER_CPU_NOAVX512=1 keeps the AVX2 kernel.
func TestNoAVX512Env(t *testing.T) {
	skipNoAVX512(t)
	t.Setenv(EnvNoAVX512, "")
	if k := bestKernel(); k != &avx512Kernel {
		t.Fatalf("best kernel %s, want %s", k.name, avx512Kernel.name)
	}
	t.Setenv(EnvNoAVX512, "1")
	if k := bestKernel(); k != &avx2Kernel {
		t.Fatalf("with %s=1: kernel %s, want %s", EnvNoAVX512, k.name, avx2Kernel.name)
	}
}

// BenchmarkKernel8x32 is the 8x32 kernel alone with k = 256, data in L1.
func BenchmarkKernel8x32(b *testing.B) {
	skipNoAVX512(b)
	kc := 256
	a := alignedFloats(8 * kc)
	bb := alignedFloats(32 * kc)
	c := make([]float32, 8*32)
	t0 := cpuTime()
	for i := 0; i < b.N; i++ {
		kernel8x32(kc, 8, &a[0], &bb[0], &c[0], 32, 1, 1)
	}
	f := 2 * 8 * 32 * float64(kc) * float64(b.N)
	b.ReportMetric(f/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(f/(cpuTime()-t0).Seconds()/1e9, "GFLOP/cpu-s")
}

// TestNonTemporal checks the non-temporal stores (forced on for small C):
// C 64-byte aligned with a row stride a multiple of 16, beta 0 and NaNs in
// C, bits as with the AVX2 kernel; and that they are not used where C is
// unaligned, beta is not 0 or k needs more than one block.
func TestNonTemporal(t *testing.T) {
	skipNoAVX512(t)
	defer func(v, w int) { ntMinBytes, parallelMinFMA = v, w }(ntMinBytes, parallelMinFMA)
	ntMinBytes = 0
	rng := rand.New(rand.NewSource(10))
	e, ref := newEngine(2, nil, &avx512Kernel), newEngine(1, nil, &avx2Kernel)
	defer e.Close()
	defer ref.Close()
	for _, s := range []shape{{true, false, 144, 700, 16}, {false, false, 20, 333, 27}, {true, true, 9, 64, 64}, {false, true, 37, 100, 256}} {
		for _, minFMA := range []int{1 << 19, 0} {
			parallelMinFMA = minFMA
			p := newProblem(rng, s, 0.5, 0, 0)
			p.ldc = roundUp(s.n, 16)
			p.c = alignedFloats(s.m * p.ldc)
			for i := range p.c {
				p.c[i] = float32(math.NaN())
			}
			got := alignedFloats(len(p.c))
			copy(got, p.c)
			e.Sgemm(s.transA, s.transB, s.m, s.n, s.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, got, p.ldc)
			if !e.job.nt {
				t.Fatalf("%v: non-temporal stores not used", s)
			}
			want := p.run(ref)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v: element %d = %g, AVX2 gave %g", s, i, got[i], want[i])
				}
			}
		}
	}
	c := alignedFloats(8 * 48)
	a := randSlice(rng, 32*300)
	for _, tc := range []struct {
		name   string
		c      []float32
		ldc, k int
		beta   float32
	}{{"unaligned C", c[1:], 48, 16, 0}, {"ldc 40", c, 40, 16, 0}, {"beta 1", c, 48, 16, 1}, {"k 300", c, 48, 300, 0}} {
		e.Sgemm(false, false, 8, 32, tc.k, 1, a, tc.k, a, 32, tc.beta, tc.c, tc.ldc)
		if e.job.nt {
			t.Errorf("%s: non-temporal stores used", tc.name)
		}
	}
}
