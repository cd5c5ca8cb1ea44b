package cpu

import "github.com/trainer-go/trainer/device"

// ---- ops of issue 10, not yet implemented on this backend ----

func (b *Backend) Translate(src, dst device.Buffer, c, n, h, w, dy, dx int, flip bool) {
	panic("Translate: not implemented")
}
