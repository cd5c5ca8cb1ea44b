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

// TestReLUBiasGrad: the ReLU's backward fused into the bias gradient on the
// GPU against the CPU (the two ops one after the other): the masked dy bit
// for bit, db within BiasGrad's tolerance (2e-7 per term + 1e-5 relative).
func TestReLUBiasGrad(t *testing.T) { eachGPU(t, testReLUBiasGrad) }

func testReLUBiasGrad(t *testing.T, p *pair) {
	for _, s := range [][3]int{{1, 32, 28800}, {1, 64, 512}, {32, 64, 1}, {3, 5, 7}, {1, 64, 131072}} {
		outer, c, inner := s[0], s[1], s[2]
		n := outer * c * inner
		y := p.rand(n, 1)
		dy, db := p.rand(n, 1), p.nan(c)
		p.c.ReLUBiasGrad(y.c, dy.c, db.c, outer, c, inner)
		p.g.ReLUBiasGrad(y.g, dy.g, db.g, outer, c, inner)
		p.checkBits(fmt.Sprintf("relu+bias grad %v dy", s), dy)
		p.check(fmt.Sprintf("relu+bias grad %v db", s), db, 2e-7*float64(outer*inner), 1e-5)
	}
}
