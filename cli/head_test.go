package cli

import (
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// TestEvalHeadMismatch: eval of a 3-class checkpoint on CIFAR-10 (10
// classes) is a clear error naming both counts, not a panic in the loss.
func TestEvalHeadMismatch(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []string{"a", "b", "c"} {
		os.MkdirAll(filepath.Join(root, c), 0o755)
		for i := range 4 {
			f, _ := os.Create(filepath.Join(root, c, fmt.Sprintf("%d.png", i)))
			png.Encode(f, testkit.Noise(rng, 32, 32))
			f.Close()
		}
	}
	ck := filepath.Join(t.TempDir(), "m.safetensors")
	if code, _, e := run(t, "train", "--device", "cpu", "--dataset", "folder", "--data-dir", root, "--val-split", "0.25",
		"--model", "flatten,dense3", "--epochs", "1", "--batch-size", "4", "--out", ck); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, e)
	}
	cifar := filepath.Join(t.TempDir(), "cifar")
	writeCIFAR(t, cifar, 4, 7)
	code, _, e := run(t, "eval", "--device", "cpu", "--checkpoint", ck, "--dataset", "cifar10", "--data-dir", cifar)
	if code != ExitError || !strings.Contains(e, "3 outputs") || !strings.Contains(e, "10 classes") {
		t.Fatalf("exit %d, want an error naming 3 outputs and 10 classes:\n%s", code, e)
	}
}

// TestHugeBatchOnSample: --batch-size 65536 on the shipped CIFAR-10 images
// (640 training images) trains: the buffers hold the dataset's images, not
// 65,536 images' worth.
func TestHugeBatchOnSample(t *testing.T) {
	ck := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, e := run(t, "train", "--device", "cpu", "--dataset", "folder", "--data-dir", miniSample, "--val-split", "0.2",
		"--epochs", "1", "--batch-size", "65536", "--out", ck)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, e)
	}
}

// TestPresetHeadSizedToFolder: a preset trained on a folder of 3 classes
// gets a 3-unit head (a preset cannot be edited), says so, resumes, and
// predict names the folder's classes; a layer spec with the wrong head is
// still an error naming the fix.
func TestPresetHeadSizedToFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	rng := rand.New(rand.NewPCG(3, 4))
	var one string
	for _, c := range []string{"apple", "kiwi", "plum"} {
		os.MkdirAll(filepath.Join(root, c), 0o755)
		for i := range 4 {
			one = filepath.Join(root, c, fmt.Sprintf("%d.png", i))
			f, _ := os.Create(one)
			png.Encode(f, testkit.Noise(rng, 32, 32))
			f.Close()
		}
	}
	ck := filepath.Join(t.TempDir(), "m.safetensors")
	args := []string{"train", "--device", "cpu", "--dataset", "folder", "--data-dir", root, "--val-split", "0.25", "--model", "resnet20", "--batch-size", "4", "--out", ck}
	code, _, e := run(t, append(args, "--epochs", "1")...)
	if code != 0 || !strings.Contains(e, `head "linear" has 10 outputs: using 3`) {
		t.Fatalf("train: exit %d\n%s", code, e)
	}
	if code, _, e := run(t, "train", "--resume", ck, "--epochs", "2", "--device", "cpu", "--dataset", "folder", "--data-dir", root, "--val-split", "0.25"); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, e)
	}
	code, o, e := run(t, "predict", "--device", "cpu", "--checkpoint", ck, "--top", "3", one)
	if code != 0 || !strings.Contains(o, "apple") || !strings.Contains(o, "kiwi") || !strings.Contains(o, "plum") {
		t.Fatalf("predict: exit %d\n%s\n%s", code, o, e)
	}
	code, _, e = run(t, "train", "--device", "cpu", "--dataset", "folder", "--data-dir", root, "--model", "flatten,dense10", "--out", filepath.Join(t.TempDir(), "x.safetensors"))
	if code != ExitError || !strings.Contains(e, "end the model with dense3") {
		t.Fatalf("spec with a 10-unit head: exit %d\n%s", code, e)
	}
}
