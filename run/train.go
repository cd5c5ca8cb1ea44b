package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
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
	// Dist, when set, is the data-parallel world this process is a rank
	// of; nil: a single process.
	Dist *Dist

	// Plot, when set, draws the history CSV to a PNG at the end of the run.
	// It is a hook so that run does not depend on the plotting library
	// (gonum/plot and its fonts) that only the command line needs; a failed
	// plot is a warning, not a failed run.
	Plot func(csvPath, pngPath string) error
}

// Dist is a data-parallel run's world, as the launcher made it (a world of
// one runs the collectives too: a check that they change nothing).
//
// Every rank runs the same Config. Rank 0 alone writes the checkpoint,
// history and plot and holds the lock on Out; every rank reads the data
// and, when resuming, the checkpoint. --batch-size is per rank: a step
// trains on Size times as many images.
type Dist struct {
	Rank, Size int
	// Reducer makes the collectives on buffers of the opened backend.
	Reducer func(device.Backend) (model.Reducer, error)
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
	rank, world   int // this process's rank and the number of ranks (0, 1: one process)
	reducer       model.Reducer
}

// closeReducer closes the collectives, when they have something to close.
func (s *session) closeReducer() {
	if c, ok := s.reducer.(io.Closer); ok {
		if err := c.Close(); err != nil {
			s.log.Warn().Msgf("closing the collectives: %v", err)
		}
	}
}

// primary says whether this process writes the run's files: rank 0.
func (s *session) primary() bool { return s.rank == 0 }

// Train runs cfg: a new run, or the one in cfg.Resume continued. Cancelling
// ctx acts as an interrupt: the run stops after the step, saves and prints
// the command that resumes it, and returns an *InterruptedError.
func Train(ctx context.Context, cfg Config, env Env) error {
	s := &session{cfg: cfg, env: env, log: &env.Log, world: 1}
	if d := env.Dist; d != nil {
		s.rank, s.world = d.Rank, d.Size
	}
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
	// Freed in this order: the trainer's buffers, the network's, the backend.
	defer net.Backend().Close()
	defer s.closeReducer() // after the trainer and network, before the backend: a collective library's buffers live in its context
	defer net.Close()
	defer s.tr.Close()
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
		if err := s.checkWorld(ck); err != nil {
			return err
		}
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
	if s.unlock != nil || !s.primary() {
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
	if s.env.Dist != nil && s.cfg.Device.Graphs == device.GraphsOn {
		return nil, nil, fmt.Errorf("--cuda-graphs on: data-parallel training (%d ranks) runs its steps op by op, since the gradient all-reduce is not captured into the graph: use --cuda-graphs auto or off", s.world)
	}
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
// dataset size) images: no step or validation batch is larger. On failure
// the network built so far is closed.
func (s *session) build(ctx context.Context, b device.Backend) (_ *model.Network, _ *data.Dataset, err error) {
	cfg := &s.cfg
	if err := s.checkListed(b); err != nil {
		return nil, nil, err
	}
	train, test, err := s.env.Load(ctx, cfg.Data)
	if err != nil {
		return nil, nil, interrupted(ctx, err)
	}
	if cfg.Data.Kind == "folder" {
		s.logFound(train, test)
	}
	net, err := model.PlanFor(cfg.Model, model.Shape{C: train.C, H: train.H, W: train.W}, len(train.Classes))
	if err != nil {
		return nil, nil, FlagError(err)
	}
	if k := len(train.Classes); k > 0 && net.Classes != k {
		return nil, nil, headError(net.Summary()[len(net.Summary())-1].Name, net.Classes, cfg.Data.Kind, k)
	}
	batch := min(cfg.BatchSize, max(train.N, test.N))
	nLocal := (train.N + s.world - 1) / s.world // the images of one rank per epoch
	if err := s.checkMemory(b, memEstimate{fixed: uint64(net.FixedBytes()), perImage: uint64(net.BytesPerImageOn(b)), batch: batch}); err != nil {
		return nil, nil, err
	}
	if err := net.Build(b, batch, cfg.Seed); err != nil {
		return nil, nil, WithBatchHint(err, b, net) // asks the open backend for its free memory
	}
	defer func() {
		if err != nil {
			net.Close()
		}
	}()
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
		BestValAccuracy: -1, BestValLoss: math.Inf(1), Recipe: cfg.Recipe.encode(), Optimizer: cfg.Recipe.Optimizer, WorldSize: s.world}
	s.valN = test.N
	s.stepsPerEpoch = (nLocal + cfg.BatchSize - 1) / cfg.BatchSize
	if cfg.Recipe.DropLast {
		s.stepsPerEpoch = nLocal / cfg.BatchSize
	}
	s.files = &files{out: cfg.Out, keep: cfg.Keep, net: net, meta: m, log: s.log, off: !s.primary()}
	o := s.trainOptions()
	if s.env.Dist != nil {
		if o.Dist, err = s.env.Dist.Reducer(b); err != nil {
			return nil, nil, err
		}
		s.reducer = o.Dist
	}
	if s.tr, err = model.NewTrainer(net, toModel(train), toModel(test), o); err != nil {
		return nil, nil, err
	}
	return net, train, nil
}

// logFound logs what a folder dataset holds: the images loaded, and how
// many files were skipped (listed by the loader's own log line).
func (s *session) logFound(train, test *data.Dataset) {
	skipped := 0
	for _, sk := range slices.Concat(train.Skipped, test.Skipped) {
		if sk.Kind != data.SkipHidden {
			skipped++
		}
	}
	msg := fmt.Sprintf("found %d images in %d classes: %d for training, %d for validation", train.N+test.N, len(train.Classes), train.N, test.N)
	if skipped > 0 {
		msg += fmt.Sprintf(" (%d other %s skipped)", skipped, plural(skipped, "file", "files"))
	}
	s.log.Info().Int("images", train.N+test.N).Int("classes", len(train.Classes)).Int("train", train.N).Int("validation", test.N).
		Int("skipped", skipped).Msg(msg)
}

// trainOptions are the trainer's options: schedule, progress, the periodic
// save and the stop-after-steps hook.
func (s *session) trainOptions() model.TrainOptions {
	cfg := &s.cfg
	r := cfg.Recipe
	o := model.TrainOptions{Batch: cfg.BatchSize, LR: cfg.LR, Optim: r.Optim(), Seed: cfg.Seed, Schedule: s.lrAt,
		Augment: cfg.Augment, Augmentation: r.Augmentation(), Smoothing: r.LabelSmoothing, DropLast: r.DropLast, SyncEvery: cfg.SyncEvery,
		EMA:        model.EMAOptions{Decay: r.EMA, Every: r.EMAEvery},
		Debugf:     func(format string, args ...any) { s.log.Debug().Msgf(format, args...) },
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
	if err := f.truncateHistory(from, HistoryPath(cfg.Out), keep); err != nil {
		return err
	}
	if s.tr.Epoch() >= cfg.Epochs {
		return fmt.Errorf("the run already has %d epochs; pass a larger --epochs to train more", s.tr.Epoch())
	}
	if err := s.tr.SyncRanks(); err != nil {
		return err
	}
	ev := s.log.Info().Str("model", net.Spec).Int("params", net.NumParams()).Int("train", train.N).Int("validation", s.valN).
		Int("epochs", cfg.Epochs).Int("batch_size", cfg.BatchSize).Float64("lr", cfg.LR).Uint64("seed", cfg.Seed).Bool("augment", cfg.Augment)
	if s.world > 1 {
		ev = ev.Int("world_size", s.world).Int("global_batch", s.world*cfg.BatchSize).Int("steps_per_epoch", s.tr.StepsPerEpoch())
	}
	ev.Msg("training")
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
	if err := f.addHistory(HistoryPath(s.cfg.Out), r, lr); err != nil {
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
	if ctx.Err() != nil || errors.Is(err, context.Canceled) { // here, or (with several ranks) on another rank
		if serr := s.files.save(tr, "interrupt"); serr != nil {
			return &InterruptedError{fmt.Errorf("interrupted, and saving failed: %v", serr)}
		}
		if !s.primary() {
			return &InterruptedError{fmt.Errorf("rank %d: interrupted; rank 0 saved %s", s.rank, out)}
		}
		how := ResumeCommand(s.cfg, out)
		if s.world > 1 {
			how = fmt.Sprintf("%s\n(launched the same way, on %d processes: mpirun -np %d ..., srun -n %d ... or torchrun --nproc-per-node ... --no-python ...)", how, s.world, s.world, s.world)
		}
		fmt.Fprintf(s.env.Stderr, "trainer: interrupted in epoch %d after step %d of %d (global step %d); saved %s\nresume with:\n  %s\n",
			tr.Epoch()+1, tr.Position(), tr.StepsPerEpoch(), tr.TotalSteps(), out, how)
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
	if !s.primary() {
		return
	}
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

// plural is one or many by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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
