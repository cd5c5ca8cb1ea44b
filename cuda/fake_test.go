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
	fakeLibsBuilt(t, nil, nil, env...)
}

// fakeLibsBuilt is fakeLibs with extra gcc flags for the fake driver and
// the fake cuBLAS (e.g. -DFAKE_NO_GRAPHS).
func fakeLibsBuilt(t *testing.T, cudaFlags, blasFlags []string, env ...string) {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the fake driver")
	}
	dir := t.TempDir()
	t.Setenv(EnvLibCUDA, buildFake(t, gcc, dir, fakeCudaSrc, "libfakecuda.so", cudaFlags...))
	t.Setenv(EnvLibCUBLAS, buildFake(t, gcc, dir, fakeCublasSrc, "libfakecublas.so", blasFlags...))
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
		r.BlasVersion != "12.4.5" || r.DriverVersion != 12040 || r.Devices[0].FreeMem != 3<<30 ||
		r.Graphs != "cuGraphInstantiateWithFlags" || r.GraphsOff != "" {
		t.Errorf("Probe: %+v", r)
	}
	if s := r.String(); !strings.Contains(s, "CUDA graphs: available (cuGraphInstantiateWithFlags)") {
		t.Errorf("report:\n%s", s)
	}
	t.Logf("\n%s", r)
}

// TestFakeDriverWithoutGraphs: a driver without the graph entry points (one
// older than CUDA 11.0) still loads and trains; graphs are off, the report
// says why and what to do, and the graph calls return that reason.
func TestFakeDriverWithoutGraphs(t *testing.T) {
	fakeLibsBuilt(t, []string{"-DFAKE_NO_GRAPHS"}, nil)
	err := GraphSupport()
	for _, want := range []string{"libfakecuda.so lacks cuStreamBeginCapture_v2, cuStreamEndCapture, cuGraphLaunch, cuGraphExecDestroy, cuGraphDestroy, cuGraphInstantiateWithFlags (or cuGraphInstantiate_v2)", "update the NVIDIA driver"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("GraphSupport: %v, want it to say %q", err, want)
		}
	}
	r := Probe()
	if !r.Usable || r.Graphs != "" || r.GraphsOff != err.Error() {
		t.Errorf("Probe: %+v", r)
	}
	if s := r.String(); !strings.Contains(s, "GPU training: available") || !strings.Contains(s, "CUDA graphs: not available\n  the CUDA driver") {
		t.Errorf("report:\n%s", s)
	}
	ctx := fakeContext(t)
	s, err := ctx.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if err := s.BeginCapture(); err == nil || !strings.Contains(err.Error(), "lacks cuStreamBeginCapture_v2") {
		t.Errorf("BeginCapture: %v", err)
	}
	for _, c := range gpuCases { // the rest works
		if c.name != "Graphs" && c.name != "BlasWorkspace" {
			t.Run(c.name, func(t *testing.T) { c.fn(t, ctx) })
		}
	}
}

// TestFakeDriverOldGraphs: a CUDA 11.0-11.3 driver has cuGraphInstantiate_v2
// but no cuGraphInstantiateWithFlags; graphs run through the former.
func TestFakeDriverOldGraphs(t *testing.T) {
	fakeLibsBuilt(t, []string{"-DFAKE_OLD_GRAPHS"}, nil)
	if err := GraphSupport(); err != nil {
		t.Fatal(err)
	}
	if got := GraphInstantiate(); got != "cuGraphInstantiate_v2" {
		t.Errorf("instantiating with %s", got)
	}
	ctx := fakeContext(t)
	t.Run("Graphs", func(t *testing.T) { testGraphs(t, ctx) })
}

// TestFakeBlasWithoutWorkspace: a cuBLAS without cublasSetWorkspace_v2
// turns graphs off, naming it.
func TestFakeBlasWithoutWorkspace(t *testing.T) {
	fakeLibsBuilt(t, nil, []string{"-DFAKE_NO_WORKSPACE"})
	err := GraphSupport()
	if err == nil || !strings.Contains(err.Error(), "libfakecublas.so lacks cublasSetWorkspace_v2") || !strings.Contains(err.Error(), EnvLibCUBLAS) {
		t.Fatalf("GraphSupport: %v", err)
	}
	if r := Probe(); !r.Usable || r.GraphsOff != err.Error() {
		t.Errorf("Probe: %+v", r)
	}
}

// fakeContext retains device 0's primary context of the loaded fake,
// released after the test.
func fakeContext(t *testing.T) *Context {
	t.Helper()
	d, err := GetDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := d.RetainPrimaryContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctx.Release() })
	return ctx
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
