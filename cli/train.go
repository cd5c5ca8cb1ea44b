package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
	trainrun "github.com/trainer-go/trainer/run"
)

func deviceFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "device", Value: "auto", Usage: "auto (GPU if usable, else CPU), cpu or gpu",
			Action: func(_ *ucli.Context, v string) error { return trainrun.Device{Name: v}.Validate() }},
		&ucli.IntFlag{Name: "threads", Usage: "CPU worker threads (0: one per core)",
			Action: func(_ *ucli.Context, v int) error { return trainrun.ValidateThreads(v) }},
		&ucli.StringFlag{Name: "precision", Value: "fp32", Usage: "GEMM precision: fp32; tf32 (TF32 tensor cores on the GPU, operands rounded to TF32 on the CPU); bf16 (bfloat16 GEMM operands, float32 accumulation, master weights, BatchNorm, loss and optimiser; emulated on the CPU)",
			Action: func(_ *ucli.Context, v string) error { _, err := parsePrecision(v); return err }},
		&ucli.BoolFlag{Name: "tf32", Usage: "deprecated: --precision tf32"},
		&ucli.StringFlag{Name: "cuda-graphs", Value: "auto", Usage: "run each training or evaluation step on the GPU as one captured CUDA graph: auto (where the driver has graphs, in one process), on (or fail) or off; the results are the same bit for bit",
			Action: func(_ *ucli.Context, v string) error { _, err := device.ParseGraphMode(v); return err }},
	}
}

// parsePrecision reads a --precision value.
func parsePrecision(v string) (device.Precision, error) {
	p, err := device.ParsePrecision(v)
	if err != nil {
		return 0, fmt.Errorf("--%w", err)
	}
	return p, nil
}

// precisionOf is the precision the device flags ask for: --precision, or
// tf32 for the deprecated --tf32 (a warning says so; with another
// --precision it is an error).
func precisionOf(c *ucli.Context) (device.Precision, error) {
	p, err := parsePrecision(c.String("precision"))
	if err != nil || !c.Bool("tf32") {
		return p, err
	}
	if c.IsSet("precision") && p != device.PrecisionTF32 {
		return 0, fmt.Errorf("--tf32 (deprecated, meaning --precision tf32) contradicts --precision %s: give --precision alone", p)
	}
	log.Warn().Msg("--tf32 is deprecated: use --precision tf32")
	return device.PrecisionTF32, nil
}

func trainCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "train",
		Usage: "train a model on CIFAR-10 (downloaded on first use)",
		Description: "Trains the model given by --model (default: the Keras CIFAR-10 tutorial CNN) with\n" +
			"--optimizer (default Adam) and softmax cross-entropy and validates after every epoch. The checkpoint --out\n" +
			"is written after every epoch (and every --save-every steps) with everything needed to\n" +
			"resume; numbered copies (the last --keep) and the best by val_accuracy are kept beside\n" +
			"it, with <name>.history.csv and .history.jsonl. Ctrl-C finishes the step, saves and prints the\n" +
			"command that resumes; a second Ctrl-C quits at once.\n\n" +
			"Examples:\n   trainer train --epochs 10 --batch-size 32 --out runs/a/model.safetensors\n" +
			"   trainer train --resume runs/a/model.safetensors --epochs 20\n" +
			"   trainer train --model resnet20 --batch-size 128 --epochs 30 --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov \\\n" +
			"       --weight-decay 5e-4 --lr-schedule onecycle --label-smoothing 0.1 --augment\n\n" + model.SpecGrammar,
		Flags: append([]ucli.Flag{
			&ucli.IntFlag{Name: "epochs", Value: 10, Usage: "train until this many epochs are complete"},
			&ucli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per step"},
			&ucli.Float64Flag{Name: "lr", Value: 1e-3, Usage: "learning rate (the peak of onecycle and linear)"},
			&ucli.StringFlag{Name: "lr-schedule", Value: "constant", Usage: "constant, cosine (to 0 over the run), step (x0.1 at 50% and 75% of the epochs), onecycle (PyTorch's OneCycleLR) or linear (--warmup, --lr-start-factor, --lr-end-factor); stepped per batch"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed for weights and shuffling"},
			&ucli.StringFlag{Name: "model", Value: model.DefaultSpec, Usage: "preset (" + strings.Join(model.Presets(), ", ") + "), model file (.json, .yaml; see the README) or layer spec (see above)"},
			&ucli.StringFlag{Name: "out", Value: "model.safetensors", Usage: "checkpoint path"},
			&ucli.StringFlag{Name: "resume", Usage: "continue the run saved in this checkpoint"},
			&ucli.IntFlag{Name: "save-every", Usage: "also save every N steps (0: at epoch ends only)"},
			&ucli.IntFlag{Name: "keep", Value: 3, Usage: "numbered checkpoints to keep beside --out (0: none)"},
			&ucli.IntFlag{Name: "early-stop", Usage: "stop when val_loss has not improved for N epochs (0: never)"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the final result"},
			&ucli.BoolFlag{Name: "force", Usage: "start a new run even if --out already holds a checkpoint (it is replaced)"},
			&ucli.IntFlag{Name: "stop-after-steps", Hidden: true, Usage: "act as if interrupted after N steps (tests)"},
			&ucli.IntFlag{Name: "sync-every", Usage: "debugging: wait for the GPU after every N steps, so an asynchronous fault is reported at the step that raised it (slower; 0: only at the loss checks, every 50 steps)"},
			&ucli.BoolFlag{Name: "augment", Usage: "random crops (--augment-pad pixels of --augment-padding) and horizontal flips of the training images"},
		}, append(recipeFlags(), append(dataFlags(), deviceFlags()...)...)...),
		Action: runTrain,
	}
}

// runTrain parses the train flags into a trainrun.Config and runs it.
func runTrain(c *ucli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("train takes no arguments, got %q (flags go before them?)", c.Args().First())
	}
	dev, err := deviceOf(c)
	if err != nil {
		return err
	}
	cfg := trainrun.Config{Model: c.String("model"), Epochs: c.Int("epochs"), BatchSize: c.Int("batch-size"), LR: c.Float64("lr"),
		Schedule: c.String("lr-schedule"), Seed: c.Uint64("seed"), Augment: c.Bool("augment"), Out: c.String("out"),
		Resume: c.String("resume"), SaveEvery: c.Int("save-every"), Keep: c.Int("keep"), EarlyStop: c.Int("early-stop"),
		Quiet: c.Bool("quiet"), Force: c.Bool("force"), StopAfterSteps: c.Int("stop-after-steps"), SyncEvery: c.Int("sync-every"),
		Data: datasetFlags(c), Device: dev,
		Set: map[string]bool{}, Global: globalArgs(c), Recipe: recipeOf(c), Program: program}
	for _, name := range c.FlagNames() {
		cfg.Set[name] = c.IsSet(name)
	}
	if cfg.Quiet {
		log = log.Level(max(log.GetLevel(), 3)) // errors only
	}
	env := trainrun.Env{Log: log, Stdout: stdout, Stderr: stderr, Plot: PlotHistory,
		Load: func(ctx context.Context, d trainrun.Dataset) (train, val *data.Dataset, err error) {
			return dataSpec{kind: d.Kind, dir: d.Dir, valDir: d.ValDir, valSplit: d.ValSplit, size: d.ImageSize, seed: d.Seed,
				threads: cfg.Device.Threads}.load(ctx)
		},
		OpenDevice: func(d trainrun.Device) (device.Backend, error) {
			return openDeviceAt(d)
		}}
	if !cfg.Quiet && stderr == os.Stderr && isTerminal(os.Stderr) {
		env.Progress = newProgressBar(stderr, cfg.Epochs)
	}
	comm, err := joinWorld(&env, &cfg.Device)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	err = trainrun.Train(ctx, cfg, env)
	if comm != nil {
		return comm.leave(err)
	}
	return err
}

// datasetFlags are the dataset settings of the command line.
func datasetFlags(c *ucli.Context) trainrun.Dataset {
	return trainrun.Dataset{Kind: c.String("dataset"), Dir: c.String("data-dir"), ValDir: c.String("val-dir"),
		ValSplit: c.Float64("val-split"), ImageSize: c.Int("image-size")}
}

// globalArgs are the global flags given before the command, as arguments.
func globalArgs(c *ucli.Context) []string {
	var args []string
	for _, p := range c.Lineage()[1:] {
		for _, name := range []string{"log-format", "log-level"} {
			if p.IsSet(name) {
				args = append(args, "--"+name, p.String(name))
			}
		}
	}
	return args
}

// interrupted turns a cancellation into exit code 130.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return &exitError{ExitInterrupted, err}
	}
	return err
}

func round(v float64, digits int) float64 { return trainrun.Round(v, digits) }

// recipeFlags are the flags of trainrun.Recipe: the optimiser,
// regularisation, schedule shape, weight averaging and augmentation.
func recipeFlags() []ucli.Flag {
	d := trainrun.DefaultRecipe()
	return []ucli.Flag{
		&ucli.StringFlag{Name: "optimizer", Value: d.Optimizer, Usage: "adam (Keras's: eps 1e-7), adamw, sgd or rmsprop (PyTorch's definitions and defaults)"},
		&ucli.Float64Flag{Name: "momentum", Usage: "momentum of sgd and rmsprop"},
		&ucli.BoolFlag{Name: "nesterov", Usage: "Nesterov momentum (sgd)"},
		&ucli.Float64Flag{Name: "weight-decay", Usage: "L2 penalty for adam, sgd and rmsprop; decoupled decay for adamw (default 0; adamw 0.01)"},
		&ucli.Float64Flag{Name: "bias-weight-decay", Usage: "weight decay of conv and dense biases (default: --weight-decay; 0 exempts them)"},
		&ucli.Float64Flag{Name: "norm-weight-decay", Usage: "weight decay of BatchNorm weights and biases (default: --weight-decay; 0 exempts them)"},
		&ucli.Float64Flag{Name: "norm-lr-factor", Value: 1, Usage: "learning-rate factor of BatchNorm weights and biases"},
		&ucli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing of the training loss, as PyTorch's CrossEntropyLoss"},
		&ucli.Float64Flag{Name: "warmup", Usage: "warm-up of linear (and onecycle's pct_start): a fraction of the run below 1, or a number of steps"},
		&ucli.Float64Flag{Name: "lr-start-factor", Usage: "linear: the warm-up starts at --lr times this"},
		&ucli.Float64Flag{Name: "lr-end-factor", Usage: "linear: the last step's rate is --lr times this"},
		&ucli.Float64Flag{Name: "ema", Usage: "keep an exponential moving average of the weights with this decay (e.g. 0.999), used for validation and eval"},
		&ucli.IntFlag{Name: "ema-every", Value: d.EMAEvery, Usage: "update the --ema average every N steps"},
		&ucli.Float64Flag{Name: "lookahead", Usage: "airbench's lookahead: every --lookahead-every steps average the weights with decay D*(step/steps)^3 and reset them to the average"},
		&ucli.IntFlag{Name: "lookahead-every", Value: d.LookaheadEvery, Usage: "steps between lookahead updates"},
		&ucli.IntFlag{Name: "augment-pad", Value: d.AugmentPad, Usage: "padding of --augment's random crops, in pixels (the largest shift)"},
		&ucli.StringFlag{Name: "augment-padding", Value: d.AugmentPadding, Usage: "zero, or reflect (mirror the image: a random translation)"},
		&ucli.BoolFlag{Name: "augment-flip", Value: d.AugmentFlip, Usage: "random horizontal flips with --augment (--augment-flip=false: translation only)"},
		&ucli.BoolFlag{Name: "drop-last", Usage: "leave out each epoch's last batch when it is smaller than --batch-size (PyTorch's drop_last)"},
	}
}

// recipeOf reads the recipe flags.
func recipeOf(c *ucli.Context) trainrun.Recipe {
	r := trainrun.Recipe{Optimizer: c.String("optimizer"), Momentum: c.Float64("momentum"), Nesterov: c.Bool("nesterov"),
		NormLRFactor: c.Float64("norm-lr-factor"), LabelSmoothing: c.Float64("label-smoothing"), Warmup: c.Float64("warmup"),
		LRStartFactor: c.Float64("lr-start-factor"), LREndFactor: c.Float64("lr-end-factor"), EMA: c.Float64("ema"),
		EMAEvery: c.Int("ema-every"), Lookahead: c.Float64("lookahead"), LookaheadEvery: c.Int("lookahead-every"),
		AugmentPad: c.Int("augment-pad"), AugmentPadding: c.String("augment-padding"), AugmentFlip: c.Bool("augment-flip"), DropLast: c.Bool("drop-last")}
	opt := func(name string) *float64 {
		if !c.IsSet(name) {
			return nil
		}
		v := c.Float64(name)
		return &v
	}
	r.WeightDecay, r.BiasWeightDecay, r.NormWeightDecay = opt("weight-decay"), opt("bias-weight-decay"), opt("norm-weight-decay")
	if r.NormLRFactor == 1 {
		r.NormLRFactor = 0
	}
	return r
}
