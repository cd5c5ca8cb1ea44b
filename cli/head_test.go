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
