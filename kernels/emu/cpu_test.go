//go:build cgo

package emu

// The emulated kernels, launched as the GPU backend launches them, against
// the CPU backend (device/cpu), the project's reference, on the same random
// inputs: each op goes Alloc/Upload/op/Download on the CPU backend.
//
// Tolerances. Ops whose result the semantics fix exactly (copies, im2col,
// max pooling, bias add, ReLU, swap, gather, fill, scale) must agree bit for
// bit. Sums and float arithmetic whose rounding the semantics leave open
// must agree within |emu - cpu| <= 1e-5*|cpu| + 2e-6*mag, mag being the sum
// of the absolute values of the terms (for single values mag is 1); with
// no FMAs in the kernels most of these agree exactly too.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

func newCPU(t *testing.T) device.Backend {
	t.Helper()
	b, err := cpu.New(device.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func alloc(t *testing.T, b device.Backend, dt device.DType, n int) device.Buffer {
	t.Helper()
	buf, err := b.Alloc("test", dt, n)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func upF32(t *testing.T, b device.Backend, s []float32) device.Buffer {
	t.Helper()
	buf := alloc(t, b, device.F32, len(s))
	if err := b.UploadF32(buf, 0, s); err != nil {
		t.Fatal(err)
	}
	return buf
}

func upI32(t *testing.T, b device.Backend, s []int32) device.Buffer {
	t.Helper()
	buf := alloc(t, b, device.I32, len(s))
	if err := b.UploadI32(buf, 0, s); err != nil {
		t.Fatal(err)
	}
	return buf
}

func upU8(t *testing.T, b device.Backend, s []uint8) device.Buffer {
	t.Helper()
	buf := alloc(t, b, device.U8, len(s))
	if err := b.UploadU8(buf, 0, s); err != nil {
		t.Fatal(err)
	}
	return buf
}

func downF32(t *testing.T, b device.Backend, buf device.Buffer) []float32 {
	t.Helper()
	s := make([]float32, buf.Len())
	if err := b.DownloadF32(buf, 0, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func downI32(t *testing.T, b device.Backend, buf device.Buffer) []int32 {
	t.Helper()
	s := make([]int32, buf.Len())
	if err := b.DownloadI32(buf, 0, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// closeCPU compares the emulated kernel's output with the CPU backend's
// within the tolerance above; mag nil means 1 for every element.
func closeCPU(t *testing.T, what string, emu, ref []float32, mag []float64) {
	t.Helper()
	if len(emu) != len(ref) {
		t.Fatalf("%s: %d elements, cpu %d", what, len(emu), len(ref))
	}
	for i := range ref {
		m := 1.0
		if mag != nil {
			m = mag[i]
		}
		d := math.Abs(float64(emu[i]) - float64(ref[i]))
		if !(d <= 1e-5*math.Abs(float64(ref[i]))+2e-6*m) {
			t.Fatalf("%s[%d]: emu %v, cpu %v (|diff| %.3g)", what, i, emu[i], ref[i], d)
		}
	}
}

func TestCPUConv(t *testing.T) {
	b := newCPU(t)
	for _, g := range convGeoms {
		t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
			r := rng(t)
			x := randF32(r, g.C*g.N*g.H*g.W)
			col := nans(g.ColRows() * g.ColCols())
			must(t, Im2Col(GPU, g, x, col))
			ccol := alloc(t, b, device.F32, len(col))
			b.Im2Col(g, upF32(t, b, x), ccol)
			equalF32(t, "im2col", col, downF32(t, b, ccol))

			dcol := randF32(r, len(col))
			dx := nans(len(x))
			must(t, Col2Im(GPU, g, dcol, dx))
			cdx := upF32(t, b, nans(len(x))) // overwritten
			b.Col2Im(g, upF32(t, b, dcol), cdx)
			_, mag, _ := refCol2Im(g, dcol)
			closeCPU(t, "col2im", dx, downF32(t, b, cdx), mag)
		})
	}
}

func TestCPUPool(t *testing.T) {
	b := newCPU(t)
	for _, g := range poolGeoms {
		for kind, x := range poolInputs(rand1(g), g.Planes*g.H*g.W) {
			t.Run(fmt.Sprintf("%+v/%s", g, kind), func(t *testing.T) {
				r := rng(t)
				nout := g.Planes * g.OH * g.OW
				y, am := nans(nout), make([]int32, nout)
				must(t, MaxPoolForward(GPU, g, x, y, am))
				cx, cy, cam := upF32(t, b, x), alloc(t, b, device.F32, nout), alloc(t, b, device.I32, nout)
				b.MaxPoolForward(g, cx, cy, cam)
				equalF32(t, "maxpool y", y, downF32(t, b, cy))
				equalI32(t, "maxpool argmax", am, downI32(t, b, cam))

				dy := randF32(r, nout)
				dx := nans(len(x))
				must(t, MaxPoolBackward(GPU, g, dy, am, dx))
				cdx := upF32(t, b, nans(len(x)))
				b.MaxPoolBackward(g, upF32(t, b, dy), cam, cdx)
				_, mag := refAvgPoolBwd(g, dy) // sum of |dy| over covering windows, / area
				for i := range mag {
					mag[i] *= float64(g.KH * g.KW)
				}
				closeCPU(t, "maxpool dx", dx, downF32(t, b, cdx), mag)

				ay := nans(nout)
				must(t, AvgPoolForward(GPU, g, x, ay))
				cay := alloc(t, b, device.F32, nout)
				b.AvgPoolForward(g, cx, cay)
				_, ymag := refAvgPool(g, x)
				closeCPU(t, "avgpool y", ay, downF32(t, b, cay), ymag)

				adx := nans(len(x))
				must(t, AvgPoolBackward(GPU, g, dy, adx))
				cadx := upF32(t, b, nans(len(x)))
				b.AvgPoolBackward(g, upF32(t, b, dy), cadx)
				_, dmag := refAvgPoolBwd(g, dy)
				closeCPU(t, "avgpool dx", adx, downF32(t, b, cadx), dmag)
			})
		}
	}
}

func rand1(g device.PoolGeom) *rand.Rand { return rand.New(rand.NewPCG(uint64(g.H*g.W), 1)) }

func TestCPUBias(t *testing.T) {
	b := newCPU(t)
	for _, s := range biasShapes {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			outer, c, inner := s[0], s[1], s[2]
			r := rng(t)
			y0, bias := randF32(r, outer*c*inner), randF32(r, c)
			for _, relu := range []bool{false, true} {
				y := append([]float32(nil), y0...)
				must(t, AddBias(GPU, y, bias, outer, c, inner, relu))
				cy := upF32(t, b, y0)
				b.AddBias(cy, upF32(t, b, bias), outer, c, inner, relu)
				equalF32(t, fmt.Sprintf("bias add (relu %v)", relu), y, downF32(t, b, cy))
			}

			dy := y0
			db := nans(c)
			must(t, BiasGrad(GPU, dy, db, outer, c, inner))
			cdb := upF32(t, b, nans(c))
			b.BiasGrad(upF32(t, b, dy), cdb, outer, c, inner)
			_, mag := refBiasGrad(dy, outer, c, inner)
			closeCPU(t, "bias grad", db, downF32(t, b, cdb), mag)
		})
	}
}

func TestCPUElementwise(t *testing.T) {
	b := newCPU(t)
	for _, n := range []int{1, 257, 70001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := rng(t)
			x, y0 := randF32(r, n), randF32(r, n)

			y := nans(n)
			must(t, ReLUForward(GPU, x, y, n))
			cx, cy := upF32(t, b, x), upF32(t, b, nans(n))
			b.ReLUForward(cx, cy, n)
			equalF32(t, "relu", y, downF32(t, b, cy))

			dx := nans(n)
			must(t, ReLUBackward(GPU, y, y0, dx, n))
			cdx := upF32(t, b, nans(n))
			b.ReLUBackward(cy, upF32(t, b, y0), cdx, n)
			equalF32(t, "relu backward", dx, downF32(t, b, cdx))

			f := append([]float32(nil), y0...)
			must(t, Fill(GPU, f, n, 0.25))
			cf := upF32(t, b, y0)
			b.Fill(cf, n, 0.25)
			equalF32(t, "fill", f, downF32(t, b, cf))

			p, g, m := randF32(r, n), randF32(r, n), randF32(r, n)
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(r.Float64())
			}
			cp2, cg, cm, cv := upF32(t, b, p), upF32(t, b, g), upF32(t, b, m), upF32(t, b, v)
			for range 2 {
				must(t, Adam(GPU, p, g, m, v, n, 3e-4, 0.9, 0.999, 1e-7, 1e-3, 3e-5))
				b.Adam(cp2, cg, cm, cv, n, 3e-4, 0.9, 0.999, 1e-7, 1e-3, 3e-5)
			}
			closeCPU(t, "adam p", p, downF32(t, b, cp2), nil)
			closeCPU(t, "adam m", m, downF32(t, b, cm), nil)
			closeCPU(t, "adam v", v, downF32(t, b, cv), nil)
		})
	}
	for _, s := range [][3]int{{3, 5, 7}, {16, 9, 64}, {10, 128, 1}} {
		src := randF32(rng(t), s[0]*s[1]*s[2])
		dst := nans(len(src))
		must(t, SwapAxes01(GPU, src, dst, s[0], s[1], s[2]))
		cdst := alloc(t, b, device.F32, len(src))
		b.SwapAxes01(upF32(t, b, src), cdst, s[0], s[1], s[2])
		equalF32(t, fmt.Sprint("swap ", s), dst, downF32(t, b, cdst))
	}
}

func TestCPUSoftmaxXent(t *testing.T) {
	b := newCPU(t)
	for i, s := range [][2]int{{1, 10}, {7, 3}, {128, 10}, {300, 17}} {
		smoothing := float32(0.1 * float32(i%2))
		t.Run(fmt.Sprintf("%v/smoothing=%v", s, smoothing), func(t *testing.T) {
			n, k := s[0], s[1]
			r := rng(t)
			logits := make([]float32, n*k)
			for i := range logits {
				logits[i] = float32(r.NormFloat64() * 3)
			}
			labels := make([]int32, n)
			for i := range labels {
				labels[i] = int32(r.IntN(k))
				if i%4 == 0 {
					for j := range k {
						logits[i*k+j] = float32(r.IntN(2))
					}
				}
			}
			scale := 1 / float32(n)
			dl, stats := nans(n*k), []float32{0.5, 3}
			must(t, SoftmaxXent(GPU, logits, labels, n, k, scale, smoothing, dl, stats))
			cdl, cstats := upF32(t, b, nans(n*k)), upF32(t, b, []float32{0.5, 3})
			b.SoftmaxXent(upF32(t, b, logits), upI32(t, b, labels), n, k, scale, smoothing, cdl, cstats)
			mag := make([]float64, n*k)
			for i := range mag {
				mag[i] = float64(scale) // absolute error of p-1 near 0: ulps of 1
			}
			closeCPU(t, "dlogits", dl, downF32(t, b, cdl), mag)
			cs := downF32(t, b, cstats)
			closeCPU(t, "stats[0]", stats[:1], cs[:1], nil)
			equalF32(t, "stats[1]", stats[1:], cs[1:])
		})
	}
}

func TestCPUGather(t *testing.T) {
	b := newCPU(t)
	r := rng(t)
	const images, n, c, hw = 30, 8, 3, 1024
	src := make([]uint8, images*c*hw)
	for i := range src {
		src[i] = uint8(r.IntN(256))
	}
	idx, labels := make([]int32, n), make([]int32, images)
	for i := range idx {
		idx[i] = int32(r.IntN(images))
	}
	for i := range labels {
		labels[i] = int32(r.IntN(10))
	}
	dst, dl := nans(c*n*hw), make([]int32, n)
	must(t, GatherImages(GPU, src, idx, n, c, hw, 1.0/255, dst, labels, dl))
	cdst, cdl := alloc(t, b, device.F32, c*n*hw), alloc(t, b, device.I32, n)
	b.GatherImages(upU8(t, b, src), upI32(t, b, idx), n, c, hw, 1.0/255, cdst, upI32(t, b, labels), cdl)
	equalF32(t, "gather", dst, downF32(t, b, cdst))
	equalI32(t, "gather labels", dl, downI32(t, b, cdl))
}

// TestCPUAugment: a pure copy, so the kernel and the CPU backend must agree
// bit for bit (NaN payloads and -0 included), with 1 and several threads.
func TestCPUAugment(t *testing.T) {
	b := newCPU(t)
	for _, s := range append(augmentShapes, [5]int{3, 128, 32, 32, 4}) {
		c, n, h, w, pad := s[0], s[1], s[2], s[3], s[4]
		modes := augmentModes(pad, h, w)
		for i, step := range []int{0, 1, 999, 1<<40 + 3} {
			mode := modes[i%len(modes)]
			t.Run(fmt.Sprintf("%v/%d/%+v", s, step, mode), func(t *testing.T) {
				const seed = 0x5eed0f5eed
				src := augmentSrc(rng(t), c*n*h*w)
				dst := nans(len(src))
				must(t, Augment(GPU, src, dst, c, n, h, w, pad, mode.reflect, mode.noFlip, seed, step))
				csrc, cdst := upF32(t, b, src), upF32(t, b, nans(len(src)))
				b.Augment(csrc, cdst, c, n, h, w, pad, mode.reflect, mode.noFlip, seed, step)
				equalBits(t, "augment", dst, downF32(t, b, cdst))
				equalBits(t, "augment src", downF32(t, b, csrc), src) // untouched
			})
		}
	}
}
