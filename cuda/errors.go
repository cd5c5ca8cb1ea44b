package cuda

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a CUDA driver or cuBLAS call that returned a status other than success.
type Error struct {
	Code int    // the CUresult or cublasStatus_t value
	Name string // e.g. CUDA_ERROR_OUT_OF_MEMORY or CUBLAS_STATUS_NOT_INITIALIZED
	Desc string // what the name means, e.g. "out of memory"
	Op   string // the call and its arguments, e.g. cuMemAlloc(512 MiB for "activations")
	Log  string // extra text from the driver, e.g. the PTX JIT error log; often empty
}

// Error formats e as `op: NAME (description): log`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Name)
	if e.Desc != "" {
		b.WriteString(" (")
		b.WriteString(e.Desc)
		b.WriteString(")")
	}
	if e.Log != "" {
		b.WriteString(": ")
		b.WriteString(e.Log)
	}
	return b.String()
}

// ErrNoCgo is what every loader returns in a binary built with CGO_ENABLED=0.
var ErrNoCgo = errors.New("this binary was built without cgo (CGO_ENABLED=0): GPU support needs a cgo build")

// LoadError says why a shared library could not be loaded or lacked a symbol.
type LoadError struct {
	What    string   // "CUDA driver" or "cuBLAS"
	Tried   []string // the file names or paths given to dlopen, in order
	Reasons []string // the dynamic loader's message for each failure
	Path    string   // when a library opened but lacked Symbol: the file it came from
	Symbol  string   // the missing symbol, or "" when no library could be opened
	Env     string   // the environment variable that overrides the names
	FromEnv bool     // Tried came from Env
}

// Error names the library, every file tried and the dynamic loader's reason.
func (e *LoadError) Error() string {
	if e.Symbol != "" {
		return fmt.Sprintf("cuda: %s (opened as the %s library) has no symbol %s", e.Path, e.What, e.Symbol)
	}
	hint := "; set " + e.Env + " to the library's path to override"
	from := ""
	if e.FromEnv {
		hint, from = "", " named by "+e.Env
	}
	return fmt.Sprintf("cuda: cannot load the %s library%s (tried %s): %s%s",
		e.What, from, strings.Join(e.Tried, ", "), strings.Join(e.Reasons, "; "), hint)
}

// IsOutOfMemory reports whether err is (or wraps) a device or cuBLAS allocation failure.
func IsOutOfMemory(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Name == "CUDA_ERROR_OUT_OF_MEMORY" || e.Name == "CUBLAS_STATUS_ALLOC_FAILED")
}

// IsNoDevice reports whether err is (or wraps) CUDA_ERROR_NO_DEVICE: a driver but no visible GPU.
func IsNoDevice(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Name == "CUDA_ERROR_NO_DEVICE"
}

// cudaErrors names the CUresult codes a caller is likely to see, for when
// cuGetErrorName is unavailable. Values from cuda.h (checked by a test).
var cudaErrors = map[int][2]string{
	0:   {"CUDA_SUCCESS", "no error"},
	1:   {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	2:   {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	3:   {"CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	4:   {"CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
	34:  {"CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
	46:  {"CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
	100: {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	101: {"CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	200: {"CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	201: {"CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	209: {"CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
	218: {"CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
	221: {"CUDA_ERROR_JIT_COMPILER_NOT_FOUND", "PTX JIT compiler library not found"},
	222: {"CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."},
	304: {"CUDA_ERROR_OPERATING_SYSTEM", "OS call failed or operation not supported on this OS"},
	400: {"CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	401: {"CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
	500: {"CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	600: {"CUDA_ERROR_NOT_READY", "device not ready"},
	700: {"CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	701: {"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
	702: {"CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"},
	719: {"CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
	800: {"CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
	801: {"CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
	802: {"CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"},
	803: {"CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
	804: {"CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non supported HW"},
	900: {"CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
	901: {"CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
	906: {"CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", "operation would make the legacy stream depend on a capturing blocking stream"},
	908: {"CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", "attempt to terminate a thread-local capture sequence from another thread"},
	999: {"CUDA_ERROR_UNKNOWN", "unknown error"},
}

// cublasStatuses names every cublasStatus_t (cublas_api.h; checked by a test).
var cublasStatuses = map[int][2]string{
	0:  {"CUBLAS_STATUS_SUCCESS", "success"},
	1:  {"CUBLAS_STATUS_NOT_INITIALIZED", "the library was not initialized"},
	3:  {"CUBLAS_STATUS_ALLOC_FAILED", "resource allocation failed"},
	7:  {"CUBLAS_STATUS_INVALID_VALUE", "an invalid value was used as an argument"},
	8:  {"CUBLAS_STATUS_ARCH_MISMATCH", "an absent device architectural feature is required"},
	11: {"CUBLAS_STATUS_MAPPING_ERROR", "an access to GPU memory space failed"},
	13: {"CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute"},
	14: {"CUBLAS_STATUS_INTERNAL_ERROR", "an internal operation failed"},
	15: {"CUBLAS_STATUS_NOT_SUPPORTED", "the functionality requested is not supported"},
	16: {"CUBLAS_STATUS_LICENSE_ERROR", "error detected trying to check the license"},
}

// cudaErrorFromTable builds an Error for a CUresult from the fallback table.
func cudaErrorFromTable(code int, op string) *Error {
	if n, ok := cudaErrors[code]; ok {
		return &Error{Code: code, Name: n[0], Desc: n[1], Op: op}
	}
	return &Error{Code: code, Name: fmt.Sprintf("CUDA_ERROR_%d", code), Desc: "unrecognised CUDA error code", Op: op}
}

// blasError builds an Error for a cublasStatus_t.
func blasError(code int, op string) *Error {
	if n, ok := cublasStatuses[code]; ok {
		return &Error{Code: code, Name: n[0], Desc: n[1], Op: op}
	}
	return &Error{Code: code, Name: fmt.Sprintf("CUBLAS_STATUS_%d", code), Desc: "unrecognised cuBLAS status", Op: op}
}

// formatBytes writes a byte count the way error messages show it: "512 MiB", "1.5 GiB", "100 B".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n)/unit, 0
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i]
}

// allocOp is the Op text of a failed device allocation.
func allocOp(fn string, bytes int, what string) string {
	if what == "" {
		return fmt.Sprintf("%s(%s)", fn, formatBytes(uint64(max(bytes, 0))))
	}
	return fmt.Sprintf("%s(%s for %q)", fn, formatBytes(uint64(max(bytes, 0))), what)
}
