package cpu

import (
	"errors"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// TestAllocOutOfMemory: an allocation larger than the available memory is
// a *device.OutOfMemoryError (with the request and the free bytes), not a
// fatal error of the Go runtime.
func TestAllocOutOfMemory(t *testing.T) {
	avail, _, err := HostMemory()
	if err != nil {
		t.Skip(err)
	}
	b, err := New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n := int(avail/4) + 1<<20
	_, err = b.Alloc("test buffer", device.F32, n)
	var oom *device.OutOfMemoryError
	if !errors.As(err, &oom) {
		t.Fatalf("Alloc of %d floats with %d bytes available: %v, want a device.OutOfMemoryError", n, avail, err)
	}
	if oom.Device != "CPU" || oom.Requested != uint64(n)*4 || oom.Free == 0 || oom.What != "test buffer" {
		t.Fatalf("error %+v", oom)
	}
	if _, err := b.Alloc("small", device.F32, 1<<20); err != nil {
		t.Fatal(err)
	}
}
