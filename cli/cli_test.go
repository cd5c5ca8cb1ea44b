package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/data"
)

// run runs the command line in-process and returns exit code, stdout, stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code := Run(append([]string{"trainer"}, args...))
	return code, o.String(), e.String()
}

// writeCIFAR writes a cifar-10-batches-bin folder of n records per file with
// label l for every record.
func writeCIFAR(t *testing.T, dir string, n int, label byte) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	rec := make([]byte, n*data.RecordSize)
	for i := 0; i < n; i++ {
		rec[i*data.RecordSize] = label
		for j := 1; j < data.RecordSize; j++ {
			rec[i*data.RecordSize+j] = byte(i*7 + j)
		}
	}
	for _, f := range append(data.TrainFiles[:], data.TestFile) {
		if err := os.WriteFile(filepath.Join(dir, f), rec, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrainEvalEndToEnd trains the default model on real CIFAR-10 images
// (the CI sample: 2,500 training and 1,000 validation images) and checks
// that validation accuracy is far above chance (10%) and that eval of the
// saved checkpoint reproduces the final val_accuracy exactly.
func TestTrainEvalEndToEnd(t *testing.T) {
	dir := cifarSample(t)
	ck := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, logs := run(t, "--log-format", "json", "train", "--device", "cpu", "--data-dir", dir, "--epochs", "3", "--out", ck)
	if code != 0 {
		t.Fatalf("train exit %d:\n%s", code, logs)
	}
	var last map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			if _, ok := ev["val_accuracy"]; ok && ev["epoch"] != nil && ev["seconds"] != nil {
				for _, k := range []string{"loss", "accuracy", "val_loss", "images_per_s"} {
					if _, ok := ev[k]; !ok {
						t.Fatalf("epoch event lacks %q: %s", k, sc.Text())
					}
				}
				last = ev
			}
		}
	}
	if last == nil || last["epoch"].(float64) != 3 {
		t.Fatalf("no epoch-3 event in logs:\n%s", logs)
	}
	valAcc := last["val_accuracy"].(float64)
	t.Logf("val_accuracy after 3 epochs on the sample: %.3f", valAcc)
	if valAcc < 0.25 {
		t.Fatalf("val_accuracy %.3f after 3 epochs; expected well above chance (0.10), at least 0.25", valAcc)
	}
	code, out, logs := run(t, "eval", "--device", "cpu", "--checkpoint", ck, "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatalf("eval exit %d:\n%s", code, logs)
	}
	var ev struct {
		Loss, Accuracy float64
		Samples        int
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("eval --json printed %q: %v", out, err)
	}
	if ev.Samples != 1000 || round(ev.Accuracy, 4) != valAcc {
		t.Fatalf("eval: accuracy %v on %d samples; training reported val_accuracy %v on 1000", ev.Accuracy, ev.Samples, valAcc)
	}
}

// TestBadInput: each bad input gives exit code 1 and one error line naming
// the problem, never a panic.
func TestBadInput(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good")
	writeCIFAR(t, good, 4, 3)
	trunc := filepath.Join(root, "trunc")
	writeCIFAR(t, trunc, 4, 3)
	os.Truncate(filepath.Join(trunc, "data_batch_3.bin"), 3*data.RecordSize+100)
	lab := filepath.Join(root, "label")
	writeCIFAR(t, lab, 4, 11)
	junk := filepath.Join(root, "junk.safetensors")
	os.WriteFile(junk, []byte("not a checkpoint at all"), 0o644)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"truncated", []string{"train", "--device", "cpu", "--data-dir", trunc}, []string{"data_batch_3.bin", "whole number"}},
		{"label 11", []string{"train", "--device", "cpu", "--data-dir", lab}, []string{"label 11", "0-9"}},
		{"missing folder", []string{"train", "--device", "cpu", "--data-dir", filepath.Join(root, "nope")}, []string{"nope", "not found"}},
		{"unknown model token", []string{"train", "--device", "cpu", "--data-dir", good, "--model", "conv32k3,wibble,dense10"}, []string{"wibble", "unknown layer"}},
		{"impossible shape", []string{"summary", "--model", "conv8k3,maxpool2,maxpool2,maxpool2,maxpool2,conv8k3,flatten,dense10"}, []string{"larger than"}},
		{"bad epochs", []string{"train", "--epochs", "0", "--data-dir", good}, []string{"--epochs 0"}},
		{"bad device", []string{"bench", "--device", "tpu"}, []string{"tpu"}},
		{"junk checkpoint", []string{"eval", "--checkpoint", junk, "--data-dir", good}, []string{"junk.safetensors"}},
		{"missing checkpoint", []string{"eval", "--checkpoint", filepath.Join(root, "none.safetensors"), "--data-dir", good}, []string{"none.safetensors: file not found (trainer train --out writes one)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, c.args...)
			if code != ExitError {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, ExitError, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			msg := lines[len(lines)-1]
			if !strings.HasPrefix(msg, "trainer: error: ") {
				t.Fatalf("last stderr line %q is not an error line; stderr:\n%s", msg, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestSummaryDefault(t *testing.T) {
	code, out, errOut := run(t, "summary")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "total parameters: 122,570") {
		t.Fatalf("summary output lacks the 122,570 total:\n%s", out)
	}
}

func TestBenchJSON(t *testing.T) {
	code, out, errOut := run(t, "bench", "--device", "auto", "--steps", "2", "--warmup", "1", "--batch-size", "4", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	for _, k := range []string{"device", "batch_size", "images_per_s", "ms_per_step_median", "ms_per_step_p90", "gflops"} {
		if _, ok := r[k]; !ok {
			t.Errorf("bench JSON lacks %q: %s", k, out)
		}
	}
	if r["images_per_s"].(float64) <= 0 {
		t.Errorf("images_per_s %v", r["images_per_s"])
	}
}

// cifarSample unpacks the CIFAR-10 sample named by TRAINER_CIFAR_SAMPLE
// into a temporary folder and returns it; without the sample the test
// skips and says why.
func cifarSample(t *testing.T) string {
	t.Helper()
	dir, skip, err := data.SampleDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	return dir
}
