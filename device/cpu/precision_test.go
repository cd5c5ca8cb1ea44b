package cpu_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

// refGemm is row-major C = op(A) op(B) in float64 of the operands after
// round (nil: as given), and the sum of |a*b| of each element (the scale of
// a float32 accumulation's error).
func refGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, round func(float32) float32) (c, mag []float64) {
	if round == nil {
		round = func(x float32) float32 { return x }
	}
	at := func(i, l int) float64 {
		if transA {
			return float64(round(a[l*lda+i]))
		}
		return float64(round(a[i*lda+l]))
	}
	bt := func(l, j int) float64 {
		if transB {
			return float64(round(b[j*ldb+l]))
		}
		return float64(round(b[l*ldb+j]))
	}
	c, mag = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			for l := range k {
				c[i*n+j] += at(i, l) * bt(l, j)
				mag[i*n+j] += math.Abs(at(i, l) * bt(l, j))
			}
		}
	}
	return c, mag
}

// TestGemmTF32: under PrecisionTF32 the CPU's GEMM equals, within float32
// accumulation error, the float64 product of the operands rounded to TF32
// (device.RoundTF32), for every transpose and leading dimensions wider than
// the rows; and it is not the product of the unrounded operands (the
// rounding error, ~2^-11 relative per operand, is far above the
// accumulation's k*2^-24 bound). The operands are left as they were.
func TestGemmTF32(t *testing.T) {
	b, err := cpu.New(device.Options{Threads: 2, Precision: device.PrecisionTF32})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Caps().Precision != device.PrecisionTF32 {
		t.Fatalf("Caps().Precision = %v", b.Caps().Precision)
	}
	r := newRand(7)
	for _, s := range [][3]int{{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 100, 288}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				m, n, k := s[0], s[1], s[2]
				lda, ldb := k+3, n+1
				if ta {
					lda = m + 2
				}
				if tb {
					ldb = k + 5
				}
				ra, rb := m, k
				if ta {
					ra = k
				}
				if tb {
					rb = n
				}
				a, bb := randn(r, ra*lda), randn(r, rb*ldb)
				a0, b0 := append([]float32(nil), a...), append([]float32(nil), bb...)
				bufs := bufs(t, b, a, bb, make([]float32, m*n))
				b.Gemm(ta, tb, m, n, k, 1, bufs[0], lda, bufs[1], ldb, 0, bufs[2], n)
				got := make([]float32, m*n)
				b.DownloadF32(bufs[2], 0, got)
				what := fmt.Sprintf("%v ta=%v tb=%v", s, ta, tb)
				want, mag := refGemm(ta, tb, m, n, k, a, lda, bb, ldb, device.RoundTF32)
				exact, _ := refGemm(ta, tb, m, n, k, a, lda, bb, ldb, nil)
				off := 0
				for i := range got {
					tol := float64(k) * 0x1p-24 * mag[i] // float32 accumulation, worst case
					if d := math.Abs(float64(got[i]) - want[i]); d > tol {
						t.Fatalf("%s: c[%d] = %v, want %v (TF32 operands) within %.3g", what, i, got[i], want[i], tol)
					}
					if math.Abs(float64(got[i])-exact[i]) > tol {
						off++
					}
				}
				if k > 1 && off == 0 {
					t.Errorf("%s: every element equals the unrounded product: the operands were not rounded", what)
				}
				for i, w := range [][]float32{a0, b0} {
					h := make([]float32, len(w))
					b.DownloadF32(bufs[i], 0, h)
					sameF32(t, fmt.Sprintf("%s operand %d untouched", what, i), h, w)
				}
			}
		}
	}
}
