//go:build cgo

package cuda

import (
	"errors"
	"math"
	"testing"
	"unsafe"
)

// argAt reads argument i the way the driver does: through kernelParams[i].
func argAt(a *Args, i int) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Add(a.ptrs, i*int(unsafe.Sizeof(uintptr(0)))))
}

func TestArgsEncoding(t *testing.T) {
	a := NewArgs()
	defer a.Free()
	a.Reset().Ptr(0xdeadbeef00).I32(-7).F32(1.5).U32(0xffffffff).I64(-1 << 40).Ptr(0)
	if a.Len() != 6 || a.Err() != nil {
		t.Fatalf("Len %d, Err %v", a.Len(), a.Err())
	}
	if got := *(*uint64)(argAt(a, 0)); got != 0xdeadbeef00 {
		t.Errorf("Ptr: %#x", got)
	}
	if got := *(*int32)(argAt(a, 1)); got != -7 {
		t.Errorf("I32: %d", got)
	}
	if got := *(*float32)(argAt(a, 2)); got != 1.5 {
		t.Errorf("F32: %v", got)
	}
	if got := *(*uint32)(argAt(a, 3)); got != 0xffffffff {
		t.Errorf("U32: %#x", got)
	}
	if got := *(*int64)(argAt(a, 4)); got != -1<<40 {
		t.Errorf("I64: %d", got)
	}
	if got := *(*uint64)(argAt(a, 5)); got != 0 {
		t.Errorf("null Ptr: %#x", got)
	}
	// Each pointer points at its own 8-byte slot in one block, and a 4-byte
	// value leaves the slot's upper half zero (no stale bytes from before).
	for i := range 6 {
		if argAt(a, i) != unsafe.Add(a.vals, 8*i) {
			t.Fatalf("kernelParams[%d] does not point at slot %d", i, i)
		}
	}
	a.Reset().I64(-1).Reset().I32(5)
	if got := *(*uint64)(argAt(a, 0)); got != 5 {
		t.Errorf("slot not cleared on reuse: %#x", got)
	}
	a.Reset().F32(float32(math.Inf(-1)))
	if got := math.Float32frombits(*(*uint32)(argAt(a, 0))); !math.IsInf(float64(got), -1) {
		t.Errorf("F32(-Inf): %v", got)
	}
}

func TestArgsOverflowAndFree(t *testing.T) {
	a := NewArgs()
	a.Reset()
	for i := range MaxArgs {
		a.I32(int32(i))
	}
	if a.Err() != nil {
		t.Fatalf("MaxArgs arguments: %v", a.Err())
	}
	a.I32(99)
	if !errors.Is(a.Err(), errTooManyArgs) || a.Len() != MaxArgs {
		t.Errorf("overflow: Len %d, Err %v", a.Len(), a.Err())
	}
	if a.Reset().Err() != nil {
		t.Errorf("Reset keeps the error")
	}
	a.Free()
	a.Free() // twice is fine
	if a.Reset().Ptr(1).Err() != errArgsFreed {
		t.Errorf("use after Free: %v", a.Err())
	}
}

func TestArgsAllocateNothing(t *testing.T) {
	a := NewArgs()
	defer a.Free()
	var p DevicePtr = 0x1000
	allocs := testing.AllocsPerRun(10000, func() {
		a.Reset().Ptr(p).Ptr(p.Add(64)).I32(1024).F32(0.5).U32(7).I64(-3)
	})
	if allocs != 0 {
		t.Errorf("building Args allocates %v times per launch", allocs)
	}
}

func TestDevicePtrAdd(t *testing.T) {
	if p := DevicePtr(0x7f0000000000).Add(4096); p != 0x7f0000001000 {
		t.Errorf("Add: %#x", uint64(p))
	}
	if p := DevicePtr(0x1000).Add(-16); p != 0xff0 {
		t.Errorf("Add negative: %#x", uint64(p))
	}
}

// TestArgsKinds: each appending method records its kind, in order, and
// Reset starts over.
func TestArgsKinds(t *testing.T) {
	a := NewArgs()
	defer a.Free()
	a.Reset().Ptr(1).I32(2).U32(3).I64(4).F32(5)
	want := []ArgKind{KindPtr, KindI32, KindU32, KindI64, KindF32}
	for i, k := range want {
		if a.Kind(i) != k {
			t.Errorf("argument %d: kind %v, want %v", i, a.Kind(i), k)
		}
	}
	a.Reset().F32(1)
	if a.Len() != 1 || a.Kind(0) != KindF32 {
		t.Errorf("after Reset: Len %d, kind %v", a.Len(), a.Kind(0))
	}
}
