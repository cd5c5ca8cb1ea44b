//go:build cgo

// Package gpu is the CUDA Backend: buffers are device memory, GEMMs go to
// cuBLAS and every other op is one of the embedded kernels (package kernels),
// all queued on one stream. Nothing in an op waits for the GPU: errors from a
// launch are kept and reported by the next Sync or Download, and the loss
// statistics stay on the device until the trainer reads them once per epoch.
// A training step allocates nothing and never synchronises, so it could be
// captured as a CUDA graph.
package gpu

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"unsafe"

	"github.com/trainer-go/trainer/cuda"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
)

func init() {
	device.Register("gpu", func(o device.Options) (device.Backend, error) { return New(o) })
}

type buf struct {
	ptr cuda.DevicePtr
	n   int
	dt  device.DType
}

func (b *buf) Len() int            { return b.n }
func (b *buf) DType() device.DType { return b.dt }

// Backend is the GPU backend on one device (Options.Index).
type Backend struct {
	d     dev        // memory, transfers, launches, GEMM
	args  *cuda.Args // the kernelParams of the launch being queued
	info  string
	total uint64 // device memory, bytes
	err   error  // first asynchronous error, reported by Sync/Download

	scratch    cuda.DevicePtr // partial sums of the channel reductions, BatchNorm's invstd
	scratchLen int            // floats
	counts     cuda.DevicePtr // the reductions' tickets (int32, zero between launches)
	countsLen  int
	segTables  []segTable // the optimiser's segment tables on the device
	plans      map[[3]int]reducePlan

	prec device.Precision // the GEMMs' precision (Options.Precision)
	bf16 bool             // the GPU has bfloat16 GEMMs

	count Launches // what has been queued since New

	graphs     error            // why Capture cannot work (nil: it can; Caps.Graphs)
	liveGraphs int              // graphs captured and not closed
	retired    []cuda.DevicePtr // scratch and ticket buffers outgrown while graphs lived (they may read them)
	capturing  bool             // a Capture is recording
	nodes      device.Launches  // what the capture under way has recorded
	reads      int              // ReadLater calls so far (the next slot and generation)
	slotGen    [readSlots]int   // which ReadLater each host slot holds
}

// Launches counts what the backend has queued on its stream: kernel
// launches, cuBLAS GEMM calls and graph launches. A difference of two
// readings is the cost of the ops between them in launches (a training
// step's, say).
type Launches = device.Launches

// Launches is what has been queued so far.
func (b *Backend) Launches() Launches { return b.count }

// reducePlan is kernels.ChannelSumPlan of one [outer, c, inner] shape: the
// passes of channel_sum_f32 (BatchNorm's reductions) and the scratch floats
// they need.
type reducePlan struct {
	steps   []kernels.ChannelSumStep
	scratch int
}

// New opens the first GPU, or returns why there is none usable.
func New(o device.Options) (*Backend, error) {
	r := cuda.Probe()
	if !r.Usable {
		return nil, errors.New(r.Reason)
	}
	if err := checkDriver(r.DriverVersion); err != nil {
		return nil, err
	}
	// One visible GPU is this process's whatever its local rank (srun
	// --gpus-per-task, or CUDA_VISIBLE_DEVICES set per rank); ranks sharing
	// GPUs need NCCL 2.30+ and NCCL_MULTI_RANK_GPU_ENABLE=1.
	if n := len(r.Devices); n == 1 || (n > 0 && os.Getenv("NCCL_MULTI_RANK_GPU_ENABLE") == "1") {
		o.Index %= n
	}
	if o.Index < 0 || o.Index >= len(r.Devices) {
		return nil, fmt.Errorf("GPU %d: this process sees %d GPU(s) (CUDA_VISIBLE_DEVICES=%q): start at most that many ranks per machine, or make more GPUs visible", o.Index, len(r.Devices), os.Getenv("CUDA_VISIBLE_DEVICES"))
	}
	g := r.Devices[o.Index]
	bf16 := g.Major >= 8
	if o.Precision == device.PrecisionBF16 && !bf16 {
		return nil, fmt.Errorf("precision bf16 needs a GPU of compute capability 8.0 (Ampere) or newer for cuBLAS's bfloat16 GEMMs; %s is sm_%d%d: use precision fp32", g.Name, g.Major, g.Minor)
	}
	d, err := openDev(o)
	if err != nil {
		return nil, err
	}
	info := fmt.Sprintf("%s (sm_%d%d, %.1f GiB, %d SMs), CUDA driver %s, cuBLAS %s, precision %s",
		g.Name, g.Major, g.Minor, float64(g.TotalMem)/(1<<30), g.SMs, cuda.VersionString(r.DriverVersion), r.BlasVersion, o.Precision)
	b := newBackend(d, info, g.TotalMem, o.Precision, bf16)
	if err := b.setGraphs(o.Graphs); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// setGraphs applies the graph mode: off turns capture off; on refuses a
// device that cannot capture, saying why.
func (b *Backend) setGraphs(m device.GraphMode) error {
	b.graphs = b.d.GraphSupport()
	switch {
	case m == device.GraphsOff:
		b.graphs = errors.New("CUDA graphs are off (--cuda-graphs off)")
	case m == device.GraphsOn && b.graphs != nil:
		return fmt.Errorf("CUDA graphs were asked for (--cuda-graphs on), but %v", b.graphs)
	}
	if b.graphs == nil {
		b.info += ", CUDA graphs"
	}
	return nil
}

// checkDriver refuses a driver older than the embedded PTX's ISA version
// needs (driver as cuDriverGetVersion reports it; 0, unknown, passes), which
// would otherwise fail later at cuModuleLoadData with
// CUDA_ERROR_UNSUPPORTED_PTX_VERSION.
func checkDriver(driver int) error {
	v, _ := kernels.PTXHeader()
	need, err := kernels.DriverNeeded(v)
	if err != nil {
		return err
	}
	if driver > 0 && driver < need {
		return fmt.Errorf("the NVIDIA driver supports CUDA %s, but the GPU kernels (PTX ISA %s) need CUDA %s or newer: update the NVIDIA driver",
			cuda.VersionString(driver), v, cuda.VersionString(need))
	}
	return nil
}

// newBackend is the Backend on d, computing its GEMMs in precision prec;
// bf16 says whether the GPU has bfloat16 GEMMs (compute capability 8.0).
func newBackend(d dev, info string, total uint64, prec device.Precision, bf16 bool) *Backend {
	return &Backend{d: d, args: cuda.NewArgs(), info: info, total: total, plans: map[[3]int]reducePlan{}, prec: prec, bf16: bf16}
}

// Caps: device memory, queued ops, lazy module loading, pinned transfers,
// kernels indexing buffers with C ints, the precision it was opened with;
// graphs where the driver has them.
func (b *Backend) Caps() device.Caps {
	return device.Caps{Async: true, LazyInit: true, PinnedMemory: true, DeviceMemory: b.total, MaxElems: kernels.MaxElems,
		BF16: b.bf16, Precision: b.prec, Graphs: b.graphs == nil}
}

// HostU8 copies src into a new device buffer.
func (b *Backend) HostU8(what string, src []uint8) (device.Buffer, error) {
	return hostCopy(b, what, device.U8, src, b.UploadU8)
}

// HostI32 copies src into a new device buffer.
func (b *Backend) HostI32(what string, src []int32) (device.Buffer, error) {
	return hostCopy(b, what, device.I32, src, b.UploadI32)
}

// hostCopy allocates a buffer for src and uploads it; nothing is left
// allocated on failure.
func hostCopy[T uint8 | int32](b *Backend, what string, dt device.DType, src []T, upload func(device.Buffer, int, []T) error) (device.Buffer, error) {
	d, err := b.Alloc(what, dt, len(src))
	if err != nil {
		return nil, err
	}
	if err := upload(d, 0, src); err != nil {
		b.Free(d)
		return nil, err
	}
	return d, nil
}

// Name is "gpu".
func (b *Backend) Name() string { return "gpu" }

// Describe names the GPU, driver and cuBLAS.
func (b *Backend) Describe() string { return b.info }

func (b *Backend) keep(err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
}

func ptr(x device.Buffer) cuda.DevicePtr {
	if x == nil {
		return 0
	}
	return x.(*buf).ptr
}

// Alloc allocates zeroed device memory; out of memory names what was being
// allocated and the free and total memory.
func (b *Backend) Alloc(what string, dt device.DType, n int) (device.Buffer, error) {
	if err := b.notCapturing("allocating " + what); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("allocating %s: negative length %d", what, n)
	}
	bytes := n * dt.Size()
	p, err := b.d.MemAlloc(bytes, what)
	if err != nil {
		if cuda.IsOutOfMemory(err) {
			free, total, _ := b.d.MemInfo()
			return nil, &device.OutOfMemoryError{Device: "GPU", What: what, Requested: uint64(bytes), Free: free, Total: total, Err: err}
		}
		return nil, err
	}
	if bytes > 0 {
		if err := b.d.MemsetD8(p, 0, bytes); err != nil {
			b.d.MemFree(p)
			return nil, err
		}
	}
	return &buf{ptr: p, n: n, dt: dt}, nil
}

// Free releases device memory (after the queued work that uses it). After
// Close it does nothing: the context's memory went with it.
func (b *Backend) Free(x device.Buffer) {
	p := x.(*buf)
	if b.notCapturing("freeing a buffer") != nil {
		return
	}
	if p.ptr != 0 && b.d != nil {
		b.keep(b.d.Synchronize())
		b.keep(b.d.MemFree(p.ptr))
		p.ptr, p.n = 0, 0
	}
}

// View is x[off:off+n].
func (b *Backend) View(x device.Buffer, off, n int) device.Buffer {
	p := x.(*buf)
	if off < 0 || n < 0 || off+n > p.n {
		panic(fmt.Sprintf("gpu: view [%d,%d) outside buffer of %d", off, off+n, p.n))
	}
	return &buf{ptr: p.ptr.Add(off * p.dt.Size()), n: n, dt: p.dt}
}

func (b *Backend) span(x device.Buffer, dt device.DType, off, n int) (cuda.DevicePtr, error) {
	p := x.(*buf)
	if p.dt != dt {
		return 0, fmt.Errorf("gpu: buffer is %v, want %v", p.dt, dt)
	}
	if off < 0 || off+n > p.n {
		return 0, fmt.Errorf("gpu: range [%d,%d) outside buffer of %d", off, off+n, p.n)
	}
	return p.ptr.Add(off * dt.Size()), nil
}

// upload copies src (bytes) to dst[off:] through the staging buffer, one
// chunk at a time; it waits for each chunk, so transfers are synchronous.
func (b *Backend) upload(dst device.Buffer, dt device.DType, off int, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	if err := b.notCapturing("uploading"); err != nil {
		return err
	}
	d, err := b.span(dst, dt, off, len(src)/dt.Size())
	if err != nil {
		return err
	}
	st, err := b.d.Staging()
	if err != nil {
		return err
	}
	for done := 0; done < len(src); {
		n := copy(st, src[done:])
		if err := b.d.MemcpyHtoD(d.Add(done), unsafe.Pointer(&st[0]), n); err != nil {
			return err
		}
		if err := b.Sync(); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// download waits for the queued work and copies src[off:] into dst (bytes).
func (b *Backend) download(src device.Buffer, dt device.DType, off int, dst []byte) error {
	if err := b.notCapturing("downloading"); err != nil {
		return err
	}
	if len(dst) == 0 {
		return b.Sync()
	}
	s, err := b.span(src, dt, off, len(dst)/dt.Size())
	if err != nil {
		return err
	}
	st, err := b.d.Staging()
	if err != nil {
		return err
	}
	for done := 0; done < len(dst); {
		n := min(len(st), len(dst)-done)
		if err := b.d.MemcpyDtoH(unsafe.Pointer(&st[0]), s.Add(done), n); err != nil {
			return err
		}
		if err := b.Sync(); err != nil {
			return err
		}
		copy(dst[done:done+n], st)
		done += n
	}
	return nil
}

func bytesOf[T float32 | int32 | uint8 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}

// UploadF32 copies src to dst[off:].
func (b *Backend) UploadF32(dst device.Buffer, off int, src []float32) error {
	return b.upload(dst, device.F32, off, bytesOf(src))
}

// UploadI32 copies src to dst[off:].
func (b *Backend) UploadI32(dst device.Buffer, off int, src []int32) error {
	return b.upload(dst, device.I32, off, bytesOf(src))
}

// UploadU8 copies src to dst[off:].
func (b *Backend) UploadU8(dst device.Buffer, off int, src []uint8) error {
	return b.upload(dst, device.U8, off, src)
}

// DownloadF32 waits for the queued work and copies src[off:] to dst.
func (b *Backend) DownloadF32(src device.Buffer, off int, dst []float32) error {
	return b.download(src, device.F32, off, bytesOf(dst))
}

// DownloadI32 waits for the queued work and copies src[off:] to dst.
func (b *Backend) DownloadI32(src device.Buffer, off int, dst []int32) error {
	return b.download(src, device.I32, off, bytesOf(dst))
}

// Sync waits for the stream and returns the first error since the last Sync.
func (b *Backend) Sync() error {
	if err := b.notCapturing("waiting for the device"); err != nil {
		return err
	}
	b.keep(b.d.Synchronize())
	err := b.err
	b.err = nil
	return err
}

// Close releases everything.
func (b *Backend) Close() error {
	if b.d == nil {
		return nil
	}
	b.d.Synchronize()
	if b.scratch != 0 {
		b.d.MemFree(b.scratch)
		b.scratch, b.scratchLen = 0, 0
	}
	for _, p := range b.retired {
		b.d.MemFree(p)
	}
	b.retired = nil
	if b.counts != 0 {
		b.d.MemFree(b.counts)
		b.counts, b.countsLen = 0, 0
	}
	for _, t := range b.segTables {
		b.d.MemFree(t.ptr)
	}
	b.segTables = nil
	b.args.Free()
	err := b.d.Close()
	b.d = nil
	return err
}

// launcher is the Backend as a kernels.Launcher: it packs a launch's
// arguments into cuLaunchKernel's parameter buffer and queues the kernel.
type launcher Backend

// Launch queues k over work items: kernels.Grid(work) blocks of
// kernels.Block threads, nothing when there is no work.
func (l *launcher) Launch(k *kernels.Kernel, work int, a kernels.Args[cuda.DevicePtr]) {
	b := (*Backend)(l)
	g := kernels.Grid(work)
	if g == 0 {
		return
	}
	if b.capturing {
		b.nodes.Kernels++
	} else {
		b.count.Kernels++
	}
	b.keep(b.d.Launch(k, g, kernels.Block, pack(b.args.Reset(), &a)))
}

// pack appends a's values to p in order: pointers and unsigned long longs
// in 8 bytes, ints and floats in 4.
func pack(p *cuda.Args, a *kernels.Args[cuda.DevicePtr]) *cuda.Args {
	for i := range a.Len() {
		x := a.At(i)
		switch x.Type {
		case kernels.Int:
			p.I32(int32(x.Int()))
		case kernels.Float:
			p.F32(x.Float())
		case kernels.U64:
			p.I64(int64(x.Bits))
		default:
			p.Ptr(x.Ptr)
		}
	}
	return p
}

// k is the Backend as the launcher the kernels' launch functions take.
func (b *Backend) k() kernels.Launcher[cuda.DevicePtr] { return (*launcher)(b) }

// Gemm: row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so
// cuBLAS gets the operands swapped (darknet's gemm_gpu). BF16 operands go
// to cublasGemmEx (bfloat16 in, float32 accumulation and C).
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a device.Buffer, lda int, bb device.Buffer, ldb int, beta float32, c device.Buffer, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if b.capturing {
		b.nodes.Gemms++
	} else {
		b.count.Gemms++
	}
	switch ta, tb := a.DType(), bb.DType(); {
	case ta == device.F32 && tb == device.F32:
		b.keep(b.d.Sgemm(transB, transA, n, m, k, alpha, ptr(bb), ldb, ptr(a), lda, beta, ptr(c), ldc))
	case ta == device.BF16 && tb == device.BF16:
		b.keep(b.d.GemmBF16(transB, transA, n, m, k, alpha, ptr(bb), ldb, ptr(a), lda, beta, ptr(c), ldc))
	default:
		b.keep(fmt.Errorf("gpu: Gemm of %v and %v operands: both must be float32 or both bfloat16", ta, tb))
	}
}

// Convert: see device.Backend (f32_to_bf16 or bf16_to_f32).
func (b *Backend) Convert(src, dst device.Buffer, n int) {
	switch s, d := src.DType(), dst.DType(); {
	case s == device.F32 && d == device.BF16:
		kernels.F32ToBF16(b.k(), ptr(src), ptr(dst), n)
	case s == device.BF16 && d == device.F32:
		kernels.BF16ToF32(b.k(), ptr(src), ptr(dst), n)
	default:
		b.keep(fmt.Errorf("gpu: Convert from %v to %v", s, d))
	}
}

func conv(g device.ConvGeom) kernels.Conv {
	return kernels.Conv{C: g.C, N: g.N, H: g.H, W: g.W, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PadH, PW: g.PadW, OH: g.OH, OW: g.OW}
}

func pool(g device.PoolGeom) kernels.Pool {
	return kernels.Pool{P: g.Planes, H: g.H, W: g.W, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, OH: g.OH, OW: g.OW}
}

// Im2Col: see device.Backend (im2col_bf16 for a BF16 col).
func (b *Backend) Im2Col(g device.ConvGeom, x, col device.Buffer) {
	if col.DType() == device.BF16 {
		kernels.Im2ColBF16(b.k(), conv(g), ptr(x), ptr(col))
		return
	}
	kernels.Im2Col(b.k(), conv(g), ptr(x), ptr(col))
}

// Col2Im: see device.Backend.
func (b *Backend) Col2Im(g device.ConvGeom, col, dx device.Buffer) {
	kernels.Col2Im(b.k(), conv(g), ptr(col), ptr(dx))
}

// PlanConv: the GPU runs every convolution as Im2Col and cuBLAS GEMMs, so
// it plans nothing (the zero plan).
func (b *Backend) PlanConv(g device.ConvGeom, k int) device.ConvPlan { return device.ConvPlan{} }

// ConvForward is never called: PlanConv plans nothing on the GPU.
func (b *Backend) ConvForward(p device.ConvPlan, ws, x, w, y device.Buffer, n int) {
	panic("gpu: ConvForward without a plan (PlanConv plans none on the GPU)")
}

// ConvBackward is never called: PlanConv plans nothing on the GPU.
func (b *Backend) ConvBackward(p device.ConvPlan, ws, x, w, dy, dx, dw device.Buffer, n int) {
	panic("gpu: ConvBackward without a plan (PlanConv plans none on the GPU)")
}

// MaxPoolForward: see device.Backend.
func (b *Backend) MaxPoolForward(g device.PoolGeom, x, y, argmax device.Buffer) {
	kernels.MaxPoolFwd(b.k(), pool(g), ptr(x), ptr(y), ptr(argmax), false)
}

// MaxPoolBackward: see device.Backend.
func (b *Backend) MaxPoolBackward(g device.PoolGeom, dy, argmax, dx device.Buffer) {
	kernels.MaxPoolBwd(b.k(), pool(g), ptr(dy), 0, ptr(argmax), ptr(dx))
}

// MaxPoolReLUForward: see device.Backend (maxpool_fwd_f32 with relu).
func (b *Backend) MaxPoolReLUForward(g device.PoolGeom, x, y, argmax device.Buffer) {
	kernels.MaxPoolFwd(b.k(), pool(g), ptr(x), ptr(y), ptr(argmax), true)
}

// MaxPoolReLUBackward: see device.Backend (maxpool_bwd_f32 with y).
func (b *Backend) MaxPoolReLUBackward(g device.PoolGeom, dy, y, argmax, dx device.Buffer) {
	kernels.MaxPoolBwd(b.k(), pool(g), ptr(dy), ptr(y), ptr(argmax), ptr(dx))
}

// AvgPoolForward: see device.Backend.
func (b *Backend) AvgPoolForward(g device.PoolGeom, x, y device.Buffer) {
	kernels.AvgPoolFwd(b.k(), pool(g), ptr(x), ptr(y))
}

// AvgPoolBackward: see device.Backend.
func (b *Backend) AvgPoolBackward(g device.PoolGeom, dy, dx device.Buffer) {
	kernels.AvgPoolBwd(b.k(), pool(g), ptr(dy), ptr(dx))
}

// AddBias: see device.Backend (bias and ReLU fused: bias_act_f32 in place).
func (b *Backend) AddBias(y, bias device.Buffer, outer, c, inner int, relu bool) {
	act := device.ActNone
	if relu {
		act = device.ActReLU
	}
	kernels.BiasAct(b.k(), ptr(y), ptr(y), ptr(bias), outer, c, inner, int(act))
}

// BiasAct: see device.Backend (bias_act_f32).
func (b *Backend) BiasAct(z, y, bias device.Buffer, outer, c, inner int, act device.Act) {
	kernels.BiasAct(b.k(), ptr(z), ptr(y), ptr(bias), outer, c, inner, int(act))
}

// BiasGrad: see device.Backend. One launch of bias_grad_f32, deterministic;
// its unit sums go to the scratch, its tickets to the counters.
func (b *Backend) BiasGrad(dy, db device.Buffer, outer, c, inner int) {
	b.biasGrad(device.ActNone, nil, dy, db, outer, c, inner)
}

// ActBiasGrad: see device.Backend (bias_grad_f32 with the activation).
func (b *Backend) ActBiasGrad(act device.Act, a, dy, db device.Buffer, outer, c, inner int) {
	b.biasGrad(act, a, dy, db, outer, c, inner)
}

func (b *Backend) biasGrad(act device.Act, a, dy, db device.Buffer, outer, c, inner int) {
	if !b.growScratch(c*kernels.BiasGradUnits(outer, inner)) || !b.growCounts(c) {
		return
	}
	kernels.BiasGrad(b.k(), ptr(dy), ptr(a), ptr(db), b.scratch, b.counts, outer, c, inner, int(act))
}

// growCounts makes the counters (int32, zero between launches: the
// kernels that take tickets reset theirs) hold at least need. Growing
// waits for the queued work; they never shrink.
func (b *Backend) growCounts(need int) bool {
	if need <= b.countsLen {
		return true
	}
	if b.notCapturing("growing the reduction tickets") != nil {
		return false
	}
	b.keep(b.d.Synchronize())
	if b.counts != 0 {
		if b.liveGraphs > 0 { // a captured graph may use them: freed at Close
			b.retired = append(b.retired, b.counts)
		} else {
			b.keep(b.d.MemFree(b.counts))
		}
		b.counts, b.countsLen = 0, 0
	}
	p, err := b.d.MemAlloc(need*4, "reduction tickets")
	if err == nil {
		err = b.d.MemsetD8(p, 0, need*4)
	}
	if err != nil {
		b.keep(err)
		return false
	}
	b.counts, b.countsLen = p, need
	return true
}

// plan is the reduction plan of [outer, c, inner] (made once per shape,
// so a steady-state step allocates nothing), with the scratch grown to
// hold the plan's partial sums and extra floats after them (at offset
// p.scratch). ok is false when the scratch could not be allocated (the
// error is kept for Sync).
func (b *Backend) plan(outer, c, inner, extra int) (p reducePlan, ok bool) {
	key := [3]int{outer, c, inner}
	p, ok = b.plans[key]
	if !ok {
		p.steps, p.scratch = kernels.ChannelSumPlan(outer, c, inner)
		b.plans[key] = p
	}
	return p, b.growScratch(p.scratch + extra)
}

func (b *Backend) scratchAt(off, _ int) cuda.DevicePtr { return b.scratch.Add(off * 4) }

// growScratch makes the scratch hold at least need floats. Growing waits
// for the queued work (which may still read the old scratch); the scratch
// never shrinks.
func (b *Backend) growScratch(need int) bool {
	if need <= b.scratchLen {
		return true
	}
	if b.notCapturing("growing the reduction scratch") != nil {
		return false
	}
	b.keep(b.d.Synchronize())
	if b.scratch != 0 {
		if b.liveGraphs > 0 { // a captured graph may read it: freed at Close
			b.retired = append(b.retired, b.scratch)
		} else {
			b.keep(b.d.MemFree(b.scratch))
		}
		b.scratch, b.scratchLen = 0, 0
	}
	p, err := b.d.MemAlloc(need*4, "reduction scratch")
	if err != nil {
		b.keep(err)
		return false
	}
	b.scratch, b.scratchLen = p, need
	return true
}

// ReLUForward: see device.Backend.
func (b *Backend) ReLUForward(x, y device.Buffer, n int) {
	kernels.ReLUFwd(b.k(), ptr(x), ptr(y), n)
}

// ReLUBackward: see device.Backend.
func (b *Backend) ReLUBackward(y, dy, dx device.Buffer, n int) {
	kernels.ReLUBwd(b.k(), ptr(y), ptr(dy), ptr(dx), n)
}

// SwapAxes01: see device.Backend.
func (b *Backend) SwapAxes01(src, dst device.Buffer, a, bb, inner int) {
	kernels.SwapAxes01(b.k(), ptr(src), ptr(dst), a, bb, inner)
}

// SoftmaxXent: see device.Backend (label smoothing in the kernel; eps 0
// is the plain loss, bit for bit).
func (b *Backend) SoftmaxXent(logits, labels device.Buffer, n, k int, gradScale, smoothing float32, dlogits, stats device.Buffer) {
	kernels.SoftmaxXent(b.k(), ptr(logits), ptr(labels), n, k, gradScale, smoothing, ptr(dlogits), ptr(stats))
}

// segTable is a segment table (device.SegmentTable) uploaded for
// OptimizerStep, with the segments it was made from.
type segTable struct {
	segs []device.OptimSegment
	ptr  cuda.DevicePtr
}

// OptimizerStep: see device.Backend. One launch (adam_seg_f32, sgd_seg_f32
// or rmsprop_seg_f32) reading the segments from a table in device memory,
// uploaded the first time these segments are seen (a step with known
// segments allocates and uploads nothing); the step's learning rate and
// bias correction travel as kernel arguments.
func (b *Backend) OptimizerStep(params, grads, m, v device.Buffer, segs []device.OptimSegment, s device.OptimStep) {
	if len(segs) == 0 {
		return
	}
	t, ok := b.segTable(segs)
	if !ok {
		return
	}
	n, lr := device.SegmentsEnd(segs), math.Float64bits(s.LR)
	switch s.Kind {
	case device.OptimAdam, device.OptimAdamW:
		bc2, pb1 := s.BiasCorrection()
		eps := s.Scalars(segs[0]).Eps // the same for every segment
		kernels.AdamSeg(b.k(), ptr(params), ptr(grads), ptr(m), ptr(v), t, len(segs), n, lr, math.Float64bits(bc2), math.Float64bits(pb1),
			float32(s.Beta1), float32(s.Beta2), eps, s.Kind == device.OptimAdamW)
	case device.OptimSGD:
		kernels.SGDSeg(b.k(), ptr(params), ptr(grads), ptr(m), t, len(segs), n, lr, float32(s.Momentum), s.Nesterov)
	case device.OptimRMSprop:
		kernels.RMSpropSeg(b.k(), ptr(params), ptr(grads), ptr(v), ptr(m), t, len(segs), n, lr, float32(s.Alpha), float32(s.Eps), float32(s.Momentum))
	default:
		b.keep(fmt.Errorf("gpu: OptimizerStep: unknown update %v", s.Kind))
	}
}

// segTable is the device table of segs, uploaded (synchronously) when
// these segments have not been seen before; ok is false when that failed
// (the error is kept for Sync).
func (b *Backend) segTable(segs []device.OptimSegment) (cuda.DevicePtr, bool) {
	for _, t := range b.segTables {
		if slices.Equal(t.segs, segs) {
			return t.ptr, true
		}
	}
	for i, g := range segs {
		if g.Off < 0 || g.N < 0 || i > 0 && g.Off < segs[i-1].Off+segs[i-1].N {
			b.keep(fmt.Errorf("gpu: OptimizerStep: segment %d (%+v) overlaps or precedes the one before: segments must be in increasing order", i, g))
			return 0, false
		}
	}
	tab := device.SegmentTable(segs)
	p, err := b.d.MemAlloc(8*len(tab), "optimizer segment table")
	if err != nil {
		b.keep(err)
		return 0, false
	}
	if err := b.upload(&buf{ptr: p, n: 2 * len(tab), dt: device.F32}, device.F32, 0, bytesOf(tab)); err != nil {
		b.d.MemFree(p)
		b.keep(err)
		return 0, false
	}
	b.segTables = append(b.segTables, segTable{segs: slices.Clone(segs), ptr: p})
	return p, true
}

// Adam: see device.Backend (L2 penalty and decoupled decay in the kernel).
func (b *Backend) Adam(params, grads, m, v device.Buffer, n int, lrT, beta1, beta2, eps, l2, decay float32) {
	kernels.Adam(b.k(), ptr(params), ptr(grads), ptr(m), ptr(v), n, lrT, beta1, beta2, eps, l2, decay)
}

// GatherImages: see device.Backend.
func (b *Backend) GatherImages(src, idx device.Buffer, n, c, hw int, scale float32, dst device.Buffer, labels, dstLabels device.Buffer) {
	kernels.GatherImages(b.k(), ptr(src), ptr(idx), n, c, hw, scale, ptr(dst), ptr(labels), ptr(dstLabels))
}

// Augment: see device.Backend. The draws come from a hash of (seed, step,
// image) computed in the kernel: nothing is uploaded and nothing waits.
// seed and step travel as unsigned long long.
func (b *Backend) Augment(src, dst device.Buffer, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step int) {
	kernels.Augment(b.k(), ptr(src), ptr(dst), c, n, h, w, pad, reflect, noFlip, seed, uint64(step))
}

// Translate: see device.Backend.
func (b *Backend) Translate(src, dst device.Buffer, c, n, h, w, dy, dx int, flip bool) {
	kernels.Translate(b.k(), ptr(src), ptr(dst), c, n, h, w, dy, dx, flip)
}

// Fill: see device.Backend.
func (b *Backend) Fill(x device.Buffer, n int, v float32) {
	kernels.Fill(b.k(), ptr(x), n, v)
}

// Report describes the driver, cuBLAS and every GPU, or why none is usable.
func Report() string { return cuda.Probe().String() }

// MemInfo reports the device's free and total memory.
func (b *Backend) MemInfo() (free, total uint64, err error) {
	if b.d == nil {
		return 0, 0, errors.New("gpu: the backend is closed")
	}
	return b.d.MemInfo()
}

// The device.Native hooks, for NCCL. They need the real driver (not the
// emulator the tests may run on).

func (b *Backend) cudaDev() *cudaDev {
	d, _ := b.d.(*cudaDev)
	return d
}

// DeviceIndex is the CUDA device ordinal in use.
func (b *Backend) DeviceIndex() int {
	if d := b.cudaDev(); d != nil {
		return d.ctx.Device().Ordinal()
	}
	return 0
}

// StreamHandle is the CUstream every op is queued on.
func (b *Backend) StreamHandle() uintptr {
	if d := b.cudaDev(); d != nil {
		return d.stream.Handle()
	}
	return 0
}

// Pointer is the device address of a buffer of this backend.
func (b *Backend) Pointer(x device.Buffer) uintptr { return uintptr(x.(*buf).ptr) }

// WithContext runs f on this OS thread with the backend's context current.
func (b *Backend) WithContext(f func() error) error {
	d := b.cudaDev()
	if d == nil {
		return errors.New("gpu: no CUDA context (emulated device)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.ctx.SetCurrent(); err != nil {
		return err
	}
	return f()
}
