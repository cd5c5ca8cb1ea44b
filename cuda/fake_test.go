//go:build cgo

package cuda

import (
	_ "embed"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The fakes' sources travel inside the test binary, so that a binary built
// with go test -c runs these tests from any directory (gcc is still needed).
var (
	//go:embed testdata/fakecuda.c
	fakeCudaSrc string
	//go:embed testdata/fakecublas.c
	fakeCublasSrc string
)

// fakeLibs compiles testdata/fakecuda.c and fakecublas.c into shared
// libraries, points TRAINER_LIBCUDA/TRAINER_LIBCUBLAS at them and resets the
// loader, so that Load and everything after it use the fakes until the test
// ends. The fakes implement the entry points on the host (see the C files).
func fakeLibs(t *testing.T, env ...string) {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the fake driver")
	}
	dir := t.TempDir()
	t.Setenv(EnvLibCUDA, buildFake(t, gcc, dir, fakeCudaSrc, "libfakecuda.so"))
	t.Setenv(EnvLibCUBLAS, buildFake(t, gcc, dir, fakeCublasSrc, "libfakecublas.so"))
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	resetForTest()
	t.Cleanup(resetForTest) // runs before the environment is restored
}

// buildFake compiles one fake's C source (with extra gcc flags, e.g.
// -DFAKE_CUBLAS_MAJOR=13) into the shared library dir/out and returns its
// path.
func buildFake(t *testing.T, gcc, dir, src, out string, flags ...string) string {
	t.Helper()
	c, p := filepath.Join(dir, out+".c"), filepath.Join(dir, out)
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", p, c}, flags...)
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", out, err, b)
	}
	return p
}

// TestFakeDriver runs the GPU test cases through the fake driver: every
// wrapper, shim, argument order, error path and the allocation-free claims,
// on any machine.
func TestFakeDriver(t *testing.T) {
	fakeLibs(t)
	lib, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(lib.DriverPath, "libfakecuda.so") || !strings.HasSuffix(lib.BlasPath, "libfakecublas.so") {
		t.Fatalf("loaded %+v", lib)
	}
	d, err := GetDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Ordinal() != 0 || d.h != 100 {
		t.Errorf("device 0: %+v", d)
	}
	if _, err := GetDevice(1); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_INVALID_DEVICE") {
		t.Errorf("device 1 of 1: %v", err)
	}
	ctx, err := d.RetainPrimaryContext()
	if err != nil {
		t.Fatal(err)
	}
	runGPUCases(t, ctx)
	if err := ctx.Release(); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	// With the context released, the fake (like CUDA) refuses work in it.
	if _, err := ctx.MemAlloc(16, "after release"); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_INVALID_CONTEXT") {
		t.Errorf("alloc in a released context: %v", err)
	}
	r := Probe()
	if !r.Usable || len(r.Devices) != 1 || r.Devices[0].Name != "Fake GPU 0" || r.Devices[0].SMs != 4 ||
		r.BlasVersion != "12.4.5" || r.DriverVersion != 12040 || r.Devices[0].FreeMem != 3<<30 {
		t.Errorf("Probe: %+v", r)
	}
	t.Logf("\n%s", r)
}

func TestFakeNoDevice(t *testing.T) {
	fakeLibs(t, "FAKE_CUDA_INIT_ERROR", "100")
	err := Init()
	if !IsNoDevice(err) || err.Error() != "cuInit(0): CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)" {
		t.Fatalf("Init: %v", err)
	}
	if _, err := DeviceCount(); !IsNoDevice(err) {
		t.Errorf("DeviceCount: %v", err)
	}
	r := Probe()
	if r.Usable || r.Step != StepInit || !IsNoDevice(r.Err) || r.BlasVersion != "12.4.5" ||
		!strings.Contains(r.Reason, "the NVIDIA driver library is installed but no GPU is visible") {
		t.Errorf("Probe: %+v", r)
	}
}

func TestFakeInitErrorNamedByTable(t *testing.T) {
	// The fake's cuGetErrorName knows only two codes; the rest come from the table.
	fakeLibs(t, "FAKE_CUDA_INIT_ERROR", "803")
	err := Init()
	var e *Error
	if !errors.As(err, &e) || e.Name != "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH" || e.Code != 803 {
		t.Fatalf("Init: %v", err)
	}
	if r := Probe(); r.Step != StepInit || !strings.Contains(r.Reason, "kernel module") {
		t.Errorf("Probe: %+v", r)
	}
}

func TestFakeZeroDevices(t *testing.T) {
	fakeLibs(t, "FAKE_CUDA_DEVICES", "0")
	if n, err := DeviceCount(); n != 0 || err != nil {
		t.Fatalf("DeviceCount = %d, %v", n, err)
	}
	if r := Probe(); r.Usable || r.Step != StepDevices || !strings.Contains(r.Reason, "reports no GPU") {
		t.Errorf("Probe: %+v", r)
	}
}

func TestFakeBlasMissing(t *testing.T) {
	fakeLibs(t, EnvLibCUBLAS, "/nonexistent/libcublas.so.12")
	r := Probe()
	if r.Usable || r.Step != StepLoadBlas || len(r.Devices) != 1 ||
		!strings.Contains(r.Reason, "TRAINER_LIBCUBLAS=/nonexistent/libcublas.so.12 names no loadable library") {
		t.Errorf("Probe: %+v", r)
	}
	t.Logf("\n%s", r)
}

func TestFakeDriverMissing(t *testing.T) {
	fakeLibs(t, EnvLibCUDA, "/nonexistent/libcuda.so.1")
	var le *LoadError
	if _, err := Load(); !errors.As(err, &le) || !le.FromEnv {
		t.Fatalf("Load: %v", err)
	}
	r := Probe()
	if r.Usable || r.Step != StepLoadDriver || !strings.Contains(r.Reason, "TRAINER_LIBCUDA=/nonexistent/libcuda.so.1 names no loadable library") {
		t.Errorf("Probe: %+v", r)
	}
	t.Logf("\n%s", r)
}
