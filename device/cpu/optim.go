package cpu

import (
	"math"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/internal/pool"
)

// The optimiser steps other than plain Adam (ops.go). Every update is
// float32 arithmetic in the order device.Backend documents, each product
// rounded on its own (the explicit conversions keep the compiler from fusing
// a multiply and an add into an FMA, as it may with GOAMD64=v3), so the
// results do not depend on the build. A coefficient of 0 (l2, decay,
// momentum) skips its term, as PyTorch does: with l2 0 the gradient is used
// as it is, not plus 0*p (which would differ for an infinite or NaN p).

// adamGeneral is Adam with an L2 penalty and decoupled decay:
//
//	g = grad + l2*p;  p = p - decay*p
//	m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g
//	p = p - (lrT*m) / (sqrt(v) + eps)
//
// 1-b1 and 1-b2 are float32 subtractions; sqrt is correctly rounded.
func adamGeneral(p, g, m, v []float32, lrT, b1, b2, eps, l2, decay float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	c1, c2 := 1-b1, 1-b2
	for i := range p {
		pi, gi := p[i], g[i]
		if l2 != 0 {
			gi += float32(l2 * pi)
		}
		if decay != 0 {
			pi -= float32(decay * pi)
		}
		mi := float32(b1*m[i]) + float32(c1*gi)
		vi := float32(b2*v[i]) + float32(c2*gi*gi)
		m[i], v[i] = mi, vi
		p[i] = pi - lrT*mi/(float32(math.Sqrt(float64(vi)))+eps)
	}
}

type sgdJob struct {
	p, g, buf        []float32
	lr, momentum, l2 float32
	nesterov         bool
}

// SGD: see device.Backend. Elementwise, split over the flat buffer.
func (b *Backend) SGD(params, grads, buf device.Buffer, n int, lr, momentum, l2 float32, nesterov bool) {
	j := &b.jSGD
	j.p, j.g, j.buf = f32(params)[:n], f32(grads)[:n], nil
	if momentum != 0 {
		j.buf = f32(buf)[:n]
	}
	j.lr, j.momentum, j.l2, j.nesterov = lr, momentum, l2, nesterov
	b.par(j, n*4)
}

func (j *sgdJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.p), w, nw)
	var buf []float32
	if j.buf != nil {
		buf = j.buf[lo:hi]
	}
	sgd(j.p[lo:hi], j.g[lo:hi], buf, j.lr, j.momentum, j.l2, j.nesterov)
}

// sgd is PyTorch's SGD step (dampening 0) in float32:
//
//	g = grad + l2*p
//	momentum != 0: buf = momentum*buf + g; g = nesterov ? g + momentum*buf : buf
//	p = p - lr*g
//
// buf is used only when momentum != 0 (otherwise it may be nil).
func sgd(p, g, buf []float32, lr, momentum, l2 float32, nesterov bool) {
	g = g[:len(p)]
	if momentum != 0 {
		buf = buf[:len(p)]
	}
	for i := range p {
		gi := g[i]
		if l2 != 0 {
			gi += float32(l2 * p[i])
		}
		if momentum != 0 {
			bi := float32(momentum*buf[i]) + gi
			buf[i] = bi
			if nesterov {
				gi += float32(momentum * bi)
			} else {
				gi = bi
			}
		}
		p[i] -= float32(lr * gi)
	}
}

type rmspropJob struct {
	p, g, sq, buf                []float32
	lr, alpha, eps, l2, momentum float32
}

// RMSprop: see device.Backend. Elementwise, split over the flat buffer.
func (b *Backend) RMSprop(params, grads, sq, buf device.Buffer, n int, lr, alpha, eps, l2, momentum float32) {
	j := &b.jRMSprop
	j.p, j.g, j.sq, j.buf = f32(params)[:n], f32(grads)[:n], f32(sq)[:n], nil
	if momentum != 0 {
		j.buf = f32(buf)[:n]
	}
	j.lr, j.alpha, j.eps, j.l2, j.momentum = lr, alpha, eps, l2, momentum
	b.par(j, n*8)
}

func (j *rmspropJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.p), w, nw)
	var buf []float32
	if j.buf != nil {
		buf = j.buf[lo:hi]
	}
	rmsprop(j.p[lo:hi], j.g[lo:hi], j.sq[lo:hi], buf, j.lr, j.alpha, j.eps, j.l2, j.momentum)
}

// rmsprop is PyTorch's RMSprop step (centered=False) in float32:
//
//	g = grad + l2*p
//	sq = alpha*sq + ((1-alpha)*g)*g
//	a = sqrt(sq) + eps
//	momentum != 0: buf = momentum*buf + g/a; p = p - lr*buf
//	momentum == 0: p = p - (lr*g)/a
//
// 1-alpha is a float32 subtraction; sqrt is correctly rounded.
func rmsprop(p, g, sq, buf []float32, lr, alpha, eps, l2, momentum float32) {
	g, sq = g[:len(p)], sq[:len(p)]
	if momentum != 0 {
		buf = buf[:len(p)]
	}
	c := 1 - alpha
	for i := range p {
		gi := g[i]
		if l2 != 0 {
			gi += float32(l2 * p[i])
		}
		si := float32(alpha*sq[i]) + float32(c*gi*gi)
		sq[i] = si
		a := float32(math.Sqrt(float64(si))) + eps
		if momentum != 0 {
			bi := float32(momentum*buf[i]) + gi/a
			buf[i] = bi
			p[i] -= float32(lr * bi)
		} else {
			p[i] -= float32(lr*gi) / a
		}
	}
}
