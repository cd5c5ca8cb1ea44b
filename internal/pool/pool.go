// Package pool is the one worker pool of the process: the CPU backend runs
// its ops on it and the data loaders decode images on it, so --threads sizes
// both. A Pool runs a job on n goroutines, the caller's and n-1 persistent
// workers; every job splits its work into fixed ranges by worker number, so
// each item is computed by one worker in a fixed order and results do not
// depend on timing.
package pool

import (
	"runtime"
	"sync"
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
	n    int
	mu   sync.Mutex // one Do at a time
	work []chan Job
	wg   sync.WaitGroup
	once sync.Once
}

// MaxWorkers bounds the size of a pool.
const MaxWorkers = 256

// New starts a pool of n workers; n <= 0 means one per CPU core. n is
// capped at MaxWorkers.
func New(n int) *Pool {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	n = min(n, MaxWorkers)
	p := &Pool{n: n, work: make([]chan Job, n)}
	for i := 1; i < n; i++ {
		p.work[i] = make(chan Job)
		go p.loop(i)
	}
	return p
}

func (p *Pool) loop(w int) {
	for j := range p.work[w] {
		j.Run(w, p.n)
		p.wg.Done()
	}
}

// Size is the number of workers, the caller's goroutine included.
func (p *Pool) Size() int { return p.n }

// Do runs j on every worker and waits for all of them.
func (p *Pool) Do(j Job) {
	if p.n == 1 {
		j.Run(0, 1)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wg.Add(p.n - 1)
	for i := 1; i < p.n; i++ {
		p.work[i] <- j
	}
	j.Run(0, p.n)
	p.wg.Wait()
}

// Close stops the workers. The pool must not be used afterwards; a second
// Close does nothing.
func (p *Pool) Close() {
	p.once.Do(func() {
		for i := 1; i < p.n; i++ {
			close(p.work[i])
		}
	})
}

// Span is worker w's share [lo, hi) of total items out of nw workers: the
// shares are contiguous, in worker order, and differ in size by at most one.
func Span(total, w, nw int) (lo, hi int) {
	return total * w / nw, total * (w + 1) / nw
}
