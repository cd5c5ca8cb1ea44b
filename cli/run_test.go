package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeepAndBest: numbered checkpoints beyond --keep are deleted, and the
// best checkpoint by val_accuracy is kept beside the latest.
func TestKeepAndBest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	writeRandomCIFAR(t, dir, 16) // 80 images: 10 steps of 8 per epoch
	run1 := t.TempDir()
	out := filepath.Join(run1, "m.safetensors")
	code, _, e := run(t, "train", "--device", "cpu", "--data-dir", dir, "--epochs", "3", "--batch-size", "8", "--out", out,
		"--save-every", "4", "--keep", "2", "--model", "flatten,dense16,dense10")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, e)
	}
	numbered, _ := filepath.Glob(filepath.Join(run1, "m-step*.safetensors"))
	if len(numbered) != 2 || !strings.HasSuffix(numbered[1], "m-step000000030.safetensors") || !strings.HasSuffix(numbered[0], "m-step000000028.safetensors") {
		t.Fatalf("numbered checkpoints %v; want the last 2 (steps 28 and 30)", numbered)
	}
	for _, f := range []string{"m.safetensors", "m-best.safetensors", "history.csv", "history.jsonl", "history.png"} {
		if _, err := os.Stat(filepath.Join(run1, f)); err != nil {
			t.Errorf("run folder lacks %s", f)
		}
	}
}

// TestEarlyStop: on random labels the validation loss stops improving
// quickly; with --early-stop 1 training ends long before --epochs.
func TestEarlyStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	writeRandomCIFAR(t, dir, 16)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, e := run(t, "train", "--device", "cpu", "--data-dir", dir, "--epochs", "40", "--batch-size", "8", "--out", out,
		"--early-stop", "1", "--lr", "0.01", "--model", "flatten,dense32,dense10")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, e)
	}
	hist, _ := os.ReadFile(filepath.Join(filepath.Dir(out), "history.csv"))
	rows := strings.Count(string(hist), "\n") - 1
	if !strings.Contains(e, "early stop") || rows >= 40 {
		t.Fatalf("expected an early stop well before 40 epochs, got %d epochs:\n%s", rows, e)
	}
}

// TestOutExists: a new run never replaces an existing checkpoint unless
// told to.
func TestOutExists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	writeRandomCIFAR(t, dir, 8)
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
