package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/cuda"
)

// TestMain lets a test run the real command line in a child process (the
// CUDA libraries load once per process, so each fallback case needs its own).
func TestMain(m *testing.M) {
	if os.Getenv("TRAINER_TEST_MAIN") == "1" {
		os.Exit(Run(append([]string{"trainer"}, strings.Fields(os.Getenv("TRAINER_TEST_ARGS"))...)))
	}
	os.Exit(m.Run())
}

func child(t *testing.T, env []string, args string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "TRAINER_TEST_MAIN=1", "TRAINER_TEST_ARGS="+args)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, o.String(), e.String()
}

const quickBench = "--steps 1 --warmup 0 --batch-size 2 --json"

// checkFallback runs bench with --device auto (must run on the CPU, say why
// in the log) and --device gpu (must fail with the reason).
func checkFallback(t *testing.T, env []string, why string) {
	code, out, errOut := child(t, env, "bench --device auto "+quickBench)
	if code != 0 {
		t.Fatalf("--device auto: exit %d\n%s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || r["device"] != "cpu" {
		t.Fatalf("--device auto printed %q; want JSON with device cpu", out)
	}
	if !strings.Contains(errOut, "running on the CPU") || !strings.Contains(errOut, why) {
		t.Fatalf("--device auto log does not say why the GPU is not used (%q):\n%s", why, errOut)
	}
	code, _, errOut = child(t, env, "bench --device gpu "+quickBench)
	if code != ExitError || !strings.Contains(errOut, why) {
		t.Fatalf("--device gpu: exit %d, want 1 with %q in:\n%s", code, why, errOut)
	}
	t.Logf("fallback reason logged: %s", strings.TrimSpace(errOut))
}

// TestFallbackNoDriverLibrary hides the driver library behind a path that
// does not exist, as on a machine without the NVIDIA driver.
func TestFallbackNoDriverLibrary(t *testing.T) {
	checkFallback(t, []string{cuda.EnvLibCUDA + "=/nonexistent/libcuda.so.1"}, "/nonexistent/libcuda.so.1")
}

// TestFallbackDriverWithoutGPU uses the real driver library where one is
// installed (CI installs Debian's libcuda1) on a machine without a GPU:
// cuInit fails with CUDA_ERROR_NO_DEVICE, as on a GPU-less server.
func TestFallbackDriverWithoutGPU(t *testing.T) {
	r := cuda.Probe()
	switch {
	case r.Usable:
		t.Skip("this machine has a usable GPU: the no-GPU fallback cannot be shown here")
	case r.Step == cuda.StepNoCgo:
		t.Skip("built without cgo")
	case r.DriverPath == "":
		t.Skipf("no CUDA driver library installed (Debian's libcuda1 provides one): %s", r.Reason)
	case r.Step != cuda.StepInit:
		t.Skipf("driver present but the probe stopped at %q, not cuInit: %s", r.Step, r.Reason)
	}
	checkFallback(t, nil, "CUDA_ERROR_NO_DEVICE")
}
