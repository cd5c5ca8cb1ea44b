//go:build cgo

package cuda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The cuBLAS a driver gets. A child test process (this test binary run
// again) finds libcublas.so.N by the dynamic loader's own search, with
// LD_LIBRARY_PATH pointing at a folder of fake cuBLAS libraries, each
// reporting its own major version and, like a real cuBLAS, failing
// cublasCreate under an older driver; the fake driver reports the CUDA
// version under test.

// envBlasChild makes TestBlasChild print what Probe found.
const envBlasChild = "TRAINER_TEST_BLAS_CHILD"

// TestBlasChild is the child process of TestBlasMatchesDriver: it prints
// Probe's cuBLAS path and version, whether the GPU is usable, and the step
// that failed.
func TestBlasChild(t *testing.T) {
	if os.Getenv(envBlasChild) != "1" {
		t.Skip("the child process of TestBlasMatchesDriver")
	}
	r := Probe()
	fmt.Printf("PROBE %s|%s|%v|%s\n", filepath.Base(r.BlasPath), r.BlasVersion, r.Usable, r.Step)
}

// TestBlasMatchesDriver: under a CUDA N driver the cuBLAS of major N is
// loaded even when a newer one is installed, an older one when N's is
// missing, and never a newer one.
func TestBlasMatchesDriver(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the fake libraries")
	}
	dir := t.TempDir()
	drv := buildFake(t, gcc, dir, fakeCudaSrc, "libfakecuda.so")
	all, partial := filepath.Join(dir, "all"), filepath.Join(dir, "no12")
	for _, d := range []string{all, partial} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, major := range []int{11, 12, 13} {
		flag := fmt.Sprintf("-DFAKE_CUBLAS_MAJOR=%d", major)
		buildFake(t, gcc, all, fakeCublasSrc, fmt.Sprintf("libcublas.so.%d", major), flag)
		if major != 12 {
			buildFake(t, gcc, partial, fakeCublasSrc, fmt.Sprintf("libcublas.so.%d", major), flag)
		}
	}
	for _, c := range []struct {
		dir    string
		driver int
		major  int // the cuBLAS major that must be loaded
	}{
		{all, 11080, 11}, {all, 12040, 12}, {all, 13000, 13},
		{partial, 12040, 11}, // 12 missing: the older one, not 13
	} {
		got := probeChild(t, c.dir, drv, c.driver)
		want := fmt.Sprintf("libcublas.so.%d|%d.4.5|true|", c.major, c.major)
		if got != want {
			t.Errorf("driver %d, libraries in %s: Probe found %q, want %q", c.driver, filepath.Base(c.dir), got, want)
		}
	}
}

// probeChild runs TestBlasChild with the fake driver reporting driver and
// LD_LIBRARY_PATH=libDir, and returns what it printed after PROBE.
func probeChild(t *testing.T, libDir, drv string, driver int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBlasChild$", "-test.count=1")
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, EnvLibCUBLAS+"=") && !strings.HasPrefix(e, "LD_LIBRARY_PATH=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, envBlasChild+"=1", EnvLibCUDA+"="+drv, "LD_LIBRARY_PATH="+libDir,
		fmt.Sprintf("FAKE_CUDA_DRIVER_VERSION=%d", driver))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "PROBE "); ok {
			return v
		}
	}
	t.Fatalf("child printed no PROBE line:\n%s", out)
	return ""
}

// TestFakeBlasNewerThanDriver: a cuBLAS that loads but is newer than the
// driver (TRAINER_LIBCUBLAS names cuBLAS 13 under a CUDA 12 driver) makes
// the GPU unusable at the handle step, with the versions and what to do,
// instead of "available" and a failure later at cublasCreate.
func TestFakeBlasNewerThanDriver(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the fake libraries")
	}
	blas13 := buildFake(t, gcc, t.TempDir(), fakeCublasSrc, "libcublas.so.13", "-DFAKE_CUBLAS_MAJOR=13")
	fakeLibs(t, EnvLibCUBLAS, blas13, "FAKE_CUDA_DRIVER_VERSION", "12040")
	r := Probe()
	if r.Usable || r.Step != StepBlasHandle || r.BlasVersion != "13.4.5" ||
		!strings.Contains(r.Reason, "needs a CUDA 13 driver, and this driver supports CUDA 12.4: update the NVIDIA driver, or install cuBLAS 12") ||
		!strings.Contains(r.Err.Error(), "CUBLAS_STATUS_NOT_INITIALIZED") {
		t.Errorf("Probe: %+v", r)
	}
	t.Logf("\n%s", r)
	// The same library under a CUDA 13 driver is usable.
	t.Setenv("FAKE_CUDA_DRIVER_VERSION", "13000")
	resetForTest()
	if r := Probe(); !r.Usable {
		t.Errorf("cuBLAS 13 under a CUDA 13 driver: %+v", r)
	}
}
