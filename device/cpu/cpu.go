// Package cpu is the reference Backend: plain Go over slices, parallel over a
// fixed pool of goroutines. Every other backend is tested against it.
//
// Parallel ops split their output into fixed contiguous ranges, one per
// worker, and each output element is computed by one worker in a fixed order,
// so results are bit-identical from run to run for a given thread count (and
// for most ops whatever the thread count). Ops reuse preallocated job structs
// and scratch space: a steady-state training step allocates nothing.
package cpu

import (
	"errors"
	"fmt"
	"github.com/trainer-go/trainer/internal/pool"
	"runtime"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu/sgemm"
)

func init() {
	device.Register("cpu", func(o device.Options) (device.Backend, error) { return New(o) })
}

// buf is a CPU buffer: exactly one of the slices is set.
type buf struct {
	dt device.DType
	f  []float32
	i  []int32
	u  []uint8
}

func (b *buf) Len() int {
	switch b.dt {
	case device.I32:
		return len(b.i)
	case device.U8:
		return len(b.u)
	}
	return len(b.f)
}

func (b *buf) DType() device.DType { return b.dt }

// Backend is the CPU backend.
type Backend struct {
	threads int
	pool    *pool.Pool
	ownPool bool // the pool was made by New and is closed by Close
	gemm    *sgemm.Engine
	prec    device.Precision // Options.Precision
	tf32    [2][]float32     // the GEMM operands rounded to TF32 (PrecisionTF32)

	// preallocated jobs, one per parallel op
	jIm2col  im2colJob
	jCol2im  col2imJob
	jMaxF    maxPoolFwdJob
	jMaxB    maxPoolBwdJob
	jAvgF    avgPoolFwdJob
	jAvgB    avgPoolBwdJob
	jBias    biasJob
	jBiasG   biasGradJob
	jReLUB   reluBwdJob
	jAdam    adamJob
	jGather  gatherJob
	jSwap    swapJob
	jSoftmax softmaxJob
	jAugment augmentJob
	jSGD     sgdJob
	jRMSprop rmspropJob
	jGELUF   geluFwdJob
	jGELUB   geluBwdJob
	jAdd     addJob
	jAxpby   axpbyJob
	jDropout dropoutJob
	jBNStats bnStatsJob
	jBNFwd   bnFwdJob
	jBNBwd   bnBwdJob
	jTransl  augmentJob
	jRound   roundJob

	bnChans  []bnChan  // per-channel scratch of the BatchNorm ops
	masked   []float32 // MaxPoolReLUBackward's masked output gradient
	segViews [4]buf    // OptimizerStep's views of one segment

	jWino  winoJob
	wEng   []*sgemm.Engine // one single-threaded engine per worker (Winograd GEMMs)
	noWino bool            // TRAINER_CPU_NOWINOGRAD=1: no Winograd plans
}

// New opens a CPU backend with o.Threads workers (0: one per core). It has
// no graphs: it refuses o.Graphs on.
func New(o device.Options) (*Backend, error) {
	if o.Graphs == device.GraphsOn {
		return nil, errors.New("CUDA graphs were asked for (--cuda-graphs on), but the CPU backend runs each op as it is called and has no graphs: use --cuda-graphs auto or off")
	}
	if o.Pool != nil {
		return &Backend{threads: o.Pool.Size(), pool: o.Pool, gemm: sgemm.NewEngineOn(o.Pool), prec: o.Precision, noWino: noWinogradEnv()}, nil
	}
	t := o.Threads
	if t <= 0 {
		t = runtime.NumCPU()
	}
	if t > pool.MaxWorkers {
		return nil, fmt.Errorf("threads %d: at most %d", t, pool.MaxWorkers)
	}
	p := pool.New(t)
	return &Backend{threads: t, pool: p, ownPool: true, gemm: sgemm.NewEngineOn(p), prec: o.Precision, noWino: noWinogradEnv()}, nil
}

// Name is "cpu".
func (b *Backend) Name() string { return "cpu" }

// Describe names the CPU and the worker count.
func (b *Backend) Describe() string {
	s := fmt.Sprintf("%s, %d threads, GEMM kernel %s", CPUModel(), b.threads, b.gemm.Kernel())
	if b.prec != device.PrecisionFP32 {
		s += fmt.Sprintf(", precision %s emulated (GEMM operands rounded, float32 accumulation)", b.prec)
	}
	return s
}

// Threads is the number of workers.
func (b *Backend) Threads() int { return b.threads }

// checkAllocAbove is the size from which Alloc compares a request with the
// available memory (reading it costs a file read).
const checkAllocAbove = 64 << 20

// Alloc makes a zeroed buffer. A request above the available host memory
// (HostMemory) is a *device.OutOfMemoryError, not a fatal error of the Go
// runtime.
func (b *Backend) Alloc(what string, dt device.DType, n int) (device.Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("allocating %s: negative length %d", what, n)
	}
	size := dt.Size()
	if dt == device.BF16 {
		size = 4 // float32 storage (see bf16.go)
	}
	if req := uint64(n) * uint64(size); req > checkAllocAbove {
		if avail, total, err := HostMemory(); err == nil && req > avail {
			return nil, &device.OutOfMemoryError{Device: "CPU", What: what, Requested: req, Free: avail, Total: total}
		}
	}
	switch dt {
	case device.F32, device.BF16: // BF16: float32 storage of bfloat16 values (see bf16.go)
		return &buf{dt: dt, f: make([]float32, n)}, nil
	case device.I32:
		return &buf{dt: dt, i: make([]int32, n)}, nil
	case device.U8:
		return &buf{dt: dt, u: make([]uint8, n)}, nil
	}
	return nil, fmt.Errorf("allocating %s: unknown dtype %v", what, dt)
}

// Free drops the buffer (the garbage collector reclaims it).
func (b *Backend) Free(x device.Buffer) {
	if p, ok := x.(*buf); ok {
		*p = buf{dt: p.dt}
	}
}

// View is x[off:off+n].
func (b *Backend) View(x device.Buffer, off, n int) device.Buffer {
	p := x.(*buf)
	switch p.dt {
	case device.I32:
		return &buf{dt: p.dt, i: p.i[off : off+n : off+n]}
	case device.U8:
		return &buf{dt: p.dt, u: p.u[off : off+n : off+n]}
	}
	return &buf{dt: p.dt, f: p.f[off : off+n : off+n]}
}

// HostU8 wraps src as a U8 buffer without copying (see device.Backend):
// the dataset is not held twice.
func (b *Backend) HostU8(what string, src []uint8) (device.Buffer, error) {
	return &buf{dt: device.U8, u: src}, nil
}

// HostI32 wraps src as an I32 buffer without copying.
func (b *Backend) HostI32(what string, src []int32) (device.Buffer, error) {
	return &buf{dt: device.I32, i: src}, nil
}

// Caps: host memory, synchronous ops, nothing to warm up; bfloat16
// emulated (see Alloc), the precision it was opened with.
func (b *Backend) Caps() device.Caps {
	return device.Caps{HostMemory: true, BF16: true, Precision: b.prec}
}

// MemInfo is the host memory available to this process: MemAvailable and
// MemTotal, lowered to the cgroup's limit where one is set.
func (b *Backend) MemInfo() (free, total uint64, err error) { return HostMemory() }

func check(dst device.Buffer, dt device.DType, off, n int) *buf {
	p := dst.(*buf)
	if p.dt != dt {
		panic(fmt.Sprintf("cpu: buffer is %v, want %v", p.dt, dt))
	}
	if off < 0 || off+n > p.Len() {
		panic(fmt.Sprintf("cpu: range [%d,%d) outside buffer of %d", off, off+n, p.Len()))
	}
	return p
}

// UploadF32 copies src into dst[off:].
func (b *Backend) UploadF32(dst device.Buffer, off int, src []float32) error {
	copy(check(dst, device.F32, off, len(src)).f[off:], src)
	return nil
}

// UploadI32 copies src into dst[off:].
func (b *Backend) UploadI32(dst device.Buffer, off int, src []int32) error {
	copy(check(dst, device.I32, off, len(src)).i[off:], src)
	return nil
}

// UploadU8 copies src into dst[off:].
func (b *Backend) UploadU8(dst device.Buffer, off int, src []uint8) error {
	copy(check(dst, device.U8, off, len(src)).u[off:], src)
	return nil
}

// DownloadF32 copies src[off:] into dst.
func (b *Backend) DownloadF32(src device.Buffer, off int, dst []float32) error {
	copy(dst, check(src, device.F32, off, len(dst)).f[off:])
	return nil
}

// DownloadI32 copies src[off:] into dst.
func (b *Backend) DownloadI32(src device.Buffer, off int, dst []int32) error {
	copy(dst, check(src, device.I32, off, len(dst)).i[off:])
	return nil
}

// Sync does nothing: CPU ops are synchronous.
func (b *Backend) Sync() error { return nil }

// Close stops the workers.
func (b *Backend) Close() error {
	b.gemm.Close()
	if b.ownPool {
		b.pool.Close()
	}
	for _, e := range b.wEng {
		e.Close()
	}
	return nil
}

func f32(x device.Buffer) []float32 {
	if x == nil {
		return nil
	}
	return x.(*buf).f
}
func i32(x device.Buffer) []int32 {
	if x == nil {
		return nil
	}
	return x.(*buf).i
}

// Gemm runs the SGEMM engine (float32 accumulation). BF16 operands hold
// bfloat16 values already (see Alloc), so a bfloat16 GEMM is the same
// call. Under PrecisionTF32 the operands are first rounded to TF32 (copies
// in scratch), an emulation of the GPU's TF32 tensor cores (see
// device.RoundTF32 for how their rounding may differ).
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a device.Buffer, lda int, bb device.Buffer, ldb int, beta float32, c device.Buffer, ldc int) {
	A, B := f32(a), f32(bb)
	if b.prec == device.PrecisionTF32 && m > 0 && n > 0 && k > 0 {
		ra, ca, rb, cb := m, k, k, n // stored rows and columns of A and B
		if transA {
			ra, ca = k, m
		}
		if transB {
			rb, cb = n, k
		}
		A = b.roundTF32(0, A[:(ra-1)*lda+ca])
		B = b.roundTF32(1, B[:(rb-1)*ldb+cb])
	}
	b.gemm.Sgemm(transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, f32(c), ldc)
}

// roundTF32 is x rounded to TF32 in scratch slot i (grown as needed, never
// shrunk: a steady-state step allocates nothing).
func (b *Backend) roundTF32(i int, x []float32) []float32 {
	if cap(b.tf32[i]) < len(x) {
		b.tf32[i] = make([]float32, len(x))
	}
	r := b.tf32[i][:len(x)]
	for j, v := range x {
		r[j] = device.RoundTF32(v)
	}
	return r
}

// parGrain is the work (in the units of par) that pays for one more worker:
// a job runs on min(threads, work/parGrain) workers, so a small op on many
// cores wakes only a few. Every op splits its output into ranges without
// changing how an element is computed, so the results do not depend on the
// split.
const parGrain = 1 << 15

// parChunks is the number of chunks per worker of an op: the workers take
// them in turn, so one that starts late (the machine is busy, or its share
// is slower) holds the op up by a chunk only.
const parChunks = 4

// par runs j on the pool when there is enough work to pay for the hand-off.
func (b *Backend) par(j pool.Job, work int) {
	if work < 2*parGrain {
		j.Run(0, 1)
		return
	}
	nw := min(b.threads, work/parGrain)
	b.pool.DoChunks(j, parChunks*nw, nw)
}
