package cpu

import "github.com/trainer-go/trainer/device"

// ---- ops of issue 10, not yet implemented on this backend ----

func (b *Backend) BatchNormStats(x, mean, variance device.Buffer, outer, c, inner int) {
	panic("BatchNormStats: not implemented")
}
func (b *Backend) BatchNormForward(x, mean, variance, gamma, beta device.Buffer, outer, c, inner int, eps float32, act device.Act, z, y device.Buffer) {
	panic("BatchNormForward: not implemented")
}
func (b *Backend) BatchNormBackward(x, dz, mean, variance, gamma device.Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta device.Buffer) {
	panic("BatchNormBackward: not implemented")
}
func (b *Backend) Translate(src, dst device.Buffer, c, n, h, w, dy, dx int, flip bool) {
	panic("Translate: not implemented")
}
