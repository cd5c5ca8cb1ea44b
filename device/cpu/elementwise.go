package cpu

import (
	"math"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/internal/pool"
)

// Elementwise ops: each output element depends on the same element of the
// inputs only, so the ops split the flat range over the pool (from about
// 16K elements of work, see Backend.par) and any output may be an input.

// ---- GELU ----

const (
	invSqrt2Pi = 0.3989422804014326779399460599343818684758586311649 // 1/sqrt(2*pi)
)

// gelu is the exact GELU of one value, in float64 and rounded once:
//
//	xd = float64(x)
//	y  = float32((0.5*xd) * (1 + erf(xd/sqrt2)))
//
// sqrt2 being math.Sqrt2, the float64 nearest sqrt(2). Infinite x gives
// +Inf, and NaN for -Inf (-Inf * 0), as the formula does.
func gelu(x float32) float32 {
	xd := float64(x)
	return float32((0.5 * xd) * (1 + math.Erf(xd/math.Sqrt2)))
}

// geluGrad is dy times the derivative of the GELU at x, in float64 and
// rounded once:
//
//	Phi = 0.5 * (1 + erf(xd/sqrt2))
//	phi = exp(-0.5*xd*xd) * (1/sqrt(2*pi))    ((-0.5*xd)*xd)
//	dx  = float32(float64(dy) * (Phi + xd*phi))
//
// with every product rounded to float64 before the add it feeds (no FMA).
func geluGrad(x, dy float32) float32 {
	xd := float64(x)
	cdf := 0.5 * (1 + math.Erf(xd/math.Sqrt2))
	pdf := math.Exp(-0.5*xd*xd) * invSqrt2Pi
	return float32(float64(dy) * (cdf + float64(xd*pdf)))
}

type geluFwdJob struct{ x, y []float32 }

// GELUForward: see device.Backend and gelu.
func (b *Backend) GELUForward(x, y device.Buffer, n int) {
	j := &b.jGELUF
	j.x, j.y = f32(x)[:n], f32(y)[:n]
	b.par(j, n*16)
}

func (j *geluFwdJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.x), w, nw)
	x, y := j.x[lo:hi], j.y[lo:hi]
	for i, v := range x {
		y[i] = gelu(v)
	}
}

type geluBwdJob struct{ x, dy, dx []float32 }

// GELUBackward: see device.Backend and geluGrad.
func (b *Backend) GELUBackward(x, dy, dx device.Buffer, n int) {
	j := &b.jGELUB
	j.x, j.dy, j.dx = f32(x)[:n], f32(dy)[:n], f32(dx)[:n]
	b.par(j, n*16)
}

func (j *geluBwdJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.x), w, nw)
	x, dy, dx := j.x[lo:hi], j.dy[lo:hi], j.dx[lo:hi]
	for i, v := range x {
		dx[i] = geluGrad(v, dy[i])
	}
}

// ---- Add, Axpby ----

type addJob struct {
	a, b, y []float32
	relu    bool
}

// Add: see device.Backend. With relu, a sum < 0 becomes +0; -0 and NaN
// pass through (the test of AddBias: y = s < 0 ? 0 : s).
func (b *Backend) Add(a, bb, y device.Buffer, n int, relu bool) {
	j := &b.jAdd
	j.a, j.b, j.y, j.relu = f32(a)[:n], f32(bb)[:n], f32(y)[:n], relu
	b.par(j, n)
}

func (j *addJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.y), w, nw)
	a, bb, y := j.a[lo:hi], j.b[lo:hi], j.y[lo:hi]
	if j.relu {
		addReluGo(a, bb, y)
		return
	}
	for i := range y {
		y[i] = a[i] + bb[i]
	}
}

// addReluGo sets y = a + b, then 0 where that is < 0 (branch-free, as
// addBiasReluGo).
func addReluGo(a, b, y []float32) {
	a, b = a[:len(y)], b[:len(y)]
	for i := range y {
		u := math.Float32bits(a[i] + b[i])
		if isNeg(u) {
			u = 0
		}
		y[i] = math.Float32frombits(u)
	}
}

type axpbyJob struct {
	x, y        []float32
	alpha, beta float32
}

// Axpby: see device.Backend. In float32, each product rounded:
// y = alpha*x + beta*y, or y = alpha*x when beta is 0 (y not read, so a
// NaN in y does not propagate).
func (b *Backend) Axpby(x, y device.Buffer, n int, alpha, beta float32) {
	j := &b.jAxpby
	j.x, j.y, j.alpha, j.beta = f32(x)[:n], f32(y)[:n], alpha, beta
	b.par(j, n)
}

func (j *axpbyJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.y), w, nw)
	x, y := j.x[lo:hi], j.y[lo:hi]
	x = x[:len(y)]
	a, bt := j.alpha, j.beta
	if bt == 0 {
		for i := range y {
			y[i] = a * x[i]
		}
		return
	}
	for i := range y {
		y[i] = float32(a*x[i]) + float32(bt*y[i])
	}
}

// ---- Dropout ----

type dropoutJob struct {
	x, y  []float32
	p     float32
	scale float32
	seed  uint64
	step  int
}

// dropoutScale is the factor Dropout applies to kept elements:
// float32(1 / (1 - float64(p))), the quotient rounded to float64 (1 - p is
// exact) and then to float32. In CUDA: (float)(1.0 / (1.0 - (double)p)).
func dropoutScale(p float32) float32 { return float32(1 / (1 - float64(p))) }

// Dropout: see device.Backend. Element i (its index in the buffer, from
// 0) is kept when device.DropoutKeep(seed, step, i, p); then
// y[i] = x[i] * dropoutScale(p), one float32 multiply; otherwise y[i] = +0
// (whatever x[i], NaN too). p == 0 is a plain copy (the same bits).
func (b *Backend) Dropout(x, y device.Buffer, n int, p float32, seed uint64, step int) {
	xs, ys := f32(x)[:n], f32(y)[:n]
	if p == 0 {
		copy(ys, xs)
		return
	}
	j := &b.jDropout
	j.x, j.y, j.p, j.scale, j.seed, j.step = xs, ys, p, dropoutScale(p), seed, step
	b.par(j, n*4)
}

func (j *dropoutJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.y), w, nw)
	x, y := j.x[:hi], j.y[:hi]
	for i := lo; i < hi; i++ {
		if device.DropoutKeep(j.seed, j.step, i, j.p) {
			y[i] = x[i] * j.scale
		} else {
			y[i] = 0
		}
	}
}
