package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

func tensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	ck, err := model.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for n, v := range ck.Tensors {
		out[n] = v.Data
	}
	return out
}

// TestResumeBitIdentical: a run interrupted (mid-epoch, and at an epoch
// boundary) and resumed from its checkpoint ends with weights and Adam
// moments bit-identical to an uninterrupted run on the CPU.
func TestResumeBitIdentical(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 40) // 200 training images: 25 steps of 8 per epoch
	common := []string{"--device", "cpu", "--data-dir", dir, "--epochs", "3", "--batch-size", "8", "--keep", "0", "--augment"}
	ref := filepath.Join(t.TempDir(), "ref.safetensors")
	if code, _, e := run(t, append([]string{"train", "--out", ref}, common...)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, e)
	}
	want := tensors(t, ref)
	if len(want) != 12 {
		t.Fatalf("checkpoint has %d tensors, want 10 parameters and 2 Adam moments", len(want))
	}
	for _, stopAt := range []int{30, 25, 7} {
		t.Run(fmt.Sprintf("stop after %d steps", stopAt), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run.safetensors")
			code, _, e := run(t, append([]string{"train", "--out", out, "--stop-after-steps", fmt.Sprint(stopAt)}, common...)...)
			if code != ExitInterrupted || !strings.Contains(e, "resume with:") || !strings.Contains(e, "--resume "+out) {
				t.Fatalf("interrupted run: exit %d, want %d with a resume command:\n%s", code, ExitInterrupted, e)
			}
			code, _, e = run(t, "train", "--resume", out, "--device", "cpu", "--data-dir", dir, "--epochs", "3", "--keep", "0")
			if code != 0 {
				t.Fatalf("resumed run: exit %d\n%s", code, e)
			}
			got := tensors(t, out)
			for name, w := range want {
				g := got[name]
				if len(g) != len(w) {
					t.Fatalf("%s: %d values, want %d", name, len(g), len(w))
				}
				for i := range w {
					if g[i] != w[i] {
						t.Fatalf("%s[%d] = %v after resume, %v uninterrupted: not bit-identical", name, i, g[i], w[i])
					}
				}
			}
			hist, err := os.ReadFile(strings.TrimSuffix(out, ".safetensors") + ".history.csv")
			if err != nil || strings.Count(string(hist), "\n") != 4 {
				t.Fatalf("run.history.csv after resume should hold a header and 3 epochs:\n%s", hist)
			}
		})
	}
}

// TestResumeHint: the resume command printed on an interrupt comes from
// the run's settings: the global flags given, the settings that differ from
// the defaults and that the checkpoint does not fix, in a fixed order.
func TestResumeHint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar dir")
	testkit.WriteRandomCIFAR(t, dir, 8)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, e := run(t, "--log-format", "json", "train", "--device", "cpu", "--data-dir", dir, "--epochs", "1", "--epochs", "2",
		"--batch-size", "8", "--out", out, "--seed", "4", "--keep", "3", "--stop-after-steps", "3")
	want := "resume with:\n  trainer --log-format json train --resume " + out + " --epochs 2 --data-dir '" + dir + "' --device cpu\n"
	// In JSON mode each plain line on stderr is the message of a JSON object.
	var msgs strings.Builder
	for _, o := range checkJSONLines(t, e) {
		msg, _ := o["message"].(string)
		msgs.WriteString(msg + "\n")
	}
	if code != ExitInterrupted || !strings.Contains(msgs.String(), want) {
		t.Fatalf("exit %d; want %d and %q in:\n%s", code, ExitInterrupted, want, e)
	}
}

func TestResumeRefusesConflicts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 8)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	if code, _, e := run(t, "train", "--device", "cpu", "--data-dir", dir, "--epochs", "1", "--batch-size", "8", "--out", out); code != 0 {
		t.Fatalf("exit %d\n%s", code, e)
	}
	code, _, e := run(t, "train", "--resume", out, "--batch-size", "16", "--device", "cpu", "--data-dir", dir, "--epochs", "2")
	if code != ExitError || !strings.Contains(e, "--batch-size 16") {
		t.Fatalf("conflicting --batch-size on resume: exit %d\n%s", code, e)
	}
	code, _, e = run(t, "train", "--resume", out, "--device", "cpu", "--data-dir", dir, "--epochs", "1")
	if code != ExitError || !strings.Contains(e, "already has 1 epochs") {
		t.Fatalf("resume with nothing left to do: exit %d\n%s", code, e)
	}
}

// TestNaNStopsAndKeepsCheckpoint: weights that overflow float32 make the
// loss NaN at the first step; training stops naming that step, and the last
// good checkpoint (the one resumed from) is kept as it was.
func TestNaNStopsAndKeepsCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 16)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	spec := "flatten,dense64linear,dense64linear,dense10"
	if code, _, e := run(t, "train", "--device", "cpu", "--data-dir", dir, "--epochs", "1", "--batch-size", "8", "--out", out, "--model", spec); code != 0 {
		t.Fatalf("exit %d\n%s", code, e)
	}
	// Blow the first layer up: 1e37 times ~1500 summed pixels overflows.
	ck, err := model.LoadCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	net, _ := ck.Plan()
	st, err := ck.State(net)
	if err != nil {
		t.Fatal(err)
	}
	for i := range st.Params[:64*3072] {
		st.Params[i] = 1e37
	}
	b := newTestCPU(t)
	net.Build(b, 8, 1)
	if err := model.SaveCheckpoint(out, net, st, ck.Meta); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(out)
	code, _, e := run(t, "train", "--resume", out, "--device", "cpu", "--data-dir", dir, "--epochs", "2", "--save-every", "1")
	if code != ExitError {
		t.Fatalf("exit %d, want 1:\n%s", code, e)
	}
	for _, want := range []string{"at step 1 of epoch 2", "lower --lr", "last good checkpoint " + out} {
		if !strings.Contains(e, want) {
			t.Fatalf("the error should contain %q:\n%s", want, e)
		}
	}
	after, _ := os.ReadFile(out)
	if string(before) != string(after) {
		t.Fatal("the checkpoint was overwritten after the loss became NaN")
	}
}

func newTestCPU(t *testing.T) device.Backend {
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
