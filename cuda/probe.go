package cuda

import (
	"errors"
	"fmt"
	"strings"
)

// fail records the failed step.
func (r *Report) fail(step, reason string, err error) {
	r.Step, r.Reason, r.Err = step, reason, err
}

// driverLoadReason explains a failure to load libcuda.
func driverLoadReason(err error) string {
	var le *LoadError
	if errors.As(err, &le) && le.Symbol != "" {
		return fmt.Sprintf("%s is not a usable CUDA driver library: it lacks %s (the NVIDIA driver is too old, or %s names the wrong file): update the NVIDIA driver",
			le.Path, le.Symbol, EnvLibCUDA)
	}
	if le != nil && le.FromEnv {
		return fmt.Sprintf("%s=%s names no loadable library: point it at the driver's libcuda.so.1 or unset it", EnvLibCUDA, strings.Join(le.Tried, ""))
	}
	tried := ""
	if le != nil {
		tried = " (tried " + strings.Join(le.Tried, ", ") + ")"
	}
	return "the NVIDIA driver library libcuda was not found" + tried +
		": install the NVIDIA driver; in a container, run it with the NVIDIA Container Toolkit (docker run --gpus all); or set " +
		EnvLibCUDA + " to the path of libcuda.so.1"
}

// blasLoadReason explains a failure to load libcublas.
func blasLoadReason(err error) string {
	var le *LoadError
	if errors.As(err, &le) && le.Symbol != "" {
		return fmt.Sprintf("%s is not a usable cuBLAS library: it lacks %s: install cuBLAS 11 or newer, or fix %s", le.Path, le.Symbol, EnvLibCUBLAS)
	}
	if le != nil && le.FromEnv {
		return fmt.Sprintf("%s=%s names no loadable library: point it at libcublas.so.N or unset it", EnvLibCUBLAS, strings.Join(le.Tried, ""))
	}
	tried := ""
	if le != nil {
		tried = " (tried " + strings.Join(le.Tried, ", ") + ")"
	}
	return "cuBLAS was not found" + tried +
		": install the CUDA runtime libraries (cuBLAS 11, 12 or 13; the nvidia/cuda runtime images have it) or set " +
		EnvLibCUBLAS + " to the path of libcublas.so"
}

// blasHandleReason explains a cuBLAS that loaded but could not create a
// handle: most often one newer than the driver.
func blasHandleReason(r *Report, err error) string {
	lib := fmt.Sprintf("cuBLAS %s (%s) loaded but cannot create a handle", r.BlasPath, r.BlasVersion)
	var major int
	fmt.Sscanf(r.BlasVersion, "%d.", &major)
	drv := r.DriverVersion / 1000
	if drv > 0 && major > drv {
		return fmt.Sprintf("%s: it needs a CUDA %d driver, and this driver supports CUDA %s: update the NVIDIA driver, or install cuBLAS %d (or point %s at it)",
			lib, major, VersionString(r.DriverVersion), drv, EnvLibCUBLAS)
	}
	return fmt.Sprintf("%s (%v): check nvidia-smi (the GPU may be out of memory or in use), or point %s at another cuBLAS", lib, err, EnvLibCUBLAS)
}

// initReason explains a cuInit failure by its code.
func initReason(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	var why string
	switch e.Name {
	case "CUDA_ERROR_NO_DEVICE":
		why = "the NVIDIA driver library is installed but no GPU is visible: check that nvidia-smi lists a GPU, that CUDA_VISIBLE_DEVICES is unset or names one, and that a container was started with --gpus"
	case "CUDA_ERROR_STUB_LIBRARY":
		why = "the libcuda found is the CUDA toolkit's stub, not the driver: take the stubs folder out of LD_LIBRARY_PATH or set " + EnvLibCUDA + " to the driver's libcuda.so.1"
	case "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH":
		why = "the driver library does not match the NVIDIA kernel module: reboot after a driver update, or install matching driver packages"
	case "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE":
		why = "a CUDA forward-compatibility libcuda was loaded for a GPU that does not support it: use the system driver's libcuda"
	case "CUDA_ERROR_DEVICE_UNAVAILABLE":
		why = "the GPUs are busy or unavailable (exclusive-process compute mode?): free them or change the mode with nvidia-smi"
	case "CUDA_ERROR_INVALID_DEVICE":
		why = "CUDA_VISIBLE_DEVICES names no existing GPU: fix or unset it"
	case "CUDA_ERROR_OPERATING_SYSTEM", "CUDA_ERROR_NOT_PERMITTED":
		why = "the operating system refused the driver: check the permissions of /dev/nvidia*"
	default:
		why = "the NVIDIA driver failed to initialise: check nvidia-smi and the kernel log; the kernel module may be missing or not loaded"
	}
	return fmt.Sprintf("%s (cuInit: %s)", why, e.Name)
}

// String is the report for humans, as `trainer devices` prints it.
func (r Report) String() string {
	var b strings.Builder
	if r.DriverPath != "" {
		fmt.Fprintf(&b, "CUDA driver: %s", r.DriverPath)
		if r.DriverVersion > 0 {
			fmt.Fprintf(&b, " (supports CUDA %s)", VersionString(r.DriverVersion))
		}
		b.WriteString("\n")
	}
	if r.BlasPath != "" {
		fmt.Fprintf(&b, "cuBLAS:      %s", r.BlasPath)
		if r.BlasVersion != "" {
			fmt.Fprintf(&b, " (%s)", r.BlasVersion)
		}
		b.WriteString("\n")
	}
	for _, d := range r.Devices {
		fmt.Fprintf(&b, "GPU %d: %s, compute capability %d.%d, %d SMs, %s total, %s free\n",
			d.Index, d.Name, d.Major, d.Minor, d.SMs, formatBytes(d.TotalMem), formatBytes(d.FreeMem))
		if d.Err != "" {
			fmt.Fprintf(&b, "       problem: %s\n", d.Err)
		}
	}
	if r.Usable {
		fmt.Fprintf(&b, "GPU training: available (%d GPU", len(r.Devices))
		if len(r.Devices) != 1 {
			b.WriteString("s")
		}
		b.WriteString(")\n")
		if r.GraphsOff != "" {
			fmt.Fprintf(&b, "CUDA graphs: not available\n  %s\n", r.GraphsOff)
		} else if r.Graphs != "" {
			fmt.Fprintf(&b, "CUDA graphs: available (%s)\n", r.Graphs)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "GPU training: not available (failed at step %q)\n  %s\n", r.Step, r.Reason)
	if r.Err != nil {
		fmt.Fprintf(&b, "  error: %v\n", r.Err)
	}
	return b.String()
}
