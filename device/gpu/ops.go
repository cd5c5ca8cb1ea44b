//go:build cgo

package gpu

import (
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
)

// The optimisers other than Adam, batch normalisation, GELU, Add, Axpby and
// Dropout: each one or a few kernels of package kernels, queued on the
// stream; nothing waits and nothing is allocated once the shapes have been
// seen (the reduction plans and the scratch are kept).

// SGD: see device.Backend (one fused kernel; buf is not touched when
// momentum is 0).
func (b *Backend) SGD(params, grads, buf device.Buffer, n int, lr, momentum, l2 float32, nesterov bool) {
	kernels.SGD(b.k(), ptr(params), ptr(grads), ptr(buf), n, lr, momentum, l2, nesterov)
}

// RMSprop: see device.Backend (one fused kernel; buf is not touched when
// momentum is 0).
func (b *Backend) RMSprop(params, grads, sq, buf device.Buffer, n int, lr, alpha, eps, l2, momentum float32) {
	kernels.RMSprop(b.k(), ptr(params), ptr(grads), ptr(sq), ptr(buf), n, lr, alpha, eps, l2, momentum)
}

// BatchNormStats: see device.Backend. Two deterministic reductions with
// channel_sum_f32 in the passes of kernels.ChannelSumPlan (float32 partial
// sums, see kernels/norm.cu for the precision): the mean (sum of x over
// M), then the variance (sum of (x-mean)^2 over M) with the mean just
// written.
func (b *Backend) BatchNormStats(x, mean, variance device.Buffer, outer, c, inner int) {
	p, ok := b.plan(outer, c, inner, 0)
	if !ok {
		return
	}
	m := float32(outer * inner)
	kernels.ChannelSumPasses(b.k(), p.steps, kernels.SumX, ptr(x), 0, 0, 0, 0, ptr(mean), 0, c, m, b.scratchAt)
	kernels.ChannelSumPasses(b.k(), p.steps, kernels.SumSqDev, ptr(x), 0, ptr(mean), 0, 0, ptr(variance), 0, c, m, b.scratchAt)
}

// BatchNormForward: see device.Backend. bn_invstd_f32 writes the c factors
// 1/sqrt(variance+eps) (rounded as the CPU backend rounds them) to the
// scratch, then bn_fwd_f32 normalises, scales, shifts and applies the
// activation in one pass.
func (b *Backend) BatchNormForward(x, mean, variance, gamma, beta device.Buffer, outer, c, inner int, eps float32, act device.Act, z, y device.Buffer) {
	if !b.growScratch(c) {
		return
	}
	inv := b.scratchAt(0, c)
	kernels.BNInvStd(b.k(), ptr(variance), inv, c, eps)
	kernels.BNFwd(b.k(), ptr(x), ptr(mean), inv, ptr(gamma), ptr(beta), ptr(z), ptr(y), outer, c, inner, int(act))
}

// BatchNormBackward: see device.Backend. invstd into the scratch (after the
// reduction plan's partial sums), dbeta = sum dz and dgamma = sum dz*xhat
// by channel_sum_f32, then dx elementwise by bn_bwd_f32 (which reads dz
// before it writes dx, so dx may be dz).
func (b *Backend) BatchNormBackward(x, dz, mean, variance, gamma device.Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta device.Buffer) {
	b.BatchNormActBackward(device.ActNone, nil, x, dz, mean, variance, gamma, outer, c, inner, eps, dx, dgamma, dbeta)
}

// BatchNormActBackward: see device.Backend. BatchNormBackward with the
// activation's backward in the first pass of dbeta's sums
// (channel_sum_f32 with act), which writes dz over dy.
func (b *Backend) BatchNormActBackward(act device.Act, a, x, dy, mean, variance, gamma device.Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta device.Buffer) {
	p, ok := b.plan(outer, c, inner, c)
	if !ok {
		return
	}
	dz := dy
	inv := b.scratchAt(p.scratch, c)
	l := b.k()
	kernels.BNInvStd(l, ptr(variance), inv, c, eps)
	kernels.ChannelSumPasses(l, p.steps, kernels.SumX, ptr(dz), 0, 0, 0, ptr(a), ptr(dbeta), int(act), c, 1, b.scratchAt)
	kernels.ChannelSumPasses(l, p.steps, kernels.SumYXhat, ptr(x), ptr(dz), ptr(mean), inv, 0, ptr(dgamma), 0, c, 1, b.scratchAt)
	kernels.BNBwd(l, ptr(x), ptr(dz), ptr(mean), inv, ptr(gamma), ptr(dgamma), ptr(dbeta), ptr(dx), outer, c, inner)
}

// GELUForward: see device.Backend (float32 erff; see kernels/pointwise.cu
// for the tolerance against the CPU backend's float64).
func (b *Backend) GELUForward(x, y device.Buffer, n int) {
	kernels.GELUFwd(b.k(), ptr(x), ptr(y), n)
}

// GELUBackward: see device.Backend.
func (b *Backend) GELUBackward(x, dy, dx device.Buffer, n int) {
	kernels.GELUBwd(b.k(), ptr(x), ptr(dy), ptr(dx), n)
}

// Add: see device.Backend.
func (b *Backend) Add(a, bb, y device.Buffer, n int, relu bool) {
	kernels.Add(b.k(), ptr(a), ptr(bb), ptr(y), n, relu)
}

// Axpby: see device.Backend.
func (b *Backend) Axpby(x, y device.Buffer, n int, alpha, beta float32) {
	kernels.Axpby(b.k(), ptr(x), ptr(y), n, alpha, beta)
}

// Dropout: see device.Backend. The mask is a hash of (seed, step, i)
// computed in the kernel; the factor 1/(1-p) is kernels.DropoutScale(p),
// float32(1/(1-float64(p))), computed here once, the CPU backend's factor,
// so both multiply by the same float32. p 0 is a copy (nothing at all when
// y is x).
func (b *Backend) Dropout(x, y device.Buffer, n int, p float32, seed uint64, step int) {
	if p == 0 && ptr(x) == ptr(y) {
		return
	}
	kernels.Dropout(b.k(), ptr(x), ptr(y), n, p, kernels.DropoutScale(p), seed, uint64(step))
}
