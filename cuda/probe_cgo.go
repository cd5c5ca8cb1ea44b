//go:build cgo

package cuda

import (
	"errors"
	"strings"
)

// Probe finds out, step by step, whether this process can train on a GPU:
// the driver library, its version, cuInit, each device (briefly retaining its
// primary context to read the free memory), cuBLAS (chosen by the driver's
// CUDA major version), and a cuBLAS handle created and destroyed on the
// first working device, so that "usable" means cuBLAS works with this
// driver. It never panics; when no GPU is usable, Report.Step and
// Report.Reason say why.
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
	first := -1 // the first working device
	for i := range n {
		info := probeDevice(i)
		if info.Err == "" && first < 0 {
			first = i
		}
		r.Devices = append(r.Devices, info)
	}
	if blasErr != nil {
		r.fail(StepLoadBlas, blasLoadReason(blasErr), blasErr)
		return r
	}
	if first < 0 {
		r.fail(StepQuery, "every GPU failed a basic query (see the device lines): check nvidia-smi; the GPUs may be in use exclusively by another process", nil)
		return r
	}
	d, err := GetDevice(first)
	if err == nil {
		err = checkBlasHandle(d)
	}
	if err != nil {
		r.fail(StepBlasHandle, blasHandleReason(&r, err), err)
		return r
	}
	r.Usable = true
	if err := GraphSupport(); err != nil {
		r.GraphsOff = err.Error()
	} else {
		r.Graphs = GraphInstantiate()
	}
	return r
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
