package cpu

import "github.com/trainer-go/trainer/device"

// The StepOps: each reads its per-step values from the buffers and runs the
// by-value op with them (the CPU runs ops as they are called, so reading
// them now is reading them when the op runs).

// StepBegin: see device.StepOps.
func (b *Backend) StepBegin(ctr, perm device.Buffer, stride, cnt int, idx, table device.Buffer, k int, cur device.Buffer) {
	c := i32(ctr)
	pos, row := int(c[0]), int(c[1]-c[2])
	copy(i32(idx)[:cnt], i32(perm)[pos*stride:pos*stride+cnt])
	if k > 0 {
		copy(f32(cur)[:k], f32(table)[row*k:row*k+k])
	}
}

// StepEnd: see device.StepOps.
func (b *Backend) StepEnd(ctr device.Buffer, wrap int) {
	c := i32(ctr)
	if c[0]++; int(c[0]) == wrap {
		c[0] = 0
	}
	c[1]++
}

// AdamAt: see device.StepOps.
func (b *Backend) AdamAt(params, grads, m, v device.Buffer, n int, s device.Buffer, beta1, beta2, l2 float32) {
	x := f32(s)
	b.Adam(params, grads, m, v, n, x[0], beta1, beta2, x[1], l2, x[2])
}

// SGDAt: see device.StepOps.
func (b *Backend) SGDAt(params, grads, buf device.Buffer, n int, lr device.Buffer, momentum, l2 float32, nesterov bool) {
	b.SGD(params, grads, buf, n, f32(lr)[0], momentum, l2, nesterov)
}

// RMSpropAt: see device.StepOps.
func (b *Backend) RMSpropAt(params, grads, sq, buf device.Buffer, n int, lr device.Buffer, alpha, eps, l2, momentum float32) {
	b.RMSprop(params, grads, sq, buf, n, f32(lr)[0], alpha, eps, l2, momentum)
}

// AxpbyAt: see device.StepOps.
func (b *Backend) AxpbyAt(x, y device.Buffer, n int, s device.Buffer) {
	if c := f32(s); c[2] != 0 {
		b.Axpby(x, y, n, c[0], c[1])
	}
}

// AugmentAt: see device.StepOps.
func (b *Backend) AugmentAt(src, dst device.Buffer, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step device.Buffer) {
	b.Augment(src, dst, c, n, h, w, pad, reflect, noFlip, seed, int(i32(step)[0]))
}

// DropoutAt: see device.StepOps.
func (b *Backend) DropoutAt(x, y device.Buffer, n int, p float32, seed uint64, step device.Buffer) {
	b.Dropout(x, y, n, p, seed, int(i32(step)[0]))
}
