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

// Backend is the GPU backend on device 0.
type Backend struct {
	ctx    *cuda.Context
	stream *cuda.Stream
	blas   *cuda.Blas
	mod    *cuda.Module
	fn     map[string]*cuda.Function
	args   *cuda.Args
	info   string
	total  uint64        // device memory, bytes
	err    error         // first asynchronous error, reported by Sync/Download
	stage  *cuda.HostMem // pinned staging for every host transfer

	scratch     cuda.DevicePtr // bias-gradient partial sums
	scratchLen  int
	biasPlans   map[[3]int][]kernels.BiasGradStep
	biasScratch map[[3]int]int
	im2col, col2im, maxF, maxB, avgF, avgB, bias, biasG, reluF, reluB,
	swap, fill, axpy, scale, xent, adam, gather, augment *cuda.Function
}

// New opens the first GPU, or returns why there is none usable.
func New(o device.Options) (*Backend, error) {
	r := cuda.Probe()
	if !r.Usable {
		return nil, errors.New(r.Reason)
	}
	dev, err := cuda.GetDevice(0)
	if err != nil {
		return nil, err
	}
	ctx, err := dev.RetainPrimaryContext()
	if err != nil {
		return nil, err
	}
	b := &Backend{ctx: ctx, fn: map[string]*cuda.Function{}, args: cuda.NewArgs(),
		biasPlans: map[[3]int][]kernels.BiasGradStep{}, biasScratch: map[[3]int]int{}}
	fail := func(err error) (*Backend, error) {
		b.Close()
		return nil, err
	}
	if b.stream, err = ctx.NewStream(); err != nil {
		return fail(err)
	}
	if b.blas, err = cuda.NewBlas(b.stream); err != nil {
		return fail(err)
	}
	if err = b.blas.SetMathMode(o.TF32); err != nil {
		return fail(err)
	}
	if b.mod, err = ctx.LoadModule(kernels.PTX); err != nil {
		return fail(fmt.Errorf("loading the embedded kernels: %w", err))
	}
	for _, k := range kernels.Kernels {
		f, err := b.mod.Function(k.Name)
		if err != nil {
			return fail(err)
		}
		b.fn[k.Name] = f
	}
	b.im2col, b.col2im = b.fn["im2col_f32"], b.fn["col2im_f32"]
	b.maxF, b.maxB, b.avgF, b.avgB = b.fn["maxpool_fwd_f32"], b.fn["maxpool_bwd_f32"], b.fn["avgpool_fwd_f32"], b.fn["avgpool_bwd_f32"]
	b.bias, b.biasG, b.reluF, b.reluB = b.fn["bias_add_f32"], b.fn["bias_grad_f32"], b.fn["relu_fwd_f32"], b.fn["relu_bwd_f32"]
	b.swap, b.fill, b.axpy, b.scale = b.fn["swap_axes01_f32"], b.fn["fill_f32"], b.fn["axpy_f32"], b.fn["scale_f32"]
	b.xent, b.adam, b.gather = b.fn["softmax_xent_f32"], b.fn["adam_f32"], b.fn["gather_images_f32"]
	b.augment = b.fn["augment_f32"]

	d := r.Devices[0]
	b.total = d.TotalMem
	tf := "TF32 off"
	if o.TF32 {
		tf = "TF32 on"
	}
	b.info = fmt.Sprintf("%s (sm_%d%d, %.1f GiB, %d SMs), CUDA driver %s, cuBLAS %s, %s",
		d.Name, d.Major, d.Minor, float64(d.TotalMem)/(1<<30), d.SMs, cuda.VersionString(r.DriverVersion), r.BlasVersion, tf)
	return b, nil
}

// Caps: device memory, queued ops, lazy module loading, pinned transfers.
func (b *Backend) Caps() device.Caps {
	return device.Caps{Async: true, LazyInit: true, PinnedMemory: true, DeviceMemory: b.total}
}

// HostU8 copies src into a new device buffer.
func (b *Backend) HostU8(what string, src []uint8) (device.Buffer, error) {
	d, err := b.Alloc(what, device.U8, len(src))
	if err != nil {
		return nil, err
	}
	if err := b.UploadU8(d, 0, src); err != nil {
		b.Free(d)
		return nil, err
	}
	return d, nil
}

// HostI32 copies src into a new device buffer.
func (b *Backend) HostI32(what string, src []int32) (device.Buffer, error) {
	d, err := b.Alloc(what, device.I32, len(src))
	if err != nil {
		return nil, err
	}
	if err := b.UploadI32(d, 0, src); err != nil {
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
	if n < 0 {
		return nil, fmt.Errorf("allocating %s: negative length %d", what, n)
	}
	bytes := n * dt.Size()
	p, err := b.ctx.MemAlloc(bytes, what)
	if err != nil {
		if cuda.IsOutOfMemory(err) {
			free, total, _ := b.ctx.MemInfo()
			return nil, &device.OutOfMemoryError{Device: "GPU", What: what, Requested: uint64(bytes), Free: free, Total: total, Err: err}
		}
		return nil, err
	}
	if bytes > 0 {
		if err := b.stream.MemsetD8(p, 0, bytes); err != nil {
			b.ctx.MemFree(p)
			return nil, err
		}
	}
	return &buf{ptr: p, n: n, dt: dt}, nil
}

// Free releases device memory (after the queued work that uses it).
func (b *Backend) Free(x device.Buffer) {
	p := x.(*buf)
	if p.ptr != 0 {
		b.keep(b.stream.Synchronize())
		b.keep(b.ctx.MemFree(p.ptr))
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

// stageBytes is the size of the pinned staging buffer. Every host transfer
// goes through it: the GPU's DMA engine reads pinned memory directly, and no
// Go pointer ever reaches C (a Go slice inside a struct that holds pointers
// would break cgo's pointer rules).
const stageBytes = 4 << 20

func (b *Backend) staging() ([]byte, error) {
	if b.stage == nil {
		h, err := b.ctx.MemHostAlloc(stageBytes)
		if err != nil {
			return nil, fmt.Errorf("allocating %d MiB of pinned host memory for transfers: %w", stageBytes>>20, err)
		}
		b.stage = h
	}
	return b.stage.Bytes(), nil
}

// upload copies src (bytes) to dst[off:] through the staging buffer, one
// chunk at a time; it waits for each chunk, so transfers are synchronous.
func (b *Backend) upload(dst device.Buffer, dt device.DType, off int, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	d, err := b.span(dst, dt, off, len(src)/dt.Size())
	if err != nil {
		return err
	}
	st, err := b.staging()
	if err != nil {
		return err
	}
	for done := 0; done < len(src); {
		n := copy(st, src[done:])
		if err := b.stream.MemcpyHtoD(d.Add(done), b.stage.Ptr(), n); err != nil {
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
	if len(dst) == 0 {
		return b.Sync()
	}
	s, err := b.span(src, dt, off, len(dst)/dt.Size())
	if err != nil {
		return err
	}
	st, err := b.staging()
	if err != nil {
		return err
	}
	for done := 0; done < len(dst); {
		n := min(len(st), len(dst)-done)
		if err := b.stream.MemcpyDtoH(b.stage.Ptr(), s.Add(done), n); err != nil {
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

func bytesOf[T float32 | int32 | uint8](v []T) []byte {
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
	b.keep(b.stream.Synchronize())
	err := b.err
	b.err = nil
	return err
}

// Close releases everything.
func (b *Backend) Close() error {
	if b.stream != nil {
		b.stream.Synchronize()
	}
	if b.scratch != 0 {
		b.ctx.MemFree(b.scratch)
	}
	if b.stage != nil {
		b.stage.Free()
	}
	if b.mod != nil {
		b.mod.Unload()
	}
	if b.blas != nil {
		b.blas.Destroy()
	}
	if b.stream != nil {
		b.stream.Destroy()
	}
	if b.args != nil {
		b.args.Free()
	}
	if b.ctx != nil {
		return b.ctx.Release()
	}
	return nil
}

// launch runs f over work items with the kernels' launch configuration.
func (b *Backend) launch(f *cuda.Function, work int, a *cuda.Args) {
	g := kernels.Grid(work)
	if g == 0 {
		return
	}
	b.keep(f.Launch(b.stream, [3]uint32{uint32(g), 1, 1}, [3]uint32{kernels.Block, 1, 1}, 0, a))
}

func (b *Backend) a() *cuda.Args { return b.args.Reset() }

// Gemm: row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so
// cuBLAS gets the operands swapped (darknet's gemm_gpu).
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a device.Buffer, lda int, bb device.Buffer, ldb int, beta float32, c device.Buffer, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	b.keep(b.blas.Sgemm(transB, transA, n, m, k, alpha, ptr(bb), ldb, ptr(a), lda, beta, ptr(c), ldc))
}

func convArgs(a *cuda.Args, g device.ConvGeom) *cuda.Args {
	return a.I32(int32(g.C)).I32(int32(g.N)).I32(int32(g.H)).I32(int32(g.W)).I32(int32(g.KH)).I32(int32(g.KW)).
		I32(int32(g.SH)).I32(int32(g.SW)).I32(int32(g.PadH)).I32(int32(g.PadW)).I32(int32(g.OH)).I32(int32(g.OW))
}

func poolArgs(a *cuda.Args, g device.PoolGeom) *cuda.Args {
	return a.I32(int32(g.Planes)).I32(int32(g.H)).I32(int32(g.W)).I32(int32(g.KH)).I32(int32(g.KW)).
		I32(int32(g.SH)).I32(int32(g.SW)).I32(int32(g.OH)).I32(int32(g.OW))
}

// Im2Col: see device.Backend.
func (b *Backend) Im2Col(g device.ConvGeom, x, col device.Buffer) {
	b.launch(b.im2col, g.C*g.N*g.OH*g.OW, convArgs(b.a().Ptr(ptr(x)).Ptr(ptr(col)), g))
}

// Col2Im: see device.Backend.
func (b *Backend) Col2Im(g device.ConvGeom, col, dx device.Buffer) {
	b.launch(b.col2im, g.C*g.N*g.H*g.W, convArgs(b.a().Ptr(ptr(col)).Ptr(ptr(dx)), g))
}

// MaxPoolForward: see device.Backend.
func (b *Backend) MaxPoolForward(g device.PoolGeom, x, y, argmax device.Buffer) {
	b.launch(b.maxF, g.Planes*g.OH*g.OW, poolArgs(b.a().Ptr(ptr(x)).Ptr(ptr(y)).Ptr(ptr(argmax)), g))
}

// MaxPoolBackward: see device.Backend.
func (b *Backend) MaxPoolBackward(g device.PoolGeom, dy, argmax, dx device.Buffer) {
	b.launch(b.maxB, g.Planes*g.H*g.W, poolArgs(b.a().Ptr(ptr(dy)).Ptr(ptr(argmax)).Ptr(ptr(dx)), g))
}

// AvgPoolForward: see device.Backend.
func (b *Backend) AvgPoolForward(g device.PoolGeom, x, y device.Buffer) {
	b.launch(b.avgF, g.Planes*g.OH*g.OW, poolArgs(b.a().Ptr(ptr(x)).Ptr(ptr(y)), g))
}

// AvgPoolBackward: see device.Backend.
func (b *Backend) AvgPoolBackward(g device.PoolGeom, dy, dx device.Buffer) {
	b.launch(b.avgB, g.Planes*g.H*g.W, poolArgs(b.a().Ptr(ptr(dy)).Ptr(ptr(dx)), g))
}

// AddBias: see device.Backend (bias and ReLU fused).
func (b *Backend) AddBias(y, bias device.Buffer, outer, c, inner int, relu bool) {
	r := int32(0)
	if relu {
		r = 1
	}
	b.launch(b.bias, outer*c*inner, b.a().Ptr(ptr(y)).Ptr(ptr(bias)).I32(int32(outer)).I32(int32(c)).I32(int32(inner)).I32(r))
}

// BiasGrad: see device.Backend. Deterministic multi-pass reduction planned by
// kernels.BiasGradPlan; the plan and scratch are made once per shape.
func (b *Backend) BiasGrad(dy, db device.Buffer, outer, c, inner int) {
	key := [3]int{outer, c, inner}
	steps, ok := b.biasPlans[key]
	if !ok {
		var need int
		steps, need = kernels.BiasGradPlan(outer, c, inner)
		b.biasPlans[key] = steps
		if need > b.scratchLen {
			b.keep(b.stream.Synchronize())
			if b.scratch != 0 {
				b.keep(b.ctx.MemFree(b.scratch))
				b.scratch, b.scratchLen = 0, 0
			}
			p, err := b.ctx.MemAlloc(need*4, "bias-gradient scratch")
			if err != nil {
				b.keep(err)
				delete(b.biasPlans, key)
				return
			}
			b.scratch, b.scratchLen = p, need
		}
	}
	at := func(off int, user device.Buffer) cuda.DevicePtr {
		if off < 0 {
			return ptr(user)
		}
		return b.scratch.Add(off * 4)
	}
	for _, s := range steps {
		b.launch(b.biasG, c*s.Chunks, b.a().Ptr(at(s.In, dy)).Ptr(at(s.Out, db)).
			I32(int32(s.Outer)).I32(int32(c)).I32(int32(s.Inner)).I32(int32(s.Chunks)))
	}
}

// ReLUForward: see device.Backend.
func (b *Backend) ReLUForward(x, y device.Buffer, n int) {
	b.launch(b.reluF, n, b.a().Ptr(ptr(x)).Ptr(ptr(y)).I32(int32(n)))
}

// ReLUBackward: see device.Backend.
func (b *Backend) ReLUBackward(y, dy, dx device.Buffer, n int) {
	b.launch(b.reluB, n, b.a().Ptr(ptr(y)).Ptr(ptr(dy)).Ptr(ptr(dx)).I32(int32(n)))
}

// SwapAxes01: see device.Backend.
func (b *Backend) SwapAxes01(src, dst device.Buffer, a, bb, inner int) {
	b.launch(b.swap, a*bb*inner, b.a().Ptr(ptr(src)).Ptr(ptr(dst)).I32(int32(a)).I32(int32(bb)).I32(int32(inner)))
}

// SoftmaxXent: see device.Backend.
func (b *Backend) SoftmaxXent(logits, labels device.Buffer, n, k int, gradScale float32, dlogits, stats device.Buffer) {
	b.launch(b.xent, n, b.a().Ptr(ptr(logits)).Ptr(ptr(labels)).I32(int32(n)).I32(int32(k)).F32(gradScale).
		Ptr(ptr(dlogits)).Ptr(ptr(stats)))
}

// Adam: see device.Backend.
func (b *Backend) Adam(params, grads, m, v device.Buffer, n int, lrT, beta1, beta2, eps float32) {
	b.launch(b.adam, n, b.a().Ptr(ptr(params)).Ptr(ptr(grads)).Ptr(ptr(m)).Ptr(ptr(v)).I32(int32(n)).
		F32(lrT).F32(beta1).F32(beta2).F32(eps))
}

// GatherImages: see device.Backend.
func (b *Backend) GatherImages(src, idx device.Buffer, n, c, hw int, scale float32, dst device.Buffer, labels, dstLabels device.Buffer) {
	b.launch(b.gather, max(c*n*hw, n), b.a().Ptr(ptr(src)).Ptr(ptr(idx)).I32(int32(n)).I32(int32(c)).I32(int32(hw)).
		F32(scale).Ptr(ptr(dst)).Ptr(ptr(labels)).Ptr(ptr(dstLabels)))
}

// Augment: see device.Backend. The draws come from a hash of (seed, step,
// image) computed in the kernel: nothing is uploaded and nothing waits.
// seed and step travel as unsigned long long (the bits of I64).
func (b *Backend) Augment(src, dst device.Buffer, c, n, h, w, pad int, seed uint64, step int) {
	b.launch(b.augment, c*n*h*w, b.a().Ptr(ptr(src)).Ptr(ptr(dst)).I32(int32(c)).I32(int32(n)).I32(int32(h)).I32(int32(w)).
		I32(int32(pad)).I64(int64(seed)).I64(int64(step)))
}

// Fill: see device.Backend.
func (b *Backend) Fill(x device.Buffer, n int, v float32) {
	b.launch(b.fill, n, b.a().Ptr(ptr(x)).I32(int32(n)).F32(v))
}

// Report describes the driver, cuBLAS and every GPU, or why none is usable.
func Report() string { return cuda.Probe().String() }

// MemInfo reports the device's free and total memory.
func (b *Backend) MemInfo() (free, total uint64, err error) { return b.ctx.MemInfo() }
