package model

import (
	"fmt"

	"github.com/trainer-go/trainer/device"
)

// Captured steps (CUDA graphs).
//
// Where the backend captures graphs (Caps.Graphs: a GPU whose driver has
// them, unless --cuda-graphs off) and training runs in one process, each
// kind of step (a training step of RunEpoch, the benchmark's plain Step,
// an evaluation batch) of each batch size runs eagerly the first time,
// which pays the one-time costs (kernel modules, cuBLAS's set-up, the
// reduction plans and their scratch), is captured as a graph the second
// time, and from then on is one graph launch instead of a few dozen
// kernel launches and GEMM calls. Data-parallel training stays eager: its
// all-reduce (NCCL) is not captured.
//
// A graph replays its ops with the arguments of the capture, so what
// differs between steps lives in device memory (device.StepOps): the step
// counters ctr = {position in the epoch, global step, first step of the
// table}, which step_begin_i32 reads to copy the batch's indices out of
// the shuffled order into a fixed slot and the step's row of per-step
// scalars out of a table, and which step_end_i32 advances. The host fills
// the table ahead, for the rest of the epoch (at most maxTableRows steps
// at a time), with exactly the float32 values an eager step would pass
// (the optimiser's rate and bias correction, the weight average's
// coefficients), so a captured step gives bit for bit what an eager one
// gives. The host keeps a copy of the counters and uploads them (and a new
// table) only when they differ from what the next step needs: at an
// epoch's start, after an eager step or a restore, and, in epochs longer
// than maxTableRows steps, every maxTableRows steps: the only waits for the
// device inside an epoch.
//
// If a capture fails (an op inside it wanted to wait or allocate), graphs
// are off for the rest of the trainer's life, with a debug log, and the
// steps run eagerly as before.

// The rows of the per-step table: an epoch's steps, at least
// minTableRows (Step's table does not end with the epoch), at most
// maxTableRows (a few MB).
const (
	minTableRows = 4096
	maxTableRows = 1 << 16
)

// graphKind is the kind of a captured step.
type graphKind int

const (
	kindTrain graphKind = iota // RunEpoch's: augmentation and weight average as configured
	kindPlain                  // Step's: forward, loss, backward and update only
	kindEval                   // an evaluation batch
)

// graphKey names one captured step.
type graphKey struct {
	kind graphKind
	cnt  int // images in the batch
	// evaluation only: the weights bound, the data, the statistics, the
	// range of images, the TTA
	bound, images, stats device.Buffer
	lo, hi               int
	tta                  TTA
}

// graphSet holds captured steps, each captured on its second run.
type graphSet struct {
	g      device.Grapher
	graphs map[graphKey]device.Graph
	seen   map[graphKey]bool
	off    error // why graphs are off (a capture failed)
	used   bool  // a graph has been launched
	debugf func(format string, args ...any)
}

// newGraphSet is the graph set of b, or nil where b captures no graphs.
func newGraphSet(b device.Backend, debugf func(string, ...any)) *graphSet {
	g, ok := b.(device.Grapher)
	if !ok || !b.Caps().Graphs {
		return nil
	}
	if debugf == nil {
		debugf = func(string, ...any) {}
	}
	return &graphSet{g: g, graphs: map[graphKey]device.Graph{}, seen: map[graphKey]bool{}, debugf: debugf}
}

// lookup is the graph of key if it has been captured (allocation-free).
func (s *graphSet) lookup(key graphKey) device.Graph {
	if s == nil || s.off != nil {
		return nil
	}
	return s.graphs[key]
}

// capture captures key's graph from f on the key's second call; nil means:
// run this one eagerly (the first call, or graphs are off).
func (s *graphSet) capture(key graphKey, f func()) device.Graph {
	if s == nil || s.off != nil {
		return nil
	}
	if !s.seen[key] {
		s.seen[key] = true
		return nil
	}
	g, err := s.g.Capture(f)
	if err != nil {
		s.off = err
		s.debugf("CUDA graphs off, steps run op by op: %v", err)
		return nil
	}
	s.graphs[key] = g
	return g
}

// close releases the graphs.
func (s *graphSet) close() {
	if s == nil {
		return
	}
	for _, g := range s.graphs {
		g.Close()
	}
	s.graphs = map[graphKey]device.Graph{}
}

// stepSlots are the device memory captured steps read, and the host's copy
// of what the counters hold.
type stepSlots struct {
	ctr   device.Buffer // I32 [3]: position, global step, first step of the table
	idx   device.Buffer // I32 [batch]: the batch's indices
	table device.Buffer // F32 [rows*k]
	cur   device.Buffer // F32 [k]: the step's row
	k     int           // per-step floats: the optimiser's, then the average's 6
	rows  int           // the table's capacity in steps
	host  []float32     // the table as built on the host
	// What the device holds: the counters (pos -1: unknown), and the
	// table's kind, epoch and steps first..end-1 at positions firstPos...
	pos, step                   int
	kind                        graphKind
	epoch, first, end, firstPos int
}

// setupGraphs prepares captured steps where the backend captures graphs and
// training runs in one process: the training steps' slots, and Validate's
// when there is a validation set.
func (t *Trainer) setupGraphs(val bool) error {
	if t.dist != nil {
		return nil
	}
	if t.graphs = newGraphSet(t.b, t.opt.Debugf); t.graphs != nil {
		if err := t.allocSlots(t.opt.Batch); err != nil {
			return err
		}
	}
	if val {
		var err error
		if t.evalG, err = newEvalGraphs(t.b, t.opt.Batch, t.opt.Debugf); err != nil {
			return err
		}
	}
	return nil
}

// allocSlots allocates the captured steps' device memory for batches of bs.
func (t *Trainer) allocSlots(bs int) error {
	sl := &t.slots
	sl.k = t.opt2.valuesPerStep() + 6
	sl.rows = min(max(len(t.batchIdx), minTableRows), maxTableRows)
	sl.host = make([]float32, sl.rows*sl.k)
	sl.pos = -1
	var err error
	for _, x := range []struct {
		p    *device.Buffer
		what string
		dt   device.DType
		n    int
	}{{&sl.ctr, "step counters", device.I32, 3}, {&sl.idx, "captured batch indices", device.I32, bs},
		{&sl.table, "per-step values", device.F32, sl.rows * sl.k}, {&sl.cur, "step values", device.F32, sl.k}} {
		if *x.p, err = t.b.Alloc(x.what, x.dt, x.n); err != nil {
			return err
		}
	}
	return nil
}

// freeSlots frees what allocSlots allocated.
func (t *Trainer) freeSlots() {
	sl := &t.slots
	for _, buf := range []*device.Buffer{&sl.ctr, &sl.idx, &sl.table, &sl.cur} {
		if *buf != nil {
			t.b.Free(*buf)
			*buf = nil
		}
	}
}

// graphStep runs batch pos of the epoch (cnt images) as a graph launch
// and reports whether it did; false means: run it eagerly.
func (t *Trainer) graphStep(k graphKind, pos, cnt int) (bool, error) {
	key := graphKey{kind: k, cnt: cnt}
	g := t.graphs.lookup(key)
	if g == nil && t.graphs != nil {
		g = t.graphs.capture(key, func() { t.capturedStep(k, cnt) })
	}
	if g == nil {
		return false, nil
	}
	if err := t.prepareSlots(k, pos); err != nil {
		return false, err
	}
	if err := g.Launch(); err != nil {
		return false, fmt.Errorf("launching the captured step: %w", err)
	}
	t.graphs.used = true
	t.net.step++
	t.slots.pos, t.slots.step = (pos+1)%len(t.batchIdx), t.slots.step+1
	return true, nil
}

// capturedStep queues the ops of one step of kind k on cnt images, reading
// what changes between steps from the slots: what Capture records.
func (t *Trainer) capturedStep(k graphKind, cnt int) {
	b, sl, net := t.b, &t.slots, t.net
	b.StepBegin(sl.ctr, t.permBuf, t.opt.Batch, cnt, sl.idx, sl.table, sl.k, sl.cur)
	net.LoadBatch(t.train.images, t.train.labels, b.View(sl.idx, 0, cnt), cnt)
	step := b.View(sl.ctr, 1, 1)
	if k == kindTrain && t.opt.Augment {
		net.augmentInputAt(t.opt.Augmentation, t.opt.Seed+net.salt, step, cnt)
	}
	net.stepAt = step
	logits := net.Forward(cnt, true)
	net.stepAt = nil
	net.Loss(logits, cnt, true, float32(t.opt.Smoothing), t.stats)
	net.Backward(cnt)
	t.opt2.StepAt(net, sl.cur)
	if k == kindTrain && net.EMA != nil {
		e := t.opt2.valuesPerStep()
		b.AxpbyAt(net.Params, net.EMA, net.nParam, b.View(sl.cur, e, 3))
		if t.opt.EMA.Lookahead {
			b.AxpbyAt(net.EMA, net.Params, net.nParam, b.View(sl.cur, e+3, 3))
		}
	}
	b.StepEnd(sl.ctr, len(t.batchIdx))
}

// prepareSlots makes the device's counters and table right for a step of
// kind k at position pos and the network's global step: a new table when
// the one there does not hold this step, the counters when the device's
// differ (both uploads wait for the device: rare).
func (t *Trainer) prepareSlots(k graphKind, pos int) error {
	sl, step := &t.slots, t.net.step
	valid := sl.kind == k && step >= sl.first && step < sl.end
	if k == kindTrain {
		valid = valid && sl.epoch == t.epoch && pos-sl.firstPos == step-sl.first
	}
	if !valid {
		rows := sl.rows
		if k == kindTrain {
			rows = min(rows, len(t.batchIdx)-pos)
		}
		for r := range rows {
			t.stepValues(k, pos+r, step+r, sl.host[r*sl.k:(r+1)*sl.k])
		}
		if err := t.b.UploadF32(sl.table, 0, sl.host[:rows*sl.k]); err != nil {
			return err
		}
		sl.kind, sl.epoch, sl.first, sl.end, sl.firstPos, sl.pos = k, t.epoch, step, step+rows, pos, -1
	}
	if sl.pos != pos || sl.step != step {
		if err := t.b.UploadI32(sl.ctr, 0, []int32{int32(pos), int32(step), int32(sl.first)}); err != nil {
			return err
		}
		sl.pos, sl.step = pos, step
	}
	return nil
}

// stepValues writes the per-step scalars of the step of kind k at
// position pos and global step g (steps taken before it) to row: the
// optimiser's (stepValues) and the weight average's {alpha, beta, on} and
// the lookahead reset's {1, 0, on}, the values an eager step would pass.
func (t *Trainer) stepValues(k graphKind, pos, g int, row []float32) {
	lr := t.opt.LR
	if k == kindTrain && t.opt.Schedule != nil {
		lr = t.opt.Schedule(t.epoch, pos, len(t.batchIdx))
	}
	t.opt2.stepValues(row, lr, g+1)
	e := row[t.opt2.valuesPerStep():]
	clear(e[:6])
	if k != kindTrain {
		return
	}
	on, alpha, beta, reset := t.emaAt(g + 1)
	e[0], e[1], e[2] = alpha, beta, b2f(on)
	e[3], e[4], e[5] = 1, 0, b2f(reset)
}

func b2f(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

// GraphStatus says how the trainer's steps ran.
type GraphStatus struct {
	Used  bool            // some step ran as a graph launch
	Off   string          // why steps run op by op ("" when graphs are on or never available)
	Nodes device.Launches // what the full batch's captured step holds, when the backend counts it
}

// Graphs says whether steps ran as captured graphs and what a full
// batch's graph holds.
func (t *Trainer) Graphs() GraphStatus {
	var st GraphStatus
	switch {
	case t.graphs == nil && t.b.Caps().Graphs:
		st.Off = "data-parallel training runs op by op (the all-reduce is not captured)"
	case t.graphs == nil:
		return st
	case t.graphs.off != nil:
		st.Off = t.graphs.off.Error()
	}
	if t.graphs == nil {
		return st
	}
	st.Used = t.graphs.used
	lc, ok := t.b.(device.LaunchCounter)
	for _, k := range []graphKind{kindTrain, kindPlain} {
		if g := t.graphs.graphs[graphKey{kind: k, cnt: t.opt.Batch}]; g != nil && ok {
			st.Nodes = lc.GraphNodes(g)
		}
	}
	return st
}

// evalGraphs are captured evaluation batches and the slots they read: the
// counters (only the batch number is used) and the batch's indices.
type evalGraphs struct {
	set      *graphSet
	b        device.Backend
	ctr, idx device.Buffer
	pos      int                        // the batch number the device's counter holds (-1: unknown)
	logits   map[graphKey]device.Buffer // where each graph leaves its logits
}

// newEvalGraphs prepares captured evaluation batches of up to bs images on
// b, or returns nil where b captures no graphs.
func newEvalGraphs(b device.Backend, bs int, debugf func(string, ...any)) (*evalGraphs, error) {
	set := newGraphSet(b, debugf)
	if set == nil {
		return nil, nil
	}
	e := &evalGraphs{set: set, b: b, pos: -1, logits: map[graphKey]device.Buffer{}}
	var err error
	if e.ctr, err = b.Alloc("evaluation step counters", device.I32, 3); err != nil {
		return nil, err
	}
	if e.idx, err = b.Alloc("captured evaluation indices", device.I32, bs); err != nil {
		b.Free(e.ctr)
		return nil, err
	}
	return e, nil
}

// close releases the graphs and the slots (nothing on nil).
func (e *evalGraphs) close() {
	if e == nil {
		return
	}
	e.set.close()
	e.b.Free(e.ctr)
	e.b.Free(e.idx)
}

// evalBatch is one batch of an evaluation pass: batch i of nb, cnt images
// starting at perm[i*bs] (perm: the indices of images lo to hi-1).
type evalBatch struct {
	net        *Network
	dd         *deviceData
	perm       device.Buffer
	stats      device.Buffer
	tta        TTA
	lo, hi, bs int
	i, nb, cnt int
}

// run runs the batch as a graph launch and returns the buffer its logits
// are in; nil means: run it eagerly.
func (e *evalGraphs) run(x evalBatch) (device.Buffer, error) {
	if e == nil {
		return nil, nil
	}
	b := e.b
	key := graphKey{kind: kindEval, cnt: x.cnt, bound: x.net.bound, images: x.dd.images, stats: x.stats, lo: x.lo, hi: x.hi, tta: x.tta}
	g := e.set.lookup(key)
	if g == nil {
		g = e.set.capture(key, func() { e.record(x, key) })
	}
	if g == nil {
		return nil, nil
	}
	if e.pos != x.i {
		if err := b.UploadI32(e.ctr, 0, []int32{int32(x.i), 0, 0}); err != nil {
			return nil, err
		}
	}
	if err := g.Launch(); err != nil {
		return nil, fmt.Errorf("launching a captured evaluation batch: %w", err)
	}
	e.set.used = true
	e.pos = (x.i + 1) % x.nb
	return e.logits[key], nil
}

// record queues the ops of evaluation batch x: what Capture records.
func (e *evalGraphs) record(x evalBatch, key graphKey) {
	net, b := x.net, e.b
	b.StepBegin(e.ctr, x.perm, x.bs, x.cnt, e.idx, nil, 0, nil)
	net.LoadBatch(x.dd.images, x.dd.labels, b.View(e.idx, 0, x.cnt), x.cnt)
	logits := net.forwardTTA(x.cnt, x.tta)
	net.Loss(logits, x.cnt, false, 0, x.stats)
	b.StepEnd(e.ctr, x.nb)
	e.logits[key] = logits
}
