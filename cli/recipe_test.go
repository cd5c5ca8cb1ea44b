package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSummaryPresetsAndFiles: summary prints the presets with their PyTorch
// parameter counts, reads model files, and --json prints a description
// that plans the same network again.
func TestSummaryPresetsAndFiles(t *testing.T) {
	code, out, errOut := run(t, "summary", "--model", "resnet20")
	if code != 0 || !strings.Contains(out, "total parameters: 272,474") || !strings.Contains(out, "layer2.0.bn2 + layer2.0.shortcut.1") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	code, js, errOut := run(t, "summary", "--model", "airbench94", "--json")
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(js), &d) != nil || d["name"] != "airbench94" {
		t.Fatalf("exit %d: %q %s", code, js, errOut)
	}
	file := filepath.Join(t.TempDir(), "ab.json")
	os.WriteFile(file, []byte(js), 0o644)
	if code, out, errOut := run(t, "summary", "--model", file); code != 0 || !strings.Contains(out, "total parameters: 1,972,792") {
		t.Fatalf("the printed description: exit %d:\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("layers:\n  - {name: a, type: conv, filters: 2, kernel: 3}\n  - {name: b, type: add, inputs: [a, nope]}\n"), 0o644)
	code, _, errOut = run(t, "summary", "--model", bad)
	if code != 1 || !strings.Contains(errOut, bad) || !strings.Contains(errOut, `layer 2 "b"`) || !strings.Contains(errOut, `"nope"`) {
		t.Fatalf("bad model file: exit %d: %s", code, errOut)
	}
}

// TestRecipeFlagErrors: bad recipe flags exit 1 naming the flag, before
// any data is read (no --data-dir: the default would download).
func TestRecipeFlagErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.safetensors")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--optimizer", "lamb"}, `--optimizer "lamb"`},
		{[]string{"--optimizer", "sgd", "--momentum", "1.5"}, "--momentum 1.5"},
		{[]string{"--nesterov"}, "nesterov needs --optimizer sgd"},
		{[]string{"--label-smoothing", "-0.1"}, "--label-smoothing -0.1"},
		{[]string{"--lr-schedule", "onecycle", "--warmup", "30"}, "--warmup 30: onecycle"},
		{[]string{"--augment-padding", "wrap"}, "--augment-padding"},
		{[]string{"--model", "resnet21"}, "not a preset"},
	} {
		code, _, errOut := run(t, append([]string{"train", "--out", out}, c.args...)...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("train %v: exit %d, stderr %q, want it to mention %q", c.args, code, errOut, c.want)
		}
	}
}
