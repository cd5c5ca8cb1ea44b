package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"unsafe"
)

// Environment variables that replace the library search lists: a file name or
// a path; when set, only it is tried.
const (
	EnvLibCUDA   = "TRAINER_LIBCUDA"   // the CUDA driver library, default libcuda.so.1 then libcuda.so
	EnvLibCUBLAS = "TRAINER_LIBCUBLAS" // cuBLAS, default libcublas.so.13, .12, .11, then libcublas.so
)

// The names tried when no environment variable overrides them.
var (
	defaultDriverNames = []string{"libcuda.so.1", "libcuda.so"}
	defaultBlasNames   = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
)

// libNames is the search list for one library: the env override alone, or the defaults.
func libNames(env string, defaults []string) []string {
	if v := os.Getenv(env); v != "" {
		return []string{v}
	}
	return append([]string(nil), defaults...)
}

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

// VersionString turns a CUDA version number such as 12040 into "12.4".
func VersionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

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
	vals unsafe.Pointer // MaxArgs 8-byte slots holding the values
	ptrs unsafe.Pointer // MaxArgs void* pointing at the slots: kernelParams
	n    int
	err  error
	mem  argMem // build-specific owner of the memory
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

// slot returns the next zeroed value slot, or nil after recording an error.
func (a *Args) slot() unsafe.Pointer {
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
	a.n++
	return p
}

// Ptr appends a device pointer argument (a kernel's T* parameter).
func (a *Args) Ptr(p DevicePtr) *Args {
	if s := a.slot(); s != nil {
		*(*uint64)(s) = uint64(p)
	}
	return a
}

// I32 appends an int argument.
func (a *Args) I32(v int32) *Args {
	if s := a.slot(); s != nil {
		*(*int32)(s) = v
	}
	return a
}

// U32 appends an unsigned int argument.
func (a *Args) U32(v uint32) *Args {
	if s := a.slot(); s != nil {
		*(*uint32)(s) = v
	}
	return a
}

// I64 appends a long long argument.
func (a *Args) I64(v int64) *Args {
	if s := a.slot(); s != nil {
		*(*int64)(s) = v
	}
	return a
}

// F32 appends a float argument.
func (a *Args) F32(v float32) *Args {
	if s := a.slot(); s != nil {
		*(*uint32)(s) = math.Float32bits(v)
	}
	return a
}

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

// Report is what Probe found: the libraries, the driver, and each GPU, or why none is usable.
type Report struct {
	DriverPath    string       // the CUDA driver library loaded, empty if none
	DriverVersion int          // the CUDA version the driver supports, e.g. 12040; 0 if unknown
	BlasPath      string       // the cuBLAS library loaded, empty if none
	BlasVersion   string       // e.g. "12.4.5"; empty if cuBLAS is missing
	Devices       []DeviceInfo // the GPUs the driver reports
	Usable        bool         // true when there is at least one GPU and cuBLAS loaded
	Step          string       // the step that failed: one of the Step* constants; "" when usable
	Reason        string       // what went wrong and what to do about it, in words
	Err           error        // the underlying error of the failed step
}

// DeviceInfo describes one GPU.
type DeviceInfo struct {
	Index        int    // the device ordinal
	Name         string // e.g. "NVIDIA H100 80GB HBM3"
	Major, Minor int    // compute capability
	TotalMem     uint64 // bytes
	FreeMem      uint64 // bytes free after creating a context; 0 if Err
	SMs          int    // multiprocessor count
	Err          string // why part of this information is missing, "" if none
}

// The steps Probe reports as failed.
const (
	StepNoCgo      = "cgo"          // the binary was built without cgo
	StepLoadDriver = "load driver"  // no usable libcuda
	StepInit       = "cuInit"       // the driver did not initialise
	StepDevices    = "devices"      // counting the devices failed or found none
	StepLoadBlas   = "load cuBLAS"  // no usable libcublas
	StepQuery      = "query device" // querying a device failed
)
