package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

// The non-GEMM ops of one training step of the default model
// (conv32k3,maxpool2,conv64k3,maxpool2,conv64k3,flatten,dense64,dense10) at
// batch 32, at the shapes the model passes them. Each benchmark reports the
// bytes the op must read and write (SetBytes, so MB/s is memory throughput)
// and fails if the op allocates.

const benchBatch = 32

func conv3x3(c, n, h, w int) device.ConvGeom {
	return device.ConvGeom{C: c, N: n, H: h, W: w, KH: 3, KW: 3, SH: 1, SW: 1, OH: h - 2, OW: w - 2}
}

func pool2x2(planes, h, w int) device.PoolGeom {
	return device.PoolGeom{Planes: planes, H: h, W: w, KH: 2, KW: 2, SH: 2, SW: 2, OH: (h-2)/2 + 1, OW: (w-2)/2 + 1}
}

var (
	benchConvs = []struct {
		name string
		g    device.ConvGeom
	}{
		{"conv1", conv3x3(3, benchBatch, 32, 32)},
		{"conv2", conv3x3(32, benchBatch, 15, 15)},
		{"conv3", conv3x3(64, benchBatch, 6, 6)},
	}
	benchPools = []struct {
		name string
		g    device.PoolGeom
	}{
		{"pool1", pool2x2(32*benchBatch, 30, 30)},
		{"pool2", pool2x2(64*benchBatch, 13, 13)},
	}
	// outer, c, inner of AddBias / BiasGrad; ReLUBackward runs over the
	// same outer*c*inner elements.
	benchBias = []struct {
		name            string
		outer, c, inner int
	}{
		{"conv1", 1, 32, benchBatch * 30 * 30},
		{"conv2", 1, 64, benchBatch * 13 * 13},
		{"conv3", 1, 64, benchBatch * 4 * 4},
		{"dense1", benchBatch, 64, 1},
		{"dense2", benchBatch, 10, 1},
	}
)

func benchBackend(b *testing.B) *cpu.Backend {
	be, err := cpu.New(device.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

func benchBuf(b *testing.B, be device.Backend, v []float32) device.Buffer {
	buf, err := be.Alloc("bench", device.F32, len(v))
	if err != nil {
		b.Fatal(err)
	}
	if err := be.UploadF32(buf, 0, v); err != nil {
		b.Fatal(err)
	}
	return buf
}

func benchI32(b *testing.B, be device.Backend, n int) device.Buffer {
	buf, err := be.Alloc("bench", device.I32, n)
	if err != nil {
		b.Fatal(err)
	}
	return buf
}

// normal is n N(0,1) floats; relu'd, about half are exactly 0, as after a
// ReLU layer (max pooling then sees many ties).
func normal(r *rand.Rand, n int, relu bool) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
		if relu && v[i] < 0 {
			v[i] = 0
		}
	}
	return v
}

// runOp times f, after checking that it allocates nothing.
func runOp(b *testing.B, bytes int, f func()) {
	f()
	if a := testing.AllocsPerRun(5, f); a != 0 {
		b.Fatalf("%v allocations per op", a)
	}
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f()
	}
}

func BenchmarkIm2Col(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range benchConvs {
		g := c.g
		b.Run(c.name, func(b *testing.B) {
			x := benchBuf(b, be, normal(r, g.C*g.N*g.H*g.W, true))
			col := benchBuf(b, be, make([]float32, g.ColRows()*g.ColCols()))
			runOp(b, 4*(x.Len()+col.Len()), func() { be.Im2Col(g, x, col) })
		})
	}
}

func BenchmarkCol2Im(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 3))
	for _, c := range benchConvs[1:] { // the first layer needs no input gradient
		g := c.g
		b.Run(c.name, func(b *testing.B) {
			col := benchBuf(b, be, normal(r, g.ColRows()*g.ColCols(), false))
			dx := benchBuf(b, be, make([]float32, g.C*g.N*g.H*g.W))
			runOp(b, 4*(dx.Len()+col.Len()), func() { be.Col2Im(g, col, dx) })
		})
	}
}

func BenchmarkMaxPoolForward(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 4))
	for _, c := range benchPools {
		g := c.g
		b.Run(c.name, func(b *testing.B) {
			x := benchBuf(b, be, normal(r, g.Planes*g.H*g.W, true))
			y := benchBuf(b, be, make([]float32, g.Planes*g.OH*g.OW))
			am := benchI32(b, be, y.Len())
			runOp(b, 4*(x.Len()+2*y.Len()), func() { be.MaxPoolForward(g, x, y, am) })
		})
	}
}

func BenchmarkMaxPoolBackward(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 5))
	for _, c := range benchPools {
		g := c.g
		b.Run(c.name, func(b *testing.B) {
			x := benchBuf(b, be, normal(r, g.Planes*g.H*g.W, true))
			y := benchBuf(b, be, make([]float32, g.Planes*g.OH*g.OW))
			am := benchI32(b, be, y.Len())
			be.MaxPoolForward(g, x, y, am)
			dy := benchBuf(b, be, normal(r, y.Len(), false))
			dx := benchBuf(b, be, make([]float32, x.Len()))
			runOp(b, 4*(x.Len()+2*y.Len()), func() { be.MaxPoolBackward(g, dy, am, dx) })
		})
	}
}

func BenchmarkAddBiasReLU(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 6))
	for _, s := range benchBias {
		b.Run(s.name, func(b *testing.B) {
			n := s.outer * s.c * s.inner
			h0 := normal(r, n, false)
			y := benchBuf(b, be, make([]float32, n))
			bias := benchBuf(b, be, normal(r, s.c, false))
			// With relu, y run through AddBias again would soon be all
			// zeros or all positive (a predictable sign pattern), so
			// each run starts from a fresh copy of h0; only AddBias is
			// timed (op-ns/op, op-GB/s).
			be.UploadF32(y, 0, h0)
			be.AddBias(y, bias, s.outer, s.c, s.inner, true)
			if a := testing.AllocsPerRun(5, func() { be.AddBias(y, bias, s.outer, s.c, s.inner, true) }); a != 0 {
				b.Fatalf("%v allocations per op", a)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var op time.Duration
			for range b.N {
				be.UploadF32(y, 0, h0)
				t0 := time.Now()
				be.AddBias(y, bias, s.outer, s.c, s.inner, true)
				op += time.Since(t0)
			}
			b.ReportMetric(float64(op.Nanoseconds())/float64(b.N), "op-ns/op")
			b.ReportMetric(float64(8*n)*float64(b.N)/float64(op.Nanoseconds()), "op-GB/s")
		})
	}
}

func BenchmarkReLUBackward(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 7))
	for _, s := range benchBias {
		b.Run(s.name, func(b *testing.B) {
			n := s.outer * s.c * s.inner
			y := benchBuf(b, be, normal(r, n, true))
			dy := benchBuf(b, be, normal(r, n, false))
			// In place, as the model calls it (dx is dy).
			runOp(b, 12*n, func() { be.ReLUBackward(y, dy, dy, n) })
		})
	}
}

func BenchmarkBiasGrad(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 8))
	for _, s := range benchBias {
		b.Run(s.name, func(b *testing.B) {
			n := s.outer * s.c * s.inner
			dy := benchBuf(b, be, normal(r, n, false))
			db := benchBuf(b, be, make([]float32, s.c))
			runOp(b, 4*n, func() { be.BiasGrad(dy, db, s.outer, s.c, s.inner) })
		})
	}
}

func BenchmarkAdam(b *testing.B) {
	be := benchBackend(b)
	r := rand.New(rand.NewPCG(1, 9))
	// The default model's parameter count: 896 + 18496 + 36928 + 65600 + 650.
	const n = 122570
	p, g, m := benchBuf(b, be, normal(r, n, false)), benchBuf(b, be, normal(r, n, false)), benchBuf(b, be, normal(r, n, false))
	vv := normal(r, n, false)
	for i := range vv {
		vv[i] *= vv[i]
	}
	v := benchBuf(b, be, vv)
	b.Run(fmt.Sprint(n), func(b *testing.B) {
		runOp(b, 4*7*n, func() { be.Adam(p, g, m, v, n, 1e-3, 0.9, 0.999, 1e-7, 0, 0) })
	})
}
