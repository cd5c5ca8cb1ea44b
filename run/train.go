package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// Env is what a run needs from its surroundings. Load and OpenDevice are
// required; the rest may be left zero.
type Env struct {
	Log            zerolog.Logger // zero: no logging
	Stdout, Stderr io.Writer      // nil: discarded

	// Load reads the training and validation sets.
	Load func(ctx context.Context, d Dataset) (train, val *data.Dataset, err error)
	// OpenDevice opens the backend (and logs the choice).
	OpenDevice func(d Device) (device.Backend, error)

	// Progress, when set, receives live progress about 4 times a second
	// and is cleared before each epoch's log line (the terminal bar).
	Progress Progress
	// Plot, when set, draws the history CSV to a PNG at the end of the run.
	// It is a hook so that run does not depend on the plotting library
	// (gonum/plot and its fonts) that only the command line needs; a failed
	// plot is a warning, not a failed run.
	Plot func(csvPath, pngPath string) error
}

// Progress shows live training progress.
type Progress interface {
	Update(model.Progress)
	Clear()
}

// session is one run under way.
type session struct {
	cfg           Config
	env           Env
	log           *zerolog.Logger
	resume        *model.Checkpoint
	lrAt          LRFunc
	files         *files
	unlock        func() // releases the lock on Out (nil: not taken yet)
	tr            *model.Trainer
	listing       *listing // a folder dataset's listing
	classes       int      // the dataset's class count, which sizes a preset's head
	stop          context.CancelFunc
	valN          int // validation images
	stepsPerEpoch int
}

// Train runs cfg: a new run, or the one in cfg.Resume continued. Cancelling
// ctx acts as an interrupt: the run stops after the step, saves and prints
// the command that resumes it, and returns an *InterruptedError.
func Train(ctx context.Context, cfg Config, env Env) error {
	s := &session{cfg: cfg, env: env, log: &env.Log}
	if s.env.Stdout == nil {
		s.env.Stdout = io.Discard
	}
	if s.env.Stderr == nil {
		s.env.Stderr = io.Discard
	}
	defer s.release()
	if err := s.prepare(); err != nil {
		return err
	}
	ctx, s.stop = context.WithCancel(ctx)
	defer s.stop()
	net, train, err := s.setup(ctx)
	if err != nil {
		return err
	}
	defer net.Backend().Close()
	if err := s.begin(net, train); err != nil {
		return err
	}
	last, err := s.epochs(ctx)
	if err != nil {
		return err
	}
	s.finish(last)
	return nil
}

// prepare resolves the run's settings (from the checkpoint when resuming)
// and checks them, then locks Out if its folder exists (nothing is created
// before the data has loaded).
func (s *session) prepare() error {
	if s.cfg.Resume != "" {
		ck, err := loadResume(&s.cfg)
		if err != nil {
			return err
		}
		s.resume = ck
		if s.cfg.Out != ck.Path && !s.cfg.isSet("out") {
			s.log.Info().Str("copy", ck.Path).Str("checkpoint", s.cfg.Out).
				Msgf("--resume %s is a copy: writing to %s, the run's checkpoint (the copy is left as it is)", ck.Path, s.cfg.Out)
		}
	}
	if err := checkOut(s.cfg.Out); err != nil {
		return err
	}
	if err := s.cfg.validate(s.resume != nil); err != nil {
		return err
	}
	s.cfg.Data.Seed = s.cfg.Seed
	s.lrAt, _ = Schedule(s.cfg.Schedule, s.cfg.LR, s.cfg.Epochs, s.cfg.Recipe)
	if err := resumeDataset(&s.cfg, s.resume); err != nil {
		return err
	}
	if err := s.checkData(); err != nil {
		return err
	}
	return s.lock(false)
}

// lock takes the lock on Out (see lockOut) for the rest of the run. Where
// Out's folder does not exist yet it creates it if create is set, and
// otherwise leaves the lock for later.
func (s *session) lock(create bool) error {
	if s.unlock != nil {
		return nil
	}
	dir := filepath.Dir(s.cfg.Out)
	if _, err := os.Stat(dir); err != nil {
		if !create {
			return nil
		}
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return fmt.Errorf("--out %s: %w", s.cfg.Out, err)
		}
	}
	unlock, err := lockOut(s.cfg.Out)
	if err != nil {
		return err
	}
	s.unlock = unlock
	return nil
}

// release releases the lock on Out, if taken.
func (s *session) release() {
	if s.unlock != nil {
		s.unlock()
	}
}

// setup opens the device, loads the data, plans and builds the network
// and makes the trainer, restored from the checkpoint when resuming.
func (s *session) setup(ctx context.Context) (*model.Network, *data.Dataset, error) {
	b, err := s.env.OpenDevice(s.cfg.Device)
	if err != nil {
		return nil, nil, err
	}
	net, train, err := s.build(ctx, b)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return net, train, nil
}

// build is setup on the open backend b. Its buffers hold min(--batch-size,
// dataset size) images: no step or validation batch is larger.
func (s *session) build(ctx context.Context, b device.Backend) (*model.Network, *data.Dataset, error) {
	cfg := &s.cfg
	if err := s.checkListed(b); err != nil {
		return nil, nil, err
	}
	train, test, err := s.env.Load(ctx, cfg.Data)
	if err != nil {
		return nil, nil, interrupted(ctx, err)
	}
	if cfg.Data.Kind == "folder" {
		s.log.Info().Int("images", train.N+test.N).Int("classes", len(train.Classes)).Int("train", train.N).Int("validation", test.N).
			Msgf("found %d images in %d classes: %d for training, %d for validation", train.N+test.N, len(train.Classes), train.N, test.N)
	}
	net, err := model.PlanFor(cfg.Model, model.Shape{C: train.C, H: train.H, W: train.W}, len(train.Classes))
	if err != nil {
		return nil, nil, FlagError(err)
	}
	if k := len(train.Classes); k > 0 && net.Classes != k {
		return nil, nil, headError(net.Summary()[len(net.Summary())-1].Name, net.Classes, cfg.Data.Kind, k)
	}
	batch := min(cfg.BatchSize, max(train.N, test.N))
	if err := s.checkMemory(b, memEstimate{fixed: uint64(net.FixedBytes()), perImage: uint64(net.BytesPerImageOn(b)), batch: batch}); err != nil {
		return nil, nil, err
	}
	if err := net.Build(b, batch, cfg.Seed); err != nil {
		return nil, nil, WithBatchHint(err, b, net) // asks the open backend for its free memory
	}
	if s.resume == nil && net.NeedsData() {
		if err := net.InitFromData(train.Images, train.N); err != nil {
			return nil, nil, FlagError(err)
		}
		s.log.Info().Int("images", min(train.N, model.WhitenImages)).Msg("whitening conv initialised from the training images' patch covariance")
	}
	if err := cfg.Recipe.checkImage(train.H, train.W); err != nil {
		return nil, nil, err
	}
	m := meta.Meta{BatchSize: cfg.BatchSize, EvalBatch: cfg.BatchSize, LR: cfg.LR, LRSchedule: cfg.Schedule, Seed: cfg.Seed,
		Augment: cfg.Augment, Dataset: cfg.Data.Kind, ValSplit: cfg.Data.ValSplit, DataDir: absDir(cfg.Data), Classes: train.Classes,
		BestValAccuracy: -1, BestValLoss: math.Inf(1), Recipe: cfg.Recipe.encode(), Optimizer: cfg.Recipe.Optimizer}
	s.valN = test.N
	s.stepsPerEpoch = (train.N + cfg.BatchSize - 1) / cfg.BatchSize
	if cfg.Recipe.DropLast {
		s.stepsPerEpoch = train.N / cfg.BatchSize
	}
	s.files = &files{out: cfg.Out, keep: cfg.Keep, net: net, meta: m, log: s.log}
	if s.tr, err = model.NewTrainer(net, toModel(train), toModel(test), s.trainOptions()); err != nil {
		return nil, nil, err
	}
	return net, train, nil
}

// trainOptions are the trainer's options: schedule, progress, the periodic
// save and the stop-after-steps hook.
func (s *session) trainOptions() model.TrainOptions {
	cfg := &s.cfg
	r := cfg.Recipe
	o := model.TrainOptions{Batch: cfg.BatchSize, LR: cfg.LR, Optim: r.Optim(), Seed: cfg.Seed, Schedule: s.lrAt,
		Augment: cfg.Augment, Augmentation: r.Augmentation(), Smoothing: r.LabelSmoothing, DropLast: r.DropLast,
		EMA:        model.EMAOptions{Decay: r.EMA, Every: r.EMAEvery},
		OnProgress: func(model.Progress) {},
		OnStep: func(t *model.Trainer) error {
			if cfg.StopAfterSteps > 0 && t.TotalSteps() >= cfg.StopAfterSteps {
				s.stop() // as if Ctrl-C: the loop stops before the next step
			}
			// Not at an epoch's last step: a state at its end does not
			// resume (the epoch's own save, with its validation, follows).
			if cfg.SaveEvery > 0 && t.TotalSteps()%cfg.SaveEvery == 0 && t.Position() < t.StepsPerEpoch() {
				return s.files.save(t, "periodic")
			}
			return nil
		}}
	if r.Lookahead > 0 {
		o.EMA = model.EMAOptions{Decay: r.Lookahead, Every: r.LookaheadEvery, Lookahead: true, TotalSteps: cfg.Epochs * s.stepsPerEpoch}
	}
	if p := s.env.Progress; p != nil {
		o.ProgressEvery = 250 * time.Millisecond // live progress only on a terminal
		o.OnProgress = p.Update
	}
	return o
}

// begin restores the resumed state, starts the history and logs the run.
func (s *session) begin(net *model.Network, train *data.Dataset) error {
	cfg, f := &s.cfg, s.files
	if err := s.lock(true); err != nil {
		return err
	}
	keep, from := 0, HistoryPath(cfg.Out)
	if ck := s.resume; ck != nil {
		st, err := ck.State(net)
		if err != nil {
			return err
		}
		if err := s.tr.Restore(st); err != nil {
			return fmt.Errorf("--resume %s: %w", ck.Path, err)
		}
		saved := meta.Decode(ck.Meta)
		f.meta.BestValAccuracy, f.meta.BestValLoss, f.meta.BadEpochs = saved.BestValAccuracy, saved.BestValLoss, saved.BadEpochs
		f.meta.ValAccuracy, f.meta.ValLoss, f.meta.Epoch = saved.ValAccuracy, saved.ValLoss, saved.Epoch
		f.saved = ck.Path
		s.log.Info().Str("checkpoint", ck.Path).Int("epoch", st.Epoch).Int("step", st.Pos).Int("global_step", st.AdamStep).
			Msgf("resuming after epoch %d, step %d", st.Epoch, st.Pos)
		keep = st.Epoch
		from = resumedHistory(ck.Path, cfg.Out)
	}
	if err := f.history.truncate(from, HistoryPath(cfg.Out), keep); err != nil {
		return err
	}
	if s.tr.Epoch() >= cfg.Epochs {
		return fmt.Errorf("the run already has %d epochs; pass a larger --epochs to train more", s.tr.Epoch())
	}
	s.log.Info().Str("model", net.Spec).Int("params", net.NumParams()).Int("train", train.N).Int("validation", s.valN).
		Int("epochs", cfg.Epochs).Int("batch_size", cfg.BatchSize).Float64("lr", cfg.LR).Uint64("seed", cfg.Seed).Bool("augment", cfg.Augment).Msg("training")
	for _, a := range convAlgos(net) {
		s.log.Info().Str("algorithm", a[0]).Str("layers", a[1]).Msgf("%s for %s", a[0], a[1])
	}
	if d, err := s.tr.WarmUp(); err != nil {
		return err
	} else if d > 0 {
		s.log.Info().Float64("seconds", Round(d.Seconds(), 3)).Msg("warm-up pass done (one-time device setup, weights untouched)")
	}
	return nil
}

// epochs trains until cfg.Epochs are done or early stopping ends the run,
// and returns the last epoch's result.
func (s *session) epochs(ctx context.Context) (model.EpochResult, error) {
	var last model.EpochResult
	for s.tr.Epoch() < s.cfg.Epochs {
		r, err := s.tr.RunEpoch(ctx)
		if p := s.env.Progress; p != nil {
			p.Clear()
		}
		if err != nil {
			return last, s.stopped(ctx, err)
		}
		last = r
		stop, err := s.endEpoch(r)
		if err != nil || stop {
			return last, err
		}
	}
	return last, nil
}

// endEpoch logs and records an epoch, saves, and says whether early
// stopping ends the run.
func (s *session) endEpoch(r model.EpochResult) (bool, error) {
	f, tr := s.files, s.tr
	lr := s.cfg.LR
	if s.lrAt != nil {
		lr = s.lrAt(r.Epoch-1, tr.StepsPerEpoch()-1, tr.StepsPerEpoch())
	}
	s.log.Info().Int("epoch", r.Epoch).Int("step", tr.TotalSteps()).Float64("loss", Round(r.Loss, 4)).Float64("accuracy", Round(r.Accuracy, 4)).
		Float64("val_loss", Round(r.ValLoss, 4)).Float64("val_accuracy", Round(r.ValAccuracy, 4)).Float64("lr", lr).
		Float64("images_per_s", Round(r.ImagesPerS, 1)).Float64("seconds", Round(r.Seconds, 2)).
		Msgf("epoch %d/%d", r.Epoch, s.cfg.Epochs)
	if err := f.history.add(HistoryPath(s.cfg.Out), r, lr); err != nil {
		return false, err
	}
	if r.ValLoss < f.meta.BestValLoss {
		f.meta.BestValLoss, f.meta.BadEpochs = r.ValLoss, 0
	} else {
		f.meta.BadEpochs++
	}
	f.meta.Epoch, f.meta.ValAccuracy, f.meta.ValLoss = r.Epoch, r.ValAccuracy, r.ValLoss
	if err := f.save(tr, "epoch"); err != nil {
		return false, err
	}
	if r.ValAccuracy > f.meta.BestValAccuracy {
		f.meta.BestValAccuracy = r.ValAccuracy
		if err := f.copyBest(); err != nil {
			return false, err
		}
	}
	if p := s.cfg.EarlyStop; p > 0 && f.meta.BadEpochs >= p {
		s.log.Info().Int("epoch", r.Epoch).Msgf("early stop: val_loss has not improved for %d epochs (best %.4f)", p, f.meta.BestValLoss)
		return true, nil
	}
	return false, nil
}

// stopped handles an epoch that ended in an error: an interrupt saves and
// prints the resume command; a diverged loss keeps the last checkpoint.
func (s *session) stopped(ctx context.Context, err error) error {
	tr, out := s.tr, s.cfg.Out
	if ctx.Err() != nil {
		if serr := s.files.save(tr, "interrupt"); serr != nil {
			return &InterruptedError{fmt.Errorf("interrupted, and saving failed: %v", serr)}
		}
		fmt.Fprintf(s.env.Stderr, "trainer: interrupted in epoch %d after step %d of %d (global step %d); saved %s\nresume with:\n  %s\n",
			tr.Epoch()+1, tr.Position(), tr.StepsPerEpoch(), tr.TotalSteps(), out, ResumeCommand(s.cfg, out))
		return &InterruptedError{errors.New("interrupted")}
	}
	err = FlagError(err)
	if errors.Is(err, model.ErrNonFinite) && s.files.saved != "" {
		return fmt.Errorf("%v; the last good checkpoint %s is kept", err, s.files.saved)
	}
	return err
}

// finish draws the history plot and reports the result.
func (s *session) finish(last model.EpochResult) {
	out := s.cfg.Out
	if s.env.Plot != nil {
		csv := HistoryPath(out)
		if err := s.env.Plot(csv, strings.TrimSuffix(csv, ".csv")+".png"); err != nil {
			s.log.Warn().Msgf("could not draw the history plot: %v", err)
		}
	}
	msg := fmt.Sprintf("done: epoch %d, val_accuracy %.4f, val_loss %.4f; saved %s", last.Epoch, last.ValAccuracy, last.ValLoss, out)
	if s.cfg.Quiet {
		fmt.Fprintln(s.env.Stdout, msg)
	} else {
		s.log.Info().Str("checkpoint", out).Float64("val_accuracy", Round(last.ValAccuracy, 4)).Msg(msg)
	}
}

// absDir is the dataset folder recorded in the checkpoint: absolute, and
// only for folder datasets.
func absDir(d Dataset) string {
	if d.Kind != "folder" {
		return ""
	}
	abs, err := filepath.Abs(d.Dir)
	if err != nil {
		return ""
	}
	return abs
}

func toModel(d *data.Dataset) *model.Data {
	return &model.Data{Images: d.Images, Labels: d.Labels, N: d.N}
}

// Round rounds v to digits decimals (for logs).
func Round(v float64, digits int) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return r
}

// convAlgos lists the backend's own conv algorithms in use (Winograd on
// the CPU) with the layers that use each: pairs of algorithm and names.
func convAlgos(net *model.Network) [][2]string {
	var out [][2]string
	idx := map[string]int{}
	for _, r := range net.Summary() {
		if r.Algo == "" {
			continue
		}
		i, ok := idx[r.Algo]
		if !ok {
			i = len(out)
			idx[r.Algo] = i
			out = append(out, [2]string{r.Algo, r.Name})
			continue
		}
		out[i][1] += ", " + r.Name
	}
	return out
}
