package cli

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFolderDataset trains on an image-folder dataset of three classes
// (noisy red, green and blue 12x12 images, resized to 8x8) with a held-out
// validation split, then checks eval reproduces the validation accuracy and
// reports per-class accuracy and a confusion matrix.
func TestFolderDataset(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	rng := rand.New(rand.NewPCG(4, 4))
	for ci, name := range []string{"blue", "green", "red"} {
		dir := filepath.Join(root, name)
		os.MkdirAll(dir, 0o755)
		for i := 0; i < 30; i++ {
			img := image.NewRGBA(image.Rect(0, 0, 12, 12))
			for p := 0; p < 144; p++ {
				v := [3]uint8{uint8(rng.IntN(100)), uint8(rng.IntN(100)), uint8(rng.IntN(100))}
				v[2-ci] += 155 // blue, green, red channel bright
				img.Set(p%12, p/12, color.RGBA{v[0], v[1], v[2], 255})
			}
			f, _ := os.Create(filepath.Join(dir, fmt.Sprintf("%03d.png", i)))
			png.Encode(f, img)
			f.Close()
		}
	}
	out := filepath.Join(t.TempDir(), "m.safetensors")
	spec := "conv4k3,maxpool2,flatten,dense3"
	code, _, e := run(t, "--log-format", "json", "train", "--device", "cpu", "--dataset", "folder", "--data-dir", root, "--image-size", "8",
		"--val-split", "0.2", "--epochs", "10", "--batch-size", "8", "--lr", "0.01", "--model", spec, "--out", out)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, e)
	}
	if !strings.Contains(e, `"validation":18`) || !strings.Contains(e, `"shape":"3x8x8"`) {
		t.Fatalf("expected 72 training / 18 validation images of 3x8x8:\n%s", e)
	}
	code, o, e := run(t, "eval", "--device", "cpu", "--checkpoint", out, "--data-dir", root, "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, e)
	}
	var r struct {
		Accuracy  float64            `json:"accuracy"`
		Samples   int                `json:"samples"`
		Classes   []string           `json:"classes"`
		PerClass  map[string]float64 `json:"per_class_accuracy"`
		Confusion [][]int            `json:"confusion"`
	}
	if err := json.Unmarshal([]byte(o), &r); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, o)
	}
	if r.Samples != 18 || len(r.Confusion) != 3 || strings.Join(r.Classes, ",") != "blue,green,red" {
		t.Fatalf("eval report: %+v", r)
	}
	total, right := 0, 0
	for i, row := range r.Confusion {
		for j, v := range row {
			total += v
			if i == j {
				right += v
			}
		}
	}
	if total != 18 || float64(right)/18 != r.Accuracy {
		t.Fatalf("confusion matrix %v does not add up to accuracy %v", r.Confusion, r.Accuracy)
	}
	if r.Accuracy < 0.8 {
		t.Fatalf("accuracy %.3f on colour classes; expected at least 0.8", r.Accuracy)
	}
	ck, _ := os.ReadFile(out)
	if !strings.Contains(string(ck), `"dataset":"folder"`) {
		t.Fatal("checkpoint metadata lacks the dataset")
	}
}

// logEvents parses JSON log lines.
func logEvents(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestFolderSkippedLog: training on a folder with nested images and files
// that are not loaded logs one summary of the skipped files (a warning,
// since one image does not decode, naming it first), each skipped file at
// debug level (hidden ones too), and the count in the "found" line.
func TestFolderSkippedLog(t *testing.T) {
	root := t.TempDir()
	for i, rel := range []string{"a/1.png", "a/sub/2.PNG", "a/sub/deeper/3.png", "b/4.png", "b/x/5.png", "b/6.png"} {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		writePNG(t, p, noiseImage(8, 8, uint64(i)))
	}
	skipped := map[string]string{ // path -> level of its summary ("" for none)
		"b/x/bad.png": "warn", "a/notes.txt": "", "a/sub/pic.webp": "", "README.md": "", "b/.DS_Store": "", ".git": "",
	}
	for rel := range skipped {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("not an image"), 0o644)
	}
	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, logs := run(t, "--log-format", "json", "--log-level", "debug", "train", "--device", "cpu", "--dataset", "folder", "--data-dir", root,
		"--val-split", "0.5", "--epochs", "1", "--model", "flatten,dense2", "--out", out)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, logs)
	}
	debug, summaries, found := skipLogs(t, root, logs)
	var summary map[string]any
	if len(summaries) == 1 {
		summary = summaries[0]
	}
	for rel := range skipped {
		if !debug[rel] {
			t.Errorf("%s: no debug line (debug lines for %v)", rel, debug)
		}
	}
	if len(debug) != len(skipped) {
		t.Errorf("debug lines for %v, want %d", debug, len(skipped))
	}
	wantStart := fmt.Sprintf("skipped 4 files in %s: %s: not a PNG or JPEG file", root, filepath.Join("b", "x", "bad.png"))
	if summary == nil || summary["level"] != "warn" || summary["skipped"] != 4.0 || summary["unreadable"] != 1.0 ||
		!strings.HasPrefix(summary["message"].(string), wantStart) || !strings.HasSuffix(summary["message"].(string), "; and 1 more (--log-level debug lists them all)") {
		t.Errorf("summary %v; want a warning starting %q, 4 skipped, 1 unreadable, 1 more", summary, wantStart)
	}
	if found == nil || found["images"] != 6.0 || found["skipped"] != 4.0 || !strings.HasSuffix(found["message"].(string), "(4 other files skipped)") {
		t.Errorf("found line %v; want 6 images and 4 other files skipped", found)
	}

	// Without the undecodable image, at the default level: an info line,
	// no debug lines.
	os.Remove(filepath.Join(root, "b", "x", "bad.png"))
	code, _, logs = run(t, "--log-format", "json", "train", "--device", "cpu", "--dataset", "folder", "--data-dir", root,
		"--val-split", "0.5", "--epochs", "1", "--model", "flatten,dense2", "--out", out, "--force")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, logs)
	}
	debug, summaries, _ = skipLogs(t, root, logs)
	if len(debug) > 0 {
		t.Errorf("debug lines at the default level: %v", debug)
	}
	if len(summaries) != 1 || summaries[0]["level"] != "info" || summaries[0]["skipped"] != 3.0 || strings.Contains(summaries[0]["message"].(string), "and 1 more") {
		t.Errorf("summaries %v; want one, info, 3 skipped, all named", summaries)
	}
}

// skipLogs picks from JSON logs the debug lines of skipped files (their
// paths relative to root), the summary lines and the "found" line.
func skipLogs(t *testing.T, root, logs string) (debug map[string]bool, summaries []map[string]any, found map[string]any) {
	t.Helper()
	debug = map[string]bool{}
	for _, ev := range logEvents(t, logs) {
		msg, _ := ev["message"].(string)
		switch {
		case msg == "skipped":
			rel, _ := filepath.Rel(root, ev["path"].(string))
			debug[filepath.ToSlash(rel)] = true
		case strings.HasPrefix(msg, "skipped "):
			summaries = append(summaries, ev)
		case strings.HasPrefix(msg, "found "):
			found = ev
		}
	}
	return debug, summaries, found
}
