package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/trainer-go/trainer/device"
)

// Data is a labelled image set in host memory: N images of Shape, uint8,
// channel-major, as read from the dataset files.
type Data struct {
	Images []uint8
	Labels []int32
	N      int
}

// deviceData is a Data resident on the backend.
type deviceData struct {
	images, labels device.Buffer
	n              int
}

// free releases the dataset's buffers (nothing on a nil dataset).
func (d *deviceData) free(b device.Backend) {
	if d == nil {
		return
	}
	b.Free(d.images)
	b.Free(d.labels)
}

// upload puts a dataset on the backend: a copy on a device with its own
// memory, the host slices themselves on the CPU (no second copy). free
// releases it.
func upload(b device.Backend, d *Data, what string) (*deviceData, error) {
	im, err := b.HostU8(what+" images", d.Images)
	if err != nil {
		return nil, err
	}
	lb, err := b.HostI32(what+" labels", d.Labels)
	if err != nil {
		b.Free(im)
		return nil, err
	}
	return &deviceData{images: im, labels: lb, n: d.N}, nil
}

// EpochResult is what one epoch reports, under Keras's metric names.
type EpochResult struct {
	Epoch       int     `json:"epoch"`
	Loss        float64 `json:"loss"`
	Accuracy    float64 `json:"accuracy"`
	ValLoss     float64 `json:"val_loss"`
	ValAccuracy float64 `json:"val_accuracy"`
	Seconds     float64 `json:"seconds"`
	ImagesPerS  float64 `json:"images_per_s"`
}

// Progress is a look at a running epoch.
type Progress struct {
	Epoch, Step, Steps int
	Loss, Accuracy     float64 // running means over the epoch up to Step (on a GPU a check or two behind the step under way)
	ImagesPerS         float64
	Elapsed            time.Duration
}

// TrainOptions configure a Trainer.
type TrainOptions struct {
	Batch int
	// LR is the base learning rate; Optim the optimiser (zero: Keras's Adam).
	LR    float64
	Optim OptimConfig
	Seed  uint64
	// Smoothing is the label smoothing of the training loss (PyTorch's
	// CrossEntropyLoss(label_smoothing)); validation reports the plain loss.
	Smoothing float64
	// EMA keeps an exponential moving average of the weights (see EMAOptions).
	EMA EMAOptions
	// ProgressEvery is how often OnProgress is called (0: never). Reading the
	// running loss waits for the device, so keep it to seconds, not steps.
	ProgressEvery time.Duration
	OnProgress    func(Progress)
	// OnStep runs after every step; an error stops the epoch with it.
	OnStep func(*Trainer) error
	// Schedule gives the learning rate of step s (of steps) in epoch
	// (0-based, epochs completed); nil: LR throughout.
	Schedule func(epoch, s, steps int) float64
	// CheckEvery overrides how often the loss is checked for NaN/Inf.
	CheckEvery int
	// SyncEvery, for debugging, waits for the device after every
	// SyncEvery steps, so that an asynchronous fault (an illegal address in
	// a kernel) is reported at the step that raised it, not at the next
	// loss check up to 50 steps later; 0 (the default) adds no wait.
	SyncEvery int
	// Augment randomly crops and flips every training batch on the device
	// (Network.AugmentInput with Augmentation, keyed by Seed and the global
	// step); validation and evaluation never augment.
	Augment      bool
	Augmentation Augmentation
	// DropLast leaves out the last batch of an epoch when it is smaller
	// than Batch (PyTorch's DataLoader(drop_last=True)); the images it
	// would have held are in the next epoch's shuffle as usual.
	DropLast bool
	// Dist, when set, trains data-parallel with the other ranks (see
	// Reducer); Batch is then the batch of one rank. nil: one process. A
	// Reducer of one rank runs the collectives too (a check of them: the
	// result is the single process's).
	Dist Reducer
	// Debugf, when set, receives debugging messages: why steps run op by
	// op when capturing them as a graph failed.
	Debugf func(format string, args ...any)
}

// EMAOptions configure a moving average of the weights and BatchNorm's
// running statistics, updated every Every steps (0: 1):
//
//	ema = d*ema + (1-d)*weights
//
// with d = Decay, or with Lookahead d = Decay*(s/TotalSteps)^3 at global
// step s and the weights then set to the average (airbench's lookahead; the
// last step of the run copies the average into the weights). Without
// Lookahead, validation and the checkpoint's "ema." tensors use the
// average. Decay 0: off.
type EMAOptions struct {
	Decay      float64
	Every      int
	Lookahead  bool
	TotalSteps int
}

// Trainer runs epochs of a network over a training set.
type Trainer struct {
	net        *Network
	opt2       *Optimizer
	b          device.Backend
	train, val *deviceData
	opt        TrainOptions
	rng        *rand.Rand
	perm       []int32
	permBuf    device.Buffer   // shuffled indices of the training set (this rank's share)
	dist       Reducer         // nil: one process
	world      int             // ranks training together
	local      []int32         // this rank's share of perm (world > 1)
	stepStats  device.Buffer   // F32 [2]: one step's sums before the all-reduce (with dist)
	flag       []float64       // the stop flag's host buffer
	batchIdx   []device.Buffer // views of permBuf, one per step, made once
	iotaBuf    device.Buffer   // 0..n-1 for evaluation
	stats      device.Buffer   // F32 [2]: loss sum, correct count
	host       []float32       // 2 floats, its own allocation: backends may hand it to C
	pcg        *rand.PCG
	epoch      int           // epochs completed
	pos        int           // steps done in the current epoch
	epochRNG   []byte        // pcg state at the start of the current epoch
	shuffled   bool          // perm holds the current epoch's order
	elapsed    time.Duration // time spent in the current epoch before a stop
	graphs     *graphSet     // captured steps (nil: every step runs op by op)
	slots      stepSlots     // what captured steps read
	evalG      *evalGraphs   // Validate's captured batches
	reading    statsRead     // the loss check under way
}

// checkSets checks the labels of the training and (if any) validation set.
func checkSets(train, val *Data, classes int) error {
	if err := checkLabels(train, classes, "training set"); err != nil {
		return err
	}
	if val != nil {
		return checkLabels(val, classes, "validation set")
	}
	return nil
}

// NewTrainer puts the datasets on the network's backend. Close frees what
// it allocated; on failure nothing is left allocated (but a weight average
// it added to the network, which the network's Close frees).
func NewTrainer(net *Network, train, val *Data, opt TrainOptions) (t *Trainer, err error) {
	b := net.Backend()
	most := train.N // the largest batch a step or validation uses
	if val != nil {
		most = max(most, val.N)
	}
	if opt.Batch < 1 || min(opt.Batch, most) > net.MaxBatch() {
		return nil, fmt.Errorf("batch size %d: must be between 1 and %d", opt.Batch, net.MaxBatch())
	}
	if err := checkSets(train, val, net.Classes); err != nil {
		return nil, err
	}
	if opt.Optim.Kind == "" {
		opt.Optim = DefaultAdam
	}
	if opt.LR == 0 {
		opt.LR = 1e-3
	}
	optim, err := NewOptimizer(net, opt.Optim)
	if err != nil {
		return nil, err
	}
	if err := net.enableEMA(opt.EMA.Decay > 0); err != nil {
		return nil, err
	}
	pcg := rand.NewPCG(opt.Seed, 0xda7a)
	t = &Trainer{net: net, opt2: optim, b: b, opt: opt, pcg: pcg, rng: rand.New(pcg), host: make([]float32, 2), world: 1, flag: make([]float64, 1)}
	made := t // the returns below set t to nil on failure
	defer func() {
		if err != nil {
			made.Close()
		}
	}()
	if err := t.setDist(opt.Dist); err != nil {
		return nil, err
	}
	if t.train, err = upload(b, train, "training set"); err != nil {
		return nil, err
	}
	if val != nil {
		if t.val, err = upload(b, val, "validation set"); err != nil {
			return nil, err
		}
	}
	t.perm = make([]int32, train.N)
	for i := range t.perm {
		t.perm[i] = int32(i)
	}
	nLocal := shardLen(train.N, t.world)
	if t.permBuf, err = b.Alloc("shuffled indices", device.I32, nLocal); err != nil {
		return nil, err
	}
	if t.world > 1 {
		t.local = make([]int32, nLocal)
		shardOf(t.local, t.perm, t.dist.Rank(), t.world)
	}
	if t.dist != nil {
		if t.stepStats, err = b.Alloc("step statistics", device.F32, 2); err != nil {
			return nil, err
		}
	}
	if err := b.UploadI32(t.permBuf, 0, t.shard()); err != nil {
		return nil, err
	}
	if err := t.makeBatches(nLocal); err != nil {
		return nil, err
	}
	nIota := train.N
	if val != nil {
		nIota = max(nIota, val.N)
	}
	if t.iotaBuf, err = uploadIota(b, nIota); err != nil {
		return nil, err
	}
	if t.stats, err = b.Alloc("loss statistics", device.F32, 2); err != nil {
		return nil, err
	}
	if err := t.setupGraphs(val != nil); err != nil {
		return nil, err
	}
	return t, nil
}

// Close frees the buffers NewTrainer allocated: the datasets' device
// copies, the shuffled order, the evaluation indices and the statistics.
// The trainer cannot be used afterwards; the network is left to its own
// Close. A second Close does nothing.
func (t *Trainer) Close() {
	t.graphs.close()
	t.evalG.close()
	t.freeSlots()
	t.train.free(t.b)
	t.val.free(t.b)
	for _, buf := range []device.Buffer{t.permBuf, t.iotaBuf, t.stats} {
		if buf != nil {
			t.b.Free(buf)
		}
	}
	t.train, t.val, t.permBuf, t.iotaBuf, t.stats, t.batchIdx = nil, nil, nil, nil, nil, nil
}

// setDist takes the Reducer of a data-parallel run (nil: one process) and
// keys this rank's random streams apart from the others'.
func (t *Trainer) setDist(r Reducer) error {
	if r == nil {
		return nil
	}
	if r.Size() < 1 || r.Rank() < 0 || r.Rank() >= r.Size() {
		return fmt.Errorf("rank %d of a world of %d", r.Rank(), r.Size())
	}
	t.dist, t.world = r, r.Size()
	t.net.salt = rankSalt(r.Rank())
	return nil
}

// shard is the order this rank trains in: the shuffled order itself, or
// with several ranks this rank's share of it.
func (t *Trainer) shard() []int32 {
	if t.world > 1 {
		return t.local
	}
	return t.perm
}

// makeBatches cuts the shuffled order into the epoch's batches (views made
// once), leaving out a last smaller one with DropLast.
func (t *Trainer) makeBatches(n int) error {
	bs := t.opt.Batch
	if t.opt.DropLast && n < bs {
		return fmt.Errorf("drop-last: the training set has %d images, fewer than one batch of %d", n, bs)
	}
	for off := 0; off < n; off += bs {
		if t.opt.DropLast && off+bs > n {
			break
		}
		t.batchIdx = append(t.batchIdx, t.b.View(t.permBuf, off, min(bs, n-off)))
	}
	return nil
}

// enableEMA allocates the weight average, starting at the weights.
func (n *Network) enableEMA(on bool) error {
	if !on || n.EMA != nil {
		return nil
	}
	var err error
	if n.EMA, err = n.b.Alloc("weight average", device.F32, n.nParam); err != nil {
		return err
	}
	n.owned = append(n.owned, n.EMA)
	n.b.Axpby(n.Params, n.EMA, n.nParam, 1, 0)
	return nil
}

// checkLabels refuses a label the network has no output for (the loss
// would index past the logits): once per dataset, not per step.
func checkLabels(d *Data, classes int, what string) error {
	for i, l := range d.Labels[:d.N] {
		if l < 0 || int(l) >= classes {
			return fmt.Errorf("%s: image %d has label %d, but the model has %d outputs (labels 0 to %d): was it made for another dataset?", what, i, l, classes, classes-1)
		}
	}
	return nil
}

// Epoch is the number of epochs completed.
func (t *Trainer) Epoch() int { return t.epoch }

func (t *Trainer) readStats(n int) (loss, acc float64, err error) {
	if err := t.b.DownloadF32(t.stats, 0, t.host); err != nil {
		return 0, 0, err
	}
	return float64(t.host[0]) / float64(n), float64(t.host[1]) / float64(n), nil
}

// ErrNonFinite marks a training loss that became NaN or infinite.
var ErrNonFinite = errors.New("non-finite loss")

// StepsPerEpoch is the number of batches in one epoch.
func (t *Trainer) StepsPerEpoch() int { return len(t.batchIdx) }

// TotalSteps is the number of optimiser steps taken over all epochs.
func (t *Trainer) TotalSteps() int { return t.net.step }

// CheckEvery is how often (in steps) RunEpoch reads the running loss to
// catch a NaN or Inf. Reading waits for the device: on the CPU that is free
// and every step is checked; on the GPU a check every 50 steps keeps the
// step free of synchronisation.
func (t *Trainer) checkEvery() int {
	if t.opt.CheckEvery > 0 {
		return t.opt.CheckEvery
	}
	if !t.b.Caps().Async {
		return 1
	}
	return 50
}

// RunEpoch trains one epoch, or the rest of one after Restore: it shuffles
// the training set (from the RNG state saved at the epoch's start, so a
// resumed epoch sees the same order), trains on every remaining batch (the
// last one may be smaller), then evaluates on the validation set. Losses
// accumulate on the device and are read only at checks, progress reports,
// and the end. A cancelled ctx stops between steps with ctx's error; the
// trainer's State is then exactly "after the last finished step". OnStep,
// when set, runs after every step (with the trainer consistent), e.g. to
// save a checkpoint.
func (t *Trainer) RunEpoch(ctx context.Context) (EpochResult, error) {
	r := EpochResult{Epoch: t.epoch + 1}
	bs := t.opt.Batch
	steps := len(t.batchIdx)
	nLocal := t.permBuf.Len()
	n := min(nLocal, steps*bs) * t.world // images trained on per epoch, by all ranks
	if t.pos == 0 {
		st, err := t.pcg.MarshalBinary()
		if err != nil {
			return r, err
		}
		t.epochRNG = st
		t.elapsed = 0
		t.b.Fill(t.stats, 2, 0)
	}
	if !t.shuffled {
		if err := t.shuffle(); err != nil {
			return r, err
		}
	}
	start := time.Now().Add(-t.elapsed)
	next := time.Now().Add(t.opt.ProgressEvery)
	check := t.checkEvery()
	t.reading = statsRead{prev: t.pos}
	for t.pos < steps {
		if err := t.checkStop(ctx, check); err != nil {
			t.elapsed = time.Since(start)
			return r, err
		}
		s := t.pos
		cnt := t.batchIdx[s].Len()
		lr := t.opt.LR
		if t.opt.Schedule != nil {
			lr = t.opt.Schedule(t.epoch, s, steps)
		}
		if err := t.trainBatch(s, cnt, lr); err != nil {
			return r, err
		}
		t.pos++
		if err := t.syncStep(); err != nil {
			t.elapsed = time.Since(start)
			return r, err
		}
		done := min(t.pos*bs, nLocal) * t.world
		progress := t.opt.OnProgress != nil && t.opt.ProgressEvery > 0 && time.Now().After(next)
		if progress || t.pos%check == 0 || t.pos == steps {
			v, err := t.checkLoss(done, lr, check, t.pos == steps)
			if err != nil {
				t.elapsed = time.Since(start)
				return r, err
			}
			if progress && v.ok {
				el := time.Since(start)
				t.opt.OnProgress(Progress{Epoch: t.epoch + 1, Step: v.pos, Steps: steps, Loss: v.loss, Accuracy: v.acc,
					ImagesPerS: float64(done) / el.Seconds(), Elapsed: el})
				next = time.Now().Add(t.opt.ProgressEvery)
			}
		}
		if t.opt.OnStep != nil {
			t.elapsed = time.Since(start)
			if err := t.opt.OnStep(t); err != nil {
				return r, err
			}
		}
	}
	var err error
	if r.Loss, r.Accuracy, err = t.readStats(n); err != nil {
		return r, err
	}
	r.Seconds = time.Since(start).Seconds()
	r.ImagesPerS = float64(n) / r.Seconds
	t.epoch++
	t.pos = 0
	t.shuffled = false
	t.elapsed = 0
	if t.val != nil {
		if r.ValLoss, r.ValAccuracy, err = t.Validate(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// statsRead is a loss check under way on an asynchronous backend: a copy
// of the epoch's loss sum and correct count queued after step pos (images
// done, global step, learning rate then), the previous one after step prev.
type statsRead struct {
	p               device.PendingRead
	prev, pos, done int
	step            int
	lr              float64
}

// statsView is what a loss check read: the running means after step pos.
type statsView struct {
	loss, acc float64
	pos       int
	ok        bool // a value was read
}

// checkLoss reads the epoch's running loss and accuracy and fails on a NaN
// or Inf. On an asynchronous backend that can read without waiting, it
// collects the read queued at the previous check (long done by now, so
// nothing waits for the steps since) and queues the next: no wait inside
// the epoch, at the price of finding a non-finite loss one check later.
// Otherwise, and for the epoch's last step (final), it reads now.
func (t *Trainer) checkLoss(done int, lr float64, check int, final bool) (statsView, error) {
	ar, async := t.b.(device.AsyncReader)
	if !async || !t.b.Caps().Async || final || t.opt.SyncEvery == 1 {
		t.reading.p = nil
		l, a, err := t.readStats(done)
		if err != nil {
			return statsView{}, t.stepsError(err, check)
		}
		if math.IsNaN(l) || math.IsInf(l, 0) {
			where := fmt.Sprintf("at step %d of epoch %d", t.pos, t.epoch+1)
			if check > 1 {
				where = fmt.Sprintf("between steps %d and %d of epoch %d", max(t.pos-check+1, 1), t.pos, t.epoch+1)
			}
			return statsView{}, &DivergedError{Loss: l, Where: where, GlobalStep: t.net.step, LR: lr}
		}
		return statsView{loss: l, acc: a, pos: t.pos, ok: true}, nil
	}
	var v statsView
	rd := t.reading
	if rd.p != nil {
		if err := rd.p.Wait(t.host); err != nil {
			return v, rangeError(err, rd.prev, rd.pos, t.epoch)
		}
		v = statsView{loss: float64(t.host[0]) / float64(rd.done), acc: float64(t.host[1]) / float64(rd.done), pos: rd.pos, ok: true}
		if math.IsNaN(v.loss) || math.IsInf(v.loss, 0) {
			where := fmt.Sprintf("between steps %d and %d of epoch %d", rd.prev+1, rd.pos, t.epoch+1)
			return v, &DivergedError{Loss: v.loss, Where: where, GlobalStep: rd.step, LR: rd.lr}
		}
	}
	p, err := ar.ReadLater(t.stats, 2)
	if err != nil {
		return v, err
	}
	t.reading = statsRead{p: p, prev: rd.pos, pos: t.pos, done: done, step: t.net.step, lr: lr}
	if rd.p == nil {
		t.reading.prev = rd.prev
	}
	return v, nil
}

// rangeError says that a device error read after step to arose in a step
// after step from of the epoch.
func rangeError(err error, from, to, epoch int) error {
	return fmt.Errorf("between steps %d and %d of epoch %d: %w (the device reports a fault at the next wait; --sync-every 1 names the step that raised it)",
		from+1, to, epoch+1, err)
}

// syncStep waits for the device after every SyncEvery steps (a debugging
// aid) and names the step in the error of a fault it raised.
func (t *Trainer) syncStep() error {
	every := t.opt.SyncEvery
	if every <= 0 || t.pos%every != 0 {
		return nil
	}
	if err := t.b.Sync(); err != nil {
		span := fmt.Sprintf("at step %d", t.pos)
		if every > 1 {
			span = fmt.Sprintf("between steps %d and %d", max(t.pos-every+1, 1), t.pos)
		}
		return fmt.Errorf("%s of epoch %d (global step %d): %w", span, t.epoch+1, t.net.step, err)
	}
	return nil
}

// stepsError says where an error from the device read at a loss check
// (every check steps) arose: in one of the steps since the last check,
// which --sync-every 1 pins down.
func (t *Trainer) stepsError(err error, check int) error {
	if check <= 1 || t.opt.SyncEvery == 1 {
		return fmt.Errorf("at step %d of epoch %d: %w", t.pos, t.epoch+1, err)
	}
	return fmt.Errorf("between steps %d and %d of epoch %d: %w (the device reports a fault at the next wait; --sync-every 1 names the step that raised it)",
		max(t.pos-check+1, 1), t.pos, t.epoch+1, err)
}

// trainBatch trains on batch s of the epoch (cnt images) at rate lr: one
// step, with the other ranks when data-parallel, then the weight average;
// captured as a graph where it can be.
func (t *Trainer) trainBatch(s, cnt int, lr float64) error {
	if t.dist == nil {
		if ok, err := t.graphStep(kindTrain, s, cnt); ok || err != nil {
			return err
		}
	}
	t.net.LoadBatch(t.train.images, t.train.labels, t.batchIdx[s], cnt)
	if t.opt.Augment {
		t.net.AugmentInput(t.opt.Augmentation, t.opt.Seed+t.net.salt, t.net.Steps(), cnt)
	}
	if t.dist == nil {
		t.net.TrainStep(cnt, t.opt2, lr, float32(t.opt.Smoothing), t.stats)
	} else if err := t.distStep(cnt, lr); err != nil {
		return err
	}
	t.averageWeights()
	return nil
}

// shuffle draws the epoch's order from the RNG state saved at its start.
func (t *Trainer) shuffle() error {
	if err := t.pcg.UnmarshalBinary(t.epochRNG); err != nil {
		return err
	}
	for i := range t.perm {
		t.perm[i] = int32(i)
	}
	t.rng.Shuffle(len(t.perm), func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	t.shuffled = true
	if t.world > 1 {
		shardOf(t.local, t.perm, t.dist.Rank(), t.world)
	}
	return t.b.UploadI32(t.permBuf, 0, t.shard())
}

// State is everything needed to continue training exactly where it stopped.
type State struct {
	Epoch    int       // epochs completed
	Pos      int       // steps done in the current epoch (0: at an epoch boundary)
	AdamStep int       // optimiser steps taken in all
	RNG      []byte    // the shuffling RNG's state at the start of the current epoch
	Stats    []float32 // the current epoch's loss sum and correct count so far
	Seconds  float64   // time spent in the current epoch so far
	Params   []float32 // flat parameters and buffers, the optimiser's two state vectors
	M, V     []float32
	EMA      []float32 // the weight average, when one is kept
}

// State reads the complete training state from the device.
func (t *Trainer) State() (*State, error) {
	s := &State{Epoch: t.epoch, Pos: t.pos, AdamStep: t.net.step, Seconds: t.elapsed.Seconds(), Stats: make([]float32, 2)}
	if t.pos == 0 && !t.shuffled {
		st, err := t.pcg.MarshalBinary()
		if err != nil {
			return nil, err
		}
		s.RNG = st
		s.Seconds = 0
	} else if t.pos == 0 {
		s.RNG = append([]byte(nil), t.epochRNG...) // stopped after shuffling, before the first step
		s.Seconds = 0
	} else {
		s.RNG = append([]byte(nil), t.epochRNG...)
		if err := t.b.DownloadF32(t.stats, 0, s.Stats); err != nil {
			return nil, err
		}
	}
	np := t.net.FlatLen()
	s.Params, s.M, s.V = make([]float32, np), make([]float32, np), make([]float32, np)
	xs := []struct {
		b device.Buffer
		h []float32
	}{{t.net.Params, s.Params}, {t.net.M, s.M}, {t.net.V, s.V}}
	if t.net.EMA != nil {
		s.EMA = make([]float32, np)
		xs = append(xs, struct {
			b device.Buffer
			h []float32
		}{t.net.EMA, s.EMA})
	}
	for _, x := range xs {
		if err := t.b.DownloadF32(x.b, 0, x.h); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Restore puts a saved State back, so the next RunEpoch continues it.
func (t *Trainer) Restore(s *State) error {
	np := t.net.FlatLen()
	if len(s.Params) != np || len(s.M) != np || len(s.V) != np || len(s.Stats) != 2 {
		return fmt.Errorf("training state has %d/%d/%d values, the model needs %d", len(s.Params), len(s.M), len(s.V), np)
	}
	if (t.net.EMA != nil) != (s.EMA != nil) || (s.EMA != nil && len(s.EMA) != np) {
		return fmt.Errorf("training state: the weight average (--ema) is %s in the checkpoint but %s now", onOff(s.EMA != nil), onOff(t.net.EMA != nil))
	}
	if s.Pos < 0 || s.Pos >= len(t.batchIdx) {
		return fmt.Errorf("training state is at step %d of an epoch of %d steps: was it saved with another batch size or dataset?", s.Pos, len(t.batchIdx))
	}
	if err := t.pcg.UnmarshalBinary(s.RNG); err != nil {
		return fmt.Errorf("training state: bad RNG state: %w", err)
	}
	for _, x := range []struct {
		b device.Buffer
		h []float32
	}{{t.net.Params, s.Params}, {t.net.M, s.M}, {t.net.V, s.V}, {t.stats, s.Stats}, {t.net.EMA, s.EMA}} {
		if x.b == nil {
			continue
		}
		if err := t.b.UploadF32(x.b, 0, x.h); err != nil {
			return err
		}
	}
	t.net.step = s.AdamStep
	t.epoch, t.pos = s.Epoch, s.Pos
	t.slots.pos, t.slots.end = -1, t.slots.first // the device's counters and table are stale
	t.epochRNG = append([]byte(nil), s.RNG...)
	t.elapsed = time.Duration(s.Seconds * float64(time.Second))
	t.shuffled = false
	return nil
}

// Step trains on batch s (modulo the number of batches) of the current
// order, without shuffling, augmentation or weight average, at the base
// learning rate; the benchmark's unit of work. It runs as a captured graph
// from the second step of a batch size on where the backend can capture.
func (t *Trainer) Step(s int) error {
	pos := s % len(t.batchIdx)
	idx := t.batchIdx[pos]
	if ok, err := t.graphStep(kindPlain, pos, idx.Len()); ok || err != nil {
		return err
	}
	t.net.LoadBatch(t.train.images, t.train.labels, idx, idx.Len())
	t.net.TrainStep(idx.Len(), t.opt2, t.opt.LR, float32(t.opt.Smoothing), t.stats)
	return nil
}

// Validate evaluates the network on the validation set. With several
// ranks each evaluates a contiguous part, with rank 0's weights and
// BatchNorm running statistics (as DDP's broadcast_buffers has them), and
// the sums are added up over the ranks.
func (t *Trainer) Validate() (loss, acc float64, err error) {
	if t.val == nil || t.val.n == 0 {
		return 0, 0, fmt.Errorf("no validation data")
	}
	lo, hi := 0, t.val.n
	if t.dist != nil {
		if err := t.broadcastWeights(); err != nil {
			return 0, 0, err
		}
		r := t.dist.Rank()
		lo, hi = t.val.n*r/t.world, t.val.n*(r+1)/t.world
	}
	if t.net.EMA != nil && !t.opt.EMA.Lookahead {
		t.net.bindTo(t.net.EMA)
		defer t.net.bindTo(t.net.Params)
	}
	if err := evalRange(t.net, t.val, t.iotaBuf, lo, hi, t.opt.Batch, t.stats, TTANone, t.evalG, nil); err != nil {
		return 0, 0, err
	}
	if t.dist != nil {
		if err := t.dist.AllReduce(t.stats, 2, false); err != nil {
			return 0, 0, err
		}
	}
	return t.readStats(t.val.n)
}

// evalPass runs net over dd in batches of bs without gradients, summing the
// loss and the correct count into stats (zeroed first), batches captured as
// graphs where eg is set. When perBatch is set it gets each batch's logits,
// queued on the device.
func evalPass(net *Network, dd *deviceData, iota device.Buffer, bs int, stats device.Buffer, tta TTA, eg *evalGraphs, perBatch func(off, cnt int, logits device.Buffer) error) error {
	return evalRange(net, dd, iota, 0, dd.n, bs, stats, tta, eg, perBatch)
}

// evalRange is evalPass over the images lo to hi-1 of dd.
func evalRange(net *Network, dd *deviceData, iota device.Buffer, lo, hi, bs int, stats device.Buffer, tta TTA, eg *evalGraphs, perBatch func(off, cnt int, logits device.Buffer) error) error {
	b := net.Backend()
	b.Fill(stats, 2, 0)
	if hi <= lo {
		return nil
	}
	x := evalBatch{net: net, dd: dd, perm: b.View(iota, lo, hi-lo), stats: stats, tta: tta, lo: lo, hi: hi, bs: bs, nb: (hi - lo + bs - 1) / bs}
	for off := lo; off < hi; off += bs {
		cnt := min(bs, hi-off)
		x.i, x.cnt = (off-lo)/bs, cnt
		logits, err := eg.run(x)
		if err != nil {
			return err
		}
		if logits == nil { // not captured: op by op
			net.LoadBatch(dd.images, dd.labels, b.View(iota, off, cnt), cnt)
			logits = net.forwardTTA(cnt, tta)
			net.Loss(logits, cnt, false, 0, stats)
		}
		if perBatch != nil {
			if err := perBatch(off, cnt, logits); err != nil {
				return err
			}
		}
	}
	return nil
}

// uploadIota makes an int32 buffer holding 0..n-1: the identity order
// evaluation walks the data in.
func uploadIota(b device.Backend, n int) (device.Buffer, error) {
	buf, err := b.Alloc("evaluation indices", device.I32, n)
	if err != nil {
		return nil, err
	}
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	if err := b.UploadI32(buf, 0, idx); err != nil {
		b.Free(buf)
		return nil, err
	}
	return buf, nil
}

// Position is the number of steps done in the current epoch.
func (t *Trainer) Position() int { return t.pos }

// WarmUp runs one forward and backward pass over the first batch and one
// optimiser step without changing the weights, the optimiser's state or
// the epoch's statistics, so that one-time costs (the GPU's lazy kernel
// loading, cuBLAS's first calls, the bias-gradient scratch) are paid, and a
// fault in any kernel of a step is reported, before the first epoch. It
// does nothing on the CPU, which has no such costs.
func (t *Trainer) WarmUp() (time.Duration, error) {
	if !t.b.Caps().LazyInit || len(t.batchIdx) == 0 {
		return 0, nil
	}
	start := time.Now()
	scratch, err := t.b.Alloc("warm-up statistics", device.F32, 2)
	if err != nil {
		return 0, err
	}
	defer t.b.Free(scratch)
	idx := t.batchIdx[0]
	cnt := idx.Len()
	t.net.LoadBatch(t.train.images, t.train.labels, idx, cnt)
	if t.opt.Augment {
		t.net.AugmentInput(t.opt.Augmentation, t.opt.Seed, 0, cnt)
	}
	t.net.noUpdate = true
	t.net.Loss(t.net.Forward(cnt, true), cnt, true, 0, scratch)
	t.net.noUpdate = false
	t.net.Backward(cnt)
	if err := t.warmOptimizer(); err != nil {
		return 0, err
	}
	if t.val != nil {
		t.net.LoadBatch(t.val.images, t.val.labels, t.b.View(t.iotaBuf, 0, min(t.opt.Batch, t.val.n)), min(t.opt.Batch, t.val.n))
		t.net.Loss(t.net.Forward(min(t.opt.Batch, t.val.n), false), min(t.opt.Batch, t.val.n), false, 0, scratch)
	}
	return time.Since(start), t.b.Sync()
}

// warmOptimizer runs one optimiser step (adam_seg_f32, sgd_seg_f32 or
// rmsprop_seg_f32 on the GPU, on the real buffers, with the warm-up's gradients), then puts back what
// it changed: the trained parameters and the optimiser's two state vectors,
// copied aside first (3 floats per trained parameter, freed at once), and
// the step count.
func (t *Trainer) warmOptimizer() error {
	net, b := t.net, t.b
	n := net.trainEnd()
	if n == 0 {
		return nil
	}
	saved, err := b.Alloc("warm-up copy of the parameters and optimizer state", device.F32, 3*n)
	if err != nil {
		return err
	}
	defer b.Free(saved)
	state := []device.Buffer{net.Params, net.M, net.V}
	for i, x := range state {
		b.Axpby(b.View(x, 0, n), b.View(saved, i*n, n), n, 1, 0) // beta 0: an exact copy
	}
	step := net.step
	t.opt2.Step(net, t.opt.LR)
	net.step = step
	for i, x := range state {
		b.Axpby(b.View(saved, i*n, n), b.View(x, 0, n), n, 1, 0)
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// averageWeights updates the weight average after a step (EMAOptions).
func (t *Trainer) averageWeights() {
	net := t.net
	if net.EMA == nil {
		return
	}
	on, alpha, beta, reset := t.emaAt(net.step)
	if on {
		t.b.Axpby(net.Params, net.EMA, net.nParam, alpha, beta)
	}
	if reset {
		t.b.Axpby(net.EMA, net.Params, net.nParam, 1, 0)
	}
}

// emaAt is the weight average's update after global step s (1-based): on
// when ema = alpha*weights + beta*ema is applied (beta the decay d < 1),
// and reset when the weights are then set to the average (lookahead).
func (t *Trainer) emaAt(s int) (on bool, alpha, beta float32, reset bool) {
	e := t.opt.EMA
	if e.Decay <= 0 || t.net.EMA == nil {
		return false, 0, 0, false
	}
	every := max(e.Every, 1)
	last := e.Lookahead && e.TotalSteps > 0 && s == e.TotalSteps
	if s%every != 0 && !last {
		return false, 0, 0, false
	}
	d := e.Decay
	if e.Lookahead {
		frac := 1.0
		if e.TotalSteps > 0 {
			frac = min(float64(s)/float64(e.TotalSteps), 1)
		}
		d = e.Decay * frac * frac * frac
		if last {
			d = 1
		}
	}
	return d < 1, float32(1 - d), float32(d), e.Lookahead
}

// TTA is a test-time augmentation: which views of each image are averaged.
type TTA int

// The test-time augmentations.
const (
	TTANone          TTA = iota
	TTAFlip              // the mean of the logits of the image and its mirror
	TTAFlipTranslate     // airbench's: 0.5*flip + 0.25*flip of the image shifted by (-1,-1) and by (1,1), reflect padded
)

// ParseTTA reads a --tta value.
func ParseTTA(s string) (TTA, error) {
	switch s {
	case "", "none":
		return TTANone, nil
	case "flip":
		return TTAFlip, nil
	case "flip-translate":
		return TTAFlipTranslate, nil
	}
	return 0, fmt.Errorf("tta %q: want none, flip or flip-translate", s)
}

// forwardTTA runs the loaded batch in evaluation mode through the views of
// tta and returns the weighted mean of their logits.
func (n *Network) forwardTTA(cnt int, tta TTA) device.Buffer {
	if tta == TTANone {
		return n.Forward(cnt, false)
	}
	k := cnt * n.Classes
	orig, other := n.input, n.augmented
	sum := n.dlogits // free during evaluation
	type view struct {
		dy, dx int
		flip   bool
		w      float32
	}
	views := []view{{0, 0, false, 0.5}, {0, 0, true, 0.5}}
	if tta == TTAFlipTranslate {
		views = []view{{0, 0, false, 0.25}, {0, 0, true, 0.25},
			{-1, -1, false, 0.125}, {-1, -1, true, 0.125}, {1, 1, false, 0.125}, {1, 1, true, 0.125}}
	}
	for i, v := range views {
		n.input = orig
		if v.dy != 0 || v.dx != 0 || v.flip {
			n.b.Translate(orig, other, n.Input.C, cnt, n.Input.H, n.Input.W, v.dy, v.dx, v.flip)
			n.input = other
		}
		logits := n.Forward(cnt, false)
		beta := float32(1)
		if i == 0 {
			beta = 0
		}
		n.b.Axpby(logits, sum, k, v.w, beta)
	}
	n.input = orig
	return sum
}
