//go:build cgo

package gpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/cuda"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

// The GPU conformance suite: every Backend op of the GPU backend against the
// CPU backend (the reference) on fresh random inputs, twice:
//
//   - cuda: on the GPU. It skips, saying why, where no GPU is usable (fails
//     under TRAINER_REQUIRE_GPU=1).
//   - emu: always, on the kernel emulator (emuDev): the Backend's own op
//     methods and launch packing, the kernels compiled for the host, GEMMs on
//     a host reference instead of cuBLAS (large GEMM shapes are left to the
//     GPU), so the GPU backend's code runs in CI without a GPU.
//
// Tolerance: |gpu-cpu| <= atol + rtol*|cpu| with the values given per op;
// element-wise ops must agree to float32 rounding (1e-6), reductions and
// GEMMs to 1e-4 relative of the summed magnitudes. Copies (augment,
// translate, dropout masks) and the ops whose float32 arithmetic both
// backends do step by step (optimisers, Add, Axpby, BatchNorm's forward
// pass given the same statistics) agree bit for bit; the GELU (float32
// erff/expf against float64) and the BatchNorm reductions (float32 partial
// sums against float64) to the tolerances stated at their tests.

type pair struct {
	t   *testing.T
	c   device.Backend
	g   device.Backend
	emu bool // g runs on the emulator
	rng *rand.Rand
}

// envRequireGPU=1 turns "no GPU" skips into failures (scripts/gpu-check.sh
// sets it), so that a broken GPU setup cannot pass as skipped.
const envRequireGPU = "TRAINER_REQUIRE_GPU"

// eachGPU runs a conformance test on the GPU ("cuda") and on the emulator
// ("emu").
func eachGPU(t *testing.T, f func(t *testing.T, p *pair)) {
	for _, kind := range []string{"cuda", "emu"} {
		t.Run(kind, func(t *testing.T) { f(t, newPair(t, kind == "emu")) })
	}
}

// newGPU opens the GPU, or skips (fails under TRAINER_REQUIRE_GPU=1).
func newGPU(t *testing.T, what string) *Backend {
	t.Helper()
	g, err := New(device.Options{})
	if err != nil {
		if os.Getenv(envRequireGPU) == "1" {
			t.Fatalf("%s=1 but no usable GPU: %v", envRequireGPU, err)
		}
		t.Skipf("no usable GPU, %s not run: %v", what, err)
	}
	return g
}

func newPair(t *testing.T, onEmu bool) *pair {
	t.Helper()
	var g *Backend
	if onEmu {
		g = newEmuBackend(t)
	} else {
		g = newGPU(t, "GPU conformance")
	}
	c, err := cpu.New(device.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); c.Close() })
	return &pair{t: t, c: c, g: g, emu: onEmu, rng: rand.New(rand.NewPCG(uint64(len(t.Name())), 42))}
}

type bufs struct{ c, g device.Buffer }

func (p *pair) f32(vals []float32) bufs {
	p.t.Helper()
	c, err := p.c.Alloc("t", device.F32, len(vals))
	if err != nil {
		p.t.Fatal(err)
	}
	g, err := p.g.Alloc("t", device.F32, len(vals))
	if err != nil {
		p.t.Fatal(err)
	}
	p.c.UploadF32(c, 0, vals)
	if err := p.g.UploadF32(g, 0, vals); err != nil {
		p.t.Fatal(err)
	}
	return bufs{c, g}
}

func (p *pair) i32(vals []int32) bufs {
	p.t.Helper()
	c, _ := p.c.Alloc("t", device.I32, len(vals))
	g, err := p.g.Alloc("t", device.I32, len(vals))
	if err != nil {
		p.t.Fatal(err)
	}
	p.c.UploadI32(c, 0, vals)
	p.g.UploadI32(g, 0, vals)
	return bufs{c, g}
}

func (p *pair) rand(n int, scale float32) bufs {
	v := make([]float32, n)
	for i := range v {
		v[i] = (p.rng.Float32()*2 - 1) * scale
	}
	return p.f32(v)
}

// nan fills a buffer with NaN, so an op that must overwrite it and does not
// is caught.
func (p *pair) nan(n int) bufs {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return p.f32(v)
}

func (p *pair) check(what string, b bufs, atol, rtol float64) {
	p.t.Helper()
	n := b.c.Len()
	hc, hg := make([]float32, n), make([]float32, n)
	p.c.DownloadF32(b.c, 0, hc)
	if err := p.g.DownloadF32(b.g, 0, hg); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	bad := 0
	for i := range hc {
		d := math.Abs(float64(hg[i]) - float64(hc[i]))
		if !(d <= atol+rtol*math.Abs(float64(hc[i]))) {
			if bad < 5 {
				p.t.Errorf("%s[%d]: gpu %g, cpu %g", what, i, hg[i], hc[i])
			}
			bad++
		}
	}
	if bad > 0 {
		p.t.Fatalf("%s: %d of %d elements differ", what, bad, n)
	}
}

func (p *pair) checkI32(what string, b bufs) {
	p.t.Helper()
	n := b.c.Len()
	hc, hg := make([]int32, n), make([]int32, n)
	p.c.DownloadI32(b.c, 0, hc)
	if err := p.g.DownloadI32(b.g, 0, hg); err != nil {
		p.t.Fatal(err)
	}
	for i := range hc {
		if hc[i] != hg[i] {
			p.t.Fatalf("%s[%d]: gpu %d, cpu %d", what, i, hg[i], hc[i])
		}
	}
}

func TestGemm(t *testing.T) { eachGPU(t, testGemm) }

func testGemm(t *testing.T, p *pair) {
	shapes := [][3]int{{1, 1, 1}, {7, 5, 3}, {32, 28800, 27}, {64, 288, 5408}, {288, 5408, 64}, {32, 64, 1024}, {33, 17, 65}}
	for _, s := range shapes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				m, n, k := s[0], s[1], s[2]
				if p.emu && m*n*k > 1<<21 {
					continue // the emulator's reference GEMM is slow: big shapes are the GPU's
				}
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				a, b := p.rand(m*k, 1), p.rand(k*n, 1)
				c := p.nan(m * n)
				p.c.Gemm(ta, tb, m, n, k, 1, a.c, lda, b.c, ldb, 0, c.c, n)
				p.g.Gemm(ta, tb, m, n, k, 1, a.g, lda, b.g, ldb, 0, c.g, n)
				tol := 1e-5 * float64(k)
				p.check(fmt.Sprintf("gemm %v ta=%v tb=%v beta=0", s, ta, tb), c, tol, 1e-4)
				c2 := p.rand(m*n, 1)
				p.c.Gemm(ta, tb, m, n, k, 0.5, a.c, lda, b.c, ldb, 0.75, c2.c, n)
				p.g.Gemm(ta, tb, m, n, k, 0.5, a.g, lda, b.g, ldb, 0.75, c2.g, n)
				p.check(fmt.Sprintf("gemm %v ta=%v tb=%v beta=0.75", s, ta, tb), c2, tol, 1e-4)
			}
		}
	}
}

func convGeoms() []device.ConvGeom {
	mk := func(c, n, h, w, k, s, ph, pw, oh, ow int) device.ConvGeom {
		return device.ConvGeom{C: c, N: n, H: h, W: w, KH: k, KW: k, SH: s, SW: s, PadH: ph, PadW: pw, OH: oh, OW: ow}
	}
	return []device.ConvGeom{
		mk(3, 32, 32, 32, 3, 1, 0, 0, 30, 30), // conv1 of the default model
		mk(32, 4, 15, 15, 3, 1, 0, 0, 13, 13),
		mk(2, 3, 7, 6, 3, 1, 1, 1, 7, 6),   // same
		mk(2, 3, 6, 5, 2, 1, 0, 0, 6, 5),   // same, even kernel: padding after only
		mk(3, 2, 9, 8, 3, 2, 0, 0, 4, 3),   // stride 2
		mk(2, 2, 7, 7, 3, 2, 1, 1, 4, 4),   // stride 2 same
		mk(1, 2, 11, 10, 4, 3, 0, 0, 3, 3), // stride 3, kernel 4
	}
}

func TestIm2ColCol2Im(t *testing.T) { eachGPU(t, testIm2ColCol2Im) }

func testIm2ColCol2Im(t *testing.T, p *pair) {
	for _, g := range convGeoms() {
		x := p.rand(g.C*g.N*g.H*g.W, 1)
		col := p.nan(g.ColRows() * g.ColCols())
		p.c.Im2Col(g, x.c, col.c)
		p.g.Im2Col(g, x.g, col.g)
		p.check(fmt.Sprintf("im2col %+v", g), col, 0, 0)
		dcol := p.rand(g.ColRows()*g.ColCols(), 1)
		dx := p.nan(g.C * g.N * g.H * g.W)
		p.c.Col2Im(g, dcol.c, dx.c)
		p.g.Col2Im(g, dcol.g, dx.g)
		p.check(fmt.Sprintf("col2im %+v", g), dx, 1e-6, 1e-5)
	}
}

func TestPooling(t *testing.T) { eachGPU(t, testPooling) }

func testPooling(t *testing.T, p *pair) {
	mk := func(pl, h, w, k, s int) device.PoolGeom {
		return device.PoolGeom{Planes: pl, H: h, W: w, KH: k, KW: k, SH: s, SW: s, OH: (h-k)/s + 1, OW: (w-k)/s + 1}
	}
	for _, g := range []device.PoolGeom{mk(32*32, 30, 30, 2, 2), mk(6, 7, 5, 2, 2), mk(4, 7, 7, 3, 2), mk(3, 5, 5, 3, 1)} {
		x := p.rand(g.Planes*g.H*g.W, 1)
		// Quantised copy with many ties: the first maximum must win on both.
		q := make([]float32, g.Planes*g.H*g.W)
		for i := range q {
			q[i] = float32(p.rng.IntN(3))
		}
		xt := p.f32(q)
		for name, in := range map[string]bufs{"random": x, "ties": xt} {
			y, am := p.nan(g.Planes*g.OH*g.OW), p.i32(make([]int32, g.Planes*g.OH*g.OW))
			p.c.MaxPoolForward(g, in.c, y.c, am.c)
			p.g.MaxPoolForward(g, in.g, y.g, am.g)
			p.check(fmt.Sprintf("maxpool fwd %s %+v", name, g), y, 0, 0)
			p.checkI32(fmt.Sprintf("maxpool argmax %s %+v", name, g), am)
			dy := p.rand(g.Planes*g.OH*g.OW, 1)
			dx := p.nan(g.Planes * g.H * g.W)
			p.c.MaxPoolBackward(g, dy.c, am.c, dx.c)
			p.g.MaxPoolBackward(g, dy.g, am.g, dx.g)
			p.check(fmt.Sprintf("maxpool bwd %s %+v", name, g), dx, 1e-6, 1e-6)
		}
		y := p.nan(g.Planes * g.OH * g.OW)
		p.c.AvgPoolForward(g, x.c, y.c)
		p.g.AvgPoolForward(g, x.g, y.g)
		p.check(fmt.Sprintf("avgpool fwd %+v", g), y, 1e-6, 1e-5)
		dy := p.rand(g.Planes*g.OH*g.OW, 1)
		dx := p.nan(g.Planes * g.H * g.W)
		p.c.AvgPoolBackward(g, dy.c, dx.c)
		p.g.AvgPoolBackward(g, dy.g, dx.g)
		p.check(fmt.Sprintf("avgpool bwd %+v", g), dx, 1e-6, 1e-5)
	}
}

func TestBiasReLUSwap(t *testing.T) { eachGPU(t, testBiasReLUSwap) }

func testBiasReLUSwap(t *testing.T, p *pair) {
	for _, s := range [][3]int{{1, 32, 28800}, {1, 64, 512}, {32, 64, 1}, {128, 10, 1}, {3, 5, 7}, {1, 64, 131072}} {
		outer, c, inner := s[0], s[1], s[2]
		n := outer * c * inner
		for _, relu := range []bool{false, true} {
			y, bias := p.rand(n, 1), p.rand(c, 1)
			p.c.AddBias(y.c, bias.c, outer, c, inner, relu)
			p.g.AddBias(y.g, bias.g, outer, c, inner, relu)
			p.check(fmt.Sprintf("bias add %v relu=%v", s, relu), y, 0, 0)
		}
		dy, db := p.rand(n, 1), p.nan(c)
		p.c.BiasGrad(dy.c, db.c, outer, c, inner)
		p.g.BiasGrad(dy.g, db.g, outer, c, inner)
		// The CPU sums in float64; the GPU in float32 partial sums of at
		// most 64 terms: allow 2e-7 per term of magnitude <= 1.
		p.check(fmt.Sprintf("bias grad %v", s), db, 2e-7*float64(outer*inner), 1e-5)
		x, yy := p.rand(n, 1), p.nan(n)
		p.c.ReLUForward(x.c, yy.c, n)
		p.g.ReLUForward(x.g, yy.g, n)
		p.check("relu fwd", yy, 0, 0)
		d, dx := p.rand(n, 1), p.nan(n)
		p.c.ReLUBackward(yy.c, d.c, dx.c, n)
		p.g.ReLUBackward(yy.g, d.g, dx.g, n)
		p.check("relu bwd", dx, 0, 0)
		sw := p.nan(n)
		p.c.SwapAxes01(x.c, sw.c, outer*c, inner, 1)
		p.g.SwapAxes01(x.g, sw.g, outer*c, inner, 1)
		p.check("swap axes", sw, 0, 0)
		sw2 := p.nan(n)
		p.c.SwapAxes01(x.c, sw2.c, outer, c, inner)
		p.g.SwapAxes01(x.g, sw2.g, outer, c, inner)
		p.check("swap axes inner", sw2, 0, 0)
	}
}

func TestSoftmaxAdamGatherVector(t *testing.T) { eachGPU(t, testSoftmaxAdamGatherVector) }

func testSoftmaxAdamGatherVector(t *testing.T, p *pair) {
	for _, s := range [][2]int{{32, 10}, {1, 3}, {257, 100}} {
		n, k := s[0], s[1]
		logits := p.rand(n*k, 5)
		lab := make([]int32, n)
		for i := range lab {
			lab[i] = int32(p.rng.IntN(k))
		}
		labels := p.i32(lab)
		dl, stats := p.nan(n*k), p.f32([]float32{1.5, 2})
		p.c.SoftmaxXent(logits.c, labels.c, n, k, 1/float32(n), 0, dl.c, stats.c)
		p.g.SoftmaxXent(logits.g, labels.g, n, k, 1/float32(n), 0, dl.g, stats.g)
		p.check(fmt.Sprintf("softmax grad %v", s), dl, 1e-7, 1e-4)
		p.check(fmt.Sprintf("softmax stats %v", s), stats, 1e-4, 1e-5)
		stats2 := p.f32([]float32{0, 0})
		p.c.SoftmaxXent(logits.c, labels.c, n, k, 1, 0, nil, stats2.c)
		p.g.SoftmaxXent(logits.g, labels.g, n, k, 1, 0, nil, stats2.g)
		p.check("softmax stats, no grad", stats2, 1e-4, 1e-5)
	}
	const n = 122570
	par, gr, m := p.rand(n, 1), p.rand(n, 1), p.rand(n, 0.1)
	vv := make([]float32, n)
	for i := range vv {
		vv[i] = p.rng.Float32() * 0.01
	}
	v := p.f32(vv) // second moments are never negative
	p.c.Adam(par.c, gr.c, m.c, v.c, n, 0.001, 0.9, 0.999, 1e-7, 0, 0)
	p.g.Adam(par.g, gr.g, m.g, v.g, n, 0.001, 0.9, 0.999, 1e-7, 0, 0)
	p.check("adam m", m, 1e-7, 1e-6)
	p.check("adam v", v, 1e-9, 1e-6)
	p.check("adam params", par, 1e-6, 1e-6)

	const imgs, c, hw = 50, 3, 1024
	src := make([]uint8, imgs*c*hw)
	for i := range src {
		src[i] = uint8(p.rng.IntN(256))
	}
	sc, _ := p.c.Alloc("u8", device.U8, len(src))
	sg, _ := p.g.Alloc("u8", device.U8, len(src))
	p.c.UploadU8(sc, 0, src)
	p.g.UploadU8(sg, 0, src)
	lab := make([]int32, imgs)
	idx := make([]int32, 17)
	for i := range lab {
		lab[i] = int32(p.rng.IntN(10))
	}
	for i := range idx {
		idx[i] = int32(p.rng.IntN(imgs))
	}
	labels, ix := p.i32(lab), p.i32(idx)
	dst, dl := p.nan(len(idx)*c*hw), p.i32(make([]int32, len(idx)))
	p.c.GatherImages(sc, ix.c, len(idx), c, hw, 1.0/255, dst.c, labels.c, dl.c)
	p.g.GatherImages(sg, ix.g, len(idx), c, hw, 1.0/255, dst.g, labels.g, dl.g)
	p.check("gather images", dst, 0, 0)
	p.checkI32("gather labels", dl)

	y := p.rand(1000, 1)
	p.c.Fill(y.c, 500, 2.5)
	p.g.Fill(y.g, 500, 2.5)
	p.check("fill", y, 0, 0)
	vc, vg := p.c.View(y.c, 100, 50), p.g.View(y.g, 100, 50)
	p.c.Fill(vc, 50, -7)
	p.g.Fill(vg, 50, -7)
	p.check("fill through a view", y, 0, 0)
}

// checkBits fails unless the two backends' buffers hold the same bits
// (copies: NaN payloads and the sign of zero included).
func (p *pair) checkBits(what string, b bufs) {
	p.t.Helper()
	n := b.c.Len()
	hc, hg := make([]float32, n), make([]float32, n)
	p.c.DownloadF32(b.c, 0, hc)
	if err := p.g.DownloadF32(b.g, 0, hg); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	for i := range hc {
		if math.Float32bits(hc[i]) != math.Float32bits(hg[i]) {
			p.t.Fatalf("%s[%d]: gpu %g (%#x), cpu %g (%#x)", what, i, hg[i], math.Float32bits(hg[i]), hc[i], math.Float32bits(hc[i]))
		}
	}
}

// host is the CPU side of b, downloaded.
func (p *pair) host(b bufs) []float32 {
	p.t.Helper()
	h := make([]float32, b.c.Len())
	if err := p.c.DownloadF32(b.c, 0, h); err != nil {
		p.t.Fatal(err)
	}
	return h
}

// TestAugment: a pure copy, so GPU and CPU must agree bit for bit (the
// outputs start as NaN, so an element left unwritten shows); seeds and steps
// above 2^32 check that both travel as 64 bits. Zero padding with and
// without flips, and reflect padding (pad < h, w) with and without flips.
func TestAugment(t *testing.T) { eachGPU(t, testAugment) }

func testAugment(t *testing.T, p *pair) {
	for _, s := range [][5]int{{3, 128, 32, 32, 4}, {1, 9, 28, 28, 4}, {2, 7, 5, 9, 2}, {3, 11, 6, 6, 0}, {2, 5, 3, 7, 9}, {1, 6, 3, 4, 2}} {
		c, n, h, w, pad := s[0], s[1], s[2], s[3], s[4]
		for _, d := range []struct {
			seed uint64
			step int
		}{{0, 0}, {42, 7}, {0xdeadbeefcafef00d, 1<<33 + 5}} {
			for _, m := range []struct{ reflect, noFlip bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
				if m.reflect && (pad >= h || pad >= w) {
					continue
				}
				src := p.rand(c*n*h*w, 1)
				dst := p.nan(c * n * h * w)
				p.c.Augment(src.c, dst.c, c, n, h, w, pad, m.reflect, m.noFlip, d.seed, d.step)
				p.g.Augment(src.g, dst.g, c, n, h, w, pad, m.reflect, m.noFlip, d.seed, d.step)
				p.checkBits(fmt.Sprintf("augment %v seed %#x step %d %+v", s, d.seed, d.step, m), dst)
			}
		}
	}
}

// TestTranslate: a pure copy, bit for bit, for shifts up to the image size
// minus one in every direction, with and without the flip.
func TestTranslate(t *testing.T) { eachGPU(t, testTranslate) }

func testTranslate(t *testing.T, p *pair) {
	for _, s := range [][4]int{{3, 16, 32, 32}, {2, 3, 5, 7}, {1, 5, 1, 6}, {1, 2, 4, 1}} {
		c, n, h, w := s[0], s[1], s[2], s[3]
		for _, sh := range [][2]int{{0, 0}, {1, -2}, {-3, 4}, {h - 1, 1 - w}, {1 - h, w - 1}} {
			dy, dx := max(min(sh[0], h-1), 1-h), max(min(sh[1], w-1), 1-w)
			for _, flip := range []bool{false, true} {
				src := p.rand(c*n*h*w, 1)
				dst := p.nan(c * n * h * w)
				p.c.Translate(src.c, dst.c, c, n, h, w, dy, dx, flip)
				p.g.Translate(src.g, dst.g, c, n, h, w, dy, dx, flip)
				p.checkBits(fmt.Sprintf("translate %v (%d, %d) flip=%v", s, dy, dx, flip), dst)
			}
		}
	}
}

// TestSoftmaxSmoothing: label smoothing, odd sizes; the tolerances of the
// plain loss (the gradient's error is a few float32 ulps of 1 per unit of
// gradScale whatever eps).
func TestSoftmaxSmoothing(t *testing.T) { eachGPU(t, testSoftmaxSmoothing) }

func testSoftmaxSmoothing(t *testing.T, p *pair) {
	for _, s := range [][2]int{{33, 10}, {1, 3}, {257, 100}, {5, 1}} {
		n, k := s[0], s[1]
		for _, eps := range []float32{0.1, 0.3} {
			logits := p.rand(n*k, 5)
			lab := make([]int32, n)
			for i := range lab {
				lab[i] = int32(p.rng.IntN(k))
			}
			labels := p.i32(lab)
			dl, stats := p.nan(n*k), p.f32([]float32{1.5, 2})
			p.c.SoftmaxXent(logits.c, labels.c, n, k, 1/float32(n), eps, dl.c, stats.c)
			p.g.SoftmaxXent(logits.g, labels.g, n, k, 1/float32(n), eps, dl.g, stats.g)
			p.check(fmt.Sprintf("softmax grad %v eps %v", s, eps), dl, 1e-7, 1e-4)
			p.check(fmt.Sprintf("softmax stats %v eps %v", s, eps), stats, 1e-4, 1e-5)
			stats2 := p.f32([]float32{0, 0})
			p.c.SoftmaxXent(logits.c, labels.c, n, k, 1, eps, nil, stats2.c)
			p.g.SoftmaxXent(logits.g, labels.g, n, k, 1, eps, nil, stats2.g)
			p.check(fmt.Sprintf("softmax stats, no grad, eps %v", eps), stats2, 1e-4, 1e-5)
		}
	}
}

// TestOptimizers: Adam with L2 and decoupled decay, SGD with and without
// momentum, Nesterov and L2, RMSprop with and without momentum and L2, five
// steps each on an odd size. One float32 operation per step, no FMAs, IEEE
// sqrt and division on both sides: bit for bit.
func TestOptimizers(t *testing.T) { eachGPU(t, testOptimizers) }

func testOptimizers(t *testing.T, p *pair) {
	const n, steps = 12347, 5
	grads := make([]bufs, steps)
	for i := range grads {
		grads[i] = p.rand(n, 1)
	}
	for _, c := range [][2]float32{{1e-2, 0}, {0, 1e-3}, {5e-3, 1e-4}} {
		par, m := p.rand(n, 1), p.rand(n, 0.1)
		v := p.f32(positive(p, n, 0.01))
		for i, g := range grads {
			lrT := float32(1e-3 * math.Sqrt(1-math.Pow(0.999, float64(i+1))) / (1 - math.Pow(0.9, float64(i+1))))
			p.c.Adam(par.c, g.c, m.c, v.c, n, lrT, 0.9, 0.999, 1e-8, c[0], c[1])
			p.g.Adam(par.g, g.g, m.g, v.g, n, lrT, 0.9, 0.999, 1e-8, c[0], c[1])
		}
		what := fmt.Sprintf("adam l2 %v decay %v", c[0], c[1])
		p.check(what+" params", par, 0, 0)
		p.check(what+" m", m, 0, 0)
		p.check(what+" v", v, 0, 0)
	}
	for _, c := range []struct {
		momentum, l2 float32
		nesterov     bool
	}{{0, 0, false}, {0, 1e-2, false}, {0.9, 0, false}, {0.9, 5e-4, true}, {0.5, 1e-3, false}} {
		par := p.rand(n, 1)
		var buf bufs
		if c.momentum != 0 {
			buf = p.f32(make([]float32, n)) // PyTorch's first step: buf = g
		}
		for _, g := range grads {
			p.c.SGD(par.c, g.c, buf.c, n, 0.05, c.momentum, c.l2, c.nesterov)
			p.g.SGD(par.g, g.g, buf.g, n, 0.05, c.momentum, c.l2, c.nesterov)
		}
		p.check(fmt.Sprintf("sgd %+v params", c), par, 0, 0)
		if c.momentum != 0 {
			p.check(fmt.Sprintf("sgd %+v buf", c), buf, 0, 0)
		}
	}
	for _, c := range [][2]float32{{0, 0}, {0, 1e-2}, {0.9, 0}, {0.5, 1e-3}} {
		momentum, l2 := c[0], c[1]
		par, sq := p.rand(n, 1), p.f32(make([]float32, n))
		var buf bufs
		if momentum != 0 {
			buf = p.f32(make([]float32, n))
		}
		for _, g := range grads {
			p.c.RMSprop(par.c, g.c, sq.c, buf.c, n, 0.01, 0.99, 1e-8, l2, momentum)
			p.g.RMSprop(par.g, g.g, sq.g, buf.g, n, 0.01, 0.99, 1e-8, l2, momentum)
		}
		what := fmt.Sprintf("rmsprop momentum %v l2 %v", momentum, l2)
		p.check(what+" params", par, 0, 0)
		p.check(what+" sq", sq, 0, 0)
		if momentum != 0 {
			p.check(what+" buf", buf, 0, 0)
		}
	}
}

// positive is n random values in [0, scale).
func positive(p *pair, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = p.rng.Float32() * scale
	}
	return v
}

// TestPointwise: GELU forward and backward (float32 erff/expf on the GPU,
// float64 on the CPU: |gpu-cpu| <= 2e-6 + 1e-5*|cpu| for |x| <= 6, |dy| <=
// 1), Add with and without ReLU, Axpby (beta 0 must not read y) and
// Dropout (bit for bit), each also in place.
func TestPointwise(t *testing.T) { eachGPU(t, testPointwise) }

func testPointwise(t *testing.T, p *pair) {
	for _, n := range []int{1, 1001, 65537} {
		x, dy := p.rand(n, 6), p.rand(n, 1)
		y := p.nan(n)
		p.c.GELUForward(x.c, y.c, n)
		p.g.GELUForward(x.g, y.g, n)
		p.check(fmt.Sprintf("gelu fwd %d", n), y, 2e-6, 1e-5)
		dx := p.nan(n)
		p.c.GELUBackward(x.c, dy.c, dx.c, n)
		p.g.GELUBackward(x.g, dy.g, dx.g, n)
		p.check(fmt.Sprintf("gelu bwd %d", n), dx, 2e-6, 1e-5)
		p.c.GELUBackward(x.c, dy.c, dy.c, n)
		p.g.GELUBackward(x.g, dy.g, dy.g, n)
		p.check(fmt.Sprintf("gelu bwd in place %d", n), dy, 2e-6, 1e-5)
		p.c.GELUForward(x.c, x.c, n)
		p.g.GELUForward(x.g, x.g, n)
		p.check(fmt.Sprintf("gelu fwd in place %d", n), x, 2e-6, 1e-5)

		for _, relu := range []bool{false, true} {
			a, b, s := p.rand(n, 1), p.rand(n, 1), p.nan(n)
			p.c.Add(a.c, b.c, s.c, n, relu)
			p.g.Add(a.g, b.g, s.g, n, relu)
			p.checkBits(fmt.Sprintf("add %d relu=%v", n, relu), s)
			p.c.Add(a.c, b.c, b.c, n, relu)
			p.g.Add(a.g, b.g, b.g, n, relu)
			p.checkBits(fmt.Sprintf("add %d relu=%v in place", n, relu), b)
		}
		for _, c := range [][2]float32{{1, 0}, {0.25, 0}, {0.001, 0.999}, {-2, 0.5}} {
			a, yy := p.rand(n, 1), p.rand(n, 1)
			if c[1] == 0 {
				yy = p.nan(n)
			}
			p.c.Axpby(a.c, yy.c, n, c[0], c[1])
			p.g.Axpby(a.g, yy.g, n, c[0], c[1])
			p.checkBits(fmt.Sprintf("axpby %d %v", n, c), yy)
		}
		for _, pr := range []float32{0, 0.1, 0.5, 0.9, 1} {
			for _, d := range []struct {
				seed uint64
				step int
			}{{3, 0}, {0xdeadbeefcafef00d, 1<<33 + 5}} {
				a, out := p.rand(n, 1), p.nan(n)
				p.c.Dropout(a.c, out.c, n, pr, d.seed, d.step)
				p.g.Dropout(a.g, out.g, n, pr, d.seed, d.step)
				what := fmt.Sprintf("dropout %d p %v seed %#x step %d", n, pr, d.seed, d.step)
				p.checkBits(what, out)
				p.c.Dropout(a.c, a.c, n, pr, d.seed, d.step)
				p.g.Dropout(a.g, a.g, n, pr, d.seed, d.step)
				p.checkBits(what+" in place", a)
			}
		}
	}
}

// bnShapes are [outer, C, inner]: conv output (outer 1), dense (outer N,
// inner 1), general, odd sizes, and channels long enough for one, two and
// three reduction passes.
var bnShapes = [][3]int{
	{1, 5, 7}, {1, 16, 4096}, {1, 3, 70001}, {3, 5, 6}, {2, 7, 300},
	{13, 9, 1}, {128, 10, 1}, {257, 33, 1}, {20000, 3, 1},
}

// bnInput is x of a shape, per channel an offset in [-3, 3] plus a spread
// up to 1 times u, u uniform in [-1, 1] (the two-pass variance matters),
// and a gradient dz = 0.3 + 0.5*u + uniform [-0.5, 0.5], correlated with x
// and with a nonzero mean, so that dgamma/M and dbeta/M both weigh in dx.
func bnInput(p *pair, outer, c, inner int) (x, dz bufs) {
	v, d := make([]float32, outer*c*inner), make([]float32, outer*c*inner)
	for ch := range c {
		off, sd := float32(3*(ch%3-1)), float32(1)/float32(1+ch%4)
		for o := range outer {
			for i := range inner {
				u := 2*p.rng.Float32() - 1
				v[(o*c+ch)*inner+i] = off + sd*u
				d[(o*c+ch)*inner+i] = 0.3 + 0.5*u + p.rng.Float32() - 0.5
			}
		}
	}
	return p.f32(v), p.f32(d)
}

// TestBatchNorm: statistics, forward (every activation, z stored or not,
// batch and given statistics), backward (dx apart and in place). Tolerances
// (the GPU sums in float32 partial sums, the CPU in float64; see
// kernels/norm.cu): mean 1e-6 + 1e-5 relative, variance 1e-9 + 1e-5
// relative; forward bit for bit with the same statistics for none and
// ReLU, 2e-6 + 1e-5 relative with the GELU, and 1e-5 + 1e-5 relative with
// each backend's own batch statistics (|z| <= 4); dbeta and dgamma 2e-7 per
// element (as BiasGrad) + 1e-5 relative; dx 1e-5 + 1e-4 relative (gamma <=
// 1.5, invstd <= 7).
func TestBatchNorm(t *testing.T) { eachGPU(t, testBatchNorm) }

func testBatchNorm(t *testing.T, p *pair) {
	const eps = 1e-5
	for _, s := range bnShapes {
		outer, c, inner := s[0], s[1], s[2]
		n, m := outer*c*inner, float64(outer*inner)
		x, dz := bnInput(p, outer, c, inner)
		mean, variance := p.nan(c), p.nan(c)
		p.c.BatchNormStats(x.c, mean.c, variance.c, outer, c, inner)
		p.g.BatchNormStats(x.g, mean.g, variance.g, outer, c, inner)
		p.check(fmt.Sprintf("bn mean %v", s), mean, 1e-6, 1e-5)
		p.check(fmt.Sprintf("bn variance %v", s), variance, 1e-9, 1e-5)

		gv, bv := make([]float32, c), make([]float32, c)
		for i := range gv {
			gv[i], bv[i] = 0.5+p.rng.Float32(), p.rng.Float32()-0.5
		}
		gamma, beta := p.f32(gv), p.f32(bv)
		// The CPU's statistics on both sides: the running-statistics case,
		// and a forward pass that must agree bit for bit.
		cm, cv := p.f32(p.host(mean)), p.f32(p.host(variance))
		for _, act := range []device.Act{device.ActNone, device.ActReLU, device.ActGELU} {
			z, y, y2 := p.nan(n), p.nan(n), p.nan(n)
			p.c.BatchNormForward(x.c, cm.c, cv.c, gamma.c, beta.c, outer, c, inner, eps, act, z.c, y.c)
			p.g.BatchNormForward(x.g, cm.g, cv.g, gamma.g, beta.g, outer, c, inner, eps, act, z.g, y.g)
			what := fmt.Sprintf("bn fwd %v %v", s, act)
			p.checkBits(what+" z", z)
			if act == device.ActGELU {
				p.check(what+" y", y, 2e-6, 1e-5)
			} else {
				p.checkBits(what+" y", y)
			}
			// Each backend's own batch statistics, no z.
			p.c.BatchNormForward(x.c, mean.c, variance.c, gamma.c, beta.c, outer, c, inner, eps, act, nil, y2.c)
			p.g.BatchNormForward(x.g, mean.g, variance.g, gamma.g, beta.g, outer, c, inner, eps, act, nil, y2.g)
			p.check(what+" own statistics", y2, 1e-5, 1e-5)
		}

		dx, dg, db := p.nan(n), p.nan(c), p.nan(c)
		p.c.BatchNormBackward(x.c, dz.c, cm.c, cv.c, gamma.c, outer, c, inner, eps, dx.c, dg.c, db.c)
		p.g.BatchNormBackward(x.g, dz.g, cm.g, cv.g, gamma.g, outer, c, inner, eps, dx.g, dg.g, db.g)
		what := fmt.Sprintf("bn bwd %v", s)
		p.check(what+" dbeta", db, 2e-7*m, 1e-5)
		p.check(what+" dgamma", dg, 4e-7*m, 1e-5)
		p.check(what+" dx", dx, 1e-5, 1e-4)
		dg2, db2 := p.nan(c), p.nan(c)
		p.c.BatchNormBackward(x.c, dz.c, cm.c, cv.c, gamma.c, outer, c, inner, eps, dz.c, dg2.c, db2.c)
		p.g.BatchNormBackward(x.g, dz.g, cm.g, cv.g, gamma.g, outer, c, inner, eps, dz.g, dg2.g, db2.g)
		p.check(what+" dx in place", dz, 1e-5, 1e-4)
		p.check(what+" dgamma (dx in place)", dg2, 4e-7*m, 1e-5)
	}
}

func TestOutOfMemoryMessage(t *testing.T) { eachGPU(t, testOutOfMemoryMessage) }

func testOutOfMemoryMessage(t *testing.T, p *pair) {
	_, err := p.g.Alloc("a test tensor", device.F32, 1<<45)
	if err == nil {
		t.Fatal("allocating 128 TiB succeeded")
	}
	t.Logf("OOM message: %v", err)
	// The --batch-size hint is the CLI's (cli/train.go adds it to a
	// *device.OutOfMemoryError); the backend names what and how much.
	var oom *device.OutOfMemoryError
	if !errors.As(err, &oom) || !cuda.IsOutOfMemory(err) {
		t.Errorf("OOM error %v (%T) is not a *device.OutOfMemoryError wrapping CUDA_ERROR_OUT_OF_MEMORY", err, err)
	}
	for _, want := range []string{"a test tensor", "free of", "CUDA_ERROR_OUT_OF_MEMORY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("OOM error %q lacks %q", err, want)
		}
	}
}
