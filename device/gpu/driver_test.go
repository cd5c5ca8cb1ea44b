//go:build cgo

package gpu

import (
	"strings"
	"testing"

	"github.com/trainer-go/trainer/kernels"
)

// TestCheckDriver: a driver older than the PTX's ISA needs is refused with
// the versions and what to do; that driver itself and newer ones pass.
func TestCheckDriver(t *testing.T) {
	v, _ := kernels.PTXHeader()
	need, err := kernels.DriverNeeded(v)
	if err != nil {
		t.Fatal(err)
	}
	err = checkDriver(need - 10)
	if err == nil || !strings.Contains(err.Error(), "PTX ISA "+v) || !strings.Contains(err.Error(), "update the NVIDIA driver") {
		t.Errorf("driver %d: %v", need-10, err)
	}
	for _, d := range []int{need, need + 1000, 0} {
		if err := checkDriver(d); err != nil {
			t.Errorf("driver %d: %v", d, err)
		}
	}
}
