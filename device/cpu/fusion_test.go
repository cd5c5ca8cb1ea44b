package cpu

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// TestMaxPoolReLUFusion: MaxPoolReLUForward and MaxPoolReLUBackward equal
// the unfused ReLU (v < 0 ? 0 : v, AddBias's) + MaxPoolForward and
// MaxPoolBackward + ReLUBackward (mask: the ReLU's output) bit for bit, y,
// argmax and dx, for
// the 2x2 fast paths (AVX2 and Go) and general windows (overlapping ones
// too), on values with signed zeros, infinities and NaNs and on windows that
// peak at or below zero.
func TestMaxPoolReLUFusion(t *testing.T) {
	eachKernelSet(t, func(t *testing.T) {
		b, err := New(device.Options{Threads: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		r := testRand(t)
		mk := func(pl, h, w, k, s int) device.PoolGeom {
			return device.PoolGeom{Planes: pl, H: h, W: w, KH: k, KW: k, SH: s, SW: s, OH: (h-k)/s + 1, OW: (w-k)/s + 1}
		}
		for _, g := range []device.PoolGeom{mk(5, 30, 30, 2, 2), mk(7, 13, 17, 2, 2), mk(3, 32, 32, 2, 2), mk(4, 7, 7, 3, 2), mk(3, 6, 6, 3, 1)} {
			n, nout := g.Planes*g.H*g.W, g.Planes*g.OH*g.OW
			neg := values(r, n)
			for i := range neg {
				if r.IntN(4) != 0 {
					neg[i] = -float32(math.Abs(float64(neg[i])))
				}
			}
			for kind, x := range map[string][]float32{"values": values(r, n), "mostly negative": neg} {
				what := fmt.Sprintf("%+v %s", g, kind)
				xb := &buf{dt: device.F32, f: x}
				fy, fam := &buf{dt: device.F32, f: make([]float32, nout)}, &buf{dt: device.I32, i: make([]int32, nout)}
				b.MaxPoolReLUForward(g, xb, fy, fam)
				// The ReLU of AddBias and BatchNormForward: -0 and NaN pass.
				rx := &buf{dt: device.F32, f: make([]float32, n)}
				for i, v := range x {
					if v < 0 {
						v = 0
					}
					rx.f[i] = v
				}
				uy, uam := &buf{dt: device.F32, f: make([]float32, nout)}, &buf{dt: device.I32, i: make([]int32, nout)}
				b.MaxPoolForward(g, rx, uy, uam)
				sameBits(t, what+" y", fy.f, uy.f)
				if !slices.Equal(fam.i, uam.i) {
					t.Fatalf("%s argmax %v, want %v", what, fam.i, uam.i)
				}
				dy := &buf{dt: device.F32, f: values(r, nout)}
				fdx := &buf{dt: device.F32, f: slices.Repeat([]float32{7}, n)}
				b.MaxPoolReLUBackward(g, dy, fy, fam, fdx)
				udx := &buf{dt: device.F32, f: slices.Repeat([]float32{7}, n)}
				b.MaxPoolBackward(g, dy, uam, udx)
				b.ReLUBackward(rx, udx, udx, n)
				sameBits(t, what+" dx", fdx.f, udx.f)
			}
		}
	})
}
