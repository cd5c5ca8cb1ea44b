//go:build cgo

package gpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

// TestConvPast2G runs the default model's second conv (32 channels of
// 15x15, 3x3, 13x13 out) on the GPU at batch 45,545, where its im2col
// matrix holds 2.2e9 elements, past 2^31, and the kernels' former 32-bit
// offsets overflowed: im2col, the forward GEMM (cuBLAS on a B matrix of more
// than 2^31 elements) and col2im, on x that is random in the last two
// images (zero elsewhere). The last two images' columns of col, of the GEMM's
// output, and their dx are compared with the CPU backend running the same
// ops on just those two images (a batch of 2): exactly for im2col and
// col2im, within float32 rounding of K products for the GEMM. Needs about
// 14 GB of device memory; skips with less. The emulator's version of this
// (kernels/emu TestConvPast2G) runs everywhere.
func TestConvPast2G(t *testing.T) {
	g := newGPU(t, "the 2^31 conv check")
	t.Cleanup(func() { g.Close() }) // after the buffers' cleanups
	c, err := cpu.New(device.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	geo := device.ConvGeom{C: 32, N: 45545, H: 15, W: 15, KH: 3, KW: 3, SH: 1, SW: 1, OH: 13, OW: 13}
	const oc = 64
	k, cols, hw, plane := geo.ColRows(), geo.ColCols(), geo.H*geo.W, geo.OH*geo.OW
	need := 4 * (2*geo.C*geo.N*hw + k*cols + oc*cols)
	if free, _, err := g.MemInfo(); err != nil || free < uint64(need)+(1<<30) {
		t.Skipf("needs %.1f GB of device memory, %.1f GB free (%v)", float64(need)/1e9, float64(free)/1e9, err)
	}
	alloc := func(b device.Backend, what string, n int) device.Buffer {
		buf, err := b.Alloc(what, device.F32, n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Free(buf) })
		return buf
	}
	x, col, dx, y := alloc(g, "x", geo.C*geo.N*hw), alloc(g, "col", k*cols), alloc(g, "dx", geo.C*geo.N*hw), alloc(g, "y", oc*cols)
	w := alloc(g, "w", oc*k)
	// The last two images, CNHW [C, 2, H, W], on the CPU; the same on the GPU.
	small := geo
	small.N = 2
	rng := rand.New(rand.NewPCG(5, 5))
	xs, ws := make([]float32, geo.C*2*hw), make([]float32, oc*k)
	for i := range xs {
		xs[i] = rng.Float32()*2 - 1
	}
	for i := range ws {
		ws[i] = rng.Float32()*2 - 1
	}
	for ch := range geo.C {
		if err := g.UploadF32(x, (ch*geo.N+geo.N-2)*hw, xs[ch*2*hw:(ch+1)*2*hw]); err != nil {
			t.Fatal(err)
		}
	}
	g.UploadF32(w, 0, ws)
	g.Im2Col(geo, x, col)
	g.Gemm(false, false, oc, cols, k, 1, w, k, col, cols, 0, y, cols)
	g.Col2Im(geo, col, dx)
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	cx, ccol, cdx, cy, cw := alloc(c, "x", len(xs)), alloc(c, "col", k*2*plane), alloc(c, "dx", len(xs)), alloc(c, "y", oc*2*plane), alloc(c, "w", oc*k)
	c.UploadF32(cx, 0, xs)
	c.UploadF32(cw, 0, ws)
	c.Im2Col(small, cx, ccol)
	c.Gemm(false, false, oc, 2*plane, k, 1, cw, k, ccol, 2*plane, 0, cy, 2*plane)
	c.Col2Im(small, ccol, cdx)
	// Row r of the small matrices is the tail of row r of the big ones.
	tail := func(what string, gb, cb device.Buffer, rows, rowLen, cpuLen, n int, tol float64) {
		got, want := make([]float32, n), make([]float32, n)
		for r := range rows {
			if err := g.DownloadF32(gb, r*rowLen+rowLen-n, got); err != nil {
				t.Fatal(err)
			}
			c.DownloadF32(cb, r*cpuLen, want)
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); !(d <= tol) {
					t.Fatalf("%s row %d, element %d of its last %d: gpu %v, cpu %v", what, r, i, n, got[i], want[i])
				}
			}
		}
	}
	tail("col", col, ccol, k, cols, 2*plane, 2*plane, 0)
	tail("y", y, cy, oc, cols, 2*plane, 2*plane, 1e-5*float64(k))
	tail("dx", dx, cdx, geo.C, geo.N*hw, 2*hw, 2*hw, 0)
	t.Logf("batch %d: col %d elements: the last two images match the CPU", geo.N, k*cols)
}
