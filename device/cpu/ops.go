package cpu

import (
	"math"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/internal/pool"
)

// ---- im2col / col2im ----

type im2colJob struct {
	g      device.ConvGeom
	x, col []float32
}

// Im2Col: see device.Backend. Split over rows of col (c, ky, kx). A BF16
// col is rounded afterwards, in place.
func (b *Backend) Im2Col(g device.ConvGeom, x, col device.Buffer) {
	j := &b.jIm2col
	j.g, j.x, j.col = g, f32(x), f32(col)
	b.par(j, g.ColRows()*g.ColCols())
	if col.DType() == device.BF16 {
		c := f32(col)[:g.ColRows()*g.ColCols()]
		b.roundBF16(c, c)
	}
}

func (j *im2colJob) Run(w, nw int) {
	if j.g.SH == 1 && j.g.SW == 1 {
		j.runStride1(w, nw)
		return
	}
	j.runGeneral(w, nw)
}

// runStride1 is Im2Col for stride 1, split over (row, image) pairs of col
// (finer than rows alone: conv1's 27 rows times 32 images split evenly).
// Pair (r, n) is one OHxOW block of col that reads a shifted window of one
// input plane: the rows and columns inside the image are a strided copy,
// the padding around them zeros. The images of one row go to the copy
// kernel together.
func (j *im2colJob) runStride1(w, nw int) {
	g := j.g
	cols, hw, ohw := g.ColCols(), g.H*g.W, g.OH*g.OW
	u0, u1 := pool.Span(g.ColRows()*g.N, w, nw)
	for r := u0 / g.N; r*g.N < u1; r++ {
		n0, n1 := max(u0-r*g.N, 0), min(u1-r*g.N, g.N) // images [n0, n1) of row r
		if n0 >= n1 {
			continue
		}
		c, ky, kx := r/(g.KH*g.KW), r/g.KW%g.KH, r%g.KW
		out := j.col[r*cols+n0*ohw : r*cols+n1*ohw]
		oy0, oy1 := inside(g.PadH-ky, g.H, g.OH)
		ox0, ox1 := inside(g.PadW-kx, g.W, g.OW)
		if oy0 == oy1 || ox0 == ox1 {
			clear(out)
			continue
		}
		if oy0 > 0 || oy1 < g.OH || ox0 > 0 || ox1 < g.OW {
			for n := range n1 - n0 {
				blk := out[n*ohw : (n+1)*ohw]
				clear(blk[:oy0*g.OW])
				clear(blk[oy1*g.OW:])
				for oy := oy0; oy < oy1; oy++ {
					row := blk[oy*g.OW : (oy+1)*g.OW]
					clear(row[:ox0])
					clear(row[ox1:])
				}
			}
		}
		iy, ix := oy0+ky-g.PadH, ox0+kx-g.PadW
		copyBlocks(out[oy0*g.OW+ox0:], j.x[(c*g.N+n0)*hw+iy*g.W+ix:],
			blocks{ds: g.OW, dps: ohw, ss: g.W, sps: hw, planes: n1 - n0, rows: oy1 - oy0, width: ox1 - ox0})
	}
}

// inside is, for stride 1, the range [o0, o1) of the n outputs o whose
// input o-off lies in [0, size), off being the padding minus the kernel
// offset (o0 == o1 when there is none).
func inside(off, size, n int) (o0, o1 int) {
	o0, o1 = max(off, 0), min(size+off, n)
	if o1 < o0 {
		o1 = o0
	}
	return min(o0, n), min(o1, n)
}

// runGeneral is Im2Col for any geometry, split over rows of col (c, ky, kx).
func (j *im2colJob) runGeneral(w, nw int) {
	g := j.g
	rows, cols := g.ColRows(), g.ColCols()
	r0, r1 := pool.Span(rows, w, nw)
	for r := r0; r < r1; r++ {
		c, ky, kx := r/(g.KH*g.KW), r/g.KW%g.KH, r%g.KW
		out := j.col[r*cols : (r+1)*cols]
		for n := 0; n < g.N; n++ {
			plane := j.x[(c*g.N+n)*g.H*g.W:][:g.H*g.W]
			for oy := 0; oy < g.OH; oy++ {
				dst := out[(n*g.OH+oy)*g.OW:][:g.OW]
				iy := oy*g.SH - g.PadH + ky
				if iy < 0 || iy >= g.H {
					clear(dst)
					continue
				}
				src := plane[iy*g.W : (iy+1)*g.W]
				ix := kx - g.PadW
				if g.SW == 1 && ix >= 0 && ix+g.OW <= g.W {
					copy(dst, src[ix:ix+g.OW])
					continue
				}
				for ox := range dst {
					if ix >= 0 && ix < g.W {
						dst[ox] = src[ix]
					} else {
						dst[ox] = 0
					}
					ix += g.SW
				}
			}
		}
	}
}

type col2imJob struct {
	g       device.ConvGeom
	col, dx []float32
}

// Col2Im: see device.Backend. Split over input channels: each worker owns
// whole channels of dx and accumulates into them in a fixed order.
func (b *Backend) Col2Im(g device.ConvGeom, col, dx device.Buffer) {
	j := &b.jCol2im
	j.g, j.col, j.dx = g, f32(col), f32(dx)
	b.par(j, g.ColRows()*g.ColCols())
}

func (j *col2imJob) Run(w, nw int) {
	if j.g.SH == 1 && j.g.SW == 1 {
		j.runStride1(w, nw)
		return
	}
	j.runGeneral(w, nw)
}

// runStride1 is Col2Im for stride 1, split over the planes (c, n) of dx.
// The planes of one channel are cleared, then for each (ky, kx) in order
// the OHxOW blocks of col row (c, ky, kx) are added to the windows of the
// planes they were read from (the parts inside the image). Every element
// gets its terms in the order of runGeneral, ky then kx ascending, so the
// sums are the same bits; but the adds are whole row segments, and the
// planes of one channel (a few KiB) stay in cache between passes.
func (j *col2imJob) runStride1(w, nw int) {
	g := j.g
	cols, hw, ohw := g.ColCols(), g.H*g.W, g.OH*g.OW
	u0, u1 := pool.Span(g.C*g.N, w, nw)
	for c := u0 / g.N; c*g.N < u1; c++ {
		n0, n1 := max(u0-c*g.N, 0), min(u1-c*g.N, g.N) // planes [n0, n1) of channel c
		if n0 >= n1 {
			continue
		}
		dx := j.dx[(c*g.N+n0)*hw : (c*g.N+n1)*hw]
		clear(dx)
		for ky := 0; ky < g.KH; ky++ {
			oy0, oy1 := inside(g.PadH-ky, g.H, g.OH)
			if oy0 == oy1 {
				continue
			}
			for kx := 0; kx < g.KW; kx++ {
				ox0, ox1 := inside(g.PadW-kx, g.W, g.OW)
				if ox0 == ox1 {
					continue
				}
				r := (c*g.KH+ky)*g.KW + kx
				iy, ix := oy0+ky-g.PadH, ox0+kx-g.PadW
				addBlocks(dx[iy*g.W+ix:], j.col[r*cols+n0*ohw+oy0*g.OW+ox0:],
					blocks{ds: g.W, dps: hw, ss: g.OW, sps: ohw, planes: n1 - n0, rows: oy1 - oy0, width: ox1 - ox0})
			}
		}
	}
}

// runGeneral is Col2Im for any geometry, split over input channels: each
// worker owns whole channels of dx and accumulates into them in a fixed
// order.
func (j *col2imJob) runGeneral(w, nw int) {
	g := j.g
	cols := g.ColCols()
	c0, c1 := pool.Span(g.C, w, nw)
	for c := c0; c < c1; c++ {
		dxc := j.dx[c*g.N*g.H*g.W : (c+1)*g.N*g.H*g.W]
		clear(dxc)
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				row := j.col[((c*g.KH+ky)*g.KW+kx)*cols:][:cols]
				for n := 0; n < g.N; n++ {
					plane := dxc[n*g.H*g.W:][:g.H*g.W]
					for oy := 0; oy < g.OH; oy++ {
						iy := oy*g.SH - g.PadH + ky
						if iy < 0 || iy >= g.H {
							continue
						}
						src := row[(n*g.OH+oy)*g.OW:][:g.OW]
						dst := plane[iy*g.W : (iy+1)*g.W]
						ix := kx - g.PadW
						for _, v := range src {
							if ix >= 0 && ix < g.W {
								dst[ix] += v
							}
							ix += g.SW
						}
					}
				}
			}
		}
	}
}

// ---- pooling ----

type maxPoolFwdJob struct {
	g      device.PoolGeom
	x, y   []float32
	argmax []int32
	relu   bool // MaxPoolReLUForward
}

// MaxPoolForward: see device.Backend. Split over planes.
func (b *Backend) MaxPoolForward(g device.PoolGeom, x, y, argmax device.Buffer) {
	j := &b.jMaxF
	j.g, j.x, j.y, j.argmax, j.relu = g, f32(x), f32(y), i32(argmax), false
	b.par(j, g.Planes*g.H*g.W)
}

// MaxPoolReLUForward: see device.Backend. The pool of x, then, for every
// window whose maximum is not above 0 (and not NaN), relu of its first
// element at the first element: what the pool of the ReLU'd windows gives.
func (b *Backend) MaxPoolReLUForward(g device.PoolGeom, x, y, argmax device.Buffer) {
	j := &b.jMaxF
	j.g, j.x, j.y, j.argmax, j.relu = g, f32(x), f32(y), i32(argmax), true
	b.par(j, g.Planes*g.H*g.W)
}

func (j *maxPoolFwdJob) Run(w, nw int) {
	g := j.g
	p0, p1 := pool.Span(g.Planes, w, nw)
	if g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && 2*g.OH <= g.H && 2*g.OW <= g.W {
		hw, ohw := g.H*g.W, g.OH*g.OW
		for p := p0; p < p1; p++ {
			maxPool2x2(j.x[p*hw:][:hw], j.y[p*ohw:][:ohw], j.argmax[p*ohw:][:ohw], g.OH, g.OW, g.W)
		}
	} else {
		j.runGeneral(p0, p1)
	}
	if j.relu {
		j.reluWindows(p0, p1)
	}
}

// reluWindows turns the pool of planes p0..p1 into the pool of their ReLU
// (see MaxPoolReLUForward).
func (j *maxPoolFwdJob) reluWindows(p0, p1 int) {
	g := j.g
	for p := p0; p < p1; p++ {
		x := j.x[p*g.H*g.W:][:g.H*g.W]
		y := j.y[p*g.OH*g.OW:][:g.OH*g.OW]
		am := j.argmax[p*g.OH*g.OW:][:g.OH*g.OW]
		for o, m := range y {
			if m > 0 || m != m {
				continue
			}
			first := o/g.OW*g.SH*g.W + o%g.OW*g.SW
			v := x[first]
			if v < 0 {
				v = 0
			}
			y[o], am[o] = v, int32(first)
		}
	}
}

// runGeneral is MaxPoolForward for any window over planes p0..p1.
func (j *maxPoolFwdJob) runGeneral(p0, p1 int) {
	g := j.g
	for p := p0; p < p1; p++ {
		x := j.x[p*g.H*g.W:][:g.H*g.W]
		y := j.y[p*g.OH*g.OW:][:g.OH*g.OW]
		am := j.argmax[p*g.OH*g.OW:][:g.OH*g.OW]
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				best := oy*g.SH*g.W + ox*g.SW
				bv := x[best]
				for ky := 0; ky < g.KH; ky++ {
					base := (oy*g.SH+ky)*g.W + ox*g.SW
					for kx := 0; kx < g.KW; kx++ {
						if v := x[base+kx]; v > bv {
							bv, best = v, base+kx
						}
					}
				}
				y[oy*g.OW+ox] = bv
				am[oy*g.OW+ox] = int32(best)
			}
		}
	}
}

type maxPoolBwdJob struct {
	g      device.PoolGeom
	dy, dx []float32
	argmax []int32
}

// MaxPoolBackward: see device.Backend. Split over planes.
func (b *Backend) MaxPoolBackward(g device.PoolGeom, dy, argmax, dx device.Buffer) {
	j := &b.jMaxB
	j.g, j.dy, j.argmax, j.dx = g, f32(dy), i32(argmax), f32(dx)
	b.par(j, g.Planes*g.H*g.W)
}

// MaxPoolReLUBackward: see device.Backend. MaxPoolBackward of dy with the
// masked terms replaced by +0 (in scratch): an element gathers either only
// kept terms or only masked ones (see kernels/pool.cu), and the +0s give
// the +0 the ReLU's backward writes, so this is bit for bit the unfused
// pair.
func (b *Backend) MaxPoolReLUBackward(g device.PoolGeom, dy, y, argmax, dx device.Buffer) {
	n := g.Planes * g.OH * g.OW
	if cap(b.masked) < n {
		b.masked = make([]float32, n)
	}
	m, d, yy := b.masked[:n], f32(dy)[:n], f32(y)[:n]
	for i, v := range d {
		if !(yy[i] > 0) {
			v = 0
		}
		m[i] = v
	}
	j := &b.jMaxB
	j.g, j.dy, j.argmax, j.dx = g, m, i32(argmax), f32(dx)
	b.par(j, g.Planes*g.H*g.W)
}

func (j *maxPoolBwdJob) Run(w, nw int) {
	g := j.g
	hw, ohw := g.H*g.W, g.OH*g.OW
	fast := g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && 2*g.OH <= g.H && 2*g.OW <= g.W
	p0, p1 := pool.Span(g.Planes, w, nw)
	for p := p0; p < p1; p++ {
		dx, dy, am := j.dx[p*hw:][:hw], j.dy[p*ohw:][:ohw], j.argmax[p*ohw:][:ohw]
		if fast {
			maxPool2x2Bwd(dy, am, dx, g.OH, g.OW, g.H, g.W)
		} else {
			scatterAdd(dy, am, dx)
		}
	}
}

type avgPoolFwdJob struct {
	g    device.PoolGeom
	x, y []float32
}

// AvgPoolForward: see device.Backend. Split over planes.
func (b *Backend) AvgPoolForward(g device.PoolGeom, x, y device.Buffer) {
	j := &b.jAvgF
	j.g, j.x, j.y = g, f32(x), f32(y)
	b.par(j, g.Planes*g.H*g.W)
}

func (j *avgPoolFwdJob) Run(w, nw int) {
	g := j.g
	inv := 1 / float32(g.KH*g.KW)
	p0, p1 := pool.Span(g.Planes, w, nw)
	for p := p0; p < p1; p++ {
		x := j.x[p*g.H*g.W:][:g.H*g.W]
		y := j.y[p*g.OH*g.OW:][:g.OH*g.OW]
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				var s float32
				for ky := 0; ky < g.KH; ky++ {
					base := (oy*g.SH+ky)*g.W + ox*g.SW
					for kx := 0; kx < g.KW; kx++ {
						s += x[base+kx]
					}
				}
				y[oy*g.OW+ox] = s * inv
			}
		}
	}
}

type avgPoolBwdJob struct {
	g      device.PoolGeom
	dy, dx []float32
}

// AvgPoolBackward: see device.Backend. Split over planes.
func (b *Backend) AvgPoolBackward(g device.PoolGeom, dy, dx device.Buffer) {
	j := &b.jAvgB
	j.g, j.dy, j.dx = g, f32(dy), f32(dx)
	b.par(j, g.Planes*g.H*g.W)
}

func (j *avgPoolBwdJob) Run(w, nw int) {
	g := j.g
	inv := 1 / float32(g.KH*g.KW)
	p0, p1 := pool.Span(g.Planes, w, nw)
	for p := p0; p < p1; p++ {
		dx := j.dx[p*g.H*g.W:][:g.H*g.W]
		clear(dx)
		dy := j.dy[p*g.OH*g.OW:][:g.OH*g.OW]
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				v := dy[oy*g.OW+ox] * inv
				for ky := 0; ky < g.KH; ky++ {
					base := (oy*g.SH+ky)*g.W + ox*g.SW
					for kx := 0; kx < g.KW; kx++ {
						dx[base+kx] += v
					}
				}
			}
		}
	}
}

// ---- bias, ReLU ----

type biasJob struct {
	y, bias         []float32
	outer, c, inner int
	relu            bool
}

// AddBias: see device.Backend. Split over (outer, c) rows.
func (b *Backend) AddBias(y, bias device.Buffer, outer, c, inner int, relu bool) {
	j := &b.jBias
	j.y, j.bias, j.outer, j.c, j.inner, j.relu = f32(y), f32(bias), outer, c, inner, relu
	b.par(j, outer*c*inner)
}

func (j *biasJob) Run(w, nw int) {
	r0, r1 := pool.Span(j.outer*j.c, w, nw)
	if j.inner == 1 {
		j.runInner1(r0, r1)
		return
	}
	for r := r0; r < r1; r++ {
		bv := j.bias[r%j.c]
		row := j.y[r*j.inner : (r+1)*j.inner]
		if j.relu {
			addBiasRelu(row, bv)
		} else {
			addBias(row, bv)
		}
	}
}

// runInner1 is AddBias on [outer, c] (dense layers) over elements r0..r1
// of y, element r taking bias[r%c]: row by row, a vector add.
func (j *biasJob) runInner1(r0, r1 int) {
	for r0 < r1 {
		ch := r0 % j.c
		n := min(j.c-ch, r1-r0)
		row, b := j.y[r0:r0+n], j.bias[ch:ch+n]
		if j.relu {
			addVecReluGo(row, b)
		} else {
			addVecGo(row, b)
		}
		r0 += n
	}
}

type biasGradJob struct {
	dy, db          []float32
	outer, c, inner int
}

// BiasGrad: see device.Backend. Split over channels; each channel is summed
// in float64 and rounded once. With inner 1 (dense layers) the sum runs in
// order over outer. Otherwise it runs over 8 float64 partial sums, element
// i of each row going to partial i%8 (in order of outer, then i), which are
// then added pairwise in a fixed order: deterministic, and never less
// accurate than one running sum in practice.
func (b *Backend) BiasGrad(dy, db device.Buffer, outer, c, inner int) {
	j := &b.jBiasG
	j.dy, j.db, j.outer, j.c, j.inner = f32(dy), f32(db), outer, c, inner
	if c < b.threads {
		j.Run(0, 1)
		return
	}
	b.par(j, outer*c*inner)
}

func (j *biasGradJob) Run(w, nw int) {
	c0, c1 := pool.Span(j.c, w, nw)
	for ch := c0; ch < c1; ch++ {
		if j.inner == 1 {
			var s float64
			for o := 0; o < j.outer; o++ {
				s += float64(j.dy[o*j.c+ch])
			}
			j.db[ch] = float32(s)
			continue
		}
		var acc [8]float64
		for o := 0; o < j.outer; o++ {
			sumLanes(j.dy[(o*j.c+ch)*j.inner:][:j.inner], &acc)
		}
		j.db[ch] = float32(laneSum(&acc))
	}
}

// ActBiasGrad: see device.Backend; the two ops one after the other.
func (b *Backend) ActBiasGrad(act device.Act, a, dy, db device.Buffer, outer, c, inner int) {
	switch act {
	case device.ActReLU:
		b.ReLUBackward(a, dy, dy, outer*c*inner)
	case device.ActGELU:
		b.GELUBackward(a, dy, dy, outer*c*inner)
	}
	b.BiasGrad(dy, db, outer, c, inner)
}

// BiasAct: see device.Backend; the two ops one after the other.
func (b *Backend) BiasAct(z, y, bias device.Buffer, outer, c, inner int, act device.Act) {
	n := outer * c * inner
	b.AddBias(z, bias, outer, c, inner, act == device.ActReLU)
	if act == device.ActGELU {
		b.GELUForward(z, y, n)
		return
	}
	copy(f32(y)[:n], f32(z)[:n]) // nothing to do when y is z
}

// ReLUForward: see device.Backend.
func (b *Backend) ReLUForward(x, y device.Buffer, n int) {
	xs, ys := f32(x)[:n], f32(y)[:n]
	for i, v := range xs {
		ys[i] = max(v, 0)
	}
}

type reluBwdJob struct{ y, dy, dx []float32 }

// ReLUBackward: see device.Backend.
func (b *Backend) ReLUBackward(y, dy, dx device.Buffer, n int) {
	j := &b.jReLUB
	j.y, j.dy, j.dx = f32(y)[:n], f32(dy)[:n], f32(dx)[:n]
	b.par(j, n)
}

func (j *reluBwdJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.y), w, nw)
	reluBwd(j.y[lo:hi], j.dy[lo:hi], j.dx[lo:hi])
}

// ---- layout ----

type swapJob struct {
	src, dst    []float32
	a, b, inner int
}

// SwapAxes01: see device.Backend. Split over a.
func (b *Backend) SwapAxes01(src, dst device.Buffer, a, bb, inner int) {
	j := &b.jSwap
	j.src, j.dst, j.a, j.b, j.inner = f32(src), f32(dst), a, bb, inner
	b.par(j, a*bb*inner)
}

func (j *swapJob) Run(w, nw int) {
	a0, a1 := pool.Span(j.a, w, nw)
	for a := a0; a < a1; a++ {
		for bi := 0; bi < j.b; bi++ {
			copy(j.dst[(bi*j.a+a)*j.inner:][:j.inner], j.src[(a*j.b+bi)*j.inner:][:j.inner])
		}
	}
}

// ---- loss ----

type softmaxJob struct {
	logits, dl, stats []float32
	labels            []int32
	n, k              int
	scale, smoothing  float32
}

// SoftmaxXent: see device.Backend. Rows are independent; the statistics are
// summed in float64 in row order and added once. Per row, in float64: mx is
// the first largest logit, sum = sum_j exp(float64(v_j - mx)) (the
// difference in float32), logZ = log(sum), p_j = exp(float64(v_j - mx)) /
// sum. The loss is logZ - float64(v_label - mx); with smoothing eps it is
//
//	(1-eps)*(logZ - float64(v_label - mx)) + eps*(logZ - s/k),
//	s = sum_j float64(v_j - mx)
//
// (eps as float64: the mean of -log p_j over j is logZ - s/k). The gradient
// is float32(p_j - q_j) * gradScale with q_j = eps/k + (label ? 1-eps : 0)
// in float64, which for eps 0 is exactly p_j - onehot.
func (b *Backend) SoftmaxXent(logits, labels device.Buffer, n, k int, gradScale, smoothing float32, dlogits, stats device.Buffer) {
	j := &b.jSoftmax
	j.logits, j.labels, j.n, j.k, j.scale, j.dl, j.stats = f32(logits), i32(labels), n, k, gradScale, f32(dlogits), f32(stats)
	j.smoothing = smoothing
	j.Run(0, 1)
}

func (j *softmaxJob) Run(w, nw int) {
	var loss, correct float64
	for r := 0; r < j.n; r++ {
		l, ok := j.row(r)
		loss += l
		if ok {
			correct++
		}
	}
	j.stats[0] += float32(loss)
	j.stats[1] += float32(correct)
}

// row is the loss of row r and whether its first largest logit is at the
// label; it writes the row's gradient when j.dl is set.
func (j *softmaxJob) row(r int) (loss float64, correct bool) {
	row := j.logits[r*j.k : (r+1)*j.k]
	lab := int(j.labels[r])
	mx, arg := row[0], 0
	for i, v := range row {
		if v > mx {
			mx, arg = v, i
		}
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v - mx))
	}
	loss = math.Log(sum) - float64(row[lab]-mx)
	eps := float64(j.smoothing)
	if eps != 0 {
		var s float64
		for _, v := range row {
			s += float64(v - mx)
		}
		loss = float64((1-eps)*loss) + float64(eps*(math.Log(sum)-s/float64(j.k)))
	}
	if j.dl != nil {
		d := j.dl[r*j.k : (r+1)*j.k]
		qo := eps / float64(j.k)
		for i, v := range row {
			p := math.Exp(float64(v-mx)) / sum
			q := qo
			if i == lab {
				q += 1 - eps
			}
			d[i] = float32(p-q) * j.scale
		}
	}
	return loss, arg == lab
}

// ---- optimiser ----

type adamJob struct {
	p, g, m, v       []float32
	lrT, b1, b2, eps float32
	l2, decay        float32
}

// Adam: see device.Backend. Elementwise, split over the flat buffer. With
// l2 and decay both 0 it runs the plain kernel (adam, AVX2 where there is
// one); otherwise adamGeneral, where a zero l2 or decay skips its term.
func (b *Backend) Adam(params, grads, m, v device.Buffer, n int, lrT, beta1, beta2, eps, l2, decay float32) {
	j := &b.jAdam
	j.p, j.g, j.m, j.v = f32(params)[:n], f32(grads)[:n], f32(m)[:n], f32(v)[:n]
	j.lrT, j.b1, j.b2, j.eps, j.l2, j.decay = lrT, beta1, beta2, eps, l2, decay
	b.par(j, n*8)
}

func (j *adamJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.p), w, nw)
	if j.l2 == 0 && j.decay == 0 {
		adam(j.p[lo:hi], j.g[lo:hi], j.m[lo:hi], j.v[lo:hi], j.lrT, j.b1, j.b2, j.eps)
		return
	}
	adamGeneral(j.p[lo:hi], j.g[lo:hi], j.m[lo:hi], j.v[lo:hi], j.lrT, j.b1, j.b2, j.eps, j.l2, j.decay)
}

// ---- data ----

type gatherJob struct {
	src               []uint8
	idx, labels, dstL []int32
	n, c, hw          int
	scale             float32
	dst               []float32
}

// GatherImages: see device.Backend. Split over images.
func (b *Backend) GatherImages(src, idx device.Buffer, n, c, hw int, scale float32, dst device.Buffer, labels, dstLabels device.Buffer) {
	j := &b.jGather
	j.src, j.idx, j.n, j.c, j.hw, j.scale, j.dst = src.(*buf).u, i32(idx), n, c, hw, scale, f32(dst)
	j.labels, j.dstL = i32(labels), i32(dstLabels)
	b.par(j, n*c*hw)
}

func (j *gatherJob) Run(w, nw int) {
	i0, i1 := pool.Span(j.n, w, nw)
	size := j.c * j.hw
	for i := i0; i < i1; i++ {
		img := j.src[int(j.idx[i])*size:][:size]
		for ch := 0; ch < j.c; ch++ {
			d := j.dst[(ch*j.n+i)*j.hw:][:j.hw]
			for p, v := range img[ch*j.hw : (ch+1)*j.hw] {
				d[p] = float32(v) * j.scale
			}
		}
		if j.dstL != nil {
			j.dstL[i] = j.labels[j.idx[i]]
		}
	}
}

// ---- vector ----

// Fill sets x[:n] = v.
func (b *Backend) Fill(x device.Buffer, n int, v float32) {
	xs := f32(x)[:n]
	for i := range xs {
		xs[i] = v
	}
}
