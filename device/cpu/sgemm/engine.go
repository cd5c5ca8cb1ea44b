package sgemm

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/trainer-go/trainer/internal/pool"
)

// kernelFunc multiplies the ceil(mr/MR) packed A panels that start at a
// (MR x kc each) by the packed B panel b (kc x NR): for rows i < mr and
// j < NR, with T[i,j] = sum over p < kc of a[(i/MR)*MR*kc + p*MR + i%MR] *
// b[p*NR+j], it stores c[i*ldc+j] = alpha*T + beta*c; when beta is 0, c is
// not read.
type kernelFunc func(kc, mr int, a, b, c *float32, ldc int, alpha, beta float32)

// kernel describes a micro-kernel and the blocking tuned for it.
type kernel struct {
	name   string
	mr, nr int // register tile
	mc, kc int // cache blocks: A block mc x kc in L2, B micro-panel kc x nr in L1
	nc     int // widest column block a task packs at once
	fn     kernelFunc
	packA  func(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int)
	packB  func(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int)

	// fnNT, if set, is fn for beta = 0 with non-temporal stores, for a C
	// far larger than the caches; every row of C must be 64-byte aligned.
	fnNT kernelFunc

	// dot, if set, is a dot-product kernel for A * B^T with A and B both
	// stored k-contiguous (see dotFunc); it serves the long-k k splits.
	dot dotFunc

	// edgeFMA, if set, merges the first 16*n16 columns of a right-edge tile
	// into C rounded as fn rounds a whole tile (alpha*T, then a fused
	// multiply-add with beta*C), for a kernel whose nr is a multiple of 16:
	// those are columns that a 16-wide kernel stores whole, so the results
	// stay identical to its own. mergeTile does the rest of the edge.
	edgeFMA func(rows, n16 int, t *float32, ldt int, c *float32, ldc int, alpha, beta float32)
}

// dotFunc sets out[i*4+j] = sum over p < kb of rows[i][p] * rows[3+j][p]
// for i < 3, j < 4; kb is a multiple of 8 and every row holds kb floats.
type dotFunc func(kb int, rows *[7]*float32, out *[12]float32)

// Dot mode tiles: dotMR rows of op(A) by dotNR columns of op(B).
const (
	dotMR = 3
	dotNR = 4
	// dotKB is the k sub-block of dot mode: dotNR rows of B (16 KiB) and
	// dotMR of A (12 KiB) in L1, all the B rows of a task in L2.
	dotKB = 1024
)

// parallelMinFMA is the size (m*n*k multiply-adds) below which a call runs
// on the calling goroutine only; a variable so tests can force hand-overs.
var parallelMinFMA = 1 << 19

// ntMinBytes is the size of C from which a product with beta = 0 and a
// single k block writes C with non-temporal stores (when the kernel has
// them): a C that large would not stay in the caches for its next reader
// anyway, and reading it for ownership before writing it costs as much
// memory traffic as writing it. A variable for tests.
var ntMinBytes = 32 << 20

// kSplitChunks is about how many k chunks a k split makes.
const kSplitChunks = 8

// aKey identifies the rows [i0, i1) and k range [p0, p1) of op(A) packed in
// a worker's buffer during call number call.
type aKey struct{ call, i0, i1, p0, p1 int }

// worker holds the per-worker packing buffers, allocated with the Engine for
// the kernel's largest blocks.
type worker struct {
	aKey aKey // what w.ap holds, when it holds a whole row block of A

	ap, bp []float32 // packed A block and B panel, 64-byte aligned
	tile   []float32 // scratch tile for edges

	dotRows [7]*float32 // dot mode kernel arguments
	dotOut  [12]float32
}

// operands are the A and B that the blocks multiply: the caller's, or for a
// transposed k split, op(B)^T and op(A)^T.
type operands struct {
	transA, transB bool
	a, b           []float32
	lda, ldb       int
	m, n           int // op(A) is m x k, op(B) is k x n
}

// job is the call being run; workers read it after being woken.
type job struct {
	call        int // number of the Sgemm call, from 1
	m, n, k     int
	alpha, beta float32
	c           []float32
	ldc         int
	op          operands

	// k blocking, identical for every task: blocks of kcb from 0 (or from the
	// start of a k chunk), the last one shorter.
	kcb int

	// nt: whole tiles are stored with the kernel's fnNT.
	nt bool

	// Output blocks (phaseBlocks): mTasks x nTasks blocks of mb x nb.
	mb, nb         int
	mTasks, nTasks int

	// k split: kTasks chunks of kChunk; chunk t's op.m x op.n product goes
	// to Engine.partial[t*m*n:]. swapped: the product is C^T. Each chunk is
	// computed as kParts x nParts tasks of at most partRows rows and
	// partCols columns (nParts is 1 in dot mode). dot: the chunks are
	// computed with the dot kernel, in k sub-blocks of dotKB.
	split          bool
	kChunk, kTasks int
	kParts, nParts int
	partRows       int
	partCols       int
	dot            bool
	dotKB          int
	swapped        bool
	rowsPerReduce  int

	phase  int
	ntasks int
}

const (
	phaseBlocks = iota
	phaseKChunks
	phaseReduce
)

// Engine runs SGEMMs on a worker pool (internal/pool), its own or the
// process's: the goroutine that calls Sgemm acts as worker 0. Sharing the
// pool with the other ops of a training step matters: two sets of workers
// polling for work side by side keep each other off the cores. An Engine
// serialises concurrent calls.
type Engine struct {
	mu      sync.Mutex
	threads int
	kern    *kernel
	workers []*worker
	pool    *pool.Pool
	ownPool bool
	closed  bool
	task    taskJob

	job     job
	calls   int
	next    atomic.Int64
	partial []float32
}

// taskJob runs the tasks of the current phase as pool worker w.
type taskJob struct{ e *Engine }

func (t taskJob) Run(w, nw int) { t.e.work(t.e.workers[w]) }

// NewEngine starts an engine with the given number of threads (threads <= 0:
// runtime.NumCPU()) on a pool of its own, and the fastest micro-kernel the
// CPU supports.
func NewEngine(threads int) *Engine { return newEngine(threads, nil, bestKernel()) }

// NewEngineOn is NewEngine on the pool p, with p.Size() threads; Close
// leaves p running.
func NewEngineOn(p *pool.Pool) *Engine { return newEngine(p.Size(), p, bestKernel()) }

// NewEngineGeneric is NewEngine with the portable Go micro-kernel, whatever
// the CPU; for tests and comparisons.
func NewEngineGeneric(threads int) *Engine { return newEngine(threads, nil, &genericKernel) }

func newEngine(threads int, p *pool.Pool, k *kernel) *Engine {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	threads = min(threads, pool.MaxWorkers)
	e := &Engine{threads: threads, kern: k, pool: p}
	if p == nil {
		e.pool, e.ownPool = pool.New(threads), true
		e.threads = e.pool.Size()
	}
	e.task = taskJob{e}
	e.workers = make([]*worker, e.threads)
	for i := range e.workers {
		e.workers[i] = &worker{
			ap:   alignedFloats(2 * k.mc * k.kc),
			bp:   alignedFloats(k.kc * k.nc),
			tile: make([]float32, k.mr*k.nr),
		}
	}
	return e
}

// Close stops the engine's own pool (not one passed to NewEngineOn). Calls
// after Close run on the caller.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.closed = true
	if e.ownPool {
		e.pool.Close()
	}
}

// Threads is the number of threads, the caller included.
func (e *Engine) Threads() int { return e.threads }

// Kernel names the micro-kernel in use, e.g. "avx2-fma 6x16" or "generic 4x4".
func (e *Engine) Kernel() string { return e.kern.name }

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices: op(A)
// is m x k, op(B) is k x n, C is m x n; lda, ldb, ldc are the row strides as
// stored (A is k x m when transA, B is n x k when transB). When beta is 0, C
// is not read (NaNs in C do not propagate). It panics if a slice is too
// short or a stride too small.
func (e *Engine) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("sgemm: negative size %dx%dx%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	checkMatrix("C", c, m, n, ldc)
	if k == 0 || alpha == 0 {
		scaleC(c, m, n, ldc, beta)
		return
	}
	if transA {
		checkMatrix("A", a, k, m, lda)
	} else {
		checkMatrix("A", a, m, k, lda)
	}
	if transB {
		checkMatrix("B", b, n, k, ldb)
	} else {
		checkMatrix("B", b, k, n, ldb)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	j := &e.job
	e.calls++
	*j = job{call: e.calls, m: m, n: n, k: k, alpha: alpha, beta: beta, c: c, ldc: ldc,
		op: operands{transA: transA, transB: transB, a: a, b: b, lda: lda, ldb: ldb, m: m, n: n}}
	e.plan()
	if j.split {
		need := j.kTasks * m * n
		if cap(e.partial) < need {
			e.partial = make([]float32, need)
		}
		e.partial = e.partial[:need]
		e.run(j.kTasks*j.kParts*j.nParts, phaseKChunks)
		e.run(ceilDiv(j.op.m, j.rowsPerReduce), phaseReduce)
	} else {
		e.run(j.mTasks*j.nTasks, phaseBlocks)
	}
	// Drop references to caller memory.
	j.op.a, j.op.b, j.c = nil, nil, nil
}

func checkMatrix(name string, x []float32, rows, cols, ld int) {
	if ld < cols || ld < 1 {
		panic(fmt.Sprintf("sgemm: ld%s=%d < %d columns", name, ld, cols))
	}
	if rows > 0 && cols > 0 && len(x) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("sgemm: %s has %d elements, %dx%d with stride %d needs %d", name, len(x), rows, cols, ld, (rows-1)*ld+cols))
	}
}

// scaleC sets C = beta*C (C = 0 when beta is 0).
func scaleC(c []float32, m, n, ldc int, beta float32) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// plan decides the k blocking and the task decomposition. Everything that
// affects rounding (k blocks, k split, orientation, tile grid) depends on the
// shape only, never on the number of threads.
func (e *Engine) plan() {
	j := &e.job
	kn := e.kern
	m, n, k := j.m, j.n, j.k

	// k blocks of about equal size, at most kn.kc, multiples of 8 where
	// possible (the packing routines transpose 8 at a time).
	nkb := (k + kn.kc - 1) / kn.kc
	j.kcb = min(k, roundUp((k+nkb-1)/nkb, 8), kn.kc)

	// k split: long k and a small C. A chunk is a whole number of k blocks;
	// about kSplitChunks of them or more, their number set by k alone.
	if k >= kSplitChunks*kn.kc/2 && k >= 2*max(m, n) && m*n <= 1<<18 {
		// Packing costs (m+n)*k copies for m*n*k multiply-adds: when that is
		// over 1/25 (m, n of a few dozen), dot mode, which packs nothing,
		// is faster; for larger m, n the packed kernel is.
		if kn.dot != nil && !j.op.transA && j.op.transB && m*n < 25*(m+n) {
			e.planDot()
			return
		}
		per := max(1, nkb/kSplitChunks)
		j.kChunk = per * j.kcb
		j.kTasks = (k + j.kChunk - 1) / j.kChunk
		if j.kTasks > 1 {
			j.split = true
			// Compute C^T = op(B)^T op(A)^T if that wastes less of the tiles.
			if roundUp(n, kn.mr)*roundUp(m, kn.nr) < roundUp(m, kn.mr)*roundUp(n, kn.nr) {
				j.swap()
			}
			j.partRows = kn.mc
			j.kParts = ceilDiv(j.op.m, j.partRows)
			e.planSplitCols()
			return
		}
	}
	j.kTasks = 1

	// Output blocks of whole tiles, at most kn.nc wide; halve the larger
	// side until there are enough blocks to share.
	mtiles := (m + kn.mr - 1) / kn.mr
	ntiles := (n + kn.nr - 1) / kn.nr
	mbt, nbt := mtiles, min(ntiles, kn.nc/kn.nr)
	if m*n*k >= parallelMinFMA {
		target := 4 * e.threads
		for ceilDiv(mtiles, mbt)*ceilDiv(ntiles, nbt) < target {
			if nbt > 1 && nbt*kn.nr >= mbt*kn.mr {
				nbt = ceilDiv(nbt, 2)
			} else if mbt > 1 {
				mbt = ceilDiv(mbt, 2)
			} else {
				break
			}
		}
	}
	j.mb, j.nb = mbt*kn.mr, nbt*kn.nr
	j.mTasks, j.nTasks = ceilDiv(mtiles, mbt), ceilDiv(ntiles, nbt)
	j.nt = kn.fnNT != nil && len(j.c) > 0 && j.beta == 0 && k <= j.kcb && m*n*4 >= ntMinBytes &&
		j.ldc%16 == 0 && uintptr(unsafe.Pointer(&j.c[0]))%64 == 0
}

// planDot plans a k split in dot mode: A (m x k) and B (n x k) are both
// stored with k contiguous, so each tile is a set of dot products read
// straight from them, with no packing. The k chunks are about 2048 long (as
// set by k alone), and the rows of op(A) are cut into parts for the threads.
func (e *Engine) planDot() {
	j := &e.job
	m, n, k := j.m, j.n, j.k
	j.split, j.dot = true, true
	// The side with fewer rows is B: its rows of a task stay in L2.
	if roundUp(n, dotMR)*roundUp(m, dotNR) < roundUp(m, dotMR)*roundUp(n, dotNR) ||
		(roundUp(n, dotMR)*roundUp(m, dotNR) == roundUp(m, dotMR)*roundUp(n, dotNR) && n > m) {
		j.swap()
		j.op.transA, j.op.transB = false, true
	}
	nch := min(max(k/2048, 1), 16)
	j.kChunk = roundUp(ceilDiv(k, nch), 8)
	j.kTasks = ceilDiv(k, j.kChunk)
	j.dotKB = min(dotKB, max(8, (1<<16)/j.op.n&^7))
	// Row parts: about 4 tasks per thread in all (this does not change the
	// sums, only who computes them).
	parts := min(ceilDiv(4*e.threads, j.kTasks), ceilDiv(j.op.m, 4*dotMR))
	j.partRows = roundUp(ceilDiv(j.op.m, max(parts, 1)), dotMR)
	j.kParts = ceilDiv(j.op.m, j.partRows)
	j.nParts = 1
	j.rowsPerReduce = e.reduceRows()
}

// planSplitCols cuts the columns of each (k chunk, row part) of a packed k
// split into parts of whole tiles, so that there are about four tasks per
// thread (taken in turn from a counter, they even out the load): the weight gradients of convolutions have a k split with a few
// chunks and one row part. Each column part packs its chunk of A again
// (op.m x kChunk, little beside its op.m x partCols x kChunk product). The
// parts do not change the sums, only who computes them.
func (e *Engine) planSplitCols() {
	j := &e.job
	nr := e.kern.nr
	ntiles := ceilDiv(j.op.n, nr)
	parts := min(ntiles, max(1, ceilDiv(4*e.threads, j.kTasks*j.kParts)))
	j.partCols = ceilDiv(ntiles, parts) * nr
	j.nParts = ceilDiv(j.op.n, j.partCols)
	j.rowsPerReduce = e.reduceRows()
}

// reduceRows is the rows of op.m x op.n per reduce task: at most 16K
// elements, and about four tasks per thread.
func (e *Engine) reduceRows() int {
	j := &e.job
	return max(1, min((1<<14)/j.op.n, ceilDiv(j.op.m, 4*e.threads)))
}

// swap makes the job compute C^T = op(B)^T op(A)^T.
func (j *job) swap() {
	o := j.op
	j.swapped = true
	j.op = operands{transA: !o.transB, transB: !o.transA, a: o.b, b: o.a,
		lda: o.ldb, ldb: o.lda, m: o.n, n: o.m}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// run executes ntasks tasks of the given phase on up to e.threads workers.
func (e *Engine) run(ntasks, phase int) {
	j := &e.job
	j.phase, j.ntasks = phase, ntasks
	e.next.Store(0)
	// One worker per parallelMinFMA multiply-adds at most: a small product
	// on many cores wakes only a few (parallelMinFMA 0, in tests: all).
	nw, fma := 1, j.m*j.n*j.k
	switch {
	case e.closed:
	case parallelMinFMA == 0:
		nw = min(e.threads, ntasks)
	case fma >= parallelMinFMA:
		nw = min(e.threads, ntasks, fma/parallelMinFMA)
	}
	if nw > 1 {
		e.pool.DoN(e.task, nw)
		return
	}
	e.work(e.workers[0])
}

// work takes tasks until none is left.
func (e *Engine) work(w *worker) {
	j := &e.job
	for {
		t := int(e.next.Add(1) - 1)
		if t >= j.ntasks {
			return
		}
		switch j.phase {
		case phaseBlocks:
			ti, tj := t/j.nTasks, t%j.nTasks
			i0, j0 := ti*j.mb, tj*j.nb
			i1, j1 := min(j.m, i0+j.mb), min(j.n, j0+j.nb)
			e.block(w, i0, i1, j0, j1, 0, j.k, j.c, j.ldc, j.alpha, j.beta)
		case phaseKChunks:
			e.kChunkTask(w, t)
		case phaseReduce:
			r0 := t * j.rowsPerReduce
			r1 := min(j.op.m, r0+j.rowsPerReduce)
			e.reduce(r0, r1)
		}
	}
}

// kChunkTask computes task t of phaseKChunks: chunk, row part and column
// part, the column part varying fastest (a worker that takes consecutive
// tasks reuses its packed A).
func (e *Engine) kChunkTask(w *worker, t int) {
	j := &e.job
	chunk, rest := t/(j.kParts*j.nParts), t%(j.kParts*j.nParts)
	part, cp := rest/j.nParts, rest%j.nParts
	p0 := chunk * j.kChunk
	p1 := min(j.k, p0+j.kChunk)
	i0 := part * j.partRows
	i1 := min(j.op.m, i0+j.partRows)
	mn := j.m * j.n
	out := e.partial[chunk*mn : (chunk+1)*mn]
	if j.dot {
		e.dotBlock(w, i0, i1, p0, p1, out)
		return
	}
	c0 := cp * j.partCols
	c1 := min(j.op.n, c0+j.partCols)
	e.block(w, i0, i1, c0, c1, p0, p1, out, j.op.n, 1, 0)
}

// block computes C[i0:i1, j0:j1] = alpha * sum over p in [p0,p1) of
// op(A)[i,p]*op(B)[p,j] + beta*C for the job's operands j.op, in k blocks of
// j.kcb starting at p0; C[i,j] is c[i*ldc+j].
func (e *Engine) block(w *worker, i0, i1, j0, j1, p0, p1 int, c []float32, ldc int, alpha, beta float32) {
	j := &e.job
	kn := e.kern
	mr, nr := kn.mr, kn.nr
	ncMax := kn.nc
	tile := w.tile

	// If the rows fit one A block and all of their k blocks fit the buffer,
	// pack them once for every column block and keep them for the worker's
	// next task on the same rows (A is small in the convolution shapes and
	// would otherwise be packed again for every column block).
	mcAll := roundUp(i1-i0, mr)
	nkb := ceilDiv(p1-p0, j.kcb)
	wholeA := i1-i0 <= kn.mc && mcAll*j.kcb*nkb <= len(w.ap)
	if wholeA {
		key := aKey{j.call, i0, i1, p0, p1}
		if w.aKey != key {
			for pc := p0; pc < p1; pc += j.kcb {
				kc := min(j.kcb, p1-pc)
				off := (pc - p0) / j.kcb * mcAll * j.kcb
				kn.packA(w.ap[off:off+mcAll*kc], j.op.a, j.op.lda, j.op.transA, i0, i1-i0, pc, kc, mr)
			}
			w.aKey = key
		}
	}

	for jc := j0; jc < j1; jc += ncMax {
		nc := min(ncMax, j1-jc)
		for pc := p0; pc < p1; pc += j.kcb {
			kc := min(j.kcb, p1-pc)
			bt := beta
			if pc != p0 {
				bt = 1
			}
			kn.packB(w.bp, j.op.b, j.op.ldb, j.op.transB, pc, kc, jc, nc, nr)
			for ic := i0; ic < i1; ic += kn.mc {
				mc := min(kn.mc, i1-ic)
				ap := w.ap
				if wholeA {
					ap = w.ap[(pc-p0)/j.kcb*mcAll*j.kcb:]
				} else {
					kn.packA(ap, j.op.a, j.op.lda, j.op.transA, ic, mc, pc, kc, mr)
				}
				for jr := 0; jr < nc; jr += nr {
					nrr := min(nr, nc-jr)
					bpan := &w.bp[jr*kc]
					if nrr == nr {
						// All the rows of the block in one call.
						fn := kn.fn
						if j.nt {
							fn = kn.fnNT
						}
						fn(kc, mc, &ap[0], bpan, &c[ic*ldc+jc+jr], ldc, alpha, bt)
						continue
					}
					// Right edge: whole tiles into the scratch tile, then merge.
					for ir := 0; ir < mc; ir += mr {
						kn.fn(kc, mr, &ap[ir*kc], bpan, &tile[0], nr, 1, 0)
						kn.mergeEdge(c[(ic+ir)*ldc+jc+jr:], ldc, tile, min(mr, mc-ir), nrr, alpha, bt)
					}
				}
			}
		}
	}
}

// dotBlock computes out[i*op.n+j] = sum over p in [p0, p1) of op(A)[i,p] *
// op(B)[p,j] for rows [i0, i1), in dot mode: equal sub-blocks of at most
// j.dotKB from p0, each a dot kernel call over its multiple of 8 plus a
// scalar tail, added to out in order.
func (e *Engine) dotBlock(w *worker, i0, i1, p0, p1 int, out []float32) {
	j := &e.job
	a, b, lda, ldb, pn := j.op.a, j.op.b, j.op.lda, j.op.ldb, j.op.n
	zero := &dotZero[0]
	rows, o := &w.dotRows, &w.dotOut // in the worker: a func value's arguments escape
	// Sub-blocks of equal length (a multiple of 8), at most j.dotKB.
	sbl := roundUp(ceilDiv(p1-p0, ceilDiv(p1-p0, j.dotKB)), 8)
	for sb := p0; sb < p1; sb += sbl {
		kl := min(sbl, p1-sb)
		k8 := kl &^ 7
		for i := i0; i < i1; i += dotMR {
			ni := min(dotMR, i1-i)
			for q := 0; q < dotMR; q++ {
				rows[q] = zero
				if q < ni {
					rows[q] = &a[(i+q)*lda+sb]
				}
			}
			for jt := 0; jt < pn; jt += dotNR {
				nj := min(dotNR, pn-jt)
				for r := 0; r < dotNR; r++ {
					rows[dotMR+r] = zero
					if r < nj {
						rows[dotMR+r] = &b[(jt+r)*ldb+sb]
					}
				}
				if k8 > 0 {
					e.kern.dot(k8, rows, o)
				} else {
					*o = [12]float32{}
				}
				for q := 0; q < ni; q++ {
					for r := 0; r < nj; r++ {
						v := o[q*dotNR+r]
						if k8 < kl {
							ar := a[(i+q)*lda+sb+k8 : (i+q)*lda+sb+kl]
							br := b[(jt+r)*ldb+sb+k8 : (jt+r)*ldb+sb+kl]
							for p, x := range ar {
								v += x * br[p]
							}
						}
						idx := (i+q)*pn + jt + r
						if sb == p0 {
							out[idx] = v
						} else {
							out[idx] += v
						}
					}
				}
			}
		}
	}
}

// dotZero stands in for the missing rows of an edge tile in dot mode.
var dotZero [dotKB]float32

// mergeEdge stores c = alpha*t + beta*c for the rows x cols corner of the
// scratch tile t, rounded as described for edgeFMA.
func (kn *kernel) mergeEdge(c []float32, ldc int, t []float32, rows, cols int, alpha, beta float32) {
	f := 0
	if kn.edgeFMA != nil {
		if f = cols &^ 15; f > 0 {
			_ = c[(rows-1)*ldc+f-1] // the last element written
			kn.edgeFMA(rows, f/16, &t[0], kn.nr, &c[0], ldc, alpha, beta)
		}
	}
	if f < cols {
		mergeTile(c[f:], ldc, t[f:], kn.nr, rows, cols-f, alpha, beta)
	}
}

// mergeTile stores c = alpha*t + beta*c for an mr x nr corner of a tile.
func mergeTile(c []float32, ldc int, t []float32, ldt, mr, nr int, alpha, beta float32) {
	for i := 0; i < mr; i++ {
		cr := c[i*ldc : i*ldc+nr]
		tr := t[i*ldt : i*ldt+nr]
		if beta == 0 {
			for j, v := range tr {
				cr[j] = alpha * v
			}
		} else {
			for j, v := range tr {
				cr[j] = alpha*v + beta*cr[j]
			}
		}
	}
}

// reduce adds up the k-chunk partial products in chunk order, in place in
// chunk 0, for rows [r0, r1) of the op.m x op.n layout of the chunks, and
// writes them to C: C = alpha*sum + beta*C. When swapped, partial row x is
// column x of C.
func (e *Engine) reduce(r0, r1 int) {
	j := &e.job
	pn, mn := j.op.n, j.op.m*j.op.n
	acc := e.partial[r0*pn : r1*pn]
	for t := 1; t < j.kTasks; t++ {
		addTo(acc, e.partial[t*mn+r0*pn:t*mn+r1*pn])
	}
	alpha, beta, c, ldc := j.alpha, j.beta, j.c, j.ldc
	for x := r0; x < r1; x++ {
		ar := acc[(x-r0)*pn : (x-r0+1)*pn]
		if !j.swapped {
			cr := c[x*ldc : x*ldc+pn]
			if beta == 0 {
				for i, v := range ar {
					cr[i] = alpha * v
				}
			} else {
				for i, v := range ar {
					cr[i] = alpha*v + beta*cr[i]
				}
			}
			continue
		}
		cc := c[x : x+(pn-1)*ldc+1]
		if beta == 0 {
			for i, v := range ar {
				cc[i*ldc] = alpha * v
			}
		} else {
			for i, v := range ar {
				cc[i*ldc] = alpha*v + beta*cc[i*ldc]
			}
		}
	}
}

// addTo adds src to dst element by element.
func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// alignedFloats returns n float32s starting on a 64-byte boundary.
func alignedFloats(n int) []float32 {
	buf := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&buf[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return buf[off : off+n : off+n]
}
