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
