package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// TestOutExists: a new run never replaces an existing checkpoint unless
// told to.
func TestOutExists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 8)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	args := []string{"train", "--device", "cpu", "--data-dir", dir, "--epochs", "1", "--batch-size", "8", "--out", out, "--model", "flatten,dense10"}
	if code, _, e := run(t, args...); code != 0 {
		t.Fatalf("exit %d\n%s", code, e)
	}
	before, _ := os.ReadFile(out)
	code, _, e := run(t, args...)
	if code != ExitError || !strings.Contains(e, "already holds a checkpoint") || !strings.Contains(e, "--resume") {
		t.Fatalf("a second run onto the same --out: exit %d\n%s", code, e)
	}
	if after, _ := os.ReadFile(out); string(after) != string(before) {
		t.Fatal("the refused run changed the checkpoint")
	}
	if code, _, e := run(t, append(args, "--force")...); code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, e)
	}
}
