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
// GEMMs to 1e-4 relative of the summed magnitudes.

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

// TestAugment: a pure copy, so GPU and CPU must agree bit for bit (the
// outputs start as NaN, so an element left unwritten shows); seeds and steps
// above 2^32 check that both travel as 64 bits.
func TestAugment(t *testing.T) { eachGPU(t, testAugment) }

func testAugment(t *testing.T, p *pair) {
	for _, s := range [][5]int{{3, 128, 32, 32, 4}, {1, 9, 28, 28, 4}, {2, 7, 5, 9, 2}, {3, 11, 6, 6, 0}, {2, 5, 3, 7, 9}} {
		c, n, h, w, pad := s[0], s[1], s[2], s[3], s[4]
		for _, d := range []struct {
			seed uint64
			step int
		}{{0, 0}, {42, 7}, {0xdeadbeefcafef00d, 1<<33 + 5}} {
			src := p.rand(c*n*h*w, 1)
			dst := p.nan(c * n * h * w)
			p.c.Augment(src.c, dst.c, c, n, h, w, pad, false, false, d.seed, d.step)
			p.g.Augment(src.g, dst.g, c, n, h, w, pad, false, false, d.seed, d.step)
			hc, hg := make([]float32, dst.c.Len()), make([]float32, dst.g.Len())
			p.c.DownloadF32(dst.c, 0, hc)
			if err := p.g.DownloadF32(dst.g, 0, hg); err != nil {
				t.Fatalf("augment %v %v: %v", s, d, err)
			}
			for i := range hc {
				if math.Float32bits(hc[i]) != math.Float32bits(hg[i]) {
					t.Fatalf("augment %v seed %#x step %d [%d]: gpu %g, cpu %g", s, d.seed, d.step, i, hg[i], hc[i])
				}
			}
		}
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
