package run

import (
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// TestResumeCommand: the command names the checkpoint, repeats the global
// arguments and the settings that differ from the defaults and that the
// checkpoint does not fix, and quotes for the shell.
func TestResumeCommand(t *testing.T) {
	cfg := Default()
	cfg.Global = []string{"--log-format", "json"}
	// Fixed by the checkpoint, or not for a resumed run: never repeated.
	cfg.Model, cfg.BatchSize, cfg.LR, cfg.Schedule, cfg.Seed, cfg.Augment = "flatten,dense10", 64, 0.5, "cosine", 7, true
	cfg.Out, cfg.Force, cfg.StopAfterSteps, cfg.Resume = "elsewhere.safetensors", true, 5, "old.safetensors"
	// Repeated.
	cfg.Epochs, cfg.SaveEvery, cfg.Quiet, cfg.Device.Name, cfg.Device.Threads, cfg.Device.Precision = 20, 100, true, "cpu", 2, device.PrecisionBF16
	cfg.Data = Dataset{Kind: "folder", Dir: "my data/it's here", ValSplit: 0.25, ImageSize: 24}
	got := ResumeCommand(cfg, "runs/$HOME/m.safetensors")
	want := `trainer --log-format json train --resume 'runs/$HOME/m.safetensors' --epochs 20 --save-every 100 --quiet ` +
		`--dataset folder --data-dir 'my data/it'\''s here' --val-split 0.25 --image-size 24 --device cpu --threads 2 --precision bf16`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := ResumeCommand(Default(), "m.safetensors"), "trainer train --resume m.safetensors"; got != want {
		t.Fatalf("defaults: got %q, want %q", got, want)
	}
	for in, want := range map[string]string{"plain": "plain", "a b": "'a b'", "tab\there": "'tab\there'", `say "x"`: `'say "x"'`, "it's": `'it'\''s'`, "$x": "'$x'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestShellQuoteRoundTrip: /bin/sh reads every quoted argument back as the
// original string, for hand-picked and random ones.
func TestShellQuoteRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to check against")
	}
	ins := []string{"", "plain", "a b", "a;b", "*", "~x", "$(id)", "`id`", "a|b&c", "x>y", "it's", "#c", "a\nb", "ü", "-n"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(1 + rng.IntN(126))
		}
		ins = append(ins, string(b))
	}
	var script strings.Builder
	for _, in := range ins {
		script.WriteString("printf '%s\\0' " + shellQuote(in) + "\n")
	}
	out, err := exec.Command(sh, "-c", script.String()).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	got := strings.Split(string(out), "\x00")
	if len(got) != len(ins)+1 {
		t.Fatalf("sh printed %d arguments, want %d", len(got)-1, len(ins))
	}
	for i, in := range ins {
		if got[i] != in {
			t.Errorf("shellQuote(%q) = %s reads back as %q", in, shellQuote(in), got[i])
		}
	}
}

// TestResumeCommandProgram: the resume command starts with the program as
// it was invoked, quoted for the shell, and with "trainer" when unknown.
func TestResumeCommandProgram(t *testing.T) {
	cfg := Default()
	for prog, want := range map[string]string{"": "trainer ", "./trainer": "./trainer ", "/opt/my tools/trainer": "'/opt/my tools/trainer' "} {
		cfg.Program = prog
		if got := ResumeCommand(cfg, "m.safetensors"); !strings.HasPrefix(got, want+"train --resume m.safetensors") {
			t.Errorf("Program %q: %q", prog, got)
		}
	}
}
