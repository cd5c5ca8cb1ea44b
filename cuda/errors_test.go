package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	e := &Error{Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory",
		Op: allocOp("cuMemAlloc", 512<<20, "activations")}
	want := `cuMemAlloc(512 MiB for "activations"): CUDA_ERROR_OUT_OF_MEMORY (out of memory)`
	if got := e.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	e = &Error{Code: 218, Name: "CUDA_ERROR_INVALID_PTX", Desc: "a PTX JIT compilation failed",
		Op: "cuModuleLoadDataEx(10-byte image)", Log: "ptxas application ptx input, line 1; error   : syntax error"}
	want = "cuModuleLoadDataEx(10-byte image): CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed): ptxas application ptx input, line 1; error   : syntax error"
	if got := e.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (&Error{Name: "CUDA_ERROR_UNKNOWN"}).Error(); got != "CUDA_ERROR_UNKNOWN" {
		t.Errorf("bare error: %q", got)
	}
	if got := allocOp("cuMemAlloc", 3<<29, ""); got != "cuMemAlloc(1.5 GiB)" {
		t.Errorf("allocOp without a name: %q", got)
	}
}

func TestErrorTables(t *testing.T) {
	e := cudaErrorFromTable(100, "cuInit(0)")
	if e.Error() != "cuInit(0): CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)" {
		t.Errorf("table error: %s", e)
	}
	if e := cudaErrorFromTable(12345, "x"); e.Name != "CUDA_ERROR_12345" {
		t.Errorf("unknown code named %q", e.Name)
	}
	if e := blasError(1, "cublasSgemm"); e.Error() != "cublasSgemm: CUBLAS_STATUS_NOT_INITIALIZED (the library was not initialized)" {
		t.Errorf("cuBLAS error: %s", e)
	}
	if e := blasError(99, "x"); e.Name != "CUBLAS_STATUS_99" {
		t.Errorf("unknown status named %q", e.Name)
	}
	for code, n := range cublasStatuses {
		if !strings.HasPrefix(n[0], "CUBLAS_STATUS_") || n[1] == "" {
			t.Errorf("status %d: %v", code, n)
		}
	}
}

func TestIsOutOfMemoryAndNoDevice(t *testing.T) {
	oom := cudaErrorFromTable(2, "cuMemAlloc(1 PiB)")
	wrapped := fmt.Errorf("allocating weights: %w", oom)
	if !IsOutOfMemory(oom) || !IsOutOfMemory(wrapped) {
		t.Error("IsOutOfMemory misses CUDA_ERROR_OUT_OF_MEMORY")
	}
	if !IsOutOfMemory(blasError(3, "cublasCreate")) {
		t.Error("IsOutOfMemory misses CUBLAS_STATUS_ALLOC_FAILED")
	}
	// CUDA code 3 is not an allocation failure, although cuBLAS status 3 is.
	if IsOutOfMemory(cudaErrorFromTable(3, "")) || IsOutOfMemory(errors.New("out of memory")) || IsOutOfMemory(nil) {
		t.Error("IsOutOfMemory false positive")
	}
	nodev := fmt.Errorf("gpu: %w", cudaErrorFromTable(100, "cuInit(0)"))
	if !IsNoDevice(nodev) || IsNoDevice(oom) || IsNoDevice(nil) {
		t.Error("IsNoDevice wrong")
	}
}

func TestLoadErrorFormat(t *testing.T) {
	e := &LoadError{What: "cuBLAS", Tried: []string{"libcublas.so.12", "libcublas.so"},
		Reasons: []string{"libcublas.so.12: cannot open shared object file", "libcublas.so: cannot open shared object file"},
		Env:     EnvLibCUBLAS}
	want := "cuda: cannot load the cuBLAS library (tried libcublas.so.12, libcublas.so): " +
		"libcublas.so.12: cannot open shared object file; libcublas.so: cannot open shared object file; " +
		"set TRAINER_LIBCUBLAS to the library's path to override"
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e, want)
	}
	e = &LoadError{What: "CUDA driver", Path: "/lib/libc.so.6", Symbol: "cuInit"}
	if got := e.Error(); got != "cuda: /lib/libc.so.6 (opened as the CUDA driver library) has no symbol cuInit" {
		t.Errorf("symbol error: %s", got)
	}
}

func TestFormatBytesAndVersion(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 512 << 20: "512 MiB",
		3 << 29: "1.5 GiB", 80 << 30: "80 GiB", 1 << 50: "1 PiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for v, want := range map[int]string{12040: "12.4", 11080: "11.8", 12020: "12.2", 13000: "13.0"} {
		if got := VersionString(v); got != want {
			t.Errorf("VersionString(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestLibNames(t *testing.T) {
	t.Setenv(EnvLibCUDA, "")
	if got := libNames(EnvLibCUDA, defaultDriverNames); strings.Join(got, ",") != "libcuda.so.1,libcuda.so" {
		t.Errorf("default driver names: %v", got)
	}
	if got := libNames(EnvLibCUBLAS, defaultBlasNames); strings.Join(got, ",") != "libcublas.so.13,libcublas.so.12,libcublas.so.11,libcublas.so" {
		t.Errorf("default cuBLAS names: %v", got)
	}
	t.Setenv(EnvLibCUDA, "/opt/x/libcuda.so.1")
	if got := libNames(EnvLibCUDA, defaultDriverNames); len(got) != 1 || got[0] != "/opt/x/libcuda.so.1" {
		t.Errorf("override: %v", got)
	}
}
