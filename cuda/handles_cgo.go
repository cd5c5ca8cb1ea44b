//go:build cgo

package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// The typed handles and kernel arguments: only a cgo build has them (without
// cgo the package offers Probe and its Report alone).

// DevicePtr is an address in device memory (a CUdeviceptr); 0 is the null pointer.
type DevicePtr uint64

// Add returns p advanced by bytes (which may be negative).
func (p DevicePtr) Add(bytes int) DevicePtr { return DevicePtr(int64(p) + int64(bytes)) }

// Device is one GPU as the driver numbers it; get one with GetDevice.
type Device struct {
	ordinal int
	h       int32 // the CUdevice handle
}

// Ordinal is the device's index, 0 ... DeviceCount()-1.
func (d Device) Ordinal() int { return d.ordinal }

// Lib tells which library files were loaded (the resolved paths).
type Lib struct {
	DriverPath string // the CUDA driver library, e.g. .../libcuda.so.1
	BlasPath   string // cuBLAS; empty when only the driver was loaded
}

// CUdevice_attribute values used by the typed API (cuda.h).
const (
	attrMultiprocessorCount = 16
	attrComputeCapMajor     = 75
	attrComputeCapMinor     = 76
)

// MaxArgs is the most kernel arguments one Args holds.
const MaxArgs = 32

var (
	errTooManyArgs = fmt.Errorf("cuda: kernel takes more than %d arguments (MaxArgs)", MaxArgs)
	errArgsFreed   = errors.New("cuda: Args used after Free")
)

// Args builds the kernelParams array of a launch in memory owned by C, so that
// no Go pointer crosses into the driver and a launch allocates nothing on the
// Go heap. Each argument takes one 8-byte slot; the pointer array points at
// the slots. The driver copies the values during Launch, so one Args can be
// Reset and refilled for the next launch at once. Not safe for concurrent use.
type Args struct {
	vals  unsafe.Pointer // MaxArgs 8-byte slots holding the values
	ptrs  unsafe.Pointer // MaxArgs void* pointing at the slots: kernelParams
	n     int
	err   error
	mem   argMem // build-specific owner of the memory
	kinds [MaxArgs]ArgKind
}

// ArgKind is how an argument was appended: which C type the launch says
// the kernel's parameter has (the driver reads as many bytes of the slot
// as the kernel's parameter takes, so a launcher other than the driver
// checks these against the kernel's signature).
type ArgKind uint8

// The argument kinds, one per appending method.
const (
	KindPtr ArgKind = iota + 1 // a device pointer (8 bytes)
	KindI32                    // int
	KindU32                    // unsigned int
	KindI64                    // long long or unsigned long long (8 bytes)
	KindF32                    // float
)

var argKindNames = [...]string{"?", "pointer", "int", "unsigned int", "64-bit integer", "float"}

// String names the kind.
func (k ArgKind) String() string {
	if int(k) < len(argKindNames) {
		return argKindNames[k]
	}
	return "?"
}

// NewArgs allocates an empty argument list; Free releases it.
func NewArgs() *Args {
	a := &Args{}
	a.vals, a.ptrs, a.mem = newArgMem(a)
	return a
}

// Reset empties the list (and clears an overflow error) for the next launch.
func (a *Args) Reset() *Args {
	a.n = 0
	a.err = nil
	if a.vals == nil {
		a.err = errArgsFreed
	}
	return a
}

// slot returns the next zeroed value slot of kind k, or nil after
// recording an error.
func (a *Args) slot(k ArgKind) unsafe.Pointer {
	if a.vals == nil {
		a.err = errArgsFreed
		return nil
	}
	if a.n >= MaxArgs {
		a.err = errTooManyArgs
		return nil
	}
	p := unsafe.Add(a.vals, a.n*8)
	*(*uint64)(p) = 0
	a.kinds[a.n] = k
	a.n++
	return p
}

// put appends one argument of v's size and kind k.
func put[T int32 | uint32 | int64 | uint64](a *Args, v T, k ArgKind) *Args {
	if s := a.slot(k); s != nil {
		*(*T)(s) = v
	}
	return a
}

// Ptr appends a device pointer argument (a kernel's T* parameter).
func (a *Args) Ptr(p DevicePtr) *Args { return put(a, uint64(p), KindPtr) }

// I32 appends an int argument.
func (a *Args) I32(v int32) *Args { return put(a, v, KindI32) }

// U32 appends an unsigned int argument.
func (a *Args) U32(v uint32) *Args { return put(a, v, KindU32) }

// I64 appends a long long (or unsigned long long) argument.
func (a *Args) I64(v int64) *Args { return put(a, v, KindI64) }

// F32 appends a float argument.
func (a *Args) F32(v float32) *Args { return put(a, math.Float32bits(v), KindF32) }

// Kind is how argument i (< Len) was appended.
func (a *Args) Kind(i int) ArgKind { return a.kinds[i] }

// Params is the kernelParams array, Len pointers to the values, exactly as
// Launch hands it to cuLaunchKernel (for a launcher other than the driver,
// e.g. a test's emulator). Valid until the next Reset or Free.
func (a *Args) Params() unsafe.Pointer { return a.ptrs }

// Len is the number of arguments appended since the last Reset.
func (a *Args) Len() int { return a.n }

// Err is the first error since Reset (too many arguments, or use after Free); Launch returns it.
func (a *Args) Err() error { return a.err }

// Free releases the memory; further use reports an error instead of crashing.
func (a *Args) Free() {
	if a.vals == nil {
		return
	}
	freeArgMem(a.vals, a.mem)
	a.vals, a.ptrs, a.mem = nil, nil, nil
	a.n = 0
}
