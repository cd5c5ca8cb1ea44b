//go:build cgo

package gpu

import "github.com/trainer-go/trainer/device"

// ---- ops of issue 10, not yet implemented on this backend ----

func (b *Backend) SGD(params, grads, buf device.Buffer, n int, lr, momentum, l2 float32, nesterov bool) {
	panic("SGD: not implemented")
}
func (b *Backend) RMSprop(params, grads, sq, buf device.Buffer, n int, lr, alpha, eps, l2, momentum float32) {
	panic("RMSprop: not implemented")
}
func (b *Backend) BatchNormStats(x, mean, variance device.Buffer, outer, c, inner int) {
	panic("BatchNormStats: not implemented")
}
func (b *Backend) BatchNormForward(x, mean, variance, gamma, beta device.Buffer, outer, c, inner int, eps float32, act device.Act, z, y device.Buffer) {
	panic("BatchNormForward: not implemented")
}
func (b *Backend) BatchNormBackward(x, dz, mean, variance, gamma device.Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta device.Buffer) {
	panic("BatchNormBackward: not implemented")
}
func (b *Backend) GELUForward(x, y device.Buffer, n int) { panic("GELUForward: not implemented") }
func (b *Backend) GELUBackward(x, dy, dx device.Buffer, n int) {
	panic("GELUBackward: not implemented")
}
func (b *Backend) Add(a, bb, y device.Buffer, n int, relu bool) { panic("Add: not implemented") }
func (b *Backend) Axpby(x, y device.Buffer, n int, alpha, beta float32) {
	panic("Axpby: not implemented")
}
func (b *Backend) Dropout(x, y device.Buffer, n int, p float32, seed uint64, step int) {
	panic("Dropout: not implemented")
}
