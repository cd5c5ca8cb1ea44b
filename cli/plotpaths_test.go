package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlotRunHistory: plot finds a run's <stem>.history.csv from its
// checkpoint or from its folder and draws <stem>.history.png; a folder with
// several runs is an error that lists them.
func TestPlotRunHistory(t *testing.T) {
	dir := t.TempDir()
	writeHistory(t, filepath.Join(dir, "a.history.csv"), 3)
	os.WriteFile(filepath.Join(dir, "a.safetensors"), []byte("x"), 0o644)
	for _, arg := range []string{dir, filepath.Join(dir, "a.safetensors")} {
		code, out, e := run(t, "plot", arg)
		want := filepath.Join(dir, "a.history.png")
		if code != 0 || strings.TrimSpace(out) != want {
			t.Fatalf("plot %s: exit %d, printed %q, want %q:\n%s", arg, code, out, want, e)
		}
		checkPlotPNG(t, want)
		os.Remove(want)
	}
	writeHistory(t, filepath.Join(dir, "b.history.csv"), 2)
	code, _, e := run(t, "plot", dir)
	if code != ExitError || !strings.Contains(e, "a.history.csv") || !strings.Contains(e, "b.history.csv") {
		t.Fatalf("plot of a folder with two runs: exit %d, want an error listing both:\n%s", code, e)
	}
	if code, _, e := run(t, "plot", filepath.Join(dir, "b.safetensors")); code != 0 {
		t.Fatalf("plot of the second run's checkpoint (the history is enough): exit %d\n%s", code, e)
	}
}
