package cuda

import (
	"fmt"
	"os"
)

// Environment variables that replace the library search lists: a file name or
// a path; when set, only it is tried.
const (
	EnvLibCUDA   = "TRAINER_LIBCUDA"   // the CUDA driver library, default libcuda.so.1 then libcuda.so
	EnvLibCUBLAS = "TRAINER_LIBCUBLAS" // cuBLAS, default blasNames(the driver's CUDA major)
)

// The names tried when no environment variable overrides them.
var (
	defaultDriverNames = []string{"libcuda.so.1", "libcuda.so"}
	defaultBlasNames   = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
)

// oldestBlas is the oldest cuBLAS major version the package supports.
const oldestBlas = 11

// blasNames is the cuBLAS search list for a driver that supports CUDA
// major version major (cuDriverGetVersion/1000): libcublas.so.<major>
// first, then the older majors down to 11, then libcublas.so. A cuBLAS
// newer than the driver is never tried, since it needs a newer driver (its
// cublasCreate fails). Where the driver's version is unknown (major below
// 11), every supported major is tried, newest first.
func blasNames(major int) []string {
	if major < oldestBlas {
		return append([]string(nil), defaultBlasNames...)
	}
	var names []string
	for m := major; m >= oldestBlas; m-- {
		names = append(names, fmt.Sprintf("libcublas.so.%d", m))
	}
	return append(names, "libcublas.so")
}

// libNames is the search list for one library: the env override alone, or the defaults.
func libNames(env string, defaults []string) []string {
	if v := os.Getenv(env); v != "" {
		return []string{v}
	}
	return append([]string(nil), defaults...)
}

// VersionString turns a CUDA version number such as 12040 into "12.4".
func VersionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

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

	// Graphs says how CUDA graphs run where Usable: the instantiate entry
	// point used; GraphsOff, when set, why they cannot (the driver or
	// cuBLAS lacks entry points) and what to do.
	Graphs, GraphsOff string
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
	StepBlasHandle = "cublasCreate" // cuBLAS loaded but cannot create a handle (e.g. newer than the driver)
)
