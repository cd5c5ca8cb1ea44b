//go:build !cgo

package gpu

import (
	"errors"

	"github.com/trainer-go/trainer/device"
)

func init() {
	device.Register("gpu", func(device.Options) (device.Backend, error) {
		return nil, errors.New("this binary was built without cgo (CGO_ENABLED=0), which GPU support needs: rebuild with CGO_ENABLED=1")
	})
}

// Report says why this build has no GPU support.
func Report() string {
	return "GPU support: none: this binary was built without cgo (CGO_ENABLED=0); rebuild with CGO_ENABLED=1"
}
