//go:build cgo

package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// bf16 allocates an n-element BF16 buffer on both backends.
func (p *pair) bf16(n int) bufs {
	p.t.Helper()
	c, err := p.c.Alloc("bf16", device.BF16, n)
	if err != nil {
		p.t.Fatal(err)
	}
	g, err := p.g.Alloc("bf16", device.BF16, n)
	if err != nil {
		p.t.Fatal(err)
	}
	return bufs{c, g}
}

// widen is a BF16 buffer's values, as F32 buffers (Convert to F32 is exact).
func (p *pair) widen(b bufs) bufs {
	n := b.c.Len()
	w := p.nan(n)
	p.c.Convert(b.c, w.c, n)
	p.g.Convert(b.g, w.g, n)
	return w
}

// TestBF16Ops: the bfloat16 ops of --precision bf16 against the CPU
// backend's emulation. Convert to BF16 (values across the float32 range,
// halfway cases, NaN, infinities, subnormals) and back, and Im2Col into a
// BF16 col, agree bit for bit (the same rounding, ties to even, on both);
// GEMMs of BF16 operands agree to float32 accumulation (|diff| <= 1e-5*k +
// 1e-4 relative, the float32 GEMMs' tolerance) and equal, within the same
// tolerance, a float64 product of the operands rounded on the host by
// device.RoundBF16.
func TestBF16Ops(t *testing.T) { eachGPU(t, testBF16Ops) }

func testBF16Ops(t *testing.T, p *pair) {
	if !p.g.Caps().BF16 {
		t.Skip("this GPU has no bfloat16 GEMMs (compute capability < 8.0)")
	}
	v := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1.00390625, 1.01171875, 1.0078125, 3.4e38, -3.4e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, -1e-45, 65504, 1.0 / 3}
	for range 5000 {
		v = append(v, math.Float32frombits(p.rng.Uint32()))
	}
	x := p.f32(v)
	h := p.bf16(len(v))
	p.c.Convert(x.c, h.c, len(v))
	p.g.Convert(x.g, h.g, len(v))
	p.checkBits("convert to bf16 and back", p.widen(h))
	got := p.host(p.widen(h))
	for i := range v {
		if w := device.RoundBF16(v[i]); math.Float32bits(got[i]) != math.Float32bits(w) {
			t.Fatalf("convert %g (%#x): %#x, want RoundBF16's %#x", v[i], math.Float32bits(v[i]), math.Float32bits(got[i]), math.Float32bits(w))
		}
	}

	for _, g := range convGeoms() {
		if p.emu && g.N > 8 {
			g.N = 8 // keep the emulator quick
		}
		xx := p.rand(g.C*g.N*g.H*g.W, 3)
		col := p.bf16(g.ColRows() * g.ColCols())
		p.c.Im2Col(g, xx.c, col.c)
		p.g.Im2Col(g, xx.g, col.g)
		p.checkBits(fmt.Sprintf("im2col bf16 %+v", g), p.widen(col))
	}

	for _, s := range [][3]int{{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {32, 900, 27}, {64, 288, 169}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				m, n, k := s[0], s[1], s[2]
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				a, b := p.rand(m*k, 1), p.rand(k*n, 1)
				ah, bh := p.bf16(m*k), p.bf16(k*n)
				for _, c := range []struct{ x, h bufs }{{a, ah}, {b, bh}} {
					p.c.Convert(c.x.c, c.h.c, c.x.c.Len())
					p.g.Convert(c.x.g, c.h.g, c.x.g.Len())
				}
				cc := p.nan(m * n)
				p.c.Gemm(ta, tb, m, n, k, 1, ah.c, lda, bh.c, ldb, 0, cc.c, n)
				p.g.Gemm(ta, tb, m, n, k, 1, ah.g, lda, bh.g, ldb, 0, cc.g, n)
				what := fmt.Sprintf("gemm bf16 %v ta=%v tb=%v", s, ta, tb)
				tol := 1e-5 * float64(k)
				p.check(what, cc, tol, 1e-4)
				// A float64 reference of the host's operands rounded by
				// device.RoundBF16.
				ha, hb := p.host(a), p.host(b)
				hg := make([]float32, m*n)
				if err := p.g.DownloadF32(cc.g, 0, hg); err != nil {
					t.Fatal(err)
				}
				for i := range m {
					for j := range n {
						ref := 0.0
						for l := range k {
							ai, bi := i*lda+l, l*ldb+j
							if ta {
								ai = l*lda + i
							}
							if tb {
								bi = j*ldb + l
							}
							av, bv := ha[ai], hb[bi]
							ref += float64(device.RoundBF16(av)) * float64(device.RoundBF16(bv))
						}
						if d := math.Abs(float64(hg[i*n+j]) - ref); d > tol+1e-4*math.Abs(ref) {
							t.Fatalf("%s[%d, %d] = %v, the product of the rounded operands is %v", what, i, j, hg[i*n+j], ref)
						}
					}
				}
			}
		}
	}
}
