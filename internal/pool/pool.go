// Package pool is the one worker pool of the process: the CPU backend runs
// its ops and its SGEMMs on it and the data loaders decode images on it, so
// --threads sizes all of them. A Pool runs a job on n goroutines, the
// caller's and n-1 persistent workers; every job splits its work into fixed
// ranges by worker number, so each item is computed by one worker in a fixed
// order and results do not depend on timing.
//
// A training step is a sequence of some dozens of short jobs, so the
// hand-off is cheap: after a job the workers poll for the next one for a
// while (about spinFor) before they sleep, and the caller polls for their
// completion before it sleeps. One set of workers serves every kind of job:
// two sets polling side by side would keep each other off the cores.
package pool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Job is one parallel task: Run does the share of worker w out of nw.
// Preallocated Job values make a dispatch allocation-free.
type Job interface{ Run(w, nw int) }

// Func adapts a function to a Job.
type Func func(w, nw int)

// Run calls f.
func (f Func) Run(w, nw int) { f(w, nw) }

// Pool runs Jobs on a fixed number of goroutines. Do may be called from
// several goroutines: calls run one after another.
type Pool struct {
	n      int
	mu     sync.Mutex // one Do at a time
	job    Job        // the job being run, set before signal
	chunks chunkJob   // the chunk dispenser of DoChunks
	once   sync.Once

	// signal is generation<<16 | number of workers in the job (sigExit:
	// stop). pending counts the helpers still running the job; the caller
	// sleeps on done once it has polled long enough.
	signal        atomic.Uint64
	pending       atomic.Int32
	callerWaiting atomic.Bool
	done          chan struct{}
	workers       []worker
	exited        sync.WaitGroup
}

// worker is a helper's wake-up state, padded to its own cache line.
type worker struct {
	sleeping atomic.Bool
	wake     chan struct{}
	_        [48]byte
}

// MaxWorkers bounds the size of a pool.
const MaxWorkers = 256

const sigExit = 0xffff

// Polling: a helper polls the signal for about spinFor after its last job
// (catching the next job of a step at once, where waking a sleeping
// goroutine takes 5-50 µs), looking at the clock every pollBatch loads and
// yielding its core every yieldEvery so that other goroutines of the
// process still run (not more often: with many workers, frequent
// runtime.Gosched calls contend on the scheduler's lock); the caller polls
// for about callerSpinFor before it sleeps. Short windows: on a machine
// shared with other processes a polling thread takes time from a working
// one (at 2 threads with a busy neighbour, 200 µs windows cost a third of
// the speed that 50 µs ones keep; the gaps between the jobs of a step are
// a few µs).
const (
	spinFor       = 50 * time.Microsecond
	callerSpinFor = 20 * time.Microsecond
	yieldEvery    = 20 * time.Microsecond
	pollBatch     = 64
)

// poller tracks a polling loop: step reports false once the loop has
// polled for longer than limit, and yields the core every yieldEvery.
type poller struct {
	n            int
	start, yield time.Time
	limit        time.Duration
}

func (p *poller) step() bool {
	p.n++
	if p.n%pollBatch != 0 {
		return true
	}
	now := time.Now()
	if p.start.IsZero() {
		p.start, p.yield = now, now
		return true
	}
	if now.Sub(p.start) >= p.limit {
		return false
	}
	if now.Sub(p.yield) >= yieldEvery {
		runtime.Gosched()
		p.yield = time.Now()
	}
	return true
}

// New starts a pool of n workers; n <= 0 means one per CPU core. n is
// capped at MaxWorkers.
func New(n int) *Pool {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	n = min(n, MaxWorkers)
	p := &Pool{n: n, workers: make([]worker, n), done: make(chan struct{}, 1)}
	for i := 1; i < n; i++ {
		p.workers[i].wake = make(chan struct{}, 1)
		p.exited.Add(1)
		go p.loop(i)
	}
	return p
}

// loop is helper i: it waits for each new job and takes part if i < the
// job's number of workers.
func (p *Pool) loop(i int) {
	defer p.exited.Done()
	var seen uint64 // generation 0: before the first job
	for {
		s := p.waitSignal(&p.workers[i], seen)
		seen = s >> 16
		nw := int(s & 0xffff)
		if nw == sigExit {
			return
		}
		if i < nw {
			p.job.Run(i, nw)
			if p.pending.Add(-1) == 0 && p.callerWaiting.Load() {
				select {
				case p.done <- struct{}{}:
				default:
				}
			}
		}
	}
}

// waitSignal returns the signal once its generation differs from seen.
func (p *Pool) waitSignal(w *worker, seen uint64) uint64 {
	poll := poller{limit: spinFor}
	for {
		s := p.signal.Load()
		if s>>16 != seen {
			return s
		}
		if poll.step() {
			continue
		}
		// Announce the sleep, then look again: a job posted after this
		// load sees sleeping set and sends a wake-up.
		w.sleeping.Store(true)
		if s := p.signal.Load(); s>>16 != seen {
			w.sleeping.Store(false)
			return s
		}
		<-w.wake // may be stale: the loop looks again
		w.sleeping.Store(false)
		poll = poller{limit: spinFor}
	}
}

// post starts the current job for workers 1..nw-1 (sigExit: stop them all).
func (p *Pool) post(nw int) {
	gen := p.signal.Load()>>16 + 1
	p.signal.Store(gen<<16 | uint64(nw))
	last := nw
	if nw == sigExit {
		last = p.n
	}
	for i := 1; i < last; i++ {
		if w := &p.workers[i]; w.sleeping.Load() || nw == sigExit {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// wait returns once every helper of the current job is done.
func (p *Pool) wait() {
	poll := poller{limit: callerSpinFor}
	for p.pending.Load() != 0 {
		if poll.step() {
			continue
		}
		p.callerWaiting.Store(true)
		if p.pending.Load() != 0 {
			<-p.done // may be stale: the loop looks again
		}
		p.callerWaiting.Store(false)
	}
}

// Size is the number of workers, the caller's goroutine included.
func (p *Pool) Size() int { return p.n }

// Do runs j on every worker and waits for all of them.
func (p *Pool) Do(j Job) { p.DoN(j, p.n) }

// DoN runs j on the first nw workers (at least 1, at most Size), as
// j.Run(w, nw) for w < nw, and waits for all of them. Jobs too small to pay
// for waking every worker use fewer.
func (p *Pool) DoN(j Job, nw int) {
	nw = max(min(nw, p.n), 1)
	if nw == 1 {
		j.Run(0, 1)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.run(j, nw)
}

// run runs j on workers 0..nw-1; p.mu is held.
func (p *Pool) run(j Job, nw int) {
	p.job = j
	p.pending.Store(int32(nw - 1))
	p.post(nw)
	j.Run(0, nw)
	p.wait()
	p.job = nil
}

// DoChunks runs j.Run(c, chunks) once for every chunk c < chunks, on up to
// nw workers that take the chunks in turn from a counter, and waits for all
// of them. It is for jobs whose results do not depend on how the items are
// split (each item computed alone, in a fixed order, by whoever runs its
// chunk) and that keep no state per worker: their results are then those of
// j.Run(0, 1), and a worker held up (by a busy machine, say) delays the job
// by one chunk, not by its whole share. With nw 1 it calls j.Run(0, 1).
func (p *Pool) DoChunks(j Job, chunks, nw int) {
	nw = max(min(nw, p.n, chunks), 1)
	if nw == 1 {
		j.Run(0, 1)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &p.chunks
	c.j, c.n = j, chunks
	c.next.Store(0)
	p.run(c, nw)
	c.j = nil
}

// chunkJob hands out the chunks of a DoChunks job.
type chunkJob struct {
	j    Job
	n    int
	next atomic.Int64
}

func (c *chunkJob) Run(w, nw int) {
	for {
		k := int(c.next.Add(1) - 1)
		if k >= c.n {
			return
		}
		c.j.Run(k, c.n)
	}
}

// Close stops the workers. The pool must not be used afterwards; a second
// Close does nothing.
func (p *Pool) Close() {
	p.once.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.post(sigExit)
		p.exited.Wait()
	})
}

// Span is worker w's share [lo, hi) of total items out of nw workers: the
// shares are contiguous, in worker order, and differ in size by at most one.
func Span(total, w, nw int) (lo, hi int) {
	return total * w / nw, total * (w + 1) / nw
}
