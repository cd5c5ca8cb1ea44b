package run

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// recipeModel is a small residual network with BatchNorm and dropout: every
// kind of state a checkpoint must carry (running statistics, momentum
// buffers, the weight average, dropout's step counter).
const recipeModel = `{"layers": [
 {"name": "conv1", "type": "conv", "filters": 4, "kernel": 3, "stride": 2, "padding": 1, "bias": false},
 {"name": "bn1", "type": "batchnorm", "act": "relu"},
 {"name": "conv2", "type": "conv", "filters": 4, "kernel": 3, "padding": 1, "bias": false},
 {"name": "bn2", "type": "batchnorm", "act": "gelu", "train_weight": false},
 {"name": "add", "type": "add", "inputs": ["bn2", "bn1"], "act": "relu"},
 {"name": "pool", "type": "globalavgpool"},
 {"name": "drop", "type": "dropout", "p": 0.3},
 {"name": "fc", "type": "dense", "units": 10}]}`

// TestRecipeResumeBitExact: a run with SGD-Nesterov and parameter groups,
// label smoothing, onecycle, an EMA, reflect augmentation and dropout,
// interrupted and resumed, ends with a checkpoint bit-identical in every
// tensor to the uninterrupted run's; and with each other optimiser too.
func TestRecipeResumeBitExact(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "net.json")
	os.WriteFile(file, []byte(recipeModel), 0o644)
	wd := 0.0
	recipes := map[string]func(*Config){
		"sgd": func(c *Config) {
			c.Recipe.Optimizer, c.Recipe.Momentum, c.Recipe.Nesterov, c.Recipe.NormLRFactor = "sgd", 0.9, true, 4
			w := 5e-4
			c.Recipe.WeightDecay, c.Recipe.NormWeightDecay = &w, &wd
			c.Recipe.LabelSmoothing, c.Recipe.EMA = 0.1, 0.9
			c.Recipe.AugmentPad, c.Recipe.AugmentPadding = 2, "reflect"
			c.Schedule, c.LR = "onecycle", 0.05
		},
		"adamw-lookahead": func(c *Config) {
			c.Recipe.Optimizer, c.Recipe.Lookahead, c.Recipe.LookaheadEvery = "adamw", 0.8, 3
			c.Schedule, c.Recipe.Warmup, c.Recipe.LRStartFactor, c.Recipe.LREndFactor = "linear", 0.2, 0.2, 0.07
		},
		"rmsprop-droplast": func(c *Config) {
			c.Recipe.Optimizer, c.Recipe.Momentum = "rmsprop", 0.5
			c.BatchSize, c.Recipe.DropLast = 6, true // 80 images: 13 steps, 2 left out
		},
	}
	for name, set := range recipes {
		t.Run(name, func(t *testing.T) {
			cfg := smallConfig(t)
			cfg.Model, cfg.Augment, cfg.Keep = file, true, 0
			set(&cfg)
			var e strings.Builder
			if err := Train(context.Background(), cfg, testEnv(&e)); err != nil {
				t.Fatalf("%v\n%s", err, e.String())
			}
			whole, err := model.LoadCheckpoint(cfg.Out)
			if err != nil {
				t.Fatal(err)
			}
			cut := cfg
			cut.Out, cut.StopAfterSteps = filepath.Join(t.TempDir(), "cut.safetensors"), 7
			var ie *InterruptedError
			if err := Train(context.Background(), cut, testEnv(&e)); !errors.As(err, &ie) {
				t.Fatalf("interrupted run: %v", err)
			}
			r := Default()
			r.Resume, r.Data.Dir, r.Epochs, r.Keep = cut.Out, cfg.Data.Dir, cfg.Epochs, 0
			if err := Train(context.Background(), r, testEnv(&e)); err != nil {
				t.Fatalf("resumed: %v\n%s", err, e.String())
			}
			resumed, err := model.LoadCheckpoint(cut.Out)
			if err != nil {
				t.Fatal(err)
			}
			if len(whole.Tensors) != len(resumed.Tensors) {
				t.Fatalf("%d tensors, resumed %d", len(whole.Tensors), len(resumed.Tensors))
			}
			for n, tt := range whole.Tensors {
				got := resumed.Tensors[n].Data
				if len(got) != len(tt.Data) {
					t.Fatalf("tensor %s missing after resume", n)
				}
				for i := range got {
					if got[i] != tt.Data[i] {
						t.Fatalf("tensor %s[%d]: resumed %v, uninterrupted %v", n, i, got[i], tt.Data[i])
					}
				}
			}
			steps := int64(meta.Decode(whole.Meta).Train.AdamStep)
			if want := map[bool]int64{true: 26, false: 20}[cfg.Recipe.DropLast]; steps != want || whole.Int64s["bn1.num_batches_tracked"][0] != steps {
				t.Errorf("%d steps, num_batches_tracked %v; want %d", steps, whole.Int64s["bn1.num_batches_tracked"], want)
			}
		})
	}
}

// TestRecipeResumeConflicts: a resumed run refuses a recipe flag that
// contradicts its checkpoint, naming it.
func TestRecipeResumeConflicts(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Epochs, cfg.Recipe.Optimizer, cfg.Recipe.Momentum = 1, "sgd", 0.9
	var e strings.Builder
	if err := Train(context.Background(), cfg, testEnv(&e)); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	r := Default()
	r.Resume, r.Data.Dir, r.Epochs = cfg.Out, cfg.Data.Dir, 2
	r.Recipe.Momentum, r.Set = 0.8, map[string]bool{"momentum": true}
	err := Train(context.Background(), r, testEnv(&e))
	if err == nil || !strings.Contains(err.Error(), "--momentum 0.8: the run in "+cfg.Out+" was started with 0.9") {
		t.Fatalf("conflicting momentum: %v", err)
	}
}

// TestRecipeErrors: bad recipe flags are refused before any data is read.
func TestRecipeErrors(t *testing.T) {
	for want, set := range map[string]func(*Recipe){
		"--optimizer \"lamb\"": func(r *Recipe) { r.Optimizer = "lamb" },
		"nesterov needs":       func(r *Recipe) { r.Nesterov = true },
		"--label-smoothing 1":  func(r *Recipe) { r.LabelSmoothing = 1 },
		"--ema 1.5":            func(r *Recipe) { r.EMA = 1.5 },
		"choose one":           func(r *Recipe) { r.EMA, r.Lookahead = 0.9, 0.9 },
		"--augment-padding":    func(r *Recipe) { r.AugmentPadding = "wrap" },
		"--momentum 0.9: adam": func(r *Recipe) { r.Momentum = 0.9 },
		"--warmup 2.5":         func(r *Recipe) { r.Warmup = 2.5 },
		"--lr-end-factor 2":    func(r *Recipe) { r.LREndFactor = 2 },
		"--ema-every 0":        func(r *Recipe) { r.EMAEvery = 0 },
		"--momentum 1.2":       func(r *Recipe) { r.Optimizer, r.Momentum = "sgd", 1.2 },
		"--weight-decay -1":    func(r *Recipe) { w := -1.0; r.WeightDecay = &w },
		"--augment-pad 65":     func(r *Recipe) { r.AugmentPad = 65 },
		"--lookahead-every 0":  func(r *Recipe) { r.LookaheadEvery = 0 },
		"--lr-start-factor -1": func(r *Recipe) { r.LRStartFactor = -1 },
		"--norm-lr-factor":     func(r *Recipe) { r.NormLRFactor = -1 },
		"--lookahead 2":        func(r *Recipe) { r.Lookahead = 2 },
		"--optimizer \"\"":     func(r *Recipe) { r.Optimizer = "" },
	} {
		cfg := Default()
		cfg.Out = filepath.Join(t.TempDir(), "m.safetensors")
		set(&cfg.Recipe)
		err := cfg.validate(false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error mentioning %q, got %v", want, err)
		}
	}
}
