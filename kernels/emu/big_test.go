//go:build cgo

package emu

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
)

// TestConvPast2G runs im2col_f32 and col2im_f32 at real layer shapes whose
// im2col matrix holds more than 2^31 elements, at the smallest batch where
// the kernels' former 32-bit offset c*KH*KW*cols overflowed:
//
//   - the default model's second conv (32 channels of 15x15, 3x3, 13x13
//     out) at batch 45,546;
//   - conv512k3same after another 512-channel layer (512 channels of
//     32x32, 3x3 same) at batch 457.
//
// The buffers are reserved address space (8.6-8.9 GB for col, about 1 GB
// for x), of which the launch touches only the tail: the last two blocks
// of a grid of ceil(work/256) blocks (Launch.From), which handle the last
// channel's last images. Every element those work items write is set to NaN
// first, then compared bit for bit with a Go reference computed from the
// documented layouts (device.Backend.Im2Col) on the values placed there.
func TestConvPast2G(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: reserves 10 GB of address space")
	}
	for _, c := range []struct {
		name string
		g    device.ConvGeom
	}{
		{"default conv2", device.ConvGeom{C: 32, H: 15, W: 15, KH: 3, KW: 3, SH: 1, SW: 1, OH: 13, OW: 13}},
		{"conv512k3same", device.ConvGeom{C: 512, H: 32, W: 32, KH: 3, KW: 3, SH: 1, SW: 1, PadH: 1, PadW: 1, OH: 32, OW: 32}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := c.g
			per := (g.C - 1) * g.KH * g.KW * g.OH * g.OW // the old int offset of the last channel, per image
			g.N = (math.MaxInt32 + per) / per            // smallest N with per*N > MaxInt32
			if int64(g.ColRows())*int64(g.ColCols()) <= math.MaxInt32 {
				t.Fatalf("batch %d: col has %d elements, not past 2^31", g.N, g.ColRows()*g.ColCols())
			}
			t.Logf("batch %d: col %d elements (%.1f GB)", g.N, g.ColRows()*g.ColCols(), float64(g.ColRows()*g.ColCols())*4/1e9)
			x, col, dx := reserve(t, g.C*g.N*g.H*g.W), reserve(t, g.ColRows()*g.ColCols()), reserve(t, g.C*g.N*g.H*g.W)
			rng := rand.New(rand.NewPCG(uint64(g.N), 7))
			bigIm2Col(t, g, x, col, rng)
			bigCol2Im(t, g, col, dx, rng)
		})
	}
}

// big is a reserved float32 buffer.
type big struct {
	p uintptr
	n int
}

func reserve(t *testing.T, n int) big {
	t.Helper()
	p, err := Reserve(4 * n)
	if err != nil {
		t.Skipf("cannot reserve %d bytes of address space: %v", 4*n, err)
	}
	t.Cleanup(func() { Unreserve(p, 4*n) })
	return big{p, n}
}

// at views elements [off, off+n) of b.
func (b big) at(off, n int) []float32 {
	if off < 0 || off+n > b.n {
		panic("big: view outside the buffer")
	}
	bs := Bytes(b.p+uintptr(4*off), 4*n)
	return unsafe.Slice((*float32)(unsafe.Pointer(&bs[0])), n)
}

// tail is the launch of the last two blocks of a one-pass grid over work
// items, and the first work item it covers.
func tail(work int) (Launch, int) {
	grid := (work + kernels.Block - 1) / kernels.Block
	l := Launch{Grid: grid, Block: kernels.Block, From: grid - 2}
	return l, l.From * kernels.Block
}

func bigIm2Col(t *testing.T, g device.ConvGeom, x, col big, rng *rand.Rand) {
	cols, plane := g.ColCols(), g.OH*g.OW
	work := g.C * cols
	l, first := tail(work)
	c := first / cols // the last channel: every tail item is in it
	if c != g.C-1 {
		t.Fatalf("tail starts in channel %d", c)
	}
	// The images the tail reads, random; the positions it writes, NaN.
	n0 := (first % cols) / plane
	xs := x.at((c*g.N+n0)*g.H*g.W, (g.N-n0)*g.H*g.W)
	for i := range xs {
		xs[i] = rng.Float32()*2 - 1
	}
	kk := g.KH * g.KW
	for r := range kk {
		row := col.at((c*kk+r)*cols+first%cols, work-first)
		for i := range row {
			row[i] = float32(math.NaN())
		}
	}
	al := &AddrLauncher{Config: func(int) Launch { return l }}
	kernels.Im2Col[uintptr](al, convOf(g), x.p, col.p)
	if al.Err != nil {
		t.Fatal(al.Err)
	}
	bad := 0
	for q := first % cols; q < cols; q++ {
		n, oy, ox := q/plane, q%plane/g.OW, q%g.OW
		for ky := range g.KH {
			for kx := range g.KW {
				iy, ix := oy*g.SH-g.PadH+ky, ox*g.SW-g.PadW+kx
				want := float32(0)
				if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
					want = x.at(((c*g.N+n)*g.H+iy)*g.W+ix, 1)[0]
				}
				got := col.at((c*kk+ky*g.KW+kx)*cols+q, 1)[0]
				if math.Float32bits(got) != math.Float32bits(want) && bad < 5 {
					bad++
					t.Errorf("col[row %d, column %d] = %v, want %v", c*kk+ky*g.KW+kx, q, got, want)
				}
			}
		}
	}
}

func bigCol2Im(t *testing.T, g device.ConvGeom, col, dx big, rng *rand.Rand) {
	cols, plane, hw := g.ColCols(), g.OH*g.OW, g.H*g.W
	work := g.C * g.N * hw
	l, first := tail(work)
	c := first / (g.N * hw)
	if c != g.C-1 {
		t.Fatalf("tail starts in channel %d", c)
	}
	// The columns of the tail's images in the last channel's rows, random.
	n0 := first % (g.N * hw) / hw
	kk := g.KH * g.KW
	for r := range kk {
		row := col.at((c*kk+r)*cols+n0*plane, (g.N-n0)*plane)
		for i := range row {
			row[i] = rng.Float32()*2 - 1
		}
	}
	out := dx.at(first, work-first)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	al := &AddrLauncher{Config: func(int) Launch { return l }}
	kernels.Col2Im[uintptr](al, convOf(g), col.p, dx.p)
	if al.Err != nil {
		t.Fatal(al.Err)
	}
	// The reference: each column's rows scattered in row order, as
	// device.Backend.Col2Im states (the order the kernel adds in).
	want := make([]float32, work-first)
	for n := n0; n < g.N; n++ {
		for r := range kk {
			ky, kx := r/g.KW, r%g.KW
			for q := range plane {
				oy, ox := q/g.OW, q%g.OW
				iy, ix := oy*g.SH-g.PadH+ky, ox*g.SW-g.PadW+kx
				if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
					continue
				}
				if i := ((c*g.N+n)*g.H+iy)*g.W + ix; i >= first {
					want[i-first] += col.at((c*kk+r)*cols+n*plane+q, 1)[0]
				}
			}
		}
	}
	bad := 0
	for i := range want {
		if math.Float32bits(out[i]) != math.Float32bits(want[i]) && bad < 5 {
			bad++
			t.Errorf("dx[%d] = %v, want %v", first+i, out[i], want[i])
		}
	}
}
