package cpu

import "sync"

// job is one parallel op. run does the share of worker w out of nw; every op
// splits its output into fixed contiguous ranges, so each element is computed
// by exactly one worker in a fixed order and results do not depend on timing.
// Jobs are preallocated structs (one per op in the Backend), so dispatching one
// allocates nothing.
type job interface{ run(w, nw int) }

// pool runs a job on n goroutines: the caller's and n-1 persistent workers.
type pool struct {
	n    int
	work []chan job
	wg   sync.WaitGroup
}

func newPool(n int) *pool {
	p := &pool{n: n, work: make([]chan job, n)}
	for i := 1; i < n; i++ {
		p.work[i] = make(chan job)
		go p.loop(i)
	}
	return p
}

func (p *pool) loop(w int) {
	for j := range p.work[w] {
		j.run(w, p.n)
		p.wg.Done()
	}
}

// do runs j on every worker and waits for all of them.
func (p *pool) do(j job) {
	if p.n == 1 {
		j.run(0, 1)
		return
	}
	p.wg.Add(p.n - 1)
	for i := 1; i < p.n; i++ {
		p.work[i] <- j
	}
	j.run(0, p.n)
	p.wg.Wait()
}

func (p *pool) close() {
	for i := 1; i < p.n; i++ {
		close(p.work[i])
	}
}

// span is worker w's share [lo, hi) of total items.
func span(total, w, nw int) (lo, hi int) {
	return total * w / nw, total * (w + 1) / nw
}
