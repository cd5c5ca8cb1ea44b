package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
)

func deviceFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "device", Value: "auto", Usage: "auto (GPU if usable, else CPU), cpu or gpu"},
		&ucli.IntFlag{Name: "threads", Usage: "CPU worker threads (0: one per core)"},
		&ucli.BoolFlag{Name: "tf32", Usage: "allow TF32 tensor-core GEMMs on the GPU (faster, ~1e-3 relative error)"},
	}
}

func trainCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "train",
		Usage: "train a model on CIFAR-10 (downloaded on first use)",
		Description: "Trains the model given by --model (default: the Keras CIFAR-10 tutorial CNN) with Adam\n" +
			"and sparse softmax cross-entropy and validates after every epoch. The checkpoint --out\n" +
			"is written after every epoch (and every --save-every steps) with everything needed to\n" +
			"resume; numbered copies (the last --keep) and the best by val_accuracy are kept beside\n" +
			"it, with history.csv and history.jsonl. Ctrl-C finishes the step, saves and prints the\n" +
			"command that resumes; a second Ctrl-C quits at once.\n\n" +
			"Examples:\n   trainer train --epochs 10 --batch-size 32 --out runs/a/model.safetensors\n" +
			"   trainer train --resume runs/a/model.safetensors --epochs 20\n\n" + model.SpecGrammar,
		Flags: append([]ucli.Flag{
			&ucli.IntFlag{Name: "epochs", Value: 10, Usage: "train until this many epochs are complete"},
			&ucli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per step"},
			&ucli.Float64Flag{Name: "lr", Value: 1e-3, Usage: "Adam learning rate"},
			&ucli.StringFlag{Name: "lr-schedule", Value: "constant", Usage: "constant, cosine (to 0 over the run) or step (x0.1 at 50% and 75% of the epochs)"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed for weights and shuffling"},
			&ucli.StringFlag{Name: "model", Value: model.DefaultSpec, Usage: "layer spec (see above)"},
			&ucli.StringFlag{Name: "out", Value: "model.safetensors", Usage: "checkpoint path"},
			&ucli.StringFlag{Name: "resume", Usage: "continue the run saved in this checkpoint"},
			&ucli.IntFlag{Name: "save-every", Usage: "also save every N steps (0: at epoch ends only)"},
			&ucli.IntFlag{Name: "keep", Value: 3, Usage: "numbered checkpoints to keep beside --out (0: none)"},
			&ucli.IntFlag{Name: "early-stop", Usage: "stop when val_loss has not improved for N epochs (0: never)"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the final result"},
			&ucli.BoolFlag{Name: "force", Usage: "start a new run even if --out already holds a checkpoint (it is replaced)"},
			&ucli.IntFlag{Name: "stop-after-steps", Hidden: true, Usage: "act as if interrupted after N steps (tests)"},
			&ucli.BoolFlag{Name: "augment", Usage: "random crops (4-pixel zero padding) and horizontal flips of the training images"},
		}, append(dataFlags(), deviceFlags()...)...),
		Action: runTrain,
	}
}

// runConfig is what a run needs, from flags or from the checkpoint it resumes.
type runConfig struct {
	spec     string
	batch    int
	lr       float64
	schedule string
	seed     uint64
	augment  bool
}

func (rc runConfig) meta() map[string]string {
	return map[string]string{"batch_size": strconv.Itoa(rc.batch), "eval_batch": strconv.Itoa(rc.batch),
		"lr": strconv.FormatFloat(rc.lr, 'g', -1, 64), "lr_schedule": rc.schedule, "seed": strconv.FormatUint(rc.seed, 10), "augment": strconv.FormatBool(rc.augment)}
}

func scheduleFunc(name string, lr float64, epochs int) (func(epoch, s, steps int) float64, error) {
	switch name {
	case "constant":
		return nil, nil
	case "cosine":
		return func(epoch, s, steps int) float64 {
			t := (float64(epoch) + float64(s)/float64(steps)) / float64(epochs)
			return lr * 0.5 * (1 + math.Cos(math.Pi*min(t, 1)))
		}, nil
	case "step":
		return func(epoch, s, steps int) float64 {
			switch {
			case epoch >= epochs*3/4:
				return lr * 0.01
			case epoch >= epochs/2:
				return lr * 0.1
			}
			return lr
		}, nil
	}
	return nil, fmt.Errorf("--lr-schedule %q: use constant, cosine or step", name)
}

func runTrain(c *ucli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("train takes no arguments, got %q (flags go before them?)", c.Args().First())
	}
	rc := runConfig{spec: c.String("model"), batch: c.Int("batch-size"), lr: c.Float64("lr"), schedule: c.String("lr-schedule"),
		seed: c.Uint64("seed"), augment: c.Bool("augment")}
	epochs := c.Int("epochs")
	out := c.String("out")
	quiet := c.Bool("quiet")
	if quiet {
		log = log.Level(max(log.GetLevel(), 3)) // errors only
	}
	var resume *model.Checkpoint
	if p := c.String("resume"); p != "" {
		ck, err := model.LoadCheckpoint(p)
		if err != nil {
			return err
		}
		if !ck.Resumable() {
			return fmt.Errorf("--resume %s: the checkpoint holds weights only, no training state", p)
		}
		resume = ck
		// The run's settings come from the checkpoint; flags may not contradict them.
		saved := runConfig{spec: ck.Meta[model.MetaSpec], schedule: ck.Meta["lr_schedule"]}
		saved.batch, _ = strconv.Atoi(ck.Meta["batch_size"])
		saved.lr, _ = strconv.ParseFloat(ck.Meta["lr"], 64)
		saved.seed, _ = strconv.ParseUint(ck.Meta["seed"], 10, 64)
		saved.augment = ck.Meta["augment"] == "true"
		for _, f := range []struct {
			flag        string
			have, saved any
		}{{"model", rc.spec, saved.spec}, {"batch-size", rc.batch, saved.batch}, {"lr", rc.lr, saved.lr},
			{"lr-schedule", rc.schedule, saved.schedule}, {"seed", rc.seed, saved.seed}, {"augment", rc.augment, saved.augment}} {
			if c.IsSet(f.flag) && fmt.Sprint(f.have) != fmt.Sprint(f.saved) {
				return fmt.Errorf("--%s %v: the run in %s was started with %v; a resumed run keeps its settings (start a new run with another --out instead)", f.flag, f.have, p, f.saved)
			}
		}
		if saved.schedule == "" {
			saved.schedule = "constant"
		}
		rc = saved
		if !c.IsSet("out") {
			out = p
		}
	}
	if epochs < 1 {
		return fmt.Errorf("--epochs %d: must be at least 1", epochs)
	}
	if rc.batch < 1 || rc.batch > 65536 {
		return fmt.Errorf("--batch-size %d: must be between 1 and 65536", rc.batch)
	}
	if !(rc.lr > 0 && rc.lr < 10) {
		return fmt.Errorf("--lr %g: must be a positive number below 10", rc.lr)
	}
	if out == "" || strings.HasSuffix(out, "/") || !strings.HasSuffix(out, ".safetensors") {
		return fmt.Errorf("--out %q: give a file path ending in .safetensors, e.g. runs/a/model.safetensors", out)
	}
	if _, err := os.Stat(out); err == nil && resume == nil && !c.Bool("force") {
		return fmt.Errorf("--out %s already holds a checkpoint: continue it with --resume %s, choose another --out, or pass --force to replace it", out, out)
	}
	if c.Int("save-every") < 0 || c.Int("keep") < 0 || c.Int("early-stop") < 0 {
		return fmt.Errorf("--save-every, --keep and --early-stop take counts of 0 or more")
	}
	lrAt, err := scheduleFunc(rc.schedule, rc.lr, epochs)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()

	ds, err := dataSpecFrom(c, rc.seed)
	if err != nil {
		return err
	}
	if saved := resumeMeta(resume, "dataset"); saved != "" && saved != ds.kind {
		if c.IsSet("dataset") {
			return fmt.Errorf("--dataset %s: the run in %s trained on %s", ds.kind, resume.Path, saved)
		}
		ds.kind = saved
	}
	train, test, err := ds.load(ctx)
	if err != nil {
		return interrupted(ctx, err)
	}
	net, err := model.Plan(rc.spec, shapeOf(train))
	if err != nil {
		return err
	}
	b, err := openDevice(c.String("device"), c.Int("threads"), c.Bool("tf32"))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := net.Build(b, rc.batch, rc.seed); err != nil {
		return withBatchHint(err, b, net)
	}
	adam := model.DefaultAdam
	adam.LR = rc.lr
	run := &trainRun{out: out, keep: c.Int("keep"), net: net, rc: rc, ds: ds, classes: strings.Join(train.Classes, ","),
		bestAcc: -1, bestLoss: math.Inf(1)}
	var bar *progressBar
	if !quiet && stderr == os.Stderr && isTerminal(os.Stderr) {
		bar = newProgressBar(stderr, epochs)
	}
	var progressEvery time.Duration // live progress only on a terminal
	if bar != nil {
		progressEvery = 250 * time.Millisecond
	}
	stopAfter := c.Int("stop-after-steps")
	saveEvery := c.Int("save-every")
	var tr *model.Trainer
	tr, err = model.NewTrainer(net, toModel(train), toModel(test), model.TrainOptions{
		Batch: rc.batch, Adam: adam, Seed: rc.seed, LR: lrAt, Augment: rc.augment,
		ProgressEvery: progressEvery,
		OnProgress:    func(p model.Progress) { bar.update(p) },
		OnStep: func(t *model.Trainer) error {
			if stopAfter > 0 && t.TotalSteps() >= stopAfter {
				stop() // as if Ctrl-C: the loop stops before the next step
			}
			if saveEvery > 0 && t.TotalSteps()%saveEvery == 0 {
				return run.save(t, "periodic")
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	if resume != nil {
		st, err := resume.State(net)
		if err != nil {
			return err
		}
		if err := tr.Restore(st); err != nil {
			return fmt.Errorf("--resume %s: %w", resume.Path, err)
		}
		run.restoreMeta(resume.Meta)
		run.saved = resume.Path
		log.Info().Str("checkpoint", resume.Path).Int("epoch", st.Epoch).Int("step", st.Pos).Int("global_step", st.AdamStep).
			Msgf("resuming after epoch %d, step %d", st.Epoch, st.Pos)
		if err := run.history.truncate(historyPath(out), st.Epoch); err != nil {
			return err
		}
	} else if err := run.history.truncate(historyPath(out), 0); err != nil {
		return err
	}
	if tr.Epoch() >= epochs {
		return fmt.Errorf("the run already has %d epochs; pass a larger --epochs to train more", tr.Epoch())
	}
	log.Info().Str("model", net.Spec).Int("params", net.NumParams()).Int("train", train.N).Int("validation", test.N).
		Int("epochs", epochs).Int("batch_size", rc.batch).Float64("lr", rc.lr).Uint64("seed", rc.seed).Bool("augment", rc.augment).Msg("training")

	if d, err := tr.WarmUp(); err != nil {
		return err
	} else if d > 0 {
		log.Info().Float64("seconds", round(d.Seconds(), 3)).Msg("warm-up pass done (one-time device setup, weights untouched)")
	}
	var last model.EpochResult
	for tr.Epoch() < epochs {
		r, err := tr.RunEpoch(ctx)
		bar.clear()
		if err != nil {
			if ctx.Err() != nil {
				if serr := run.save(tr, "interrupt"); serr != nil {
					return &exitError{ExitInterrupted, fmt.Errorf("interrupted, and saving failed: %v", serr)}
				}
				fmt.Fprintf(stderr, "trainer: interrupted in epoch %d after step %d of %d (global step %d); saved %s\nresume with:\n  %s\n",
					tr.Epoch()+1, tr.Position(), tr.StepsPerEpoch(), tr.TotalSteps(), out, resumeCommand(out))
				return &exitError{ExitInterrupted, errors.New("interrupted")}
			}
			if errors.Is(err, model.ErrNonFinite) && run.saved != "" {
				return fmt.Errorf("%v; the last good checkpoint %s is kept", err, run.saved)
			}
			return err
		}
		last = r
		log.Info().Int("epoch", r.Epoch).Float64("loss", round(r.Loss, 4)).Float64("accuracy", round(r.Accuracy, 4)).
			Float64("val_loss", round(r.ValLoss, 4)).Float64("val_accuracy", round(r.ValAccuracy, 4)).
			Float64("images_per_s", round(r.ImagesPerS, 1)).Float64("seconds", round(r.Seconds, 2)).
			Msgf("epoch %d/%d", r.Epoch, epochs)
		lr := rc.lr
		if lrAt != nil {
			lr = lrAt(r.Epoch-1, tr.StepsPerEpoch()-1, tr.StepsPerEpoch())
		}
		if err := run.history.add(historyPath(out), r, lr); err != nil {
			return err
		}
		improved := r.ValLoss < run.bestLoss
		if improved {
			run.bestLoss, run.badEpochs = r.ValLoss, 0
		} else {
			run.badEpochs++
		}
		run.last = r
		if err := run.save(tr, "epoch"); err != nil {
			return err
		}
		if r.ValAccuracy > run.bestAcc {
			run.bestAcc = r.ValAccuracy
			if err := run.copyBest(); err != nil {
				return err
			}
		}
		if p := c.Int("early-stop"); p > 0 && run.badEpochs >= p {
			log.Info().Int("epoch", r.Epoch).Msgf("early stop: val_loss has not improved for %d epochs (best %.4f)", p, run.bestLoss)
			break
		}
	}
	if plotHistory != nil {
		if err := plotHistory(historyPath(out), strings.TrimSuffix(historyPath(out), ".csv")+".png"); err != nil {
			log.Warn().Msgf("could not draw the history plot: %v", err)
		}
	}
	msg := fmt.Sprintf("done: epoch %d, val_accuracy %.4f, val_loss %.4f; saved %s", last.Epoch, last.ValAccuracy, last.ValLoss, out)
	if quiet {
		fmt.Fprintln(stdout, msg)
	} else {
		log.Info().Str("checkpoint", out).Float64("val_accuracy", round(last.ValAccuracy, 4)).Msg(msg)
	}
	return nil
}

// resumeMeta is a metadata value of the checkpoint being resumed, "" when
// there is none.
func resumeMeta(c *model.Checkpoint, key string) string {
	if c == nil {
		return ""
	}
	return c.Meta[key]
}

// withBatchHint adds to an out-of-memory error the largest batch that would
// fit in the device's free memory.
func withBatchHint(err error, b device.Backend, net *model.Network) error {
	var oom *device.OutOfMemoryError
	if !errors.As(err, &oom) {
		return err
	}
	free, _, merr := b.MemInfo() // what is free now, with the buffers already made: a safe estimate
	if merr != nil {
		return fmt.Errorf("%w; try a smaller --batch-size", err)
	}
	fit := int(float64(free) * 0.8 / float64(net.BytesPerImage()))
	if fit < 1 {
		return fmt.Errorf("%w; even one image needs %.1f MiB", err, float64(net.BytesPerImage())/(1<<20))
	}
	return fmt.Errorf("%w; about %.2f MiB per image: --batch-size %d would fit", err, float64(net.BytesPerImage())/(1<<20), fit)
}

// plotHistory draws history.csv to a PNG when the plot command is built in.
var plotHistory func(csvPath, pngPath string) error

// trainRun keeps the files of one run: the latest checkpoint, numbered
// copies, the best one and the history.
type trainRun struct {
	out       string
	keep      int
	net       *model.Network
	rc        runConfig
	ds        dataSpec
	classes   string
	last      model.EpochResult
	bestAcc   float64
	bestLoss  float64
	badEpochs int
	saved     string // the last checkpoint written, "" before the first
	history   history
}

func (r *trainRun) restoreMeta(m map[string]string) {
	if v, err := strconv.ParseFloat(m["best_val_accuracy"], 64); err == nil {
		r.bestAcc = v
	}
	if v, err := strconv.ParseFloat(m["best_val_loss"], 64); err == nil {
		r.bestLoss = v
	}
	r.badEpochs, _ = strconv.Atoi(m["bad_epochs"])
	r.last.ValAccuracy, _ = strconv.ParseFloat(m["val_accuracy"], 64)
	r.last.ValLoss, _ = strconv.ParseFloat(m["val_loss"], 64)
	r.last.Epoch, _ = strconv.Atoi(m["epoch"])
}

func (r *trainRun) base() (dir, stem string) {
	return filepath.Dir(r.out), strings.TrimSuffix(filepath.Base(r.out), ".safetensors")
}

// save writes the full training state to --out and a numbered copy, then
// drops numbered copies beyond --keep.
func (r *trainRun) save(t *model.Trainer, why string) error {
	st, err := t.State()
	if err != nil {
		return err
	}
	meta := r.rc.meta()
	r.ds.meta(meta)
	meta["classes"] = r.classes
	meta["epoch"] = strconv.Itoa(r.last.Epoch)
	meta["val_accuracy"] = strconv.FormatFloat(r.last.ValAccuracy, 'f', -1, 64)
	meta["val_loss"] = strconv.FormatFloat(r.last.ValLoss, 'f', -1, 64)
	meta["best_val_accuracy"] = strconv.FormatFloat(max(r.bestAcc, r.last.ValAccuracy), 'f', -1, 64)
	meta["best_val_loss"] = strconv.FormatFloat(r.bestLoss, 'g', -1, 64)
	meta["bad_epochs"] = strconv.Itoa(r.badEpochs)
	meta["saved_because"] = why
	if err := model.SaveCheckpoint(r.out, r.net, st, meta); err != nil {
		return err
	}
	r.saved = r.out
	log.Debug().Str("checkpoint", r.out).Str("why", why).Int("global_step", st.AdamStep).Msg("saved")
	if r.keep == 0 {
		return nil
	}
	dir, stem := r.base()
	numbered := filepath.Join(dir, fmt.Sprintf("%s-step%09d.safetensors", stem, st.AdamStep))
	data, err := os.ReadFile(r.out)
	if err != nil {
		return err
	}
	if err := model.WriteFileAtomic(numbered, data); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, stem+"-step*.safetensors"))
	sort.Strings(old)
	for len(old) > r.keep {
		os.Remove(old[0])
		old = old[1:]
	}
	return nil
}

// copyBest copies the checkpoint just written to <stem>-best.safetensors.
func (r *trainRun) copyBest() error {
	data, err := os.ReadFile(r.out)
	if err != nil {
		return err
	}
	dir, stem := r.base()
	return model.WriteFileAtomic(filepath.Join(dir, stem+"-best.safetensors"), data)
}

// resumeCommand is the command line that continues this run: the global
// flags and the train flags given, less those the checkpoint fixes, plus
// --resume.
func resumeCommand(out string) string {
	in := os.Args[1:]
	cmd := 0
	for cmd < len(in) && in[cmd] != "train" {
		cmd++
	}
	args := append([]string{"trainer"}, in[:min(cmd, len(in))]...)
	args = append(args, "train", "--resume", out)
	skip := map[string]bool{"resume": true, "stop-after-steps": true, "out": true, "force": true, "model": true, "batch-size": true,
		"lr": true, "lr-schedule": true, "seed": true, "augment": true}
	for i := cmd + 1; i < len(in); i++ {
		a := in[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesVal := !hasVal && !isBoolFlag(name) && i+1 < len(in)
		if !skip[name] {
			args = append(args, a)
			if takesVal {
				args = append(args, in[i+1])
			}
		}
		if takesVal {
			i++
		}
	}
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"$") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}

func isBoolFlag(name string) bool {
	switch name {
	case "quiet", "q", "tf32", "augment", "force":
		return true
	}
	return false
}

// interrupted turns a cancellation into exit code 130.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return &exitError{ExitInterrupted, err}
	}
	return err
}

func round(v float64, digits int) float64 {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}
