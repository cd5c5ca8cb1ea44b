package cpu

import (
	"math"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/internal/pool"
)

// Batch normalisation over x viewed as [outer, C, inner]: channel ch is
// the outer rows x[(o*C+ch)*inner:][:inner], o = 0..outer-1 (one row of
// N*H*W for CNHW conv output, outer = 1; N rows of one element for dense
// output [N, F], inner = 1). The three ops split the channels over the
// pool; one worker computes everything of a channel, in a fixed order, so
// the results do not depend on the thread count.
//
// Sums are float64, M = outer*inner. With inner > 1, element t of each row
// goes to partial sum t%8 (in order of o, then t), and the 8 partials are
// added pairwise by laneSum, as in BiasGrad. With inner 1 each channel has
// one running sum in order of o; the worker then walks the rows of x over
// its channels (contiguous), keeping each channel's state in bnChan
// scratch.

// bnChan is the state of one channel: its map (bnAffine), two float64
// sums, and BatchNormBackward's float64 coefficients of dx.
type bnChan struct {
	aff     bnAffine
	s1, s2  float64
	k, a, g float64
}

// chans is the scratch of c channels, grown only when c grows: a
// steady-state call allocates nothing.
func (b *Backend) chans(c int) []bnChan {
	if len(b.bnChans) < c {
		b.bnChans = make([]bnChan, c)
	}
	return b.bnChans[:c]
}

// bnInvStd is 1/sqrt(variance+eps) computed in float64 and rounded once to
// float32: float32(1 / sqrt(float64(variance) + float64(eps))).
func bnInvStd(variance, eps float32) float32 {
	return float32(1 / math.Sqrt(float64(variance)+float64(eps)))
}

// bnAffine is the per-channel map of BatchNormForward: in float32, each
// operation rounded (no FMA),
//
//	xhat = (x - mean) * invstd,  invstd = bnInvStd(variance, eps)
//	z    = xhat*gamma + beta
type bnAffine struct{ mean, inv, gamma, beta float32 }

func (k *bnAffine) xhat(x float32) float32 { return (x - k.mean) * k.inv }

func (k *bnAffine) z(x float32) float32 { return float32(k.xhat(x)*k.gamma) + k.beta }

// bnRow is row o of channel ch.
func bnRow(x []float32, c, inner, o, ch int) []float32 {
	return x[(o*c+ch)*inner:][:inner]
}

// ---- statistics ----

type bnStatsJob struct {
	x, mean, variance []float32
	outer, c, inner   int
	chans             []bnChan
}

// BatchNormStats: see device.Backend. Per channel, in float64: mean =
// sum(x)/M, then variance = sum((float64(x)-mean)^2)/M with the unrounded
// mean; both are rounded to float32 once.
func (b *Backend) BatchNormStats(x, mean, variance device.Buffer, outer, c, inner int) {
	j := &b.jBNStats
	j.x, j.mean, j.variance = f32(x)[:outer*c*inner], f32(mean)[:c], f32(variance)[:c]
	j.outer, j.c, j.inner, j.chans = outer, c, inner, b.chans(c)
	b.par(j, outer*c*inner*2)
}

func (j *bnStatsJob) Run(w, nw int) {
	c0, c1 := pool.Span(j.c, w, nw)
	if j.inner == 1 {
		j.runDense(c0, c1)
		return
	}
	for ch := c0; ch < c1; ch++ {
		mean, variance := j.moments(ch)
		j.mean[ch], j.variance[ch] = float32(mean), float32(variance)
	}
}

// moments is the mean and biased variance of channel ch, in float64.
func (j *bnStatsJob) moments(ch int) (mean, variance float64) {
	m := float64(j.outer * j.inner)
	var acc [8]float64
	for o := 0; o < j.outer; o++ {
		sumLanes(bnRow(j.x, j.c, j.inner, o, ch), &acc)
	}
	mean = laneSum(&acc) / m
	acc = [8]float64{}
	for o := 0; o < j.outer; o++ {
		sqDevLanes(bnRow(j.x, j.c, j.inner, o, ch), mean, &acc)
	}
	return mean, laneSum(&acc) / m
}

// sqDevLanes adds (float64(x[t]) - mean)^2 to acc[t%8], in order of t.
func sqDevLanes(x []float32, mean float64, acc *[8]float64) {
	for t, v := range x {
		d := float64(v) - mean
		acc[t&7] += float64(d * d)
	}
}

// runDense is the statistics of channels c0..c1 with inner 1: s1 is the
// sum, then the mean, s2 the sum of squared deviations.
func (j *bnStatsJob) runDense(c0, c1 int) {
	cs := j.chans[c0:c1]
	for i := range cs {
		cs[i].s1, cs[i].s2 = 0, 0
	}
	for o := 0; o < j.outer; o++ {
		row := j.x[o*j.c+c0:][:len(cs)]
		for i, v := range row {
			cs[i].s1 += float64(v)
		}
	}
	m := float64(j.outer)
	for i := range cs {
		cs[i].s1 /= m
	}
	for o := 0; o < j.outer; o++ {
		row := j.x[o*j.c+c0:][:len(cs)]
		for i, v := range row {
			d := float64(v) - cs[i].s1
			cs[i].s2 += float64(d * d)
		}
	}
	for i := range cs {
		j.mean[c0+i], j.variance[c0+i] = float32(cs[i].s1), float32(cs[i].s2/m)
	}
}

// ---- forward ----

type bnFwdJob struct {
	x, mean, variance, gamma, beta []float32
	z, y                           []float32 // z may be nil
	outer, c, inner                int
	eps                            float32
	act                            device.Act
	chans                          []bnChan
}

// BatchNormForward: see device.Backend, bnAffine and activate.
func (b *Backend) BatchNormForward(x, mean, variance, gamma, beta device.Buffer, outer, c, inner int, eps float32, act device.Act, z, y device.Buffer) {
	n := outer * c * inner
	j := &b.jBNFwd
	j.x, j.mean, j.variance, j.gamma, j.beta = f32(x)[:n], f32(mean)[:c], f32(variance)[:c], f32(gamma)[:c], f32(beta)[:c]
	j.z, j.y = nil, f32(y)[:n]
	if z != nil {
		j.z = f32(z)[:n]
	}
	j.outer, j.c, j.inner, j.eps, j.act, j.chans = outer, c, inner, eps, act, b.chans(c)
	work := n
	if act == device.ActGELU {
		work *= 16
	}
	b.par(j, work)
}

func (j *bnFwdJob) affine(ch int) bnAffine {
	return bnAffine{mean: j.mean[ch], inv: bnInvStd(j.variance[ch], j.eps), gamma: j.gamma[ch], beta: j.beta[ch]}
}

func (j *bnFwdJob) Run(w, nw int) {
	c0, c1 := pool.Span(j.c, w, nw)
	if j.inner == 1 {
		j.runDense(c0, c1)
		return
	}
	for ch := c0; ch < c1; ch++ {
		k := j.affine(ch)
		for o := 0; o < j.outer; o++ {
			off := (o*j.c + ch) * j.inner
			dst, y := j.outRows(off, j.inner)
			for i, v := range j.x[off:][:len(dst)] {
				dst[i] = k.z(v)
			}
			activateRow(dst, y, j.act)
		}
	}
}

// outRows is where z goes for the n elements from off (z when it is
// written, else y) and y.
func (j *bnFwdJob) outRows(off, n int) (dst, y []float32) {
	y = j.y[off:][:n]
	if j.z != nil {
		return j.z[off:][:n], y
	}
	return y, y
}

// runDense is the forward pass of channels c0..c1 with inner 1, row by row.
func (j *bnFwdJob) runDense(c0, c1 int) {
	cs := j.chans[c0:c1]
	for i := range cs {
		cs[i].aff = j.affine(c0 + i)
	}
	for o := 0; o < j.outer; o++ {
		off := o*j.c + c0
		dst, y := j.outRows(off, len(cs))
		for i, v := range j.x[off:][:len(dst)] {
			dst[i] = cs[i].aff.z(v)
		}
		activateRow(dst, y, j.act)
	}
}

// activate is the fused activation of BatchNormForward: ReLU is
// z < 0 ? 0 : z (-0 and NaN pass through, as in AddBias); GELU is gelu.
func activate(z float32, act device.Act) float32 {
	switch act {
	case device.ActReLU:
		if z < 0 {
			return 0
		}
	case device.ActGELU:
		return gelu(z)
	}
	return z
}

// activateRow sets y = activate(z) (y may be z).
func activateRow(z, y []float32, act device.Act) {
	y = y[:len(z)]
	switch act {
	case device.ActNone:
		copy(y, z)
	case device.ActReLU:
		for i, v := range z {
			u := math.Float32bits(v)
			if isNeg(u) {
				u = 0
			}
			y[i] = math.Float32frombits(u)
		}
	default:
		for i, v := range z {
			y[i] = activate(v, act)
		}
	}
}

// ---- backward ----

type bnBwdJob struct {
	x, dz, mean, variance, gamma []float32
	dx, dgamma, dbeta            []float32
	outer, c, inner              int
	eps                          float32
	chans                        []bnChan
}

// BatchNormActBackward: see device.Backend; the activation's backward,
// then BatchNormBackward.
func (b *Backend) BatchNormActBackward(act device.Act, a, x, dy, mean, variance, gamma device.Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta device.Buffer) {
	n := outer * c * inner
	switch act {
	case device.ActReLU:
		b.ReLUBackward(a, dy, dy, n)
	case device.ActGELU:
		b.GELUBackward(a, dy, dy, n)
	}
	b.BatchNormBackward(x, dy, mean, variance, gamma, outer, c, inner, eps, dx, dgamma, dbeta)
}

// BatchNormBackward: see device.Backend. Per channel, with invstd =
// bnInvStd(variance, eps) and the float32 xhat = (x - mean) * invstd of
// bnAffine, it sums in float64 sb = sum dz and sg = sum
// float64(dz)*float64(xhat), writes dbeta = float32(sb), dgamma =
// float32(sg), then, with the unrounded sums, in float64 rounded once:
//
//	dx = float32(k * ((float64(dz) - a) - float64(xhat)*g)),
//	k = float64(gamma) * float64(invstd),  a = sb/M,  g = sg/M
//
// Every element of dz is read before the channel's dx is written, so dx
// may be dz.
func (b *Backend) BatchNormBackward(x, dz, mean, variance, gamma device.Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta device.Buffer) {
	n := outer * c * inner
	j := &b.jBNBwd
	j.x, j.dz, j.dx = f32(x)[:n], f32(dz)[:n], f32(dx)[:n]
	j.mean, j.variance, j.gamma = f32(mean)[:c], f32(variance)[:c], f32(gamma)[:c]
	j.dgamma, j.dbeta = f32(dgamma)[:c], f32(dbeta)[:c]
	j.outer, j.c, j.inner, j.eps, j.chans = outer, c, inner, eps, b.chans(c)
	b.par(j, n*3)
}

func (j *bnBwdJob) Run(w, nw int) {
	c0, c1 := pool.Span(j.c, w, nw)
	if j.inner == 1 {
		j.runDense(c0, c1)
		return
	}
	for ch := c0; ch < c1; ch++ {
		j.channel(ch)
	}
}

// finish writes dbeta and dgamma of channel ch from its sums and sets the
// coefficients of dx.
func (j *bnBwdJob) finish(ch int, s *bnChan) {
	j.dbeta[ch], j.dgamma[ch] = float32(s.s1), float32(s.s2)
	m := float64(j.outer * j.inner)
	s.k, s.a, s.g = float64(j.gamma[ch])*float64(s.aff.inv), s.s1/m, s.s2/m
}

// dx is one element of dx (see BatchNormBackward).
func (s *bnChan) dx(x, dz float32) float32 {
	xhat := s.aff.xhat(x)
	return float32(s.k * ((float64(dz) - s.a) - float64(float64(xhat)*s.g)))
}

func (j *bnBwdJob) channel(ch int) {
	s := bnChan{aff: bnAffine{mean: j.mean[ch], inv: bnInvStd(j.variance[ch], j.eps)}}
	var sb, sg [8]float64
	for o := 0; o < j.outer; o++ {
		bnGradLanes(bnRow(j.x, j.c, j.inner, o, ch), bnRow(j.dz, j.c, j.inner, o, ch), &s.aff, &sb, &sg)
	}
	s.s1, s.s2 = laneSum(&sb), laneSum(&sg)
	j.finish(ch, &s)
	for o := 0; o < j.outer; o++ {
		off := (o*j.c + ch) * j.inner
		x, dz, dx := j.x[off:][:j.inner], j.dz[off:][:j.inner], j.dx[off:][:j.inner]
		for t, v := range x {
			dx[t] = s.dx(v, dz[t])
		}
	}
}

// bnGradLanes adds dz[t] to sb[t%8] and dz[t]*xhat[t] to sg[t%8], in
// float64, in order of t.
func bnGradLanes(x, dz []float32, k *bnAffine, sb, sg *[8]float64) {
	dz = dz[:len(x)]
	for t, v := range x {
		d := float64(dz[t])
		sb[t&7] += d
		sg[t&7] += float64(d * float64(k.xhat(v)))
	}
}

// runDense is the backward pass of channels c0..c1 with inner 1, row by
// row: the sums, then dx.
func (j *bnBwdJob) runDense(c0, c1 int) {
	cs := j.chans[c0:c1]
	for i := range cs {
		cs[i] = bnChan{aff: bnAffine{mean: j.mean[c0+i], inv: bnInvStd(j.variance[c0+i], j.eps)}}
	}
	for o := 0; o < j.outer; o++ {
		off := o*j.c + c0
		dz := j.dz[off:][:len(cs)]
		for i, v := range j.x[off:][:len(cs)] {
			d := float64(dz[i])
			cs[i].s1 += d
			cs[i].s2 += float64(d * float64(cs[i].aff.xhat(v)))
		}
	}
	for i := range cs {
		j.finish(c0+i, &cs[i])
	}
	for o := 0; o < j.outer; o++ {
		off := o*j.c + c0
		dz, dx := j.dz[off:][:len(cs)], j.dx[off:][:len(cs)]
		for i, v := range j.x[off:][:len(cs)] {
			dx[i] = cs[i].dx(v, dz[i])
		}
	}
}
