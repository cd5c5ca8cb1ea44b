package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// Per-layer benchmarks of the 3x3 convolutions of the presets, im2col and
// GEMM (as model/layers.go runs it) against Winograd F(2x2) and F(4x4):
// the forward pass ("fwd"), the data gradient ("dx") and the weight
// gradient ("dw", from the forward pass's im2col matrix or transformed
// tiles). GFLOP/s counts the direct convolution's work, 2*N*K*C*9*OH*OW
// per pass, so the algorithms compare:
//
//	go test ./device/cpu/ -run '^$' -bench BenchmarkConv3x3 -benchtime 20x
//
// (about 40 s on 2 cores).

var benchConv3x3 = []struct {
	name string
	cc   convCase
}{
	{"seed-conv1-b32", caseOf(3, 32, 32, 32, 0, 32)},
	{"seed-conv2-b32", caseOf(32, 64, 15, 15, 0, 32)},
	{"seed-conv3-b32", caseOf(64, 64, 6, 6, 0, 32)},
	{"seed-conv2-b128", caseOf(32, 64, 15, 15, 0, 128)},
	{"seed-conv3-b128", caseOf(64, 64, 6, 6, 0, 128)},
	{"resnet20-16-b128", caseOf(16, 16, 32, 32, 1, 128)},
	{"resnet20-32-b128", caseOf(32, 32, 16, 16, 1, 128)},
	{"resnet20-64-b128", caseOf(64, 64, 8, 8, 1, 128)},
}

// convBench holds one layer's buffers for either algorithm.
type convBench struct {
	b                   *Backend
	cc                  convCase
	g                   device.ConvGeom
	x, w, y, dy, dx, dw device.Buffer
	col, dcol           device.Buffer // im2col
	p                   device.ConvPlan
	ws                  device.Buffer // Winograd
}

func newConvBench(tb testing.TB, b *Backend, cc convCase, tile, flags int) *convBench {
	r := rand.New(rand.NewPCG(5, 6))
	g := cc.geom()
	c := &convBench{b: b, cc: cc, g: g}
	up := func(n int) device.Buffer {
		buf, err := b.Alloc("bench", device.F32, n)
		if err != nil {
			tb.Fatal(err)
		}
		copy(f32(buf), randSlice(r, n))
		return buf
	}
	c.x, c.w, c.dy = up(g.C*g.N*g.H*g.W), up(cc.k*g.C*9), up(cc.k*g.N*g.OH*g.OW)
	c.y, c.dx, c.dw = up(cc.k*g.N*g.OH*g.OW), up(g.C*g.N*g.H*g.W), up(cc.k*g.C*9)
	if tile == 0 {
		c.col, c.dcol = up(g.ColRows()*g.ColCols()), up(g.ColRows()*g.ColCols())
		return c
	}
	c.p = b.planWino(g, cc.k, tile, flags)
	c.ws = up(c.p.Workspace)
	return c
}

func (c *convBench) forward() {
	b, g := c.b, c.g
	if c.p.Algo != "" {
		b.ConvForward(c.p, c.ws, c.x, c.w, c.y, g.N)
		return
	}
	k, np := g.ColRows(), g.ColCols()
	b.Im2Col(g, c.x, c.col)
	b.Gemm(false, false, c.cc.k, np, k, 1, c.w, k, c.col, np, 0, c.y, np)
}

// backward computes the gradients that are not nil among dx and dw.
func (c *convBench) backward(dx, dw device.Buffer) {
	b, g := c.b, c.g
	if c.p.Algo != "" {
		b.ConvBackward(c.p, c.ws, c.x, c.w, c.dy, dx, dw, g.N)
		return
	}
	k, np, oc := g.ColRows(), g.ColCols(), c.cc.k
	if dw != nil {
		b.Gemm(false, true, oc, k, np, 1, c.dy, np, c.col, np, 0, dw, k)
	}
	if dx != nil {
		b.Gemm(true, false, k, np, oc, 1, c.w, k, c.dy, np, 0, c.dcol, np)
		b.Col2Im(g, c.dcol, dx)
	}
}

func (c *convBench) flops() float64 {
	g := c.g
	return 2 * float64(g.N*c.cc.k*g.C*9*g.OH*g.OW)
}

// benchAlgos: im2col, Winograd F(2x2) and F(4x4), and F(4x4) plans that
// leave a gradient to im2col ("F4col": the gradient's cost includes the
// im2col matrix that the Winograd forward pass did not make).
var benchAlgos = []struct {
	name        string
	tile, flags int
}{
	{"im2col", 0, 0}, {"F2", 2, 0}, {"F4", 4, 0}, {"F4col", 4, winoDxIm2col | winoDwIm2col},
}

// pass runs the forward pass ("fwd") or one gradient ("dx", "dw").
func (c *convBench) pass(name string) {
	switch name {
	case "fwd":
		c.forward()
	case "dx":
		c.backward(c.dx, nil)
	case "dw":
		c.backward(nil, c.dw)
	}
}

func BenchmarkConv3x3(b *testing.B) {
	be, err := New(device.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	for _, l := range benchConv3x3 {
		for _, a := range benchAlgos {
			for _, pass := range []string{"fwd", "dx", "dw"} {
				if a.flags != 0 && pass == "fwd" {
					continue
				}
				b.Run(l.name+"/"+a.name+"/"+pass, func(b *testing.B) {
					c := newConvBench(b, be, l.cc, a.tile, a.flags)
					c.forward()
					for b.Loop() {
						c.pass(pass)
					}
					b.ReportMetric(c.flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
