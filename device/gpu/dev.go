//go:build cgo

package gpu

import (
	"fmt"
	"unsafe"

	"github.com/trainer-go/trainer/cuda"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
)

// dev is what the Backend needs from CUDA, all on one stream: device memory,
// transfers through a pinned staging buffer, kernel launches and GEMM. The
// driver implements it (cudaDev); the tests also run the Backend on host
// memory and the kernel emulator (emuDev), so that its op methods and launch
// packing run in CI without a GPU.
type dev interface {
	MemAlloc(bytes int, what string) (cuda.DevicePtr, error)
	MemFree(p cuda.DevicePtr) error
	MemInfo() (free, total uint64, err error)
	MemsetD8(p cuda.DevicePtr, v uint8, bytes int) error
	// Staging is the pinned host buffer every transfer goes through.
	Staging() ([]byte, error)
	MemcpyHtoD(dst cuda.DevicePtr, src unsafe.Pointer, bytes int) error
	MemcpyDtoH(dst unsafe.Pointer, src cuda.DevicePtr, bytes int) error
	Synchronize() error
	// Launch queues k on grid blocks of block threads with args, the packed
	// parameter buffer (cuLaunchKernel's kernelParams).
	Launch(k *kernels.Kernel, grid, block int, args *cuda.Args) error
	// Sgemm is cuBLAS's column-major sgemm.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
		b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error
	// GemmBF16 is the same with bfloat16 A and B (cublasGemmEx, float32
	// accumulation and C).
	GemmBF16(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
		b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error
	Close() error

	// GraphSupport is nil when the device can capture graphs, else why not.
	GraphSupport() error
	// BeginCapture makes the stream record what is queued instead of
	// running it; EndCapture stops and returns the record, ready to launch.
	// Both are called on one OS thread.
	BeginCapture() error
	EndCapture() (devGraph, error)
	// ReadAsync queues a copy of bytes (at most readSlotBytes) from src
	// into host slot i (0 <= i < readSlots) and marks the point in the
	// stream; ReadWait waits for that point and returns the slot's bytes.
	ReadAsync(i int, src cuda.DevicePtr, bytes int) error
	ReadWait(i int) ([]byte, error)
}

// devGraph is a captured graph, instantiated.
type devGraph interface {
	Launch() error
	Destroy() error
}

// The host slots of ReadAsync: a few, so that a read can be collected
// after the next one has been queued.
const (
	readSlots     = 4
	readSlotBytes = 64
)

// cudaDev is dev on the CUDA driver and cuBLAS, device 0.
type cudaDev struct {
	ctx    *cuda.Context
	stream *cuda.Stream
	blas   *cuda.Blas
	mod    *cuda.Module
	fn     map[*kernels.Kernel]*cuda.Function
	stage  *cuda.HostMem

	workspace cuda.DevicePtr // cuBLAS's workspace (0: cuBLAS's own)
	graphs    error          // why graphs cannot be captured (nil: they can)
	reads     *cuda.HostMem  // ReadAsync's slots, pinned
	readEv    [readSlots]*cuda.Event
}

// openDev sets up device 0: its primary context, a stream, cuBLAS on it and
// the kernels module.
func openDev(o device.Options) (*cudaDev, error) {
	g, err := cuda.GetDevice(o.Index)
	if err != nil {
		return nil, err
	}
	d := &cudaDev{fn: map[*kernels.Kernel]*cuda.Function{}}
	if d.ctx, err = g.RetainPrimaryContext(); err != nil {
		return nil, err
	}
	fail := func(err error) (*cudaDev, error) {
		d.Close()
		return nil, err
	}
	if d.stream, err = d.ctx.NewStream(); err != nil {
		return fail(err)
	}
	if d.blas, err = cuda.NewBlas(d.stream); err != nil {
		return fail(err)
	}
	if err = d.blas.SetMathMode(o.Precision == device.PrecisionTF32); err != nil {
		return fail(err)
	}
	if err = d.setWorkspace(g); err != nil {
		return fail(err)
	}
	if d.mod, err = d.ctx.LoadModule(kernels.PTX); err != nil {
		return fail(fmt.Errorf("loading the embedded kernels: %w", err))
	}
	for _, k := range kernels.Kernels {
		f, err := d.mod.Function(k.Name)
		if err != nil {
			return fail(err)
		}
		d.fn[k] = f
	}
	return d, nil
}

// setWorkspace gives cuBLAS a workspace of its recommended size (32 MiB
// from Hopper, sm_90, on; 4 MiB before), so that no GEMM allocates one
// inside a graph capture; eager GEMMs use the same one, so both choose the
// same algorithms. Without cublasSetWorkspace (or the driver's graph entry
// points) graphs are off and cuBLAS keeps its own.
func (d *cudaDev) setWorkspace(g cuda.Device) error {
	if d.graphs = cuda.GraphSupport(); d.graphs != nil {
		return nil
	}
	major, _, err := g.ComputeCapability()
	if err != nil {
		return err
	}
	bytes := 4 << 20
	if major >= 9 {
		bytes = 32 << 20
	}
	if d.workspace, err = d.ctx.MemAlloc(bytes, "cuBLAS workspace"); err != nil {
		return err
	}
	return d.blas.SetWorkspace(d.workspace, bytes)
}

func (d *cudaDev) GraphSupport() error { return d.graphs }

func (d *cudaDev) BeginCapture() error { return d.stream.BeginCapture() }

func (d *cudaDev) EndCapture() (devGraph, error) {
	g, err := d.stream.EndCapture()
	if err != nil {
		return nil, err
	}
	defer g.Destroy() // the instance does not need it
	ex, err := g.Instantiate()
	if err != nil {
		return nil, err
	}
	return &cudaGraph{ex: ex, s: d.stream}, nil
}

// cudaGraph is an instantiated CUDA graph launched on the backend's stream.
type cudaGraph struct {
	ex *cuda.GraphExec
	s  *cuda.Stream
}

func (g *cudaGraph) Launch() error  { return g.ex.Launch(g.s) }
func (g *cudaGraph) Destroy() error { return g.ex.Destroy() }

func (d *cudaDev) ReadAsync(i int, src cuda.DevicePtr, bytes int) error {
	if d.reads == nil {
		h, err := d.ctx.MemHostAlloc(readSlots * readSlotBytes)
		if err != nil {
			return err
		}
		d.reads = h
		for j := range d.readEv {
			if d.readEv[j], err = d.ctx.NewEvent(); err != nil {
				return err
			}
		}
	}
	if err := d.stream.MemcpyDtoH(unsafe.Add(d.reads.Ptr(), i*readSlotBytes), src, bytes); err != nil {
		return err
	}
	return d.readEv[i].Record(d.stream)
}

func (d *cudaDev) ReadWait(i int) ([]byte, error) {
	if err := d.readEv[i].Synchronize(); err != nil {
		return nil, err
	}
	return d.reads.Bytes()[i*readSlotBytes : (i+1)*readSlotBytes], nil
}

func (d *cudaDev) MemAlloc(bytes int, what string) (cuda.DevicePtr, error) {
	return d.ctx.MemAlloc(bytes, what)
}

func (d *cudaDev) MemFree(p cuda.DevicePtr) error { return d.ctx.MemFree(p) }

func (d *cudaDev) MemInfo() (free, total uint64, err error) { return d.ctx.MemInfo() }

func (d *cudaDev) MemsetD8(p cuda.DevicePtr, v uint8, bytes int) error {
	return d.stream.MemsetD8(p, v, bytes)
}

// stageBytes is the size of the pinned staging buffer. Every host transfer
// goes through it: the GPU's DMA engine reads pinned memory directly, and no
// Go pointer ever reaches C (a Go slice inside a struct that holds pointers
// would break cgo's pointer rules).
const stageBytes = 4 << 20

func (d *cudaDev) Staging() ([]byte, error) {
	if d.stage == nil {
		h, err := d.ctx.MemHostAlloc(stageBytes)
		if err != nil {
			return nil, fmt.Errorf("allocating %d MiB of pinned host memory for transfers: %w", stageBytes>>20, err)
		}
		d.stage = h
	}
	return d.stage.Bytes(), nil
}

func (d *cudaDev) MemcpyHtoD(dst cuda.DevicePtr, src unsafe.Pointer, bytes int) error {
	return d.stream.MemcpyHtoD(dst, src, bytes)
}

func (d *cudaDev) MemcpyDtoH(dst unsafe.Pointer, src cuda.DevicePtr, bytes int) error {
	return d.stream.MemcpyDtoH(dst, src, bytes)
}

func (d *cudaDev) Synchronize() error { return d.stream.Synchronize() }

func (d *cudaDev) Launch(k *kernels.Kernel, grid, block int, args *cuda.Args) error {
	return d.fn[k].Launch(d.stream, [3]uint32{uint32(grid), 1, 1}, [3]uint32{uint32(block), 1, 1}, 0, args)
}

func (d *cudaDev) Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error {
	return d.blas.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (d *cudaDev) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error {
	return d.blas.GemmBF16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Close releases what openDev made, after the queued work.
func (d *cudaDev) Close() error {
	if d.stream != nil {
		d.stream.Synchronize()
	}
	if d.stage != nil {
		d.stage.Free()
	}
	for _, e := range d.readEv {
		if e != nil {
			e.Destroy()
		}
	}
	if d.reads != nil {
		d.reads.Free()
	}
	if d.mod != nil {
		d.mod.Unload()
	}
	if d.blas != nil {
		d.blas.Destroy()
	}
	if d.workspace != 0 {
		d.ctx.MemFree(d.workspace)
	}
	if d.stream != nil {
		d.stream.Destroy()
	}
	if d.ctx != nil {
		return d.ctx.Release()
	}
	return nil
}
