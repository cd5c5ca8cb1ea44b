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

	bnChans []bnChan // per-channel scratch of the BatchNorm ops
}

// New opens a CPU backend with o.Threads workers (0: one per core). It has
// no graphs: it refuses o.Graphs on.
func New(o device.Options) (*Backend, error) {
	if o.Graphs == device.GraphsOn {
		return nil, errors.New("CUDA graphs were asked for (--cuda-graphs on), but the CPU backend runs each op as it is called and has no graphs: use --cuda-graphs auto or off")
	}
	if o.Pool != nil {
		return &Backend{threads: o.Pool.Size(), pool: o.Pool, gemm: sgemm.NewEngine(o.Pool.Size())}, nil
	}
	t := o.Threads
	if t <= 0 {
		t = runtime.NumCPU()
	}
	if t > pool.MaxWorkers {
		return nil, fmt.Errorf("threads %d: at most %d", t, pool.MaxWorkers)
	}
	return &Backend{threads: t, pool: pool.New(t), ownPool: true, gemm: sgemm.NewEngine(t)}, nil
}

// Name is "cpu".
func (b *Backend) Name() string { return "cpu" }

// Describe names the CPU and the worker count.
func (b *Backend) Describe() string {
	return fmt.Sprintf("%s, %d threads, GEMM kernel %s", CPUModel(), b.threads, b.gemm.Kernel())
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
	if req := uint64(n) * uint64(dt.Size()); req > checkAllocAbove {
		if avail, total, err := HostMemory(); err == nil && req > avail {
			return nil, &device.OutOfMemoryError{Device: "CPU", What: what, Requested: req, Free: avail, Total: total}
		}
	}
	switch dt {
	case device.F32:
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

// Caps: host memory, synchronous ops, nothing to warm up.
func (b *Backend) Caps() device.Caps { return device.Caps{HostMemory: true} }

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
	if b.ownPool {
		b.pool.Close()
	}
	b.gemm.Close()
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

// Gemm runs the SGEMM engine.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a device.Buffer, lda int, bb device.Buffer, ldb int, beta float32, c device.Buffer, ldc int) {
	b.gemm.Sgemm(transA, transB, m, n, k, alpha, f32(a), lda, f32(bb), ldb, beta, f32(c), ldc)
}

// par runs j on the pool when there is enough work to pay for the hand-off.
func (b *Backend) par(j pool.Job, work int) {
	if work < 1<<14 {
		j.Run(0, 1)
		return
	}
	b.pool.Do(j)
}
