package cpu

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu/sgemm"
)

// Winograd convolution for 3x3, stride-1 convolutions (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// F(m x m, 3x3) computes an m x m tile of output from an a x a tile of
// input, a = m+2, as Y = A^T [(G g G^T) .* (B^T d B)] A: a^2 multiplies per
// tile and channel pair instead of 9 m^2. Summed over the input channels,
// the products of the a^2 positions xi of the transformed tiles are a^2
// independent GEMMs, M_xi[K, P] = U_xi[K, C] V_xi[C, P], P the tiles, run
// by the SGEMM engine. The backward passes are the same pieces:
//
//   - dL/dx is a Winograd convolution of dy, zero-padded by 2-pad, with the
//     filter rotated by 180 degrees and its two channel axes swapped;
//   - dL/dw = G^T [sum over tiles of (A dY A^T) .* V] G: the a^2 GEMMs
//     dU_xi[K, C] = Mdy_xi[K, P] V_xi[C, P]^T, Mdy the transformed m x m
//     tiles of dy.
//
// Lanes. The tile transforms work on lanes, images of the batch side by
// side (nv: the batch rounded up to 8), so that one AVX2 instruction
// transforms the same tile position of 8 images. The rows a tile reads are
// first copied ("transposed") from CNHW into [row][column][lane], and the
// output rows copied back.
//
// Blocks. A pass runs as blocks of one row of tiles and some lanes, each
// block from start to end on one worker, with its own single-threaded SGEMM
// engine and scratch: the input rows of each channel are transposed, their
// tiles transformed into V_b [a^2][C][tiles*lanes], the a^2 GEMMs write M_b,
// and the output transform and transposition write the block's rows of y.
// Sized to stay in the L2 cache, the transformed tiles never go to memory,
// and a pass is one hand-over to the workers. The weight gradient sums
// over all the tiles, so its blocks write the transformed tiles of x and
// of dy of the whole batch, and the a^2 GEMMs, dU_xi = Mdy_xi V_xi^T over
// all the tiles, are shared among the workers, one GEMM each at a time.
// (Summing per block instead, in cache, takes a^2 GEMMs per block with
// a short k, where packing or the dot-product kernel's overhead costs as
// much as the multiply.)
//
// A plan may leave a gradient to im2col and GEMM (winoPays): it then runs
// as model/layers.go would run it, with the im2col matrix in the workspace.
//
// Every element is computed by one worker in a fixed order (no sum runs
// across blocks), and the SGEMM engine gives the same bits for any thread
// count, so results do not depend on the number of threads.

// EnvNoWinograd names the environment variable that, set to 1, turns the
// Winograd convolutions off: every convolution runs as im2col and GEMM.
const EnvNoWinograd = "TRAINER_CPU_NOWINOGRAD"

// winoLanes is the lane quantum: nv is a multiple of it.
const winoLanes = 8

// winoVariant is F(m x m, 3x3).
type winoVariant struct {
	m, a int
	bt   []float32 // B^T, a x a
	at   []float32 // A^T, m x a
	g    []float64 // G, a x 3
	gg   []float32 // G (x) G, a^2 x 9 (see winoFilter)
	ggf  []float32 // the same for the filter rotated by 180 degrees
}

// wino2 is F(2x2, 3x3) over the points 0, 1, -1, infinity.
var wino2 = winoVariant{m: 2, a: 4,
	bt: []float32{
		1, 0, -1, 0,
		0, 1, 1, 0,
		0, -1, 1, 0,
		0, 1, 0, -1},
	at: []float32{
		1, 1, 1, 0,
		0, 1, -1, -1},
	g: []float64{
		1, 0, 0,
		0.5, 0.5, 0.5,
		0.5, -0.5, 0.5,
		0, 0, 1},
}

// wino4 is F(4x4, 3x3) over the points 0, 1, -1, 2, -2, infinity.
var wino4 = winoVariant{m: 4, a: 6,
	bt: []float32{
		4, 0, -5, 0, 1, 0,
		0, -4, -4, 1, 1, 0,
		0, 4, -4, -1, 1, 0,
		0, -2, -1, 2, 1, 0,
		0, 2, -1, -2, 1, 0,
		0, 4, 0, -5, 0, 1},
	at: []float32{
		1, 1, 1, 1, 1, 0,
		0, 1, -1, 2, -2, 0,
		0, 1, 1, 4, 4, 0,
		0, 1, -1, 8, -8, 1},
	g: []float64{
		1.0 / 4, 0, 0,
		-1.0 / 6, -1.0 / 6, -1.0 / 6,
		-1.0 / 6, 1.0 / 6, -1.0 / 6,
		1.0 / 24, 1.0 / 12, 1.0 / 6,
		1.0 / 24, -1.0 / 12, 1.0 / 6,
		0, 0, 1},
}

func winoVariantOf(tile int) *winoVariant {
	if tile == 2 {
		return &wino2
	}
	return &wino4
}

// winoGeom is one Winograd convolution over transposed data: the forward
// pass (x to y), or the data gradient run as a forward pass (dy to dx).
type winoGeom struct {
	ci, co int // input, output channels
	ih, iw int // input plane
	ph, pw int // zero rows, columns before the input
	oh, ow int // output plane
	ty, tx int // tiles down, across
	hp, wp int // plane of the transposed input, padding included
}

func (g *winoGeom) tiles() int { return g.ty * g.tx }

// newWinoGeom tiles the output of a convolution with m x m tiles; the
// transposed input covers every tile's a x a window.
func newWinoGeom(m, ci, co, ih, iw, ph, pw, oh, ow int) winoGeom {
	g := winoGeom{ci: ci, co: co, ih: ih, iw: iw, ph: ph, pw: pw, oh: oh, ow: ow,
		ty: ceilDiv(oh, m), tx: ceilDiv(ow, m)}
	g.hp, g.wp = g.ty*m+2, g.tx*m+2
	return g
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// winoLayout is a plan's two convolutions and the regions of its
// workspace, sized for the largest batch: the transformed filters U
// (forward) and Uf (data gradient), the weight gradient's dU and
// transformed tiles V and Mdy (none when it runs as im2col), one scratch
// area per worker, then the im2col matrix when a gradient runs as im2col.
type winoLayout struct {
	v       *winoVariant
	f, d    winoGeom // forward; data gradient as a forward pass over dy
	nq      int      // lanes of the largest batch
	threads int
	scr     int // floats of scratch per worker

	offU, offUf, offDU, offV, offMdy, offScr, offCol, total int
}

// The bits of ConvPlan.Variant: the output tile (2 or 4), and the
// gradients computed as im2col and GEMM rather than Winograd.
const (
	winoTileMask = 0xf
	winoDxIm2col = 1 << 4
	winoDwIm2col = 1 << 5
)

func winoLayoutOf(p device.ConvPlan, threads int) winoLayout {
	v := winoVariantOf(p.Variant & winoTileMask)
	g, m, a2 := p.G, v.m, v.a*v.a
	l := winoLayout{v: v, nq: roundUp(g.N, winoLanes), threads: threads}
	l.f = newWinoGeom(m, g.C, p.K, g.H, g.W, g.PadH, g.PadW, g.OH, g.OW)
	l.d = newWinoGeom(m, p.K, g.C, g.OH, g.OW, 2-g.PadH, 2-g.PadW, g.H, g.W)
	kc, t := p.K*g.C, l.f.tiles()
	l.scr = max(winoScratch(v, &l.f, winoMaxLanes(v, &l.f, l.nq)), winoScratch(v, &l.d, winoMaxLanes(v, &l.d, l.nq)))
	l.offU = 0
	l.offUf = l.offU + a2*kc
	l.offDU = l.offUf + a2*kc
	l.offV = l.offDU + a2*kc
	l.offMdy, l.offScr = l.offV, l.offV
	if p.Variant&winoDwIm2col == 0 { // V and Mdy of the weight gradient
		l.offMdy = l.offV + a2*xiStride(g.C, t, l.nq)
		l.offScr = l.offMdy + a2*xiStride(p.K, t, l.nq)
	}
	l.offCol = l.offScr + threads*l.scr
	l.total = l.offCol
	if p.Variant&(winoDxIm2col|winoDwIm2col) != 0 {
		l.total += g.ColRows() * g.ColCols()
	}
	return l
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// xiStride is the distance between the matrices of two positions xi of
// transformed tiles of ch channels, tiles tiles and nv lanes: ch*tiles*nv
// rounded up to 64 bytes, plus 64 bytes, so that the a^2 matrices, which a
// tile transform reads or writes all at once, do not start at multiples
// of a large power of two, which the caches would map to the same sets.
func xiStride(ch, tiles, nv int) int { return roundUp(ch*tiles*nv, 16) + 16 }

// winoBlocks is how a pass over g is cut: blocks of one row of tiles and
// lanes lanes (the last group of lanes may be narrower), ng groups of lanes
// per row, count blocks.
type winoBlocks struct{ lanes, ng, count int }

// winoBlockCols is the number of GEMM columns (tiles times lanes) a block
// aims at: enough for the GEMM kernel's 32-column tiles, and its
// transformed tiles, (ci+co) * a^2 * cols floats, about 1 MiB, in L2.
func winoBlockCols(v *winoVariant, g *winoGeom) int {
	return min(512, max(32, (256<<10)/(v.a*v.a*(g.ci+g.co))))
}

// winoMaxLanes bounds the lanes of the blocks winoBlocksOf cuts for any
// batch of up to nq lanes, for the scratch.
func winoMaxLanes(v *winoVariant, g *winoGeom, nq int) int {
	return min(nq, max(winoLanes, roundUp(ceilDiv(winoBlockCols(v, g), g.tx), winoLanes)))
}

// winoBlocksOf cuts a pass over g with nv lanes into blocks: about
// winoBlockCols columns each, and at least 2*par blocks (par: the
// workers) where that leaves 32 columns or more.
func winoBlocksOf(v *winoVariant, g *winoGeom, nv, par int) winoBlocks {
	maxLanes := winoMaxLanes(v, g, nv)
	minLanes := roundUp(ceilDiv(32, g.tx), winoLanes)
	ng := max(ceilDiv(nv, maxLanes), min(ceilDiv(2*par, g.ty), nv/minLanes))
	ng = max(1, min(ng, nv/winoLanes))
	lanes := roundUp(ceilDiv(nv, ng), winoLanes)
	ng = ceilDiv(nv, lanes)
	return winoBlocks{lanes: lanes, ng: ng, count: g.ty * ng}
}

// winoScratch is the scratch a worker needs for blocks of g with lanes
// lanes: the transposed rows (input rows of one channel, or output or dy
// rows), with 8 lanes of slack for the vector loads that read past them,
// V_b and M_b.
func winoScratch(v *winoVariant, g *winoGeom, lanes int) int {
	rows := max(v.a*g.wp, v.m*g.tx*v.m) * lanes
	return rows + 8*lanes + v.a*v.a*(xiStride(g.ci, g.tx, lanes)+xiStride(g.co, g.tx, lanes))
}

// winoApplies says whether Winograd can run g: 3x3, stride 1, padding at
// most 2 before (the data gradient pads dy with 2-pad).
func winoApplies(g device.ConvGeom) bool {
	return g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 &&
		g.PadH >= 0 && g.PadH <= 2 && g.PadW >= 0 && g.PadW <= 2 &&
		g.OH >= 1 && g.OW >= 1 && g.N >= 1 && g.C >= 1
}

// PlanConv: see device.Backend. Winograd F(4x4, 3x3) for the 3x3 stride-1
// convolutions where winoPays says it is faster than im2col and GEMM, each
// gradient as Winograd or as im2col by the same rule; nothing with
// TRAINER_CPU_NOWINOGRAD=1.
func (b *Backend) PlanConv(g device.ConvGeom, k int) device.ConvPlan {
	if b.noWino || !winoApplies(g) {
		return device.ConvPlan{}
	}
	fwd, dx, dw := winoPays(g, k)
	if !fwd {
		return device.ConvPlan{}
	}
	flags := 0
	if !dx {
		flags |= winoDxIm2col
	}
	if !dw {
		flags |= winoDwIm2col
	}
	return b.planWino(g, k, 4, flags)
}

// winoPays is the rule that chooses Winograd F(4x4) over im2col for each
// pass, from the per-layer benchmarks (winograd_bench_test.go; figures in
// the README):
//
//   - at least 16 input and output channels: the transforms cost per
//     channel, and with 3 input channels (the first layer) the forward pass
//     is 1.4x slower than im2col;
//   - at least 1024 output pixels per channel over the batch (N*OH*OW):
//     below that the a^2 GEMMs are too small to pay for the transforms and
//     for the im2col matrix that the weight gradient no longer gets from
//     the forward pass (a 4x4 output at batch 32: the layer's three passes
//     take 0.88 ms against 0.79 ms with im2col; at batch 128 2.5 against
//     2.9 ms);
//   - a pass runs as Winograd when its output tiles are used enough: u, the
//     output's share of the 4x4 tiles that cover it, at least 0.6 for the
//     forward pass and the data gradient (a 13x13 output, u = 0.66, is
//     still 1.5x faster; the 6x6 data gradient of a 4x4 "valid" output,
//     u = 0.56, is 1.5x slower) and at least 0.8 for the weight gradient,
//     whose GEMMs read its transformed tiles transposed (u = 0.66 makes it
//     1.1x to 2.2x slower than im2col; the "same" convolutions, u = 1, are
//     faster).
func winoPays(g device.ConvGeom, k int) (fwd, dx, dw bool) {
	if g.C < 16 || k < 16 || g.N*g.OH*g.OW < 1024 {
		return false, false, false
	}
	uf, ud := tileUse(g.OH, g.OW, 4), tileUse(g.H, g.W, 4)
	return uf >= 0.6, ud >= 0.6, uf >= 0.8
}

// tileUse is the share of the m x m tiles covering an h x w output that
// the output uses.
func tileUse(h, w, m int) float64 {
	return float64(h*w) / float64(ceilDiv(h, m)*m*ceilDiv(w, m)*m)
}

// PlanWinograd plans Winograd F(tile x tile, 3x3), tile 2 or 4, for every
// pass of g whatever winoPays says (tests and benchmarks); the zero plan
// when g is not a 3x3 stride-1 convolution with padding at most 2.
func (b *Backend) PlanWinograd(g device.ConvGeom, k, tile int) device.ConvPlan {
	return b.planWino(g, k, tile, 0)
}

// planWino plans Winograd F(tile x tile, 3x3), with the gradients that
// flags (winoDxIm2col, winoDwIm2col) name as im2col and GEMM.
func (b *Backend) planWino(g device.ConvGeom, k, tile, flags int) device.ConvPlan {
	if !winoApplies(g) || k < 1 || (tile != 2 && tile != 4) {
		return device.ConvPlan{}
	}
	algo := fmt.Sprintf("winograd F(%dx%d,3x3)", tile, tile)
	switch flags {
	case winoDxIm2col:
		algo += " (dx: im2col)"
	case winoDwIm2col:
		algo += " (dw: im2col)"
	case winoDxIm2col | winoDwIm2col:
		algo += " (forward only)"
	}
	p := device.ConvPlan{Algo: algo, G: g, K: k, Variant: tile | flags}
	p.Workspace = winoLayoutOf(p, b.threads).total
	b.winoEngines()
	return p
}

// winoEngines makes one single-threaded SGEMM engine per worker for the
// blocks' GEMMs (each engine keeps its own packing buffers; results do
// not depend on which worker runs which block).
func (b *Backend) winoEngines() {
	if b.wEng != nil {
		return
	}
	b.wEng = make([]*sgemm.Engine, b.threads)
	for i := range b.wEng {
		b.wEng[i] = sgemm.NewEngine(1)
	}
}

func noWinogradEnv() bool { return os.Getenv(EnvNoWinograd) == "1" }

// checkPlan panics on a plan this backend did not make, or a batch larger
// than planned: caller bugs.
func (b *Backend) checkPlan(p device.ConvPlan, n int, ws []float32) winoLayout {
	if t := p.Variant & winoTileMask; t != 2 && t != 4 {
		panic(fmt.Sprintf("cpu: conv plan %q is not a Winograd plan", p.Algo))
	}
	if n < 1 || n > p.G.N {
		panic(fmt.Sprintf("cpu: conv of %d images with a plan for %d", n, p.G.N))
	}
	l := winoLayoutOf(p, b.threads)
	if len(ws) < l.total {
		panic(fmt.Sprintf("cpu: conv workspace of %d floats, the plan needs %d", len(ws), l.total))
	}
	return l
}

// ConvForward: see device.Backend.
func (b *Backend) ConvForward(p device.ConvPlan, ws, x, w, y device.Buffer, n int) {
	s := f32(ws)
	l := b.checkPlan(p, n, s)
	g, kc := &l.f, p.K*p.G.C
	u := s[l.offU : l.offU+l.v.a*l.v.a*kc]
	b.winoFilter(l.v, f32(w), u, g.co, g.ci, false)
	b.winoConv(&l, g, f32(x), u, false, f32(y), n, s[l.offScr:])
}

// ConvBackward: see device.Backend.
func (b *Backend) ConvBackward(p device.ConvPlan, ws, x, w, dy, dx, dw device.Buffer, n int) {
	s := f32(ws)
	l := b.checkPlan(p, n, s)
	kc, a2 := p.K*p.G.C, l.v.a*l.v.a
	if p.Variant&(winoDxIm2col|winoDwIm2col) != 0 {
		b.im2colBackward(p, s[l.offCol:l.total], x, w, dy, dx, dw, n)
	}
	if dw != nil && p.Variant&winoDwIm2col == 0 {
		du := s[l.offDU : l.offDU+a2*kc]
		b.winoWeightGrad(&l, f32(x), f32(dy), du, n, s)
		b.winoFilterGrad(l.v, du, f32(dw), p.K, p.G.C)
	}
	if dx != nil && p.Variant&winoDxIm2col == 0 {
		uf := s[l.offUf : l.offUf+a2*kc]
		b.winoFilter(l.v, f32(w), uf, p.K, p.G.C, true) // [xi][k][c], read as [c][k]
		b.winoConv(&l, &l.d, f32(dy), uf, true, f32(dx), n, s[l.offScr:])
	}
}

// im2colBackward computes the gradients that p's flags leave to im2col and
// GEMM, as model/layers.go would: dw = dy col^T, col the im2col matrix
// of x (made again: the forward pass kept none), then dx = col2im(W^T dy),
// with col the workspace's last region.
func (b *Backend) im2colBackward(p device.ConvPlan, col []float32, x, w, dy, dx, dw device.Buffer, n int) {
	g := p.G
	g.N = n
	k, np := g.ColRows(), g.ColCols()
	col = col[:k*np]
	if dw != nil && p.Variant&winoDwIm2col != 0 {
		j := &b.jIm2col
		j.g, j.x, j.col = g, f32(x), col
		b.par(j, k*np)
		b.gemm.Sgemm(false, true, p.K, k, np, 1, f32(dy), np, col, np, 0, f32(dw), k)
	}
	if dx != nil && p.Variant&winoDxIm2col != 0 {
		b.gemm.Sgemm(true, false, k, np, p.K, 1, f32(w), k, f32(dy), np, 0, col, np)
		j := &b.jCol2im
		j.g, j.col, j.dx = g, col, f32(dx)
		b.par(j, k*np)
	}
}

// ---- the blocks, one job on the pool per pass ----

// The kinds of winoJob.
const (
	jobConv    = iota // the blocks of a convolution
	jobDWTiles        // the blocks of the weight gradient's tile transforms
	jobGemms          // a^2 GEMMs
)

// winoJob is one pass of one kind.
type winoJob struct {
	kind   int
	v      *winoVariant
	g      winoGeom
	bl     winoBlocks
	n, nv  int
	x, y   []float32 // input and output, CNHW (dw: x and dy)
	u      []float32 // transformed filter, [xi][co][ci] ([xi][ci][co] if transU)
	transU bool
	vg, mg []float32 // jobDWTiles: the transformed tiles of x and dy, whole batch
	gemm   winoGemmArgs
	scr    []float32 // the workers' scratch, scrN floats each
	scrN   int
	eng    []*sgemm.Engine

	// Work sharing: the units of a pass (disjoint parts of its output,
	// each computed the same way whoever computes it) are taken one at a
	// time from a counter, so that a worker that the OS delays holds up
	// no one.
	units int
	next  atomic.Int64
}

// take returns the next unit, or units when none is left.
func (j *winoJob) take() int {
	return min(int(j.next.Add(1)-1), j.units)
}

func (j *winoJob) Run(w, nw int) {
	for u := j.take(); u < j.units; u = j.take() {
		switch j.kind {
		case jobConv:
			j.convBlock(w, u)
		case jobDWTiles:
			j.dwTiles(w, u)
		case jobGemms:
			j.gemmOne(w, u)
		}
	}
}

func (b *Backend) winoRun(j *winoJob, units int) {
	j.units = units
	j.next.Store(0)
	j.eng = b.wEng
	b.pool.Do(j)
	j.x, j.y, j.u, j.vg, j.mg, j.scr = nil, nil, nil, nil, nil, nil
	j.gemm.a, j.gemm.b, j.gemm.c = nil, nil, nil
}

// winoConv runs the convolution g of x (n images) with the transformed
// filter u into y.
func (b *Backend) winoConv(l *winoLayout, g *winoGeom, x, u []float32, transU bool, y []float32, n int, scr []float32) {
	j := &b.jWino
	nv := roundUp(n, winoLanes)
	*j = winoJob{kind: jobConv, v: l.v, g: *g, bl: winoBlocksOf(l.v, g, nv, b.threads), n: n, nv: nv,
		x: x[:g.ci*n*g.ih*g.iw], y: y[:g.co*n*g.oh*g.ow], u: u, transU: transU, scr: scr, scrN: l.scr}
	b.winoRun(j, j.bl.count)
}

// block is worker w's scratch cut for block b: its first lane l0 and
// lanes lanes, the transposed rows (to the end of the scratch, for the
// vector loads that read past them), V_b and M_b with their strides.
func (j *winoJob) block(w, b int) (ty, l0, lanes int, rows, vb, mb []float32, vs, ms int) {
	g, a2 := &j.g, j.v.a*j.v.a
	ty, l0 = b/j.bl.ng, b%j.bl.ng*j.bl.lanes
	lanes = min(j.bl.lanes, j.nv-l0)
	s := j.scr[w*j.scrN : (w+1)*j.scrN]
	nr := max(j.v.a*g.wp, j.v.m*g.tx*j.v.m)*lanes + 8*lanes
	vs, ms = xiStride(g.ci, g.tx, lanes), xiStride(g.co, g.tx, lanes)
	rows, vb, mb = s, s[nr:nr+a2*vs], s[nr+a2*vs:nr+a2*(vs+ms)]
	return
}

// convBlock computes the rows of tiles ty of the output for the block's
// lanes: transform the input tiles, multiply, transform back.
func (j *winoJob) convBlock(w, b int) {
	g, v := &j.g, j.v
	ty, l0, lanes, rows, vb, mb, vs, ms := j.block(w, b)
	j.inputTiles(ty, l0, lanes, rows, vb, g.tx*lanes, lanes, vs)
	pb, lda := g.tx*lanes, g.ci
	if j.transU {
		lda = g.co
	}
	e, kc := j.eng[w], g.ci*g.co
	for xi := 0; xi < v.a*v.a; xi++ {
		e.Sgemm(j.transU, false, g.co, pb, g.ci, 1, j.u[xi*kc:], lda, vb[xi*vs:], pb, 0, mb[xi*ms:], pb)
	}
	m, rs := v.m, g.tx*v.m*lanes
	for k := 0; k < g.co; k++ {
		for tx := 0; tx < g.tx; tx++ {
			winoOutTile(v, mb[(k*g.tx+tx)*lanes:], ms, rows[tx*m*lanes:], rs, lanes, lanes)
		}
		j.rowsOut(rows, k, ty, l0, lanes)
	}
}

// inputTiles transforms the input tiles of tile row ty, lanes [l0,
// l0+lanes), of every channel: tile tx of channel c to dst[c*cs+tx*ts:],
// the a^2 positions ds apart.
func (j *winoJob) inputTiles(ty, l0, lanes int, rows, dst []float32, cs, ts, ds int) {
	g, v := &j.g, j.v
	rs := g.wp * lanes
	for c := 0; c < g.ci; c++ {
		j.rowsIn(rows, c, ty, l0, lanes)
		for tx := 0; tx < g.tx; tx++ {
			winoInTile(v, rows[tx*v.m*lanes:], rs, lanes, dst[c*cs+tx*ts:], ds, lanes)
		}
	}
}

// rowsIn transposes the a input rows of tile row ty, channel c, images
// [l0, l0+lanes) into rows[r][column][lane] (wp columns), zeros in the
// padding and in the lanes past the batch.
func (j *winoJob) rowsIn(rows []float32, c, ty, l0, lanes int) {
	g := &j.g
	ihw, rl := g.ih*g.iw, g.wp*lanes
	imgs := min(lanes, j.n-l0) // images in the block
	x1 := min(g.wp, g.iw+g.pw) // first column after the image
	for r := 0; r < j.v.a; r++ {
		row := rows[r*rl : (r+1)*rl]
		iy := ty*j.v.m + r - g.ph
		if iy < 0 || iy >= g.ih || imgs <= 0 {
			clear(row)
			continue
		}
		clear(row[:g.pw*lanes])
		clear(row[x1*lanes:])
		// the source runs to the end of x: the vector loads may read past the row
		lanesIn(row[g.pw*lanes:x1*lanes], j.x[(c*j.n+l0)*ihw+iy*g.iw:], x1-g.pw, ihw, imgs, lanes)
	}
}

// rowsOut copies the output rows of tile row ty, channel k, from
// rows[r][column][lane] to y, images [l0, l0+lanes) that exist.
func (j *winoJob) rowsOut(rows []float32, k, ty, l0, lanes int) {
	g, m := &j.g, j.v.m
	ohw, rl := g.oh*g.ow, g.tx*m*lanes
	for r := 0; r < m && ty*m+r < g.oh; r++ {
		oy := ty*m + r
		for q := 0; q < lanes && l0+q < j.n; q += winoLanes {
			img := l0 + q
			lanesOut(j.y[(k*j.n+img)*ohw+oy*g.ow:], rows[r*rl+q:], g.ow, ohw, lanes, min(winoLanes, j.n-img))
		}
	}
}

// winoWeightGrad writes dU_xi = Mdy_xi V_xi^T: the blocks transform the
// tiles of x and dy of the whole batch into the workspace's V and Mdy,
// then the workers share the a^2 GEMMs over all the tiles.
func (b *Backend) winoWeightGrad(l *winoLayout, x, dy, du []float32, n int, ws []float32) {
	j := &b.jWino
	nv := roundUp(n, winoLanes)
	g, a2 := &l.f, l.v.a*l.v.a
	t := g.tiles() * nv
	vs, ms := xiStride(g.ci, g.tiles(), nv), xiStride(g.co, g.tiles(), nv)
	*j = winoJob{kind: jobDWTiles, v: l.v, g: *g, bl: winoBlocksOf(l.v, g, nv, b.threads), n: n, nv: nv,
		x: x[:g.ci*n*g.ih*g.iw], y: dy[:g.co*n*g.oh*g.ow], vg: ws[l.offV : l.offV+a2*vs], mg: ws[l.offMdy : l.offMdy+a2*ms],
		scr: ws[l.offScr:], scrN: l.scr}
	b.winoRun(j, j.bl.count)
	*j = winoJob{kind: jobGemms, gemm: winoGemmArgs{transB: true, m: g.co, n: g.ci, k: t,
		a: ws[l.offMdy:], lda: t, sa: ms, b: ws[l.offV:], ldb: t, sb: vs, c: du, ldc: g.ci, sc: g.ci * g.co}}
	b.winoRun(j, a2)
}

// dwTiles transforms the tiles of x and dy of block b into the whole
// batch's V and Mdy ([xi][channel][tile][lane]).
func (j *winoJob) dwTiles(w, b int) {
	g := &j.g
	ty, l0, lanes, rows, _, _, _, _ := j.block(w, b)
	t, nv := g.tiles(), j.nv
	off := ty*g.tx*nv + l0
	j.inputTiles(ty, l0, lanes, rows, j.vg[off:], t*nv, nv, xiStride(g.ci, t, nv))
	j.dyTiles(ty, l0, lanes, rows, j.mg[off:], t*nv, nv, xiStride(g.co, t, nv))
}

// winoGemmArgs are a^2 GEMMs: C_i = op(A_i) op(B_i) with A_i at a[i*sa:],
// B_i at b[i*sb:], C_i at c[i*sc:].
type winoGemmArgs struct {
	transA, transB bool
	m, n, k        int
	a, b, c        []float32
	lda, ldb, ldc  int
	sa, sb, sc     int
}

func (j *winoJob) gemmOne(w, i int) {
	g := &j.gemm
	j.eng[w].Sgemm(g.transA, g.transB, g.m, g.n, g.k, 1, g.a[i*g.sa:], g.lda, g.b[i*g.sb:], g.ldb, 0, g.c[i*g.sc:], g.ldc)
}

// dyTiles transforms the m x m tiles of dy (A dY A^T) of tile row ty,
// lanes [l0, l0+lanes), of every output channel: tile tx of channel k to
// dst[k*cs+tx*ts:], the a^2 positions ds apart.
func (j *winoJob) dyTiles(ty, l0, lanes int, rows, dst []float32, cs, ts, ds int) {
	g, v := &j.g, j.v
	m, rl := v.m, g.tx*v.m*lanes
	ohw := g.oh * g.ow
	imgs := min(lanes, j.n-l0)
	for k := 0; k < g.co; k++ {
		for r := 0; r < m; r++ {
			row := rows[r*rl : (r+1)*rl]
			oy := ty*m + r
			if oy >= g.oh || imgs <= 0 {
				clear(row)
				continue
			}
			clear(row[g.ow*lanes:])
			lanesIn(row[:g.ow*lanes], j.y[(k*j.n+l0)*ohw+oy*g.ow:], g.ow, ohw, imgs, lanes)
		}
		for tx := 0; tx < g.tx; tx++ {
			winoDyTile(v, rows[tx*m*lanes:], rl, lanes, dst[k*cs+tx*ts:], ds, lanes)
		}
	}
}

// lanesIn sets dst[x*nv+l] = src[l*stride+x] for x < cols, l < n, and 0
// for l in [n, nv): one row of cols columns of n images, transposed. The
// vector copy may read up to 7 floats past each row of src.
func lanesIn(dst, src []float32, cols, stride, n, nv int) {
	if cols <= 0 {
		return
	}
	for l0 := 0; l0 < nv; l0 += winoLanes {
		full := l0+winoLanes <= n
		if full && winoAsm && (l0+winoLanes-1)*stride+roundUp(cols, winoLanes) <= len(src) {
			_ = dst[(cols-1)*nv+l0+winoLanes-1]
			winoTransInAVX2(&src[l0*stride], stride, &dst[l0], nv, cols)
			continue
		}
		for x := 0; x < cols; x++ {
			d := dst[x*nv+l0 : x*nv+l0+winoLanes]
			for l := range d {
				if l0+l < n {
					d[l] = src[(l0+l)*stride+x]
				} else {
					d[l] = 0
				}
			}
		}
	}
}

// lanesOut sets dst[l*stride+x] = src[x*nv+l] for x < cols, l < rows (at
// most winoLanes): one row of cols columns of rows images, transposed back.
// The vector copy may read up to 7 columns past the row of src.
func lanesOut(dst, src []float32, cols, stride, nv, rows int) {
	if rows == winoLanes && winoAsm && (roundUp(cols, winoLanes)-1)*nv+winoLanes <= len(src) {
		_ = dst[(winoLanes-1)*stride+cols-1]
		winoTransOutAVX2(&src[0], nv, &dst[0], stride, cols)
		return
	}
	for l := 0; l < rows; l++ {
		row := dst[l*stride : l*stride+cols]
		for x := range row {
			row[x] = src[x*nv+l]
		}
	}
}

// winoFilter writes U[xi][k][c] = (G w[k][c] G^T)[xi], w being [k][c][3][3];
// with flip, the transform of w[k][c] rotated by 180 degrees instead (the
// data gradient's filter, which the GEMM then reads transposed, [c][k]).
// Over all k, c at once that is one GEMM, U = GG w^T, with GG[xi][(u,v)]
// = G[i][u] G[l][v] for xi = (i, l), the Kronecker product of G with itself.
func (b *Backend) winoFilter(v *winoVariant, w, u []float32, k, c int, flip bool) {
	gg := v.gg
	if flip {
		gg = v.ggf
	}
	a2 := v.a * v.a
	b.gemm.Sgemm(false, true, a2, k*c, 9, 1, gg, 9, w, 9, 0, u, k*c)
}

// winoFilterGrad writes dw[k][c] = G^T dU[.][k][c] G, the 3x3 gradient from
// the a x a one: the GEMM dw = dU^T GG.
func (b *Backend) winoFilterGrad(v *winoVariant, du, dw []float32, k, c int) {
	a2 := v.a * v.a
	b.gemm.Sgemm(true, false, k*c, 9, a2, 1, du, k*c, v.gg, 9, 0, dw, 9)
}

// kron is GG[(i,l)][(u,v)] = G[i][u] G[l][v] (flip: G[i][2-u] G[l][2-v]).
func kron(g []float64, a int, flip bool) []float32 {
	gg := make([]float32, a*a*9)
	for i := 0; i < a; i++ {
		for l := 0; l < a; l++ {
			for u := 0; u < 3; u++ {
				for v := 0; v < 3; v++ {
					su, sv := u, v
					if flip {
						su, sv = 2-u, 2-v
					}
					gg[(i*a+l)*9+u*3+v] = float32(g[i*3+su] * g[l*3+sv])
				}
			}
		}
	}
	return gg
}

func init() {
	for _, v := range []*winoVariant{&wino2, &wino4} {
		v.gg, v.ggf = kron(v.g, v.a, false), kron(v.g, v.a, true)
	}
}
