package cpu

import "math"

// Inner loops of the ops (ops.go). Each has a pure Go body, the reference,
// and on amd64 with AVX2 an assembly twin (ops_amd64.s) that computes the
// same bits, so results do not depend on the instruction set (the twin of
// maxPool2x2Bwd is the general scatter, scatterAdd). The wrappers reslice
// every argument to the exact length the assembly touches, so the bounds
// checks happen here, once per call; the Go loops are free of bounds
// checks except where noted.

// addBiasRelu sets row[i] = row[i]+b, then 0 where that is < 0 (-0 and NaN
// are not, and stay).
func addBiasRelu(row []float32, b float32) {
	if useAVX2 && len(row) >= 8 {
		n := len(row) &^ 7
		biasReluAVX2(&row[0], n, b)
		row = row[n:]
	}
	addBiasReluGo(row, b)
}

// isNeg reports whether the float32 with bits u is < 0: sign bit set and
// neither -0 (0x80000000) nor a NaN (above 0xff800000, -Inf).
func isNeg(u uint32) bool { return u-0x80000001 < 0x7f800000 }

// isPos reports whether the float32 with bits u is > 0: in (0, +Inf].
func isPos(u uint32) bool { return u-1 < 0x7f800000 }

// addBiasReluGo tests the sign on the bits, so the compiler emits a
// conditional move instead of a branch that the signs of ReLU inputs,
// close to random, would mispredict half the time.
func addBiasReluGo(row []float32, b float32) {
	for i, v := range row {
		u := math.Float32bits(v + b)
		if isNeg(u) {
			u = 0
		}
		row[i] = math.Float32frombits(u)
	}
}

// addBias sets row[i] += b.
func addBias(row []float32, b float32) {
	if useAVX2 && len(row) >= 8 {
		n := len(row) &^ 7
		biasAddAVX2(&row[0], n, b)
		row = row[n:]
	}
	addBiasGo(row, b)
}

func addBiasGo(row []float32, b float32) {
	for i := range row {
		row[i] += b
	}
}

// addVecReluGo sets row[i] = row[i]+b[i], then 0 where that is < 0.
func addVecReluGo(row, b []float32) {
	b = b[:len(row)]
	for i, v := range row {
		u := math.Float32bits(v + b[i])
		if isNeg(u) {
			u = 0
		}
		row[i] = math.Float32frombits(u)
	}
}

// addVecGo sets row[i] += b[i].
func addVecGo(row, b []float32) {
	b = b[:len(row)]
	for i := range row {
		row[i] += b[i]
	}
}

// reluBwd sets dx[i] = dy[i] where y[i] > 0, else 0, for i < len(y); dx
// may be dy.
func reluBwd(y, dy, dx []float32) {
	dy, dx = dy[:len(y)], dx[:len(y)]
	if useAVX2 && len(y) >= 8 {
		n := len(y) &^ 7
		reluBwdAVX2(&y[0], &dy[0], &dx[0], n)
		y, dy, dx = y[n:], dy[n:], dx[n:]
	}
	reluBwdGo(y, dy, dx)
}

// reluBwdGo masks the bits of dy (branch-free, as addBiasReluGo).
func reluBwdGo(y, dy, dx []float32) {
	dy, dx = dy[:len(y)], dx[:len(y)]
	for i, v := range y {
		m := uint32(0)
		if isPos(math.Float32bits(v)) {
			m = ^uint32(0)
		}
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & m)
	}
}

// sumLanes adds x[i] to acc[i%8] in float64, in order of i within each lane.
func sumLanes(x []float32, acc *[8]float64) {
	if useAVX2 && len(x) >= 8 {
		n := len(x) &^ 7
		sumLanesAVX2(&x[0], n, acc)
		x = x[n:]
	}
	sumLanesGo(x, acc)
}

func sumLanesGo(x []float32, acc *[8]float64) {
	a0, a1, a2, a3, a4, a5, a6, a7 := acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]
	for ; len(x) >= 8; x = x[8:] {
		a0 += float64(x[0])
		a1 += float64(x[1])
		a2 += float64(x[2])
		a3 += float64(x[3])
		a4 += float64(x[4])
		a5 += float64(x[5])
		a6 += float64(x[6])
		a7 += float64(x[7])
	}
	*acc = [8]float64{a0, a1, a2, a3, a4, a5, a6, a7}
	for i, v := range x {
		acc[i] += float64(v)
	}
}

// laneSum adds the 8 lanes pairwise in a fixed order.
func laneSum(a *[8]float64) float64 {
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

// adam is the Adam update of device.Backend over len(p) elements.
func adam(p, g, m, v []float32, lrT, b1, b2, eps float32) {
	n := len(p)
	g, m, v = g[:n], m[:n], v[:n]
	if useAVX2 && n >= 8 {
		k := n &^ 7
		adamAVX2(&p[0], &g[0], &m[0], &v[0], k, lrT, b1, b2, eps, 1-b1, 1-b2)
		p, g, m, v = p[k:], g[k:], m[k:], v[k:]
	}
	adamGo(p, g, m, v, lrT, b1, b2, eps)
}

// adamGo rounds every product (the explicit conversions) so that the
// compiler cannot fuse a multiply and an add into an FMA, as it does with
// GOAMD64=v3: the result is the default build's, the assembly's.
func adamGo(p, g, m, v []float32, lrT, b1, b2, eps float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i := range p {
		gi := g[i]
		mi := float32(b1*m[i]) + float32((1-b1)*gi)
		vi := float32(b2*v[i]) + float32((1-b2)*gi*gi)
		m[i], v[i] = mi, vi
		p[i] -= lrT * mi / (float32(math.Sqrt(float64(vi))) + eps)
	}
}

// maxPool2x2 is max pooling with 2x2 windows and stride 2 over one plane:
// x holds rows of w (at least 2*oh of them, 2*ow <= w), y and am are
// [oh][ow]. Same results as the general loop of maxPoolFwdJob: the first
// maximum in the order top-left, top-right, bottom-left, bottom-right.
func maxPool2x2(x, y []float32, am []int32, oh, ow, w int) {
	if oh <= 0 || ow <= 0 {
		return
	}
	x, y, am = x[:(2*oh-1)*w+2*ow], y[:oh*ow], am[:oh*ow]
	if useAVX2 && ow >= 4 && 2*ow <= w {
		maxPool2x2AVX2(&x[0], &y[0], &am[0], oh, ow, w)
		return
	}
	maxPool2x2Go(x, y, am, oh, ow, w)
}

func maxPool2x2Go(x, y []float32, am []int32, oh, ow, w int) {
	for oy := 0; oy < oh; oy++ {
		base := 2 * oy * w
		r0 := x[base : base+2*ow]
		r1 := x[base+w : base+w+2*ow]
		yr := y[oy*ow : oy*ow+ow]
		ar := am[oy*ow : oy*ow+ow]
		for i, ox := 0, 0; i+1 < len(r0) && i+1 < len(r1) && ox < len(yr) && ox < len(ar); i, ox = i+2, ox+1 {
			a, b := r0[i], r0[i+1]
			c, d := r1[i], r1[i+1]
			bv, bi := a, 0
			if b > bv {
				bv, bi = b, 1
			}
			if c > bv {
				bv, bi = c, w
			}
			if d > bv {
				bv, bi = d, w+1
			}
			yr[ox] = bv
			ar[ox] = int32(base + i + bi)
		}
	}
}

// maxPool2x2Bwd is the adjoint of maxPool2x2 over one plane of h x w: it
// overwrites dx with zeros and dy[i] at am[i], as the general loop of
// maxPoolBwdJob does (0 + dy, so -0 becomes +0). The windows do not
// overlap, so when every argmax lies in its own window each element of dx
// gets at most one term and can be written in one pass, 2x2 at a time;
// otherwise (not from MaxPoolForward) it runs the general scatter.
func maxPool2x2Bwd(dy []float32, am []int32, dx []float32, oh, ow, h, w int) {
	dy, am, dx = dy[:oh*ow], am[:oh*ow], dx[:h*w]
	// Under 8 windows a row, the plain scatter is as fast (measured).
	if oh <= 0 || ow < 8 || !useAVX2 || !maxPool2x2BwdAVX2(&dy[0], &am[0], &dx[0], oh, ow, h, w) {
		scatterAdd(dy, am, dx)
	}
}

// scatterAdd sets dx to zeros, then adds dy[i] to dx[am[i]].
func scatterAdd(dy []float32, am []int32, dx []float32) {
	clear(dx)
	am = am[:len(dy)]
	for i, v := range dy {
		dx[am[i]] += v
	}
}

// blocks describes planes blocks of rows rows of width floats: rows of a
// block are ds floats apart in dst and ss in src, blocks dps and sps (each
// stride at least the extent it steps over, so nothing overlaps).
type blocks struct {
	ds, dps, ss, sps, planes, rows, width int
}

// lens are the lengths of dst and src that the blocks span (0 when empty).
func (b *blocks) lens() (dn, sn int) {
	if b.planes <= 0 || b.rows <= 0 || b.width <= 0 {
		return 0, 0
	}
	return (b.planes-1)*b.dps + (b.rows-1)*b.ds + b.width, (b.planes-1)*b.sps + (b.rows-1)*b.ss + b.width
}

// copyBlocks copies the blocks of src to dst.
func copyBlocks(dst, src []float32, b blocks) {
	dn, sn := b.lens()
	if dn == 0 {
		return
	}
	dst, src = dst[:dn], src[:sn]
	if useAVX2 && b.width >= 4 {
		copyBlocksAVX2(&dst[0], b.ds, b.dps, &src[0], b.ss, b.sps, b.planes, b.rows, b.width)
		return
	}
	copyBlocksGo(dst, src, b)
}

func copyBlocksGo(dst, src []float32, b blocks) {
	for p := range b.planes {
		for r := range b.rows {
			d, s := p*b.dps+r*b.ds, p*b.sps+r*b.ss
			copy(dst[d:d+b.width], src[s:s+b.width])
		}
	}
}

// addBlocks adds the blocks of src to those of dst, each element once.
func addBlocks(dst, src []float32, b blocks) {
	dn, sn := b.lens()
	if dn == 0 {
		return
	}
	dst, src = dst[:dn], src[:sn]
	if useAVX2 && b.width >= 4 {
		addBlocksAVX2(&dst[0], b.ds, b.dps, &src[0], b.ss, b.sps, b.planes, b.rows, b.width)
		return
	}
	addBlocksGo(dst, src, b)
}

func addBlocksGo(dst, src []float32, b blocks) {
	for p := range b.planes {
		for r := range b.rows {
			s := src[p*b.sps+r*b.ss:][:b.width]
			d := dst[p*b.dps+r*b.ds:][:len(s)]
			for i, v := range s {
				d[i] += v
			}
		}
	}
}
