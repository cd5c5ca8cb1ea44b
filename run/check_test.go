package run

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// writeFolder writes an image folder of k classes ("c00", "c01", ...) with
// per noise PNGs of size x size each.
func writeFolder(t *testing.T, root string, k, per, size int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(2, 3))
	for c := range k {
		dir := filepath.Join(root, fmt.Sprintf("c%02d", c))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range per {
			var b bytes.Buffer
			png.Encode(&b, testkit.Noise(rng, size, size))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.png", i)), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// folderEnv loads folder datasets (as the command line does) on one CPU
// thread; logs go to logs.
func folderEnv(logs *bytes.Buffer) Env {
	return Env{Log: zerolog.New(logs),
		Load: func(ctx context.Context, d Dataset) (*data.Dataset, *data.Dataset, error) {
			tr, err := data.LoadFolder(d.Dir, data.FolderOptions{Size: d.ImageSize})
			if err != nil {
				return nil, nil, err
			}
			if d.ValDir != "" {
				val, err := data.LoadFolder(d.ValDir, data.FolderOptions{Size: d.ImageSize, Classes: tr.Classes})
				return tr, val, err
			}
			return data.SplitValidation(tr, d.ValSplit, d.Seed)
		},
		OpenDevice: func(Device) (device.Backend, error) { return cpu.New(device.Options{Threads: 1}) }}
}

func folderConfig(t *testing.T, root string) Config {
	cfg := Default()
	cfg.Data = Dataset{Kind: "folder", Dir: root, ValSplit: 0.25, ImageSize: 32}
	cfg.Epochs, cfg.BatchSize = 1, 8
	cfg.Out = filepath.Join(t.TempDir(), "m.safetensors")
	cfg.Set = map[string]bool{}
	return cfg
}

// noLoad is an Env whose Load fails the test.
func noLoad(t *testing.T, env Env) Env {
	env.Load = func(context.Context, Dataset) (*data.Dataset, *data.Dataset, error) {
		t.Fatal("the data was loaded")
		return nil, nil, nil
	}
	return env
}

// TestHeadMismatchBeforeLoad: an explicit --model whose last layer has
// fewer or more units than the dataset's classes is refused before any
// data is read, naming --model, the layer and the class count.
func TestHeadMismatchBeforeLoad(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	writeFolder(t, root, 12, 2, 8)
	for _, c := range []struct {
		kind, dir, spec, want string
	}{
		{"cifar10", "", "flatten,dense16,dense5", `--model: the last layer "dense5" has 5 units, but cifar10 has 10 classes`},
		{"mnist", "", "flatten,dense11", `--model: the last layer "dense11" has 11 units, but mnist has 10 classes`},
		{"folder", root, "flatten,dense10", `--model: the last layer "dense10" has 10 units, but ` + root + ` has 12 classes`},
	} {
		cfg := folderConfig(t, root)
		cfg.Data = Dataset{Kind: c.kind, Dir: c.dir, ValSplit: 0.1}
		if c.kind == "folder" {
			cfg.Data.ImageSize = 8
		}
		cfg.Model, cfg.Set["model"] = c.spec, true
		err := Train(context.Background(), cfg, noLoad(t, folderEnv(&bytes.Buffer{})))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: got %v, want %q", c.kind, c.spec, err, c.want)
		}
	}
}

// TestFolderDefaultHead: a folder dataset of 12 classes with the default
// model trains a 12-unit head and logs the images, classes and split.
func TestFolderDefaultHead(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	writeFolder(t, root, 12, 4, 8)
	cfg := folderConfig(t, root)
	var logs bytes.Buffer
	if err := Train(context.Background(), cfg, folderEnv(&logs)); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	_, net, _, err := model.Open(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(model.DefaultSpec, "dense10") + "dense12"; net.Classes != 12 || net.Spec != want {
		t.Fatalf("model %q with %d classes, want %q", net.Spec, net.Classes, want)
	}
	if want := "found 48 images in 12 classes: 36 for training, 12 for validation"; !strings.Contains(logs.String(), want) {
		t.Fatalf("logs lack %q:\n%s", want, logs.String())
	}
}

// TestSingleClassFolder: a folder with one class folder is refused, naming
// the folder and the class.
func TestSingleClassFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	writeFolder(t, root, 1, 4, 8)
	cfg := folderConfig(t, root)
	err := Train(context.Background(), cfg, noLoad(t, folderEnv(&bytes.Buffer{})))
	if err == nil || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), `"c00"`) || !strings.Contains(err.Error(), "at least 2 classes") {
		t.Fatalf("got %v, want a refusal naming %s, c00 and 2 classes", err, root)
	}
}

// TestValDirIsTrainDir: --val-dir naming the training folder (through a
// symbolic link here) trains, with a warning.
func TestValDirIsTrainDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	writeFolder(t, root, 2, 4, 8)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	cfg := folderConfig(t, root)
	cfg.Data.ValDir = link + "/"
	var logs bytes.Buffer
	if err := Train(context.Background(), cfg, folderEnv(&logs)); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if want := "validation on the training images: the accuracy will be optimistic"; !strings.Contains(logs.String(), want) {
		t.Fatalf("no warning %q:\n%s", want, logs.String())
	}
}

// memBackend is the CPU backend reporting free bytes of memory.
type memBackend struct {
	device.Backend
	free uint64
}

func (b *memBackend) MemInfo() (uint64, uint64, error) { return b.free, 2 * b.free, nil }

// TestMemoryEstimateRefuses: with little memory free, a run is refused
// before its buffers are made, with the estimate, the free memory and a
// --batch-size that fits.
func TestMemoryEstimateRefuses(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Model, cfg.BatchSize = "conv8k3,flatten,dense10", 64
	net, err := model.Plan(cfg.Model, model.Shape{C: 3, H: 32, W: 32})
	if err != nil {
		t.Fatal(err)
	}
	per := uint64(net.BytesPerImage())
	free := 20 * per
	env := testEnv(&strings.Builder{})
	env.OpenDevice = func(Device) (device.Backend, error) {
		c, err := cpu.New(device.Options{Threads: 1})
		return &memBackend{c, free}, err
	}
	err = Train(context.Background(), cfg, env)
	if err == nil {
		t.Fatal("a run of 64 images per batch trained in the memory of 20")
	}
	msg := err.Error()
	for _, w := range []string{"--batch-size 64", "MiB available", "--batch-size 1"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	// The batch it names fits: a run with it trains.
	var fit int
	if i := strings.LastIndex(msg, "--batch-size "); i >= 0 {
		fmt.Sscanf(msg[i:], "--batch-size %d would fit", &fit)
	}
	if fit < 1 || fit >= 20 {
		t.Fatalf("suggested batch %d from %q", fit, msg)
	}
	cfg.BatchSize = fit
	if err := Train(context.Background(), cfg, env); err != nil {
		t.Fatalf("the suggested --batch-size %d: %v", fit, err)
	}
}

// TestImageSizeMemoryBeforeDecode: a folder dataset resized to 4096x4096
// in a memory of 1 GiB is refused from the listing, before any image is
// decoded, with the dataset's size and the cost of one image.
func TestImageSizeMemoryBeforeDecode(t *testing.T) {
	root := filepath.Join(t.TempDir(), "imgs")
	writeFolder(t, root, 2, 40, 8)
	cfg := folderConfig(t, root)
	cfg.Data.ImageSize = 4096
	cfg.Model, cfg.Set["model"] = "avgpool64,avgpool64,flatten,dense2", true
	env := noLoad(t, folderEnv(&bytes.Buffer{}))
	env.OpenDevice = func(Device) (device.Backend, error) {
		c, err := cpu.New(device.Options{Threads: 1})
		return &memBackend{c, 1 << 30}, err
	}
	err := Train(context.Background(), cfg, env)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"--image-size 4096", "80 images of 3x4096x4096", "48.0 MiB per image", "1024.0 MiB available"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// TestLabelsBeyondLogits: model.NewTrainer refuses labels the network has
// no output for, instead of panicking in the loss.
func TestLabelsBeyondLogits(t *testing.T) {
	net, err := model.Plan("flatten,dense3", model.Shape{C: 1, H: 2, W: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cpu.New(device.Options{Threads: 1})
	defer b.Close()
	if err := net.Build(b, 2, 1); err != nil {
		t.Fatal(err)
	}
	good := &model.Data{Images: make([]uint8, 8), Labels: []int32{0, 2}, N: 2}
	bad := &model.Data{Images: make([]uint8, 8), Labels: []int32{1, 3}, N: 2}
	o := model.TrainOptions{Batch: 2, Optim: model.DefaultAdam}
	for _, c := range []struct{ train, val *model.Data }{{bad, good}, {good, bad}} {
		_, err := model.NewTrainer(net, c.train, c.val, o)
		if err == nil || !strings.Contains(err.Error(), "label 3") || !strings.Contains(err.Error(), "3 outputs") {
			t.Errorf("got %v, want a refusal of label 3 for 3 outputs", err)
		}
	}
	if _, err := model.EvaluateReport(net, bad, 2, model.TTANone); err == nil || !strings.Contains(err.Error(), "label 3") {
		t.Errorf("EvaluateReport: got %v, want a refusal of label 3", err)
	}
	if _, err := model.NewTrainer(net, good, good, o); err != nil {
		t.Errorf("valid labels: %v", err)
	}
}
