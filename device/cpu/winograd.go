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
// independent GEMMs, M_xi[K, P] = U_xi[K, C] V_xi[C, P], P the tiles of the
// batch, run by the SGEMM engine. The backward passes are the same pieces:
//
//   - dL/dx is a Winograd convolution of dy, zero-padded by 2-pad, with the
//     filter flipped and its two channel axes swapped;
//   - dL/dw = G^T [sum over tiles of (A dY A^T) .* V] G: the a^2 GEMMs
//     dU_xi[K, C] = Mdy_xi[K, P] V_xi[C, P]^T over the V that the forward
//     pass kept, Mdy the transformed m x m tiles of dy.
//
// Layout. The transforms work on lanes: the images of the batch, rounded
// up to a multiple of 8 (nv), contiguous, so that one AVX2 instruction
// transforms the same tile position of 8 images. The input is first copied
// ("transposed") from CNHW into [C][hp][wp][nv] with its zero padding
// around it, the transforms write [a^2][C][tiles][nv] (one row-major C x
// tiles*nv matrix per xi, the GEMMs' operand), and the output transform
// writes [K][ty*m][tx*m][nv], copied back to CNHW.
//
// Every element is computed by one worker in a fixed order, and the SGEMM
// engine gives the same bits for any thread count, so the results do not
// depend on the number of threads.

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
// workspace, all sized for the largest batch (nq lanes). V, the forward
// pass's transformed input, is kept for the weight gradient; the scratch
// regions s1..s3 are reused from phase to phase:
//
//	forward:   x -> s1 (transposed) -> V; U = G w G^T; s2 = U V; s2 -> s1 -> y
//	backward:  dy -> s1 (transposed);
//	           dw: s1 -> s2 (A dY A^T); dU = s2 V^T; dw = G^T dU G
//	           dx: s1 -> s2 (B^T dY B); s3 = Uf s2; s3 -> s1 -> dx
type winoLayout struct {
	v                                              *winoVariant
	f, d                                           winoGeom // forward; data gradient
	nq                                             int
	offU, offUf, offDU, offS1, offS2, offS3, total int
}

func winoLayoutOf(p device.ConvPlan) winoLayout {
	v := winoVariantOf(p.Tile)
	g, m, a2 := p.G, v.m, v.a*v.a
	l := winoLayout{v: v, nq: roundUp(g.N, winoLanes)}
	l.f = newWinoGeom(m, g.C, p.K, g.H, g.W, g.PadH, g.PadW, g.OH, g.OW)
	l.d = newWinoGeom(m, p.K, g.C, g.OH, g.OW, 2-g.PadH, 2-g.PadW, g.H, g.W)
	// The transposed dy also serves the weight gradient's m x m tiles of
	// the forward tiling, which start at row 2-PadH, column 2-PadW.
	l.d.hp = max(l.d.hp, l.f.ty*m+l.d.ph)
	l.d.wp = max(l.d.wp, l.f.tx*m+l.d.pw)
	kc := p.K * g.C
	v0 := a2 * xiStride(g.C, l.f.tiles(), l.nq)
	s1 := max(g.C*l.f.hp*l.f.wp, p.K*l.f.ty*m*l.f.tx*m, p.K*l.d.hp*l.d.wp, g.C*l.d.ty*m*l.d.tx*m) * l.nq
	s2 := a2 * max(xiStride(p.K, l.f.tiles(), l.nq), xiStride(p.K, l.d.tiles(), l.nq))
	s3 := a2 * xiStride(g.C, l.d.tiles(), l.nq)
	l.offU = v0
	l.offUf = l.offU + a2*kc
	l.offDU = l.offUf + a2*kc
	l.offS1 = l.offDU + a2*kc
	l.offS2 = l.offS1 + s1
	l.offS3 = l.offS2 + s2
	l.total = l.offS3 + s3
	return l
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// xiStride is the distance between the matrices of two positions xi of
// transformed tiles of ch channels, tiles tiles and nv lanes: ch*tiles*nv
// rounded up to 64 bytes, plus 64 bytes, so that the a^2 matrices, which a
// tile transform reads or writes all at once, do not start at multiples
// of a large power of two, which the caches would map to the same sets.
func xiStride(ch, tiles, nv int) int { return roundUp(ch*tiles*nv, 16) + 16 }

// winoApplies says whether Winograd can run g: 3x3, stride 1, padding at
// most 2 before (the data gradient pads dy with 2-pad).
func winoApplies(g device.ConvGeom) bool {
	return g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 &&
		g.PadH >= 0 && g.PadH <= 2 && g.PadW >= 0 && g.PadW <= 2 &&
		g.OH >= 1 && g.OW >= 1 && g.N >= 1 && g.C >= 1
}

// PlanConv: see device.Backend. Winograd F(4x4, 3x3) for the 3x3 stride-1
// convolutions where winoPays says it is faster than im2col and GEMM;
// nothing with TRAINER_CPU_NOWINOGRAD=1.
func (b *Backend) PlanConv(g device.ConvGeom, k int) device.ConvPlan {
	if b.noWino || !winoApplies(g) || !winoPays(g, k) {
		return device.ConvPlan{}
	}
	return b.PlanWinograd(g, k, 4)
}

// winoPays is the rule that chooses Winograd: at least 16 input and output
// channels (fewer leave the transforms, which cost per channel, larger
// than the multiplies they save; see winograd_bench_test.go).
func winoPays(g device.ConvGeom, k int) bool {
	return g.C >= 16 && k >= 16
}

// PlanWinograd plans Winograd F(tile x tile, 3x3), tile 2 or 4, for g
// whatever winoPays says (tests and benchmarks); the zero plan when g is
// not a 3x3 stride-1 convolution with padding at most 2.
func (b *Backend) PlanWinograd(g device.ConvGeom, k, tile int) device.ConvPlan {
	if !winoApplies(g) || k < 1 || (tile != 2 && tile != 4) {
		return device.ConvPlan{}
	}
	p := device.ConvPlan{Algo: fmt.Sprintf("winograd F(%dx%d,3x3)", tile, tile), G: g, K: k, Tile: tile}
	p.Workspace = winoLayoutOf(p).total
	b.winoEngines()
	return p
}

// winoEngines makes one single-threaded SGEMM engine per worker, for the
// a^2 GEMMs that the workers share (each engine keeps its own packing
// buffers; results do not depend on which worker runs which GEMM).
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
func checkPlan(p device.ConvPlan, n int, ws []float32) winoLayout {
	if p.Tile != 2 && p.Tile != 4 {
		panic(fmt.Sprintf("cpu: conv plan %q is not a Winograd plan", p.Algo))
	}
	if n > p.G.N {
		panic(fmt.Sprintf("cpu: conv of %d images with a plan for %d", n, p.G.N))
	}
	l := winoLayoutOf(p)
	if len(ws) < l.total {
		panic(fmt.Sprintf("cpu: conv workspace of %d floats, the plan needs %d", len(ws), l.total))
	}
	return l
}

// ConvForward: see device.Backend.
func (b *Backend) ConvForward(p device.ConvPlan, ws, x, w, y device.Buffer, n int) {
	s := f32(ws)
	l := checkPlan(p, n, s)
	nv := roundUp(n, winoLanes)
	g, a2 := &l.f, l.v.a*l.v.a
	v := s[:l.offU]
	u := s[l.offU : l.offU+a2*g.co*g.ci]
	s1, s2 := s[l.offS1:l.offS2], s[l.offS2:l.offS3]
	b.winoFilter(l.v, f32(w), u, g.co, g.ci, false)
	b.winoTransposeIn(g, f32(x), s1, n, nv)
	b.winoInput(l.v, g, s1, v, nv)
	t := g.tiles() * nv
	b.winoGemm(a2, false, false, g.co, t, g.ci, u, g.ci, g.co*g.ci, v, t, xiStride(g.ci, g.tiles(), nv), s2, t, xiStride(g.co, g.tiles(), nv))
	b.winoOutput(l.v, g, s2, s1, nv)
	b.winoTransposeOut(l.v, g, s1, f32(y), n, nv)
}

// ConvBackward: see device.Backend.
func (b *Backend) ConvBackward(p device.ConvPlan, ws, x, w, dy, dx, dw device.Buffer, n int) {
	s := f32(ws)
	l := checkPlan(p, n, s)
	nv := roundUp(n, winoLanes)
	f, d, a2 := &l.f, &l.d, l.v.a*l.v.a
	s1, s2, s3 := s[l.offS1:l.offS2], s[l.offS2:l.offS3], s[l.offS3:l.total]
	b.winoTransposeIn(d, f32(dy), s1, n, nv)
	if dw != nil {
		tf := f.tiles() * nv
		v := s[:l.offU]
		du := s[l.offDU : l.offDU+a2*f.co*f.ci]
		b.winoDyTiles(l.v, f, d, s1, s2, nv)
		b.winoGemm(a2, false, true, f.co, f.ci, tf, s2, tf, xiStride(f.co, f.tiles(), nv), v, tf, xiStride(f.ci, f.tiles(), nv), du, f.ci, f.co*f.ci)
		b.winoFilterGrad(l.v, du, f32(dw), f.co, f.ci)
	}
	if dx != nil {
		td := d.tiles() * nv
		uf := s[l.offUf : l.offUf+a2*f.co*f.ci]
		b.winoFilter(l.v, f32(w), uf, f.co, f.ci, true) // [xi][k][c]: read as [c][k]
		b.winoInput(l.v, d, s1, s2, nv)
		b.winoGemm(a2, true, false, d.co, td, d.ci, uf, d.co, d.co*d.ci, s2, td, xiStride(d.ci, d.tiles(), nv), s3, td, xiStride(d.co, d.tiles(), nv))
		b.winoOutput(l.v, d, s3, s1, nv)
		b.winoTransposeOut(l.v, d, s1, f32(dx), n, nv)
	}
}

// ---- phases, each one job on the pool ----

// winoJob is a phase of a Winograd convolution: the fields that phase
// reads are set before the job is handed to the pool.
type winoJob struct {
	phase    int
	v        *winoVariant
	g        winoGeom
	n, nv    int
	src, dst []float32
	k, c     int
	gemm     winoGemmArgs
	eng      []*sgemm.Engine

	// Work sharing: the units of a phase (disjoint parts of its output,
	// each computed the same way whoever computes it) are taken in chunks
	// from a counter, so that a worker that the OS delays holds up no one.
	units, chunk int
	next         atomic.Int64
}

// take returns the next chunk [u0, u1) of units, empty when none is left.
func (j *winoJob) take() (u0, u1 int) {
	u0 = int(j.next.Add(int64(j.chunk))) - j.chunk
	if u0 >= j.units {
		return j.units, j.units
	}
	return u0, min(u0+j.chunk, j.units)
}

// winoGemmArgs are batch GEMMs: for i < count, C_i = op(A_i) op(B_i) with
// A_i at a[i*sa:], B_i at b[i*sb:], C_i at c[i*sc:].
type winoGemmArgs struct {
	count          int
	transA, transB bool
	m, n, k        int
	a, b, c        []float32
	lda, ldb, ldc  int
	sa, sb, sc     int
}

const (
	phaseTransposeIn = iota
	phaseInput
	phaseOutput
	phaseTransposeOut
	phaseDyTiles
	phaseGemm
)

func (j *winoJob) Run(w, nw int) {
	if j.phase == phaseGemm {
		j.gemms(w)
		return
	}
	for u0, u1 := j.take(); u0 < u1; u0, u1 = j.take() {
		for u := u0; u < u1; u++ {
			j.unit(u)
		}
	}
}

func (j *winoJob) unit(u int) {
	switch j.phase {
	case phaseTransposeIn:
		j.transposeIn(u)
	case phaseInput:
		j.input(u)
	case phaseOutput:
		j.output(u)
	case phaseTransposeOut:
		j.transposeOut(u)
	case phaseDyTiles:
		j.dyTiles(u)
	}
}

// winoRun runs a phase of units units and about work bytes of traffic.
func (b *Backend) winoRun(j *winoJob, phase, units, work int) {
	j.phase, j.units = phase, units
	j.chunk = max(1, units/(8*b.threads))
	j.next.Store(0)
	b.par(j, work)
	j.src, j.dst = nil, nil
}

// winoTransposeIn copies the CNHW input of g (n images) into dst's
// transposed layout [ci][hp][wp][nv], zeros around the image and in the
// lanes from n to nv. A unit is a channel.
func (b *Backend) winoTransposeIn(g *winoGeom, x, dst []float32, n, nv int) {
	j := &b.jWino
	j.g, j.src, j.dst, j.n, j.nv = *g, x[:g.ci*n*g.ih*g.iw], dst[:g.ci*g.hp*g.wp*nv], n, nv
	b.winoRun(j, phaseTransposeIn, g.ci, len(j.dst))
}

func (j *winoJob) transposeIn(c int) {
	g, n, nv := &j.g, j.n, j.nv
	ihw := g.ih * g.iw
	plane := g.hp * g.wp * nv
	x1 := min(g.wp, g.iw+g.pw) // first column after the image
	dst := j.dst[c*plane : (c+1)*plane]
	src := j.src[c*n*ihw:] // to the end: the vector loads may read past the channel
	for y := 0; y < g.hp; y++ {
		row := dst[y*g.wp*nv : (y+1)*g.wp*nv]
		iy := y - g.ph
		if iy < 0 || iy >= g.ih {
			clear(row)
			continue
		}
		clear(row[:g.pw*nv])
		clear(row[x1*nv:])
		lanesIn(row[g.pw*nv:x1*nv], src[iy*g.iw:], x1-g.pw, ihw, n, nv)
	}
}

// lanesIn sets dst[x*nv+l] = src[l*stride+x] for x < cols, l < n, and 0
// for l in [n, nv): one row of cols columns of n images, transposed.
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

// winoInput transforms the a x a input tiles: src is the transposed input
// of g, dst the a^2 matrices [ci][tiles*nv]. A unit is a row of tiles of
// one channel.
func (b *Backend) winoInput(v *winoVariant, g *winoGeom, src, dst []float32, nv int) {
	j := &b.jWino
	j.v, j.g, j.src, j.dst, j.nv = v, *g, src, dst[:v.a*v.a*xiStride(g.ci, g.tiles(), nv)], nv
	b.winoRun(j, phaseInput, g.ci*g.ty, len(j.dst)*4)
}

func (j *winoJob) input(u int) {
	g, v, nv := &j.g, j.v, j.nv
	m, t := v.m, g.tiles()
	rs, ds := g.wp*nv, xiStride(g.ci, t, nv)
	c, ty := u/g.ty, u%g.ty
	for tx := 0; tx < g.tx; tx++ {
		s := ((c*g.hp+ty*m)*g.wp + tx*m) * nv
		d := (c*t + ty*g.tx + tx) * nv
		winoInTile(v, j.src[s:], rs, nv, j.dst[d:], ds, nv)
	}
}

// winoOutput transforms the products back: src is the a^2 matrices
// [co][tiles*nv], dst [co][ty*m][tx*m][nv]. A unit is a row of tiles of
// one channel.
func (b *Backend) winoOutput(v *winoVariant, g *winoGeom, src, dst []float32, nv int) {
	j := &b.jWino
	j.v, j.g, j.src, j.dst, j.nv = v, *g, src, dst[:g.co*g.tiles()*v.m*v.m*nv], nv
	b.winoRun(j, phaseOutput, g.co*g.ty, len(j.dst)*4)
}

func (j *winoJob) output(u int) {
	g, v, nv := &j.g, j.v, j.nv
	m, t := v.m, g.tiles()
	rs, ss := g.tx*m*nv, xiStride(g.co, t, nv)
	k, ty := u/g.ty, u%g.ty
	for tx := 0; tx < g.tx; tx++ {
		s := (k*t + ty*g.tx + tx) * nv
		d := ((k*g.ty*m+ty*m)*g.tx*m + tx*m) * nv
		winoOutTile(v, j.src[s:], ss, j.dst[d:], rs, nv, nv)
	}
}

// winoTransposeOut copies the output tiles [co][ty*m][tx*m][nv] to CNHW
// [co][n][oh][ow]. A unit is a channel and a block of winoLanes images.
func (b *Backend) winoTransposeOut(v *winoVariant, g *winoGeom, src, y []float32, n, nv int) {
	j := &b.jWino
	j.v, j.g, j.src, j.dst, j.n, j.nv = v, *g, src, y[:g.co*n*g.oh*g.ow], n, nv
	b.winoRun(j, phaseTransposeOut, g.co*(nv/winoLanes), len(j.dst))
}

func (j *winoJob) transposeOut(u int) {
	g, n, nv, m := &j.g, j.n, j.nv, j.v.m
	ohw, wm := g.oh*g.ow, g.tx*m
	plane := g.ty * m * wm * nv
	lb := nv / winoLanes
	k, l0 := u/lb, u%lb*winoLanes
	src := j.src[k*plane:] // to the end: the vector loads may read past the plane
	dst := j.dst[(k*n+l0)*ohw : (k*n+min(l0+winoLanes, n))*ohw]
	for y := 0; y < g.oh; y++ {
		lanesOut(dst[y*g.ow:], src[y*wm*nv+l0:], g.ow, ohw, nv, min(winoLanes, n-l0))
	}
}

// lanesOut sets dst[l*stride+x] = src[x*nv+l] for x < cols, l < rows (at
// most winoLanes): one row of cols columns of rows images, transposed back.
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

// winoDyTiles transforms the m x m tiles of dy of the forward tiling f
// (A dY A^T) from the transposed dy of d into dst, [co][tiles*nv] per xi.
// A unit is a row of tiles of one channel.
func (b *Backend) winoDyTiles(v *winoVariant, f, d *winoGeom, src, dst []float32, nv int) {
	j := &b.jWino
	j.v, j.g, j.src, j.dst, j.nv = v, *f, src, dst[:v.a*v.a*xiStride(f.co, f.tiles(), nv)], nv
	j.k, j.c = d.hp, d.wp
	b.winoRun(j, phaseDyTiles, f.co*f.ty, len(j.dst)*4)
}

func (j *winoJob) dyTiles(u int) {
	f, v, nv := &j.g, j.v, j.nv
	hp, wp := j.k, j.c
	m, t := v.m, f.tiles()
	// tile (ty, tx) of dy starts at row ty*m + 2-PadH, column tx*m + 2-PadW
	// of the transposed dy (hp x wp)
	oy, ox := 2-f.ph, 2-f.pw
	rs, ds := wp*nv, xiStride(f.co, t, nv)
	k, ty := u/f.ty, u%f.ty
	for tx := 0; tx < f.tx; tx++ {
		s := ((k*hp+ty*m+oy)*wp + tx*m + ox) * nv
		d := (k*t + ty*f.tx + tx) * nv
		winoDyTile(v, j.src[s:], rs, nv, j.dst[d:], ds, nv)
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

// winoGemm runs count GEMMs C_i = op(A_i) op(B_i), A_i at a[i*sa:] etc.,
// shared among the workers, each on its worker's engine.
func (b *Backend) winoGemm(count int, transA, transB bool, m, n, k int, a []float32, lda, sa int, bb []float32, ldb, sb int, c []float32, ldc, sc int) {
	j := &b.jWino
	j.gemm = winoGemmArgs{count: count, transA: transA, transB: transB, m: m, n: n, k: k,
		a: a, b: bb, c: c, lda: lda, ldb: ldb, ldc: ldc, sa: sa, sb: sb, sc: sc}
	j.eng = b.wEng
	j.phase, j.units, j.chunk = phaseGemm, count, 1
	j.next.Store(0)
	b.pool.Do(j)
	j.gemm.a, j.gemm.b, j.gemm.c = nil, nil, nil
}

func (j *winoJob) gemms(w int) {
	g := &j.gemm
	e := j.eng[w]
	for i, _ := j.take(); i < j.units; i, _ = j.take() {
		e.Sgemm(g.transA, g.transB, g.m, g.n, g.k, 1, g.a[i*g.sa:], g.lda, g.b[i*g.sb:], g.ldb, 0, g.c[i*g.sc:], g.ldc)
	}
}
