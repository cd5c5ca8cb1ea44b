package cuda

import (
	"errors"
	"strings"
	"testing"
)

func TestProbeIsConsistent(t *testing.T) {
	r := Probe()
	s := r.String()
	t.Logf("\n%s", s)
	if r.Usable {
		checkUsable(t, r, s)
		return
	}
	if r.Step == "" || r.Reason == "" {
		t.Fatalf("unusable without a step and a reason: %+v", r)
	}
	if !strings.Contains(s, r.Reason) || !strings.Contains(s, "not available") {
		t.Errorf("String lacks the reason: %s", s)
	}
	checkFailedStep(t, r)
}

// checkUsable checks a usable report for completeness.
func checkUsable(t *testing.T, r Report, s string) {
	t.Helper()
	if len(r.Devices) == 0 || r.Step != "" || r.BlasPath == "" || r.DriverVersion == 0 {
		t.Errorf("usable report incomplete: %+v", r)
	}
	for _, d := range r.Devices {
		if d.Err == "" && (d.Name == "" || d.Major == 0 || d.TotalMem == 0 || d.SMs == 0) {
			t.Errorf("device without properties: %+v", d)
		}
	}
	if !strings.Contains(s, "GPU training: available") {
		t.Errorf("String: %s", s)
	}
}

// checkFailedStep checks that an unusable report's reason fits its step.
func checkFailedStep(t *testing.T, r Report) {
	t.Helper()
	switch r.Step {
	case StepNoCgo:
		if !errors.Is(r.Err, ErrNoCgo) || !strings.Contains(r.Reason, "CGO_ENABLED=1") {
			t.Errorf("no-cgo report: %+v", r)
		}
	case StepLoadDriver:
		if r.DriverPath != "" || !strings.Contains(r.Reason, "libcuda") {
			t.Errorf("driver report: %+v", r)
		}
	case StepInit:
		if r.DriverPath == "" || !strings.Contains(r.Reason, "(cuInit: CUDA_ERROR_") {
			t.Errorf("cuInit report: %+v", r)
		}
		if IsNoDevice(r.Err) && !strings.Contains(r.Reason, "no GPU is visible") {
			t.Errorf("no-device reason: %s", r.Reason)
		}
	}
}

func TestReasons(t *testing.T) {
	cases := map[int]string{
		100: "installed but no GPU is visible",
		34:  "stub",
		803: "does not match the NVIDIA kernel module",
		999: "failed to initialise",
	}
	for code, want := range cases {
		got := initReason(cudaErrorFromTable(code, "cuInit(0)"))
		if !strings.Contains(got, want) || !strings.Contains(got, cudaErrors[code][0]) {
			t.Errorf("code %d: %s", code, got)
		}
	}
	le := &LoadError{What: "CUDA driver", Tried: []string{"libcuda.so.1", "libcuda.so"}, Env: EnvLibCUDA}
	if got := driverLoadReason(le); !strings.Contains(got, "tried libcuda.so.1, libcuda.so") || !strings.Contains(got, "--gpus") {
		t.Errorf("driver reason: %s", got)
	}
	le = &LoadError{What: "CUDA driver", Path: "/x/libcuda.so.1", Symbol: "cuMemAlloc_v2"}
	if got := driverLoadReason(le); !strings.Contains(got, "lacks cuMemAlloc_v2") {
		t.Errorf("symbol reason: %s", got)
	}
	le = &LoadError{What: "cuBLAS", Tried: defaultBlasNames, Env: EnvLibCUBLAS}
	if got := blasLoadReason(le); !strings.Contains(got, "libcublas.so.13, libcublas.so.12") || !strings.Contains(got, EnvLibCUBLAS) {
		t.Errorf("cuBLAS reason: %s", got)
	}
}

func TestReportString(t *testing.T) {
	r := Report{
		DriverPath: "/usr/lib/libcuda.so.1", DriverVersion: 12040,
		BlasPath: "/usr/lib/libcublas.so.12", BlasVersion: "12.4.5",
		Devices: []DeviceInfo{{Index: 0, Name: "NVIDIA H100 80GB HBM3", Major: 9, Minor: 0,
			TotalMem: 80 << 30, FreeMem: 79 << 30, SMs: 132}},
		Usable: true,
	}
	want := "CUDA driver: /usr/lib/libcuda.so.1 (supports CUDA 12.4)\n" +
		"cuBLAS:      /usr/lib/libcublas.so.12 (12.4.5)\n" +
		"GPU 0: NVIDIA H100 80GB HBM3, compute capability 9.0, 132 SMs, 80 GiB total, 79 GiB free\n" +
		"GPU training: available (1 GPU)\n"
	if got := r.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
