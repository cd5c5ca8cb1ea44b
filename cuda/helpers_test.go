package cuda

import (
	"os"
	"testing"
)

// EnvRequireGPU, when set to 1, turns the GPU tests' skips into failures: set
// it when running the test binary on a machine that must have a working GPU,
// so that a broken setup cannot pass as "skipped".
const envRequireGPU = "TRAINER_REQUIRE_GPU"

// requireGPU skips the test with the formatted reason, or fails it when
// TRAINER_REQUIRE_GPU=1.
func requireGPU(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(envRequireGPU) == "1" {
		t.Fatalf("%s=1 but: "+format, append([]any{envRequireGPU}, args...)...)
	}
	t.Skipf(format, args...)
}
