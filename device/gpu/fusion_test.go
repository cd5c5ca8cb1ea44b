//go:build cgo

package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// TestMaxPoolReLU: the ReLU fused into max-pooling, forward (y, argmax)
// and backward (dx), on the GPU against the CPU, bit for bit (both are bit
// for bit the unfused ReLU and pool, see their own tests), on random
// values and on windows that peak at or below zero.
func TestMaxPoolReLU(t *testing.T) { eachGPU(t, testMaxPoolReLU) }

func testMaxPoolReLU(t *testing.T, p *pair) {
	mk := func(pl, h, w, k, s int) device.PoolGeom {
		return device.PoolGeom{Planes: pl, H: h, W: w, KH: k, KW: k, SH: s, SW: s, OH: (h-k)/s + 1, OW: (w-k)/s + 1}
	}
	for _, g := range []device.PoolGeom{mk(32*4, 30, 30, 2, 2), mk(6, 7, 5, 2, 2), mk(4, 7, 7, 3, 2), mk(3, 5, 5, 3, 1)} {
		n, nout := g.Planes*g.H*g.W, g.Planes*g.OH*g.OW
		choices := []float32{-2, -1, float32(math.Copysign(0, -1)), 0, -0.5, 1}
		mixed := make([]float32, n)
		for i := range mixed {
			mixed[i] = choices[p.rng.IntN(len(choices))]
		}
		for name, in := range map[string]bufs{"random": p.rand(n, 1), "mixed": p.f32(mixed)} {
			y, am := p.nan(nout), p.i32(make([]int32, nout))
			p.c.MaxPoolReLUForward(g, in.c, y.c, am.c)
			p.g.MaxPoolReLUForward(g, in.g, y.g, am.g)
			what := fmt.Sprintf("maxpool+relu %s %+v", name, g)
			p.checkBits(what+" y", y)
			p.checkI32(what+" argmax", am)
			dy, dx := p.rand(nout, 1), p.nan(n)
			p.c.MaxPoolReLUBackward(g, dy.c, y.c, am.c, dx.c)
			p.g.MaxPoolReLUBackward(g, dy.g, y.g, am.g, dx.g)
			p.checkBits(what+" dx", dx)
		}
	}
}
