//go:build !cgo

package cuda

// Stubs for builds without cgo: the same API, every loader fails with
// ErrNoCgo, so the program compiles and falls back to the CPU. Nothing below
// can be reached with a real handle, as none can be made.

import "unsafe"

// LoadDriver fails: this build has no cgo.
func LoadDriver() (*Lib, error) { return nil, ErrNoCgo }

// Load fails: this build has no cgo.
func Load() (*Lib, error) { return nil, ErrNoCgo }

// Init fails: this build has no cgo.
func Init() error { return ErrNoCgo }

// DriverVersion fails: this build has no cgo.
func DriverVersion() (int, error) { return 0, ErrNoCgo }

// DeviceCount fails: this build has no cgo.
func DeviceCount() (int, error) { return 0, ErrNoCgo }

// GetDevice fails: this build has no cgo.
func GetDevice(ordinal int) (Device, error) { return Device{}, ErrNoCgo }

// BlasVersion fails: this build has no cgo.
func BlasVersion() (string, error) { return "", ErrNoCgo }

// Name fails: this build has no cgo.
func (d Device) Name() (string, error) { return "", ErrNoCgo }

// Attribute fails: this build has no cgo.
func (d Device) Attribute(attr int) (int, error) { return 0, ErrNoCgo }

// ComputeCapability fails: this build has no cgo.
func (d Device) ComputeCapability() (major, minor int, err error) { return 0, 0, ErrNoCgo }

// MultiprocessorCount fails: this build has no cgo.
func (d Device) MultiprocessorCount() (int, error) { return 0, ErrNoCgo }

// TotalMem fails: this build has no cgo.
func (d Device) TotalMem() (uint64, error) { return 0, ErrNoCgo }

// RetainPrimaryContext fails: this build has no cgo.
func (d Device) RetainPrimaryContext() (*Context, error) { return nil, ErrNoCgo }

// Context is a device's primary context (unavailable without cgo).
type Context struct{ dev Device }

// Device is the context's device.
func (c *Context) Device() Device { return c.dev }

// SetCurrent fails: this build has no cgo.
func (c *Context) SetCurrent() error { return ErrNoCgo }

// Synchronize fails: this build has no cgo.
func (c *Context) Synchronize() error { return ErrNoCgo }

// Release does nothing.
func (c *Context) Release() error { return nil }

// MemInfo fails: this build has no cgo.
func (c *Context) MemInfo() (free, total uint64, err error) { return 0, 0, ErrNoCgo }

// MemAlloc fails: this build has no cgo.
func (c *Context) MemAlloc(bytes int, what string) (DevicePtr, error) { return 0, ErrNoCgo }

// MemFree fails: this build has no cgo.
func (c *Context) MemFree(p DevicePtr) error { return ErrNoCgo }

// MemHostAlloc fails: this build has no cgo.
func (c *Context) MemHostAlloc(bytes int) (*HostMem, error) { return nil, ErrNoCgo }

// NewStream fails: this build has no cgo.
func (c *Context) NewStream() (*Stream, error) { return nil, ErrNoCgo }

// NewEvent fails: this build has no cgo.
func (c *Context) NewEvent() (*Event, error) { return nil, ErrNoCgo }

// LoadModule fails: this build has no cgo.
func (c *Context) LoadModule(image []byte) (*Module, error) { return nil, ErrNoCgo }

// Stream is a CUDA stream (unavailable without cgo).
type Stream struct{ ctx *Context }

// Context is the context the stream belongs to.
func (s *Stream) Context() *Context { return s.ctx }

// MemcpyHtoD fails: this build has no cgo.
func (s *Stream) MemcpyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error { return ErrNoCgo }

// MemcpyDtoH fails: this build has no cgo.
func (s *Stream) MemcpyDtoH(dst unsafe.Pointer, src DevicePtr, bytes int) error { return ErrNoCgo }

// MemcpyDtoD fails: this build has no cgo.
func (s *Stream) MemcpyDtoD(dst, src DevicePtr, bytes int) error { return ErrNoCgo }

// MemsetD32 fails: this build has no cgo.
func (s *Stream) MemsetD32(dst DevicePtr, v uint32, count int) error { return ErrNoCgo }

// MemsetD8 fails: this build has no cgo.
func (s *Stream) MemsetD8(dst DevicePtr, v uint8, count int) error { return ErrNoCgo }

// Synchronize fails: this build has no cgo.
func (s *Stream) Synchronize() error { return ErrNoCgo }

// Destroy does nothing.
func (s *Stream) Destroy() error { return nil }

// HostMem is pinned host memory (unavailable without cgo).
type HostMem struct{}

// Ptr is nil.
func (h *HostMem) Ptr() unsafe.Pointer { return nil }

// Len is 0.
func (h *HostMem) Len() int { return 0 }

// Bytes is nil.
func (h *HostMem) Bytes() []byte { return nil }

// Float32s is nil.
func (h *HostMem) Float32s() []float32 { return nil }

// Int32s is nil.
func (h *HostMem) Int32s() []int32 { return nil }

// Free does nothing.
func (h *HostMem) Free() error { return nil }

// Event is a CUDA event (unavailable without cgo).
type Event struct{}

// Record fails: this build has no cgo.
func (e *Event) Record(s *Stream) error { return ErrNoCgo }

// Synchronize fails: this build has no cgo.
func (e *Event) Synchronize() error { return ErrNoCgo }

// Destroy does nothing.
func (e *Event) Destroy() error { return nil }

// ElapsedMs fails: this build has no cgo.
func ElapsedMs(start, end *Event) (float32, error) { return 0, ErrNoCgo }

// Module is loaded device code (unavailable without cgo).
type Module struct{}

// Function fails: this build has no cgo.
func (m *Module) Function(name string) (*Function, error) { return nil, ErrNoCgo }

// Unload does nothing.
func (m *Module) Unload() error { return nil }

// Function is a kernel (unavailable without cgo).
type Function struct{ name string }

// Name is the kernel's name.
func (f *Function) Name() string { return f.name }

// Launch fails: this build has no cgo.
func (f *Function) Launch(s *Stream, grid, block [3]uint32, sharedMem uint32, args *Args) error {
	return ErrNoCgo
}

// Blas is a cuBLAS handle (unavailable without cgo).
type Blas struct{}

// NewBlas fails: this build has no cgo.
func NewBlas(s *Stream) (*Blas, error) { return nil, ErrNoCgo }

// Version is 0.
func (bl *Blas) Version() int { return 0 }

// SetMathMode fails: this build has no cgo.
func (bl *Blas) SetMathMode(tf32 bool) error { return ErrNoCgo }

// Sgemm fails: this build has no cgo.
func (bl *Blas) Sgemm(transA, transB bool, m, n, k int, alpha float32, a DevicePtr, lda int,
	b DevicePtr, ldb int, beta float32, c DevicePtr, ldc int) error {
	return ErrNoCgo
}

// SgemmStridedBatched fails: this build has no cgo.
func (bl *Blas) SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32,
	a DevicePtr, lda int, strideA int64, b DevicePtr, ldb int, strideB int64,
	beta float32, c DevicePtr, ldc int, strideC int64, batch int) error {
	return ErrNoCgo
}

// Destroy does nothing.
func (bl *Blas) Destroy() error { return nil }

// argMem keeps the Go memory that stands in for C memory in this build
// (nothing can be launched, but Args still works, e.g. for tests).
type argMem = *goArgMem

type goArgMem struct {
	vals [MaxArgs]uint64
	ptrs [MaxArgs]unsafe.Pointer
}

func newArgMem(*Args) (vals, ptrs unsafe.Pointer, mem argMem) {
	m := &goArgMem{}
	for i := range m.ptrs {
		m.ptrs[i] = unsafe.Pointer(&m.vals[i])
	}
	return unsafe.Pointer(&m.vals[0]), unsafe.Pointer(&m.ptrs[0]), m
}

func freeArgMem(unsafe.Pointer, argMem) {}
