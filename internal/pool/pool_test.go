package pool

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Every item of every job is visited exactly once, by the worker whose Span
// holds it, for several pool sizes and totals, also with concurrent callers.
func TestDoCoversEachItemOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		p := New(n)
		if p.Size() != n {
			t.Fatalf("New(%d).Size() = %d", n, p.Size())
		}
		var callers sync.WaitGroup
		for c := range 4 {
			callers.Go(func() {
				for _, total := range []int{0, 1, n - 1, n, 1000 + c} {
					if total < 0 {
						continue
					}
					seen := make([]atomic.Int32, total)
					owner := make([]atomic.Int32, total)
					p.Do(Func(func(w, nw int) {
						if nw != n {
							t.Errorf("nw = %d, want %d", nw, n)
						}
						lo, hi := Span(total, w, nw)
						for i := lo; i < hi; i++ {
							seen[i].Add(1)
							owner[i].Store(int32(w))
						}
					}))
					for i := range seen {
						if seen[i].Load() != 1 {
							t.Errorf("pool %d, total %d: item %d visited %d times", n, total, i, seen[i].Load())
						}
					}
				}
			})
		}
		callers.Wait()
		p.Close()
		p.Close()
	}
}

// Span splits any total into contiguous shares that differ by at most one.
func TestSpan(t *testing.T) {
	for total := range 50 {
		for nw := 1; nw < 9; nw++ {
			next, small, big := 0, total, 0
			for w := range nw {
				lo, hi := Span(total, w, nw)
				if lo != next || hi < lo {
					t.Fatalf("Span(%d, %d, %d) = [%d, %d), want to start at %d", total, w, nw, lo, hi, next)
				}
				next = hi
				small, big = min(small, hi-lo), max(big, hi-lo)
			}
			if next != total || big-small > 1 {
				t.Fatalf("Span(%d, ., %d): covers %d, shares %d..%d", total, nw, next, small, big)
			}
		}
	}
}

// New(0) is one worker per core, and sizes are capped.
func TestNewSizes(t *testing.T) {
	p := New(0)
	defer p.Close()
	if p.Size() < 1 {
		t.Fatalf("New(0).Size() = %d", p.Size())
	}
	q := New(MaxWorkers + 10)
	defer q.Close()
	if q.Size() != MaxWorkers {
		t.Fatalf("New(%d).Size() = %d, want %d", MaxWorkers+10, q.Size(), MaxWorkers)
	}
}

// DoN runs worker w < nw once each, with nw clamped to [1, Size], and leaves
// the others out; jobs of different widths follow one another.
func TestDoNRunsTheFirstWorkers(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		p := New(n)
		for round := range 3 {
			for _, nw := range []int{-1, 1, 2, n, n + 3, 3} {
				want := max(min(nw, n), 1)
				var calls [8]atomic.Int32
				p.DoN(Func(func(w, got int) {
					if got != want {
						t.Errorf("pool %d, DoN(%d): nw = %d, want %d", n, nw, got, want)
					}
					calls[w].Add(1)
				}), nw)
				for w := range calls {
					if c, exp := calls[w].Load(), int32(0); w < want && c != 1 || w >= want && c != exp {
						t.Errorf("pool %d round %d, DoN(%d): worker %d ran %d times", n, round, nw, w, c)
					}
				}
			}
		}
		p.Close()
	}
}

// DoChunks runs every chunk exactly once, as j.Run(c, chunks), whatever nw;
// with one worker it is j.Run(0, 1).
func TestDoChunksRunsEachChunkOnce(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		p := New(n)
		for _, chunks := range []int{1, 3, 8, 40} {
			for _, nw := range []int{1, 2, n, n + 2} {
				var calls [41]atomic.Int32
				var bad atomic.Int32
				p.DoChunks(Func(func(c, nc int) {
					single := max(min(nw, n, chunks), 1) == 1
					if single && (c != 0 || nc != 1) || !single && nc != chunks {
						bad.Add(1)
					}
					calls[c].Add(1)
				}), chunks, nw)
				if bad.Load() != 0 {
					t.Errorf("pool %d, DoChunks(%d chunks, %d workers): %d calls with the wrong chunk count", n, chunks, nw, bad.Load())
				}
				want := chunks
				if max(min(nw, n, chunks), 1) == 1 {
					want = 1
				}
				for c := range calls {
					if got := calls[c].Load(); c < want && got != 1 || c >= want && got != 0 {
						t.Errorf("pool %d, DoChunks(%d chunks, %d workers): chunk %d ran %d times", n, chunks, nw, c, got)
					}
				}
			}
		}
		p.Close()
	}
}
