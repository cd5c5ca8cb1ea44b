// Package run is the lifecycle of one training run, independent of the
// command line: its settings (Config), the checkpoint metadata (Meta),
// resuming, learning-rate schedules, early stopping, the run's files
// (checkpoint, numbered copies, best copy, history, plot) and interrupts.
// The CLI parses flags into a Config and calls Train; Go code can do the
// same.
//
// Settings are named after their command-line flags (Config's field
// comments say which): validation errors name them that way ("--epochs 0:
// must be at least 1"), as a Config is the flags' typed form. Packages below
// run (model, checkpoint) speak of values only; run adds the setting's name
// at this boundary (see FlagError).
package run

import (
	"fmt"
	"os"
	"strings"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/internal/pool"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// Meta is a checkpoint's metadata, typed; see package run/meta, which
// defines every key.
type Meta = meta.Meta

// Dataset selects the data of a run.
type Dataset struct {
	Kind      string  // --dataset: cifar10, mnist or folder
	Dir       string  // --data-dir ("" for cifar10/mnist: download to the cache)
	ValDir    string  // --val-dir (folder)
	ValSplit  float64 // --val-split (folder without ValDir)
	ImageSize int     // --image-size (folder; 0: keep)
	Classes   []string
	Seed      uint64 // of the validation split: the run's seed
}

// Device selects the backend.
type Device struct {
	Name    string // --device: auto, cpu or gpu
	Threads int    // --threads (0: one per core)
	// Precision is --precision: the GEMMs' arithmetic (fp32, the zero
	// value; tf32; bf16). --tf32 is a deprecated alias of --precision tf32.
	Precision device.Precision
	Index     int // the GPU, among those visible: a data-parallel rank's local rank
	// Graphs is --cuda-graphs: a speed setting, never stored with the run.
	Graphs device.GraphMode
}

// Config is every setting of a training run.
type Config struct {
	Model          string  // --model
	Epochs         int     // --epochs: train until this many are complete
	BatchSize      int     // --batch-size
	LR             float64 // --lr
	Schedule       string  // --lr-schedule: constant, cosine or step
	Seed           uint64  // --seed
	Augment        bool    // --augment
	Out            string  // --out: the checkpoint path
	Resume         string  // --resume: continue the run in this checkpoint
	SaveEvery      int     // --save-every N steps (0: epoch ends only)
	Keep           int     // --keep numbered copies
	EarlyStop      int     // --early-stop after N epochs without a better val_loss (0: never)
	Quiet          bool    // --quiet
	Force          bool    // --force: replace an existing checkpoint at Out
	StopAfterSteps int     // --stop-after-steps: act as if interrupted after N steps (tests)
	SyncEvery      int     // --sync-every N: wait for the device every N steps, so a fault names its step (debugging; 0: never)
	Data           Dataset
	Device         Device
	Recipe         Recipe // the optimiser and the rest of how it trains

	// Set names the settings given explicitly, by flag name ("lr",
	// "dataset", ...). A resumed run refuses set settings that contradict
	// its checkpoint and takes the others from it; Out defaults to Resume
	// unless "out" is set.
	Set map[string]bool
	// Global holds the command-line arguments before the command ("--log-
	// format", "json"), repeated in the resume command.
	Global []string
	// Program is how the binary was invoked (os.Args[0]), for the resume
	// command; "" means "trainer".
	Program string
}

// Default is the configuration of `trainer train` without flags.
func Default() Config {
	return Config{Model: model.DefaultSpec, Epochs: 10, BatchSize: 32, LR: 1e-3, Schedule: "constant", Seed: 1,
		Out: "model.safetensors", Keep: 3, Data: Dataset{Kind: "cifar10", ValSplit: 0.1}, Device: Device{Name: "auto"},
		Recipe: DefaultRecipe()}
}

func (c *Config) isSet(name string) bool { return c.Set[name] }

// validate checks the settings of a run; resumed says whether they come
// from a checkpoint. It reads no data: every setting is checked before
// anything is loaded or downloaded.
func (c *Config) validate(resumed bool) error {
	if c.Epochs < 1 {
		return fmt.Errorf("--epochs %d: must be at least 1", c.Epochs)
	}
	if c.BatchSize < 1 || c.BatchSize > 65536 {
		return fmt.Errorf("--batch-size %d: must be between 1 and 65536", c.BatchSize)
	}
	if !(c.LR > 0 && c.LR < 10) {
		return fmt.Errorf("--lr %g: must be a positive number below 10", c.LR)
	}
	if c.Out == "" || strings.HasSuffix(c.Out, "/") || !strings.HasSuffix(c.Out, ".safetensors") {
		return fmt.Errorf("--out %q: give a file path ending in .safetensors, e.g. runs/a/model.safetensors", c.Out)
	}
	if _, err := os.Stat(c.Out); err == nil && !resumed && !c.Force {
		return fmt.Errorf("--out %s already holds a checkpoint: continue it with --resume %s, choose another --out, or pass --force to replace it", c.Out, c.Out)
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"save-every", c.SaveEvery}, {"keep", c.Keep}, {"early-stop", c.EarlyStop}, {"sync-every", c.SyncEvery}} {
		if n.v < 0 {
			return fmt.Errorf("--%s %d: must be 0 or more", n.flag, n.v)
		}
	}
	if _, err := Schedule(c.Schedule, c.LR, c.Epochs, c.Recipe); err != nil {
		return err
	}
	if err := c.Recipe.validate(); err != nil {
		return err
	}
	if err := c.Device.Validate(); err != nil {
		return err
	}
	return c.Data.validate(c.isSet("val-split"))
}

// Validate checks the device settings (eval, predict and bench use it).
func (d Device) Validate() error {
	if err := ValidateThreads(d.Threads); err != nil {
		return err
	}
	switch d.Name {
	case "auto", "cpu", "gpu":
		return nil
	}
	return fmt.Errorf("--device %s: use auto, cpu or gpu", d.Name)
}

// ValidateThreads checks a --threads value (eval, predict and bench use it).
func ValidateThreads(n int) error {
	if n < 0 || n > pool.MaxWorkers {
		return fmt.Errorf("--threads %d: must be 0 (one per core) to %d", n, pool.MaxWorkers)
	}
	return nil
}

// validate checks the dataset settings; valSplitSet says whether
// --val-split was given.
func (d Dataset) validate(valSplitSet bool) error {
	switch d.Kind {
	case "cifar10", "mnist":
		if d.ValDir != "" || valSplitSet || d.ImageSize != 0 {
			return fmt.Errorf("--val-dir, --val-split and --image-size apply to --dataset folder only (%s has its own test split)", d.Kind)
		}
	case "folder":
		if d.Dir == "" {
			return fmt.Errorf("--dataset folder needs --data-dir ROOT, a folder with one subfolder of images per class")
		}
		if !(d.ValSplit > 0 && d.ValSplit < 1) && (d.ValDir == "" || valSplitSet) {
			return fmt.Errorf("--val-split %g: must be between 0 and 1 (or give --val-dir)", d.ValSplit)
		}
		if d.ImageSize < 0 || d.ImageSize > 4096 {
			return fmt.Errorf("--image-size %d: must be between 1 and 4096, or 0 to keep the images' size", d.ImageSize)
		}
	default:
		return fmt.Errorf("--dataset %q: use cifar10, mnist or folder", d.Kind)
	}
	return nil
}

// ValidateDataset checks dataset settings as train does (eval uses it);
// valSplitSet says whether --val-split was given.
func ValidateDataset(d Dataset, valSplitSet bool) error { return d.validate(valSplitSet) }
