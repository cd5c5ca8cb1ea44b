package cuda

import (
	"errors"
	"fmt"
	"strings"
)

// Probe finds out, step by step, whether this process can train on a GPU:
// the driver library, its version, cuInit, each device (briefly retaining its
// primary context to read the free memory), and cuBLAS. It never panics; when
// no GPU is usable, Report.Step and Report.Reason say why.
func Probe() Report {
	var r Report
	lib, err := LoadDriver()
	if err != nil {
		if errors.Is(err, ErrNoCgo) {
			r.fail(StepNoCgo, "this binary was built without cgo (CGO_ENABLED=0), which GPU support needs: rebuild with CGO_ENABLED=1; training runs on the CPU", err)
		} else {
			r.fail(StepLoadDriver, driverLoadReason(err), err)
		}
		return r
	}
	r.DriverPath = lib.DriverPath
	if v, err := DriverVersion(); err == nil {
		r.DriverVersion = v
	}
	// cuBLAS needs no GPU: report it whatever the devices say.
	blasLib, blasErr := Load()
	if blasErr == nil {
		r.BlasPath = blasLib.BlasPath
		r.BlasVersion, _ = BlasVersion()
	}

	if err := Init(); err != nil {
		r.fail(StepInit, initReason(err), err)
		return r
	}
	n, err := DeviceCount()
	if err != nil {
		r.fail(StepDevices, "the driver initialised but could not count the GPUs: "+err.Error(), err)
		return r
	}
	if n == 0 {
		r.fail(StepDevices, "the driver initialised but reports no GPU: check nvidia-smi and CUDA_VISIBLE_DEVICES", nil)
		return r
	}
	working := 0
	for i := range n {
		info := probeDevice(i)
		if info.Err == "" {
			working++
		}
		r.Devices = append(r.Devices, info)
	}
	if blasErr != nil {
		r.fail(StepLoadBlas, blasLoadReason(blasErr), blasErr)
		return r
	}
	if working == 0 {
		r.fail(StepQuery, "every GPU failed a basic query (see the device lines): check nvidia-smi; the GPUs may be in use exclusively by another process", nil)
		return r
	}
	r.Usable = true
	return r
}

// fail records the failed step.
func (r *Report) fail(step, reason string, err error) {
	r.Step, r.Reason, r.Err = step, reason, err
}

// probeDevice reads one device's properties; problems go into Err.
func probeDevice(i int) DeviceInfo {
	info := DeviceInfo{Index: i}
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	d, err := GetDevice(i)
	if err != nil {
		info.Err = err.Error()
		return info
	}
	var e1, e2, e3, e4 error
	info.Name, e1 = d.Name()
	info.Major, info.Minor, e2 = d.ComputeCapability()
	info.TotalMem, e3 = d.TotalMem()
	info.SMs, e4 = d.MultiprocessorCount()
	for _, e := range []error{e1, e2, e3, e4} {
		note(e)
	}
	ctx, err := d.RetainPrimaryContext()
	note(err)
	if err == nil {
		info.FreeMem, _, err = ctx.MemInfo()
		note(err)
		note(ctx.Release())
	}
	info.Err = strings.Join(errs, "; ")
	return info
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
		return b.String()
	}
	fmt.Fprintf(&b, "GPU training: not available (failed at step %q)\n  %s\n", r.Step, r.Reason)
	if r.Err != nil {
		fmt.Fprintf(&b, "  error: %v\n", r.Err)
	}
	return b.String()
}
