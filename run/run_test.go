package run

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// testEnv trains on the CIFAR-10 folder of d.Dir on one CPU thread; stderr
// collects what the run prints.
func testEnv(stderr *strings.Builder) Env {
	return Env{Stderr: stderr,
		Load: func(ctx context.Context, d Dataset) (*data.Dataset, *data.Dataset, error) {
			return data.LoadCIFAR10(d.Dir)
		},
		OpenDevice: func(Device) (device.Backend, error) { return cpu.New(device.Options{Threads: 1}) }}
}

// smallConfig is a run of 80 random images (10 steps of 8 per epoch).
func smallConfig(t *testing.T) Config {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 16)
	cfg := Default()
	cfg.Data.Dir = dir
	cfg.Epochs, cfg.BatchSize, cfg.Model = 2, 8, "flatten,dense16,dense10"
	cfg.Out = filepath.Join(t.TempDir(), "m.safetensors")
	return cfg
}

// TestMetaRoundTrip: the metadata of a checkpoint written by Train decodes
// to the run's settings and results, and encodes back to the same map.
func TestMetaRoundTrip(t *testing.T) {
	cfg := smallConfig(t)
	cfg.LR, cfg.Schedule, cfg.Seed, cfg.Augment = 0.002, "cosine", 9, true
	var e strings.Builder
	if err := Train(context.Background(), cfg, testEnv(&e)); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	f, err := checkpoint.Read(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	m := meta.Decode(f.Meta)
	checkDecoded(t, m, cfg)
	hist, _ := os.ReadFile(HistoryPath(cfg.Out))
	last := strings.Split(strings.TrimSpace(string(hist)), "\n")[2]
	if !strings.HasPrefix(last, "2,") {
		t.Fatalf("history's last row %q", last)
	}
	if got := fmt.Sprintf("%.6f", m.ValAccuracy); !strings.Contains(last, ","+got+",") {
		t.Errorf("val_accuracy %s is not in the history row %q", got, last)
	}
	enc := m.Encode()
	delete(f.Meta, meta.Checksum)
	if len(enc) != len(f.Meta) {
		t.Errorf("encoded %d keys, the checkpoint has %d", len(enc), len(f.Meta))
	}
	for k, v := range f.Meta {
		if enc[k] != v {
			t.Errorf("%s: encoded %q, checkpoint %q", k, enc[k], v)
		}
	}
}

// checkDecoded compares the decoded metadata of TestMetaRoundTrip's run
// with its settings and the facts of the run (2 epochs of 10 steps).
func checkDecoded(t *testing.T, m meta.Meta, cfg Config) {
	t.Helper()
	if m.Model != cfg.Model || m.Input != "3x32x32" || m.Format != "trainer/1" || m.BatchSize != 8 || m.EvalBatch != 8 ||
		m.LR != 0.002 || m.LRSchedule != "cosine" || m.Seed != 9 || !m.Augment || m.Dataset != "cifar10" ||
		len(m.Classes) != 10 || m.Classes[0] != "airplane" || m.Epoch != 2 || m.SavedBecause != "epoch" || m.Extra != nil ||
		m.Optimizer != "adam" || !strings.Contains(m.ModelJSON, `"name":"fc1"`) || !strings.Contains(m.Recipe, `"optimizer":"adam"`) {
		t.Fatalf("decoded %+v", m)
	}
	if m.Train == nil || m.Train.Epoch != 2 || m.Train.Pos != 0 || m.Train.AdamStep != 20 {
		t.Fatalf("training state %+v", m.Train)
	}
}

// TestKeepAndBest: numbered checkpoints beyond Keep are deleted, the best
// one by val_accuracy is kept beside the latest, with the history.
func TestKeepAndBest(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Epochs, cfg.SaveEvery, cfg.Keep = 3, 4, 2
	var e strings.Builder
	env := testEnv(&e)
	var plotted []string
	env.Plot = func(csv, png string) error {
		plotted = append(plotted, csv, png)
		return errors.New("no plotter here")
	}
	if err := Train(context.Background(), cfg, env); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	dir := filepath.Dir(cfg.Out)
	if len(plotted) != 2 || plotted[0] != filepath.Join(dir, "m.history.csv") || plotted[1] != filepath.Join(dir, "m.history.png") {
		t.Errorf("plot hook called with %v", plotted)
	}
	numbered, _ := filepath.Glob(filepath.Join(dir, "m-step*.safetensors"))
	if len(numbered) != 2 || filepath.Base(numbered[0]) != "m-step000000028.safetensors" || filepath.Base(numbered[1]) != "m-step000000030.safetensors" {
		t.Fatalf("numbered checkpoints %v; want the last 2 (steps 28 and 30)", numbered)
	}
	for _, f := range []string{"m.safetensors", "m-best.safetensors", "m.history.csv", "m.history.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run folder lacks %s", f)
		}
	}
}

// TestEarlyStop: on random labels the validation loss stops improving
// quickly; with EarlyStop 1 training ends long before Epochs.
func TestEarlyStop(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Epochs, cfg.EarlyStop, cfg.LR, cfg.Model = 40, 1, 0.01, "flatten,dense32,dense10"
	var e strings.Builder
	if err := Train(context.Background(), cfg, testEnv(&e)); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	hist, _ := os.ReadFile(HistoryPath(cfg.Out))
	rows := strings.Count(string(hist), "\n") - 1
	f, err := checkpoint.Read(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if m := meta.Decode(f.Meta); rows >= 40 || m.Epoch != rows || m.BadEpochs != 1 {
		t.Fatalf("expected an early stop well before 40 epochs with 1 bad epoch; %d epochs, metadata %+v", rows, m)
	}
}

// TestInterruptAndResume: cancelling (the stop-after-steps hook) saves,
// prints the resume command and returns an *InterruptedError; resuming with
// contradicting settings is refused, and with none finishes the run.
func TestInterruptAndResume(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Keep, cfg.StopAfterSteps = 0, 13
	var e strings.Builder
	err := Train(context.Background(), cfg, testEnv(&e))
	var ie *InterruptedError
	if !errors.As(err, &ie) || !strings.Contains(e.String(), "resume with:\n  trainer train --resume "+cfg.Out+" --epochs 2 --keep 0 --data-dir ") {
		t.Fatalf("interrupted run: %v\n%s", err, e.String())
	}
	r := Default()
	r.Resume, r.Data.Dir, r.Epochs, r.Keep = cfg.Out, cfg.Data.Dir, 2, 0
	r.BatchSize, r.Set = 16, map[string]bool{"batch-size": true}
	err = Train(context.Background(), r, testEnv(&e))
	if err == nil || err.Error() != "--batch-size 16: the run in "+cfg.Out+" was started with 8; a resumed run keeps its settings (start a new run with another --out instead)" {
		t.Fatalf("conflicting batch size: %v", err)
	}
	r.Set = nil
	if err := Train(context.Background(), r, testEnv(&e)); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, e.String())
	}
	ck, err := model.LoadCheckpoint(cfg.Out)
	if err != nil || meta.Decode(ck.Meta).Train.AdamStep != 20 || meta.Decode(ck.Meta).BatchSize != 8 {
		t.Fatalf("after resume: %v %v", err, ck.Meta)
	}
}

// TestConfigErrors: each invalid setting is refused before any data is
// read, with a message naming the setting and its value.
func TestConfigErrors(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "old.safetensors")
	os.WriteFile(existing, []byte("x"), 0o644)
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Epochs = 0 }, "--epochs 0: must be at least 1"},
		{func(c *Config) { c.BatchSize = 65537 }, "--batch-size 65537: must be between 1 and 65536"},
		{func(c *Config) { c.LR = 10 }, "--lr 10: must be a positive number below 10"},
		{func(c *Config) { c.LR = math.NaN() }, "--lr NaN: must be a positive number below 10"},
		{func(c *Config) { c.Out = "runs/a/" }, `--out "runs/a/": give a file path ending in .safetensors, e.g. runs/a/model.safetensors`},
		{func(c *Config) { c.Out = existing }, "--out " + existing + " already holds a checkpoint: continue it with --resume " + existing + ", choose another --out, or pass --force to replace it"},
		{func(c *Config) { c.Keep = -1 }, "--keep -1: must be 0 or more"},
		{func(c *Config) { c.SaveEvery = -2 }, "--save-every -2: must be 0 or more"},
		{func(c *Config) { c.EarlyStop = -3 }, "--early-stop -3: must be 0 or more"},
		{func(c *Config) { c.SyncEvery = -1 }, "--sync-every -1: must be 0 or more"},
		{func(c *Config) { c.Device.Threads = -1 }, "--threads -1: must be 0 (one per core) to 256"},
		{func(c *Config) { c.Device.Name = "tpu" }, "--device tpu: use auto, cpu or gpu"},
		{func(c *Config) { c.LR = math.Inf(1) }, "--lr +Inf: must be a positive number below 10"},
		{func(c *Config) { c.Schedule = "triangle" }, `--lr-schedule "triangle": use constant, cosine, step, onecycle or linear`},
		{func(c *Config) { c.Data.Kind = "imagenet" }, `--dataset "imagenet": use cifar10, mnist or folder`},
		{func(c *Config) { c.Data.ImageSize = 24 }, "--val-dir, --val-split and --image-size apply to --dataset folder only (cifar10 has its own test split)"},
		{func(c *Config) { c.Data.Kind = "folder" }, "--dataset folder needs --data-dir ROOT, a folder with one subfolder of images per class"},
		{func(c *Config) { c.Data.Kind, c.Data.Dir, c.Data.ValSplit = "folder", "x", 1 }, "--val-split 1: must be between 0 and 1 (or give --val-dir)"},
		{func(c *Config) { c.Resume = filepath.Join(t.TempDir(), "none.safetensors") }, "file not found"},
	} {
		cfg := Default()
		cfg.Out = filepath.Join(t.TempDir(), "m.safetensors")
		c.edit(&cfg)
		env := Env{Load: func(context.Context, Dataset) (*data.Dataset, *data.Dataset, error) {
			t.Fatal("data loaded for an invalid configuration")
			return nil, nil, nil
		}}
		if err := Train(context.Background(), cfg, env); err == nil || !strings.HasSuffix(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

// TestFlagError: model's value errors get the setting's name.
func TestFlagError(t *testing.T) {
	_, err := model.Plan("conv32k3,wibble,dense10", model.Shape{C: 3, H: 32, W: 32})
	if got := err.Error(); !strings.HasPrefix(got, `model spec: layer 2 "wibble": unknown layer`) {
		t.Fatalf("model's error %q", got)
	}
	want := `--model: layer 2 "wibble": unknown layer; expected conv<F>k<K>, maxpool<K>, avgpool<K>, relu, flatten or dense<U> (see trainer train --help for the grammar)`
	if got := FlagError(err); got.Error() != want || !errors.As(got, new(*model.SpecError)) {
		t.Fatalf("FlagError: %q, want %q", got, want)
	}
	d := &model.DivergedError{Loss: math.NaN(), Where: "at step 1 of epoch 2", GlobalStep: 11, LR: 0.5}
	want = "non-finite loss: the training loss became NaN at step 1 of epoch 2 (global step 11); the model diverged: try a lower --lr (now 0.5)"
	if got := FlagError(d); got.Error() != want || !errors.Is(got, model.ErrNonFinite) {
		t.Fatalf("FlagError: %q, want %q", got, want)
	}
	other := errors.New("x")
	if FlagError(other) != other {
		t.Fatal("an unrelated error was changed")
	}
}

// tightBackend is the CPU backend with a device's memory limit: an
// allocation above limit bytes fails with device.OutOfMemoryError, MemInfo
// reports free bytes, and using MemInfo after Close is an error.
type tightBackend struct {
	device.Backend
	limit, free uint64
	closed      bool
	t           *testing.T
}

func (b *tightBackend) Alloc(what string, dt device.DType, n int) (device.Buffer, error) {
	if req := uint64(n * dt.Size()); req > b.limit {
		return nil, &device.OutOfMemoryError{Device: "test", What: what, Requested: req, Free: b.free, Total: 2 * b.free}
	}
	return b.Backend.Alloc(what, dt, n)
}

func (b *tightBackend) MemInfo() (uint64, uint64, error) {
	if b.closed {
		b.t.Error("MemInfo called on a closed backend")
		return 0, 0, errors.New("closed")
	}
	return b.free, 2 * b.free, nil
}

// Caps: a device with its own memory, so the run leaves the check to Alloc.
func (b *tightBackend) Caps() device.Caps { return device.Caps{DeviceMemory: 2 * b.free} }

func (b *tightBackend) Close() error { b.closed = true; return b.Backend.Close() }

// TestOutOfMemoryHint: a batch too large for the device fails with the
// typed error, names the batch size that fits in the free memory (80% of
// it, at the network's bytes per image), and closes the backend only after
// asking it.
func TestOutOfMemoryHint(t *testing.T) {
	cfg := smallConfig(t)
	cfg.BatchSize = 64 // of 80 images: the buffers hold 64
	var tb *tightBackend
	env := testEnv(&strings.Builder{})
	env.OpenDevice = func(Device) (device.Backend, error) {
		c, err := cpu.New(device.Options{Threads: 1})
		tb = &tightBackend{Backend: c, limit: 512 << 10, free: 3 << 20, t: t}
		return tb, err
	}
	err := Train(context.Background(), cfg, env)
	var oom *device.OutOfMemoryError
	if !errors.As(err, &oom) {
		t.Fatalf("err = %v, want a device.OutOfMemoryError", err)
	}
	net, perr := model.Plan(cfg.Model, model.Shape{C: 3, H: 32, W: 32})
	if perr != nil {
		t.Fatal(perr)
	}
	fit := int(float64(3<<20) * 0.8 / float64(net.BytesPerImage()))
	if want := fmt.Sprintf("--batch-size %d would fit", fit); fit < 1 || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to say %q", err, want)
	}
	if !tb.closed {
		t.Error("the backend was not closed after the failed build")
	}
}

// limitedBackend is the CPU backend with a GPU-like index limit (Caps
// MaxElems).
type limitedBackend struct {
	device.Backend
	maxElems int
}

func (b *limitedBackend) Caps() device.Caps {
	c := b.Backend.Caps()
	c.MaxElems = b.maxElems
	return c
}

// TestBatchLimitHint: a batch past the backend's index limit is refused
// with the typed error, the flag and the largest batch the model allows.
func TestBatchLimitHint(t *testing.T) {
	cfg := smallConfig(t) // flatten,dense16,dense10 on 3x32x32: 3072 values per image at most
	cfg.BatchSize = 8
	env := testEnv(&strings.Builder{})
	env.OpenDevice = func(Device) (device.Backend, error) {
		c, err := cpu.New(device.Options{Threads: 1})
		return &limitedBackend{Backend: c, maxElems: 5*3072 + 100}, err
	}
	err := Train(context.Background(), cfg, env)
	var ble *model.BatchLimitError
	if !errors.As(err, &ble) || ble.Batch != 8 || ble.MaxBatch != 5 {
		t.Fatalf("err = %v, want a model.BatchLimitError at batch 8 allowing 5", err)
	}
	t.Log(err)
	for _, want := range []string{"--batch-size 8: ", "use --batch-size 5 or less"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
}

// TestGraphsOnDataParallel: --cuda-graphs on with data-parallel training is
// refused before the device is opened (the all-reduce is not captured, so
// those steps run op by op), saying what to use instead.
func TestGraphsOnDataParallel(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Device.Graphs = device.GraphsOn
	env := testEnv(new(strings.Builder))
	env.OpenDevice = func(Device) (device.Backend, error) {
		t.Fatal("the device was opened")
		return nil, nil
	}
	env.Dist = &Dist{Rank: 0, Size: 2, Reducer: func(device.Backend) (model.Reducer, error) { return nil, errors.New("no collectives") }}
	err := Train(context.Background(), cfg, env)
	if err == nil || !strings.Contains(err.Error(), "--cuda-graphs on: data-parallel training (2 ranks)") || !strings.Contains(err.Error(), "auto or off") {
		t.Fatalf("Train: %v", err)
	}
}
