//go:build cgo

package gpu

import (
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
)

// The StepOps: the step counters' kernels and the *_at_f32 twins of the
// optimiser, average, augmentation and dropout kernels (kernels/step.cu),
// which read their per-step values from device memory when they run, so
// that a captured step reads them anew at each launch.

// StepBegin: see device.StepOps.
func (b *Backend) StepBegin(ctr, perm device.Buffer, stride, cnt int, idx, table device.Buffer, k int, cur device.Buffer) {
	kernels.StepBegin(b.k(), ptr(ctr), ptr(perm), stride, cnt, ptr(idx), ptr(table), k, ptr(cur))
}

// StepEnd: see device.StepOps.
func (b *Backend) StepEnd(ctr device.Buffer, wrap int) {
	kernels.StepEnd(b.k(), ptr(ctr), wrap)
}

// AdamAt: see device.StepOps.
func (b *Backend) AdamAt(params, grads, m, v device.Buffer, n int, s device.Buffer, beta1, beta2, l2 float32) {
	kernels.AdamAt(b.k(), ptr(params), ptr(grads), ptr(m), ptr(v), n, ptr(s), beta1, beta2, l2)
}

// SGDAt: see device.StepOps.
func (b *Backend) SGDAt(params, grads, buf device.Buffer, n int, lr device.Buffer, momentum, l2 float32, nesterov bool) {
	kernels.SGDAt(b.k(), ptr(params), ptr(grads), ptr(buf), n, ptr(lr), momentum, l2, nesterov)
}

// RMSpropAt: see device.StepOps.
func (b *Backend) RMSpropAt(params, grads, sq, buf device.Buffer, n int, lr device.Buffer, alpha, eps, l2, momentum float32) {
	kernels.RMSpropAt(b.k(), ptr(params), ptr(grads), ptr(sq), ptr(buf), n, ptr(lr), alpha, eps, l2, momentum)
}

// AxpbyAt: see device.StepOps.
func (b *Backend) AxpbyAt(x, y device.Buffer, n int, s device.Buffer) {
	kernels.AxpbyAt(b.k(), ptr(x), ptr(y), n, ptr(s))
}

// AugmentAt: see device.StepOps.
func (b *Backend) AugmentAt(src, dst device.Buffer, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step device.Buffer) {
	kernels.AugmentAt(b.k(), ptr(src), ptr(dst), c, n, h, w, pad, reflect, noFlip, seed, ptr(step))
}

// DropoutAt: see device.StepOps (as Dropout: nothing for p 0 in place).
func (b *Backend) DropoutAt(x, y device.Buffer, n int, p float32, seed uint64, step device.Buffer) {
	if p == 0 && ptr(x) == ptr(y) {
		return
	}
	kernels.DropoutAt(b.k(), ptr(x), ptr(y), n, p, kernels.DropoutScale(p), seed, ptr(step))
}
