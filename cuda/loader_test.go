//go:build cgo

package cuda

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestLoadMissingLibraryNamesEveryFileTried(t *testing.T) {
	t.Setenv(EnvLibCUDA, "/nonexistent/libcuda.so.1")
	names := libNames(EnvLibCUDA, defaultDriverNames)
	_, err := loadDriverFrom(names)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %v", err)
	}
	if len(le.Tried) != 1 || le.Tried[0] != "/nonexistent/libcuda.so.1" || !le.FromEnv || le.Symbol != "" {
		t.Errorf("LoadError: %+v", le)
	}
	msg := err.Error()
	for _, want := range []string{"CUDA driver", "/nonexistent/libcuda.so.1", "TRAINER_LIBCUDA", "No such file"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}

	_, err = loadBlasFrom([]string{"libcublas-missing.so.99", "/nonexistent/libcublas.so"})
	if !errors.As(err, &le) || len(le.Reasons) != 2 {
		t.Fatalf("cuBLAS: %v", err)
	}
	for _, want := range []string{"cuBLAS", "libcublas-missing.so.99", "/nonexistent/libcublas.so", "set TRAINER_LIBCUBLAS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %s", want, err)
		}
	}
}

func TestLoadLibraryWithoutSymbolNamesIt(t *testing.T) {
	// libc opens fine but is no CUDA driver: the first symbol is missing.
	_, err := loadDriverFrom([]string{"libc.so.6"})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %v", err)
	}
	if le.Symbol != "cuInit" || !strings.Contains(le.Path, "libc.so.6") {
		t.Errorf("LoadError: %+v", le)
	}
	if !strings.Contains(err.Error(), "has no symbol cuInit") {
		t.Errorf("message: %s", err)
	}
	_, err = loadBlasFrom([]string{"libc.so.6"})
	if !errors.As(err, &le) || le.Symbol != "cublasCreate_v2" || le.What != "cuBLAS" {
		t.Errorf("cuBLAS from libc: %v", err)
	}
}

func TestTablesCoverTheStructs(t *testing.T) {
	if err := tableMatchesStruct(); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	graphs, blasOpt := optionalSymbolNames()
	for _, n := range slices.Concat(driverSymbolNames(), blasSymbolNames(), graphs, blasOpt) {
		if names[n] {
			t.Errorf("symbol %s listed twice", n)
		}
		names[n] = true
	}
	// The versioned entry points cuda.h maps the public names to.
	for _, n := range []string{"cuDeviceTotalMem_v2", "cuDevicePrimaryCtxRelease_v2", "cuMemAlloc_v2", "cuMemFree_v2",
		"cuMemGetInfo_v2", "cuMemcpyHtoDAsync_v2", "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoDAsync_v2",
		"cuStreamDestroy_v2", "cuEventDestroy_v2", "cublasCreate_v2", "cublasSgemm_v2", "cublasGetVersion_v2",
		"cuStreamBeginCapture_v2", "cuGraphInstantiate_v2", "cublasSetWorkspace_v2"} {
		if !names[n] {
			t.Errorf("table lacks %s", n)
		}
	}
}

// driverOrSkip loads the system's driver library with no override, or skips.
func driverOrSkip(t *testing.T) *Lib {
	t.Helper()
	if os.Getenv(EnvLibCUDA) != "" {
		t.Skipf("%s is set; this test is about the default search", EnvLibCUDA)
	}
	lib, err := LoadDriver()
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) && le.Symbol == "" {
			requireGPU(t, "no CUDA driver library is installed here (%v)", err)
		}
		t.Fatalf("the installed driver library is unusable: %v", err)
	}
	return lib
}

func TestSystemDriver(t *testing.T) {
	lib := driverOrSkip(t)
	t.Logf("driver library: %s", lib.DriverPath)
	v, err := DriverVersion()
	if err != nil || v < 10000 {
		t.Fatalf("DriverVersion = %d, %v", v, err)
	}
	t.Logf("driver supports CUDA %s", VersionString(v))
	// The driver names every code of the fallback table the same way (the
	// descriptions may be reworded between driver versions: only logged).
	for code, n := range cudaErrors {
		e := newCUDAError(code, "")
		if e.Name != n[0] {
			t.Errorf("code %d: driver says %s, table says %s", code, e.Name, n[0])
		} else if e.Desc != n[1] {
			t.Logf("code %d: driver describes it as %q, table as %q", code, e.Desc, n[1])
		}
	}
	err = Init()
	if err == nil {
		t.Logf("cuInit succeeded: a GPU is visible")
		return
	}
	// No GPU (e.g. Debian's libcuda1 without the hardware): a named CUDA error.
	var e *Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Name, "CUDA_ERROR_") || e.Op != "cuInit(0)" {
		t.Fatalf("Init error is not a named CUDA error: %v", err)
	}
	t.Logf("Init: %v (IsNoDevice=%v)", err, IsNoDevice(err))
	if _, err2 := DeviceCount(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("DeviceCount after a failed Init: %v", err2)
	}
}

func TestSystemCuBLAS(t *testing.T) {
	driverOrSkip(t)
	if os.Getenv(EnvLibCUBLAS) != "" {
		t.Skipf("%s is set", EnvLibCUBLAS)
	}
	lib, err := Load()
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) && le.Symbol == "" {
			requireGPU(t, "cuBLAS is not installed here (%v)", err)
		}
		t.Fatal(err)
	}
	v, err := BlasVersion()
	if err != nil || !strings.Contains(v, ".") {
		t.Fatalf("BlasVersion = %q, %v", v, err)
	}
	t.Logf("cuBLAS %s from %s", v, lib.BlasPath)
}
