package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// convRef is a direct convolution in float64: the forward pass y, the
// gradients dx and dw for a given dy, and for each of them the sum of the
// magnitudes of its terms (the scale of the rounding errors a float32
// computation may make).
type convRef struct {
	y, dx, dw    []float64
	ya, dxa, dwa []float64 // sums of |terms|
}

func directConv(g device.ConvGeom, k int, x, w, dy []float32) convRef {
	r := convRef{
		y: make([]float64, k*g.N*g.OH*g.OW), ya: make([]float64, k*g.N*g.OH*g.OW),
		dx: make([]float64, g.C*g.N*g.H*g.W), dxa: make([]float64, g.C*g.N*g.H*g.W),
		dw: make([]float64, k*g.C*9), dwa: make([]float64, k*g.C*9),
	}
	for o := 0; o < k; o++ {
		for c := 0; c < g.C; c++ {
			for j := 0; j < g.N; j++ {
				r.addPlane(g, o, c, j, x, w, dy)
			}
		}
	}
	return r
}

// addPlane adds the terms of output channel o, input channel c, image j.
func (r *convRef) addPlane(g device.ConvGeom, o, c, j int, x, w, dy []float32) {
	for oy := 0; oy < g.OH; oy++ {
		for ox := 0; ox < g.OW; ox++ {
			yi := ((o*g.N+j)*g.OH+oy)*g.OW + ox
			for u := 0; u < 3; u++ {
				iy := oy - g.PadH + u
				if iy < 0 || iy >= g.H {
					continue
				}
				for v := 0; v < 3; v++ {
					ix := ox - g.PadW + v
					if ix < 0 || ix >= g.W {
						continue
					}
					xi := ((c*g.N+j)*g.H+iy)*g.W + ix
					wi := (o*g.C+c)*9 + u*3 + v
					xv, wv, dv := float64(x[xi]), float64(w[wi]), float64(dy[yi])
					r.y[yi] += wv * xv
					r.ya[yi] += math.Abs(wv * xv)
					r.dx[xi] += dv * wv
					r.dxa[xi] += math.Abs(dv * wv)
					r.dw[wi] += dv * xv
					r.dwa[wi] += math.Abs(dv * xv)
				}
			}
		}
	}
}

// relErr is the largest |got - want| / scale over the elements, where
// scale is the sum of the magnitudes of the element's terms, floored at
// the mean of those sums over the tensor: a Winograd tile mixes its
// elements, so an element with few or no terms (a zero gradient beyond the
// output) gets rounding errors of the size of its tile's neighbours.
func relErr(got []float32, want, sums []float64) (worst float64, at int) {
	var mean float64
	for _, s := range sums {
		mean += s / float64(len(sums))
	}
	for i, g := range got {
		d := math.Abs(float64(g) - want[i])
		if e := d / max(sums[i], mean, 1e-30); e > worst || math.IsNaN(e) {
			worst, at = e, i
			if math.IsNaN(e) {
				return e, i
			}
		}
	}
	return worst, at
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

type convCase struct {
	c, k, h, w, ph, pw, oh, ow, n int
}

func (cc convCase) geom() device.ConvGeom {
	return device.ConvGeom{C: cc.c, N: cc.n, H: cc.h, W: cc.w, KH: 3, KW: 3, SH: 1, SW: 1,
		PadH: cc.ph, PadW: cc.pw, OH: cc.oh, OW: cc.ow}
}

func (cc convCase) String() string {
	return fmt.Sprintf("C%d K%d %dx%d pad %d,%d out %dx%d n%d", cc.c, cc.k, cc.h, cc.w, cc.ph, cc.pw, cc.oh, cc.ow, cc.n)
}

// caseOf is the convolution with padding p on both sides (Keras "same" is
// p = 1 for 3x3, "valid" p = 0).
func caseOf(c, k, h, w, p, n int) convCase {
	return convCase{c: c, k: k, h: h, w: w, ph: p, pw: p, oh: h + 2*p - 2, ow: w + 2*p - 2, n: n}
}

// winoCases cover channel counts, odd and even sizes, partial tiles,
// padding 0, 1, 2 and asymmetric, outputs shorter than the padding
// implies, and batches that do not fill the lanes.
func winoCases() []convCase {
	cs := []convCase{
		caseOf(1, 1, 3, 3, 0, 1),
		caseOf(3, 5, 7, 9, 0, 3),
		caseOf(16, 16, 8, 8, 1, 8),
		caseOf(17, 9, 13, 11, 1, 9),
		caseOf(8, 24, 15, 15, 0, 5),
		caseOf(32, 16, 6, 6, 0, 2),
		caseOf(5, 7, 5, 6, 2, 4),
		caseOf(2, 3, 1, 1, 1, 2),
		caseOf(4, 4, 2, 3, 1, 17),
		caseOf(16, 32, 16, 16, 1, 3),
		caseOf(33, 17, 10, 7, 1, 1),
		// the presets' shapes (seed conv2, conv3; resnet20), two images
		caseOf(32, 64, 15, 15, 0, 2),
		caseOf(64, 64, 6, 6, 0, 2),
		caseOf(16, 16, 32, 32, 1, 2),
		caseOf(32, 32, 16, 16, 1, 2),
		caseOf(64, 64, 8, 8, 1, 2),
		{c: 3, k: 4, h: 9, w: 7, ph: 1, pw: 0, oh: 9, ow: 5, n: 2},
		{c: 6, k: 5, h: 10, w: 10, ph: 2, pw: 1, oh: 10, ow: 9, n: 3},
		{c: 4, k: 6, h: 12, w: 11, ph: 1, pw: 1, oh: 10, ow: 7, n: 2},
	}
	return cs
}

// Tolerances of the Winograd results against the float64 direct
// convolution, as a fraction of the sum of the magnitudes of each
// element's terms (see relErr), for y, dx and dw alike. The worst errors
// measured on these cases (TestWinogradMatchesDirect logs them) are
// 2.4e-7 for F(2x2), 3.1e-6 for F(4x4), and 2.5e-7 for im2col and GEMM;
// the bounds leave a margin of about 3x.
const (
	winoTol2  = 1e-6 // F(2x2, 3x3)
	winoTol4  = 1e-5 // F(4x4, 3x3)
	im2colTol = 1e-6
)

func winoTol(tile int) float64 {
	if tile == 2 {
		return winoTol2
	}
	return winoTol4
}

// runWino runs ConvForward and ConvBackward with a Winograd plan (flags:
// the gradients run as im2col) for cc.n images of a plan made for planN >=
// cc.n, and returns y, dx, dw.
func runWino(t *testing.T, b *Backend, cc convCase, tile, flags, planN int, x, w, dy []float32) (y, dx, dw []float32) {
	t.Helper()
	pg := cc.geom()
	pg.N = planN
	p := b.planWino(pg, cc.k, tile, flags)
	if p.Algo == "" {
		t.Fatalf("%v: no Winograd plan", cc)
	}
	ws := mustAlloc(t, b, p.Workspace)
	// Dirty the workspace: every call must write what it reads.
	fill(f32(ws), float32(math.NaN()))
	xb, wb, dyb := upload(t, b, x), upload(t, b, w), upload(t, b, dy)
	yb := mustAlloc(t, b, cc.k*cc.n*cc.oh*cc.ow)
	dxb := mustAlloc(t, b, len(x))
	dwb := mustAlloc(t, b, len(w))
	b.ConvForward(p, ws, xb, wb, yb, cc.n)
	b.ConvBackward(p, ws, xb, wb, dyb, dxb, dwb, cc.n)
	return f32(yb), f32(dxb), f32(dwb)
}

// runIm2col is the reference path, as model/layers.go runs it: Im2Col and
// Gemm forward, Gemm for dw, Gemm and Col2Im for dx.
func runIm2col(t *testing.T, b *Backend, cc convCase, x, w, dy []float32) (y, dx, dw []float32) {
	g := cc.geom()
	k, np := g.ColRows(), g.ColCols()
	xb, wb, dyb := upload(t, b, x), upload(t, b, w), upload(t, b, dy)
	col, yb := mustAlloc(t, b, k*np), mustAlloc(t, b, cc.k*np)
	dxb, dwb := mustAlloc(t, b, len(x)), mustAlloc(t, b, len(w))
	b.Im2Col(g, xb, col)
	b.Gemm(false, false, cc.k, np, k, 1, wb, k, col, np, 0, yb, np)
	b.Gemm(false, true, cc.k, k, np, 1, dyb, np, col, np, 0, dwb, k)
	b.Gemm(true, false, k, np, cc.k, 1, wb, k, dyb, np, 0, col, np)
	b.Col2Im(g, col, dxb)
	return f32(yb), f32(dxb), f32(dwb)
}

func mustAlloc(t *testing.T, b *Backend, n int) device.Buffer {
	t.Helper()
	buf, err := b.Alloc("test", device.F32, n)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func upload(t *testing.T, b *Backend, v []float32) device.Buffer {
	buf := mustAlloc(t, b, len(v))
	copy(f32(buf), v)
	return buf
}

func fill(s []float32, v float32) {
	for i := range s {
		s[i] = v
	}
}

// checkAgainst compares the three results with the reference.
func checkAgainst(t *testing.T, label string, ref convRef, y, dx, dw []float32, tol float64) (worst [3]float64) {
	t.Helper()
	for i, c := range []struct {
		name       string
		got        []float32
		want, sums []float64
	}{{"y", y, ref.y, ref.ya}, {"dx", dx, ref.dx, ref.dxa}, {"dw", dw, ref.dw, ref.dwa}} {
		e, at := relErr(c.got, c.want, c.sums)
		worst[i] = e
		if !(e <= tol) {
			t.Errorf("%s: %s[%d] = %g, want %g (error %.3g of the terms' magnitude %g, tolerance %.1g)",
				label, c.name, at, c.got[at], c.want[at], e, c.sums[at], tol)
		}
	}
	return worst
}

// TestWinogradMatchesDirect: forward, data and weight gradients of F(2x2)
// and F(4x4) against a float64 direct convolution on random inputs, with
// the assembly transforms and the pure Go ones, and with a plan made for a
// larger batch than the call's.
func TestWinogradMatchesDirect(t *testing.T) {
	b, err := New(device.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := rand.New(rand.NewPCG(1, 2))
	asm := []bool{false}
	if winoAsm {
		asm = append(asm, true)
	}
	defer func(v bool) { winoAsm = v }(winoAsm)
	var worst [2][3]float64
	var worstCol [3]float64
	for _, cc := range winoCases() {
		g := cc.geom()
		x, w, dy := randSlice(r, g.C*g.N*g.H*g.W), randSlice(r, cc.k*g.C*9), randSlice(r, cc.k*g.N*g.OH*g.OW)
		ref := directConv(g, cc.k, x, w, dy)
		y, dx, dw := runIm2col(t, b, cc, x, w, dy)
		e := checkAgainst(t, fmt.Sprintf("%v im2col", cc), ref, y, dx, dw, im2colTol)
		for i := range e {
			worstCol[i] = max(worstCol[i], e[i])
		}
		for ti, tile := range []int{2, 4} {
			for _, a := range asm {
				winoAsm = a
				for i, planN := range []int{cc.n, cc.n + 9} {
					flags := []int{0, winoDxIm2col | winoDwIm2col}[i]
					y, dx, dw := runWino(t, b, cc, tile, flags, planN, x, w, dy)
					e := checkAgainst(t, fmt.Sprintf("%v F(%d) asm %v plan n%d flags %#x", cc, tile, a, planN, flags), ref, y, dx, dw, winoTol(tile))
					for i := range e {
						worst[ti][i] = max(worst[ti][i], e[i])
					}
				}
			}
		}
	}
	t.Logf("worst error / sum of |terms|: F(2x2) y %.2g dx %.2g dw %.2g; F(4x4) y %.2g dx %.2g dw %.2g; im2col y %.2g dx %.2g dw %.2g",
		worst[0][0], worst[0][1], worst[0][2], worst[1][0], worst[1][1], worst[1][2], worstCol[0], worstCol[1], worstCol[2])
}

// TestWinogradAllocatesNothing: after the first call, the Winograd
// convolution allocates nothing (its workspace comes from the caller).
func TestWinogradAllocatesNothing(t *testing.T) {
	b, err := New(device.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cc := caseOf(32, 64, 15, 15, 0, 16)
	p := b.PlanWinograd(cc.geom(), cc.k, 4)
	ws := mustAlloc(t, b, p.Workspace)
	r := rand.New(rand.NewPCG(3, 4))
	x, w, dy := upload(t, b, randSlice(r, 32*16*225)), upload(t, b, randSlice(r, 64*32*9)), upload(t, b, randSlice(r, 64*16*169))
	y, dx, dw := mustAlloc(t, b, 64*16*169), mustAlloc(t, b, 32*16*225), mustAlloc(t, b, 64*32*9)
	step := func() {
		b.ConvForward(p, ws, x, w, y, 13)
		b.ConvBackward(p, ws, x, w, dy, dx, dw, 13)
	}
	step()
	if a := testing.AllocsPerRun(5, step); a != 0 {
		t.Fatalf("a Winograd forward and backward allocate %v times", a)
	}
}

// TestWinogradDeterministic: the same inputs give the same bits on 1, 2
// and 3 threads, and from call to call.
func TestWinogradDeterministic(t *testing.T) {
	cc := caseOf(24, 16, 13, 11, 1, 11)
	r := rand.New(rand.NewPCG(7, 8))
	g := cc.geom()
	x, w, dy := randSlice(r, g.C*g.N*g.H*g.W), randSlice(r, cc.k*g.C*9), randSlice(r, cc.k*g.N*g.OH*g.OW)
	var first [3][]float32
	for i, threads := range []int{1, 2, 3, 2} {
		b, err := New(device.Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		y, dx, dw := runWino(t, b, cc, 4, 0, cc.n, x, w, dy)
		b.Close()
		got := [3][]float32{y, dx, dw}
		if i == 0 {
			first = got
			continue
		}
		for k, name := range []string{"y", "dx", "dw"} {
			for e := range got[k] {
				if math.Float32bits(got[k][e]) != math.Float32bits(first[k][e]) {
					t.Fatalf("%d threads: %s[%d] = %g, with 1 thread %g", threads, name, e, got[k][e], first[k][e])
				}
			}
		}
	}
}

// TestWinogradBatchSizes: one plan for 64 images and one workspace serve
// batches of every size up to 64 (the blocks are cut anew for each), on
// shapes with one row of tiles and with several.
func TestWinogradBatchSizes(t *testing.T) {
	b, err := New(device.Options{Threads: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := rand.New(rand.NewPCG(11, 12))
	for _, base := range []convCase{caseOf(16, 16, 6, 6, 0, 64), caseOf(16, 24, 13, 9, 1, 64)} {
		p := b.PlanWinograd(base.geom(), base.k, 4)
		ws := mustAlloc(t, b, p.Workspace)
		fill(f32(ws), float32(math.NaN()))
		for _, n := range []int{1, 5, 8, 9, 23, 40, 57, 64} {
			cc := base
			cc.n = n
			g := cc.geom()
			x, w, dy := randSlice(r, g.C*n*g.H*g.W), randSlice(r, cc.k*g.C*9), randSlice(r, cc.k*n*g.OH*g.OW)
			xb, wb, dyb := upload(t, b, x), upload(t, b, w), upload(t, b, dy)
			yb, dxb, dwb := mustAlloc(t, b, cc.k*n*g.OH*g.OW), mustAlloc(t, b, len(x)), mustAlloc(t, b, len(w))
			b.ConvForward(p, ws, xb, wb, yb, n)
			b.ConvBackward(p, ws, xb, wb, dyb, dxb, dwb, n)
			checkAgainst(t, fmt.Sprintf("%v of a plan for 64", cc), directConv(g, cc.k, x, w, dy), f32(yb), f32(dxb), f32(dwb), winoTol4)
		}
	}
}
