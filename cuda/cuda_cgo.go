//go:build cgo

package cuda

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"

// The function tables (declared in api.h), defined once here.
tr_cu_api tr_cu;
tr_cu_graph_api tr_cug;
tr_blas_api tr_blas;
tr_blas_opt_api tr_blaso;

// dlopen and dlerror in one call, so the message belongs to this open.
static void *tr_dlopen(const char *name, char *err, size_t errlen) {
	dlerror();
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
	}
	return h;
}

static void *tr_dlsym(void *h, const char *name, char *err, size_t errlen) {
	dlerror();
	void *p = dlsym(h, name);
	if (!p) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "symbol is NULL");
	}
	return p;
}

// The file a handle was loaded from (as the dynamic loader found it), or NULL.
static const char *tr_dlpath(void *h) {
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name || !lm->l_name[0]) return NULL;
	return lm->l_name;
}

static void tr_dlclose(void *h) { dlclose(h); }

static void tr_args_init(void **ptrs, char *vals, int n) {
	for (int i = 0; i < n; i++) ptrs[i] = vals + 8 * i;
}
*/
import "C"

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ---- raw layer: loading ----

// symbol is one entry of a resolution table: the exported name and where its address goes.
type symbol struct {
	name string
	ptr  *unsafe.Pointer
}

// driverSymbols is the table of every driver entry point, filled into a.
func driverSymbols(a *C.tr_cu_api) []symbol {
	return []symbol{
		{"cuInit", &a.cuInit},
		{"cuDriverGetVersion", &a.cuDriverGetVersion},
		{"cuDeviceGetCount", &a.cuDeviceGetCount},
		{"cuDeviceGet", &a.cuDeviceGet},
		{"cuDeviceGetName", &a.cuDeviceGetName},
		{"cuDeviceGetAttribute", &a.cuDeviceGetAttribute},
		{"cuDeviceTotalMem_v2", &a.cuDeviceTotalMem_v2},
		{"cuDevicePrimaryCtxRetain", &a.cuDevicePrimaryCtxRetain},
		{"cuDevicePrimaryCtxRelease_v2", &a.cuDevicePrimaryCtxRelease_v2},
		{"cuCtxSetCurrent", &a.cuCtxSetCurrent},
		{"cuCtxSynchronize", &a.cuCtxSynchronize},
		{"cuMemAlloc_v2", &a.cuMemAlloc_v2},
		{"cuMemFree_v2", &a.cuMemFree_v2},
		{"cuMemGetInfo_v2", &a.cuMemGetInfo_v2},
		{"cuMemcpyHtoDAsync_v2", &a.cuMemcpyHtoDAsync_v2},
		{"cuMemcpyDtoHAsync_v2", &a.cuMemcpyDtoHAsync_v2},
		{"cuMemcpyDtoDAsync_v2", &a.cuMemcpyDtoDAsync_v2},
		{"cuMemsetD32Async", &a.cuMemsetD32Async},
		{"cuMemsetD8Async", &a.cuMemsetD8Async},
		{"cuMemHostAlloc", &a.cuMemHostAlloc},
		{"cuMemFreeHost", &a.cuMemFreeHost},
		{"cuStreamCreate", &a.cuStreamCreate},
		{"cuStreamSynchronize", &a.cuStreamSynchronize},
		{"cuStreamDestroy_v2", &a.cuStreamDestroy_v2},
		{"cuModuleLoadDataEx", &a.cuModuleLoadDataEx},
		{"cuModuleGetFunction", &a.cuModuleGetFunction},
		{"cuModuleUnload", &a.cuModuleUnload},
		{"cuLaunchKernel", &a.cuLaunchKernel},
		{"cuEventCreate", &a.cuEventCreate},
		{"cuEventRecord", &a.cuEventRecord},
		{"cuEventSynchronize", &a.cuEventSynchronize},
		{"cuEventElapsedTime", &a.cuEventElapsedTime},
		{"cuEventDestroy_v2", &a.cuEventDestroy_v2},
		{"cuGetErrorName", &a.cuGetErrorName},
		{"cuGetErrorString", &a.cuGetErrorString},
	}
}

// graphSymbols is the table of the optional driver entry points of CUDA
// graphs (see GraphSupport), filled into a where present.
func graphSymbols(a *C.tr_cu_graph_api) []symbol {
	return []symbol{
		{"cuStreamBeginCapture_v2", &a.cuStreamBeginCapture_v2},
		{"cuStreamEndCapture", &a.cuStreamEndCapture},
		{"cuGraphInstantiateWithFlags", &a.cuGraphInstantiateWithFlags},
		{"cuGraphInstantiate_v2", &a.cuGraphInstantiate_v2},
		{"cuGraphLaunch", &a.cuGraphLaunch},
		{"cuGraphExecDestroy", &a.cuGraphExecDestroy},
		{"cuGraphDestroy", &a.cuGraphDestroy},
	}
}

// blasOptSymbols is the table of the optional cuBLAS entry points.
func blasOptSymbols(a *C.tr_blas_opt_api) []symbol {
	return []symbol{{"cublasSetWorkspace_v2", &a.cublasSetWorkspace_v2}}
}

// blasSymbols is the table of every cuBLAS entry point, filled into a.
func blasSymbols(a *C.tr_blas_api) []symbol {
	return []symbol{
		{"cublasCreate_v2", &a.cublasCreate_v2},
		{"cublasDestroy_v2", &a.cublasDestroy_v2},
		{"cublasSetStream_v2", &a.cublasSetStream_v2},
		{"cublasSetMathMode", &a.cublasSetMathMode},
		{"cublasGetVersion_v2", &a.cublasGetVersion_v2},
		{"cublasGetProperty", &a.cublasGetProperty},
		{"cublasSgemm_v2", &a.cublasSgemm_v2},
		{"cublasSgemmStridedBatched", &a.cublasSgemmStridedBatched},
		{"cublasGemmEx", &a.cublasGemmEx},
	}
}

// loadFrom opens the first of names that dlopen accepts and resolves every
// symbol of syms from it, then those of opt that it has (missing lists the
// others). It writes only to the tables' targets and keeps no global state,
// so tests may call it with any names. On a missing symbol of syms the
// library is closed again.
func loadFrom(what, env string, names []string, syms, opt []symbol) (path string, missing []string, err error) {
	errbuf := (*C.char)(C.malloc(1024))
	defer C.free(unsafe.Pointer(errbuf))
	le := &LoadError{What: what, Tried: names, Env: env}
	le.FromEnv = len(names) == 1 && names[0] == os.Getenv(env)
	var h unsafe.Pointer
	opened := ""
	for _, name := range names {
		cname := C.CString(name)
		h = C.tr_dlopen(cname, errbuf, 1024)
		C.free(unsafe.Pointer(cname))
		if h != nil {
			opened = name
			break
		}
		le.Reasons = append(le.Reasons, C.GoString(errbuf))
	}
	if h == nil {
		return "", nil, le
	}
	path = opened
	if cp := C.tr_dlpath(h); cp != nil {
		path = C.GoString(cp)
	}
	for _, s := range syms {
		cname := C.CString(s.name)
		p := C.tr_dlsym(h, cname, errbuf, 1024)
		C.free(unsafe.Pointer(cname))
		if p == nil {
			le.Symbol = s.name
			le.Path = path
			le.Reasons = append(le.Reasons, C.GoString(errbuf))
			C.tr_dlclose(h)
			return "", nil, le
		}
		*s.ptr = p
	}
	for _, s := range opt {
		cname := C.CString(s.name)
		p := C.tr_dlsym(h, cname, errbuf, 1024)
		C.free(unsafe.Pointer(cname))
		if p == nil {
			missing = append(missing, s.name)
		}
		*s.ptr = p
	}
	return path, missing, nil
}

// loadState caches one library's load: sync.Once, then the result forever.
type loadState struct {
	once    sync.Once
	path    string
	missing []string // optional entry points the library lacks
	err     error
}

var drv, blas loadState

// LoadDriver loads the CUDA driver library (once; later calls return the cached result).
func LoadDriver() (*Lib, error) {
	drv.once.Do(func() {
		var a C.tr_cu_api
		var g C.tr_cu_graph_api
		drv.path, drv.missing, drv.err = loadFrom("CUDA driver", EnvLibCUDA, libNames(EnvLibCUDA, defaultDriverNames), driverSymbols(&a), graphSymbols(&g))
		if drv.err == nil {
			C.tr_cu, C.tr_cug = a, g
		}
	})
	if drv.err != nil {
		return nil, drv.err
	}
	return &Lib{DriverPath: drv.path}, nil
}

// driverMajor is the CUDA major version the loaded driver supports, 0 when
// cuDriverGetVersion fails.
func driverMajor() int {
	v, err := DriverVersion()
	if err != nil {
		return 0
	}
	return v / 1000
}

// Load loads the CUDA driver and cuBLAS (once; later calls return the
// cached result). cuBLAS is looked for by the driver's CUDA major version
// first (blasNames): libcublas.so.12 under a CUDA 12 driver, even where
// libcublas.so.13 is installed too.
func Load() (*Lib, error) {
	lib, err := LoadDriver()
	if err != nil {
		return nil, err
	}
	blas.once.Do(func() {
		var a C.tr_blas_api
		var o C.tr_blas_opt_api
		blas.path, blas.missing, blas.err = loadFrom("cuBLAS", EnvLibCUBLAS, libNames(EnvLibCUBLAS, blasNames(driverMajor())), blasSymbols(&a), blasOptSymbols(&o))
		if blas.err == nil {
			C.tr_blas, C.tr_blaso = a, o
		}
	})
	if blas.err != nil {
		return nil, blas.err
	}
	lib.BlasPath = blas.path
	return lib, nil
}

// ---- thin layer: status codes to errors ----

// cuErr turns a CUresult into nil or an *Error named by the driver.
func cuErr(r C.CUresult, op string) error {
	if r == 0 {
		return nil
	}
	return newCUDAError(int(r), op)
}

// newCUDAError names code with cuGetErrorName/String, or the built-in table.
func newCUDAError(code int, op string) *Error {
	e := cudaErrorFromTable(code, op)
	if s := C.tr_cuGetErrorName(C.CUresult(code)); s != nil {
		e.Name = C.GoString(s)
	}
	if s := C.tr_cuGetErrorString(C.CUresult(code)); s != nil {
		e.Desc = C.GoString(s)
	}
	return e
}

var initDone atomic.Bool

// Init loads the driver and calls cuInit(0); with no GPU the error satisfies IsNoDevice.
func Init() error {
	if _, err := LoadDriver(); err != nil {
		return err
	}
	if initDone.Load() {
		return nil
	}
	if err := cuErr(C.tr_cuInit(0), "cuInit(0)"); err != nil {
		return err
	}
	initDone.Store(true)
	return nil
}

// DriverVersion is the CUDA version the driver supports, e.g. 12040 for 12.4 (needs no GPU).
func DriverVersion() (int, error) {
	if _, err := LoadDriver(); err != nil {
		return 0, err
	}
	var v C.int
	if err := cuErr(C.tr_cuDriverGetVersion(&v), "cuDriverGetVersion"); err != nil {
		return 0, err
	}
	return int(v), nil
}

// DeviceCount initialises the driver if needed and returns the number of GPUs.
func DeviceCount() (int, error) {
	if err := Init(); err != nil {
		return 0, err
	}
	var n C.int
	if err := cuErr(C.tr_cuDeviceGetCount(&n), "cuDeviceGetCount"); err != nil {
		return 0, err
	}
	return int(n), nil
}

// GetDevice initialises the driver if needed and returns device number ordinal.
func GetDevice(ordinal int) (Device, error) {
	if err := Init(); err != nil {
		return Device{}, err
	}
	var d C.CUdevice
	if err := cuErr(C.tr_cuDeviceGet(&d, C.int(ordinal)), fmt.Sprintf("cuDeviceGet(%d)", ordinal)); err != nil {
		return Device{}, err
	}
	return Device{ordinal: ordinal, h: int32(d)}, nil
}

// Name is the product name, e.g. "NVIDIA H100 80GB HBM3".
func (d Device) Name() (string, error) {
	var buf [256]C.char
	if err := cuErr(C.tr_cuDeviceGetName(&buf[0], C.int(len(buf)), C.CUdevice(d.h)), "cuDeviceGetName"); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// Attribute returns a CUdevice_attribute value (see cuda.h for the numbers).
func (d Device) Attribute(attr int) (int, error) {
	var v C.int
	if r := C.tr_cuDeviceGetAttribute(&v, C.int(attr), C.CUdevice(d.h)); r != 0 {
		return 0, cuErr(r, fmt.Sprintf("cuDeviceGetAttribute(%d, device %d)", attr, d.ordinal))
	}
	return int(v), nil
}

// ComputeCapability is the SM version, e.g. 9, 0 for an H100.
func (d Device) ComputeCapability() (major, minor int, err error) {
	if major, err = d.Attribute(attrComputeCapMajor); err != nil {
		return 0, 0, err
	}
	minor, err = d.Attribute(attrComputeCapMinor)
	return major, minor, err
}

// MultiprocessorCount is the number of SMs.
func (d Device) MultiprocessorCount() (int, error) { return d.Attribute(attrMultiprocessorCount) }

// TotalMem is the device memory in bytes.
func (d Device) TotalMem() (uint64, error) {
	var b C.size_t
	if err := cuErr(C.tr_cuDeviceTotalMem(&b, C.CUdevice(d.h)), "cuDeviceTotalMem"); err != nil {
		return 0, err
	}
	return uint64(b), nil
}

// ---- typed layer ----

// Context is a device's primary context, retained. Every call made through it
// or the objects it creates first makes it current on the calling OS thread,
// so they may be used from any goroutine.
type Context struct {
	dev      Device
	h        C.CUcontext
	released atomic.Bool
}

// RetainPrimaryContext retains the device's primary context (the one the CUDA runtime and cuBLAS use).
func (d Device) RetainPrimaryContext() (*Context, error) {
	var h C.CUcontext
	if err := cuErr(C.tr_cuDevicePrimaryCtxRetain(&h, C.CUdevice(d.h)), fmt.Sprintf("cuDevicePrimaryCtxRetain(device %d)", d.ordinal)); err != nil {
		return nil, err
	}
	return &Context{dev: d, h: h}, nil
}

// Device is the context's device.
func (c *Context) Device() Device { return c.dev }

// SetCurrent makes c current on the calling OS thread (for code that calls CUDA itself).
func (c *Context) SetCurrent() error { return cuErr(C.tr_cuCtxSetCurrent(c.h), "cuCtxSetCurrent") }

// Synchronize waits for all work in the context.
func (c *Context) Synchronize() error { return cuErr(C.tr_cuCtxSynchronize(c.h), "cuCtxSynchronize") }

// Release drops the retain; the second and later calls do nothing.
func (c *Context) Release() error {
	if !c.released.CompareAndSwap(false, true) {
		return nil
	}
	return cuErr(C.tr_cuDevicePrimaryCtxRelease(C.CUdevice(c.dev.h)), "cuDevicePrimaryCtxRelease")
}

// MemInfo is the free and total device memory in bytes.
func (c *Context) MemInfo() (free, total uint64, err error) {
	var f, t C.size_t
	if err := cuErr(C.tr_cuMemGetInfo(c.h, &f, &t), "cuMemGetInfo"); err != nil {
		return 0, 0, err
	}
	return uint64(f), uint64(t), nil
}

// MemAlloc allocates bytes of device memory; what names the use in an error. 0 bytes gives the null pointer.
func (c *Context) MemAlloc(bytes int, what string) (DevicePtr, error) {
	if bytes < 0 {
		return 0, fmt.Errorf("cuda: %s: negative size %d", allocOp("cuMemAlloc", 0, what), bytes)
	}
	if bytes == 0 {
		return 0, nil
	}
	var p C.CUdeviceptr
	if r := C.tr_cuMemAlloc(c.h, &p, C.size_t(bytes)); r != 0 {
		return 0, cuErr(r, allocOp("cuMemAlloc", bytes, what))
	}
	return DevicePtr(p), nil
}

// MemFree frees memory from MemAlloc; freeing the null pointer does nothing.
func (c *Context) MemFree(p DevicePtr) error {
	if p == 0 {
		return nil
	}
	return cuErr(C.tr_cuMemFree(c.h, C.CUdeviceptr(p)), "cuMemFree")
}

// Stream is a CUDA stream: the work queued on it runs in order.
type Stream struct {
	ctx *Context
	h   C.CUstream
}

// NewStream creates a stream (CU_STREAM_DEFAULT: it also orders with the legacy default stream).
func (c *Context) NewStream() (*Stream, error) {
	var h C.CUstream
	if err := cuErr(C.tr_cuStreamCreate(c.h, &h, 0), "cuStreamCreate"); err != nil {
		return nil, err
	}
	return &Stream{ctx: c, h: h}, nil
}

// Context is the context the stream belongs to.
func (s *Stream) Context() *Context { return s.ctx }

// Handle is the raw CUstream, for libraries that queue work on it (NCCL).
func (s *Stream) Handle() uintptr { return uintptr(unsafe.Pointer(s.h)) }

// sizeErr rejects a negative byte or element count.
func sizeErr(op string, n int) error {
	return fmt.Errorf("cuda: %s: negative size %d", op, n)
}

// MemcpyHtoD queues a copy of bytes from host src to device dst. From Go
// (pageable) memory the driver has copied src before it returns; from HostMem
// the copy is asynchronous: keep src unchanged until the stream syncs.
func (s *Stream) MemcpyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	if bytes <= 0 {
		if bytes < 0 {
			return sizeErr("cuMemcpyHtoDAsync", bytes)
		}
		return nil
	}
	if r := C.tr_cuMemcpyHtoDAsync(s.ctx.h, C.CUdeviceptr(dst), src, C.size_t(bytes), s.h); r != 0 {
		return cuErr(r, fmt.Sprintf("cuMemcpyHtoDAsync(%s)", formatBytes(uint64(bytes))))
	}
	return nil
}

// MemcpyDtoH queues a copy of bytes from device src to host dst. Into Go
// (pageable) memory it returns when the data has arrived; into HostMem it is
// asynchronous: read dst after the stream syncs.
func (s *Stream) MemcpyDtoH(dst unsafe.Pointer, src DevicePtr, bytes int) error {
	if bytes <= 0 {
		if bytes < 0 {
			return sizeErr("cuMemcpyDtoHAsync", bytes)
		}
		return nil
	}
	if r := C.tr_cuMemcpyDtoHAsync(s.ctx.h, dst, C.CUdeviceptr(src), C.size_t(bytes), s.h); r != 0 {
		return cuErr(r, fmt.Sprintf("cuMemcpyDtoHAsync(%s)", formatBytes(uint64(bytes))))
	}
	return nil
}

// MemcpyDtoD queues a device-to-device copy of bytes.
func (s *Stream) MemcpyDtoD(dst, src DevicePtr, bytes int) error {
	if bytes <= 0 {
		if bytes < 0 {
			return sizeErr("cuMemcpyDtoDAsync", bytes)
		}
		return nil
	}
	if r := C.tr_cuMemcpyDtoDAsync(s.ctx.h, C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(bytes), s.h); r != 0 {
		return cuErr(r, fmt.Sprintf("cuMemcpyDtoDAsync(%s)", formatBytes(uint64(bytes))))
	}
	return nil
}

// MemsetD32 queues setting count 32-bit words at dst to v (math.Float32bits for floats).
func (s *Stream) MemsetD32(dst DevicePtr, v uint32, count int) error {
	if count <= 0 {
		if count < 0 {
			return sizeErr("cuMemsetD32Async", count)
		}
		return nil
	}
	if r := C.tr_cuMemsetD32Async(s.ctx.h, C.CUdeviceptr(dst), C.uint(v), C.size_t(count), s.h); r != 0 {
		return cuErr(r, fmt.Sprintf("cuMemsetD32Async(%d words)", count))
	}
	return nil
}

// MemsetD8 queues setting count bytes at dst to v.
func (s *Stream) MemsetD8(dst DevicePtr, v uint8, count int) error {
	if count <= 0 {
		if count < 0 {
			return sizeErr("cuMemsetD8Async", count)
		}
		return nil
	}
	if r := C.tr_cuMemsetD8Async(s.ctx.h, C.CUdeviceptr(dst), C.uchar(v), C.size_t(count), s.h); r != 0 {
		return cuErr(r, fmt.Sprintf("cuMemsetD8Async(%d bytes)", count))
	}
	return nil
}

// Synchronize waits until all work queued on the stream has finished; it reports asynchronous kernel errors.
func (s *Stream) Synchronize() error {
	return cuErr(C.tr_cuStreamSynchronize(s.ctx.h, s.h), "cuStreamSynchronize")
}

// Destroy destroys the stream (queued work still completes); the second call does nothing.
func (s *Stream) Destroy() error {
	if s.h == nil {
		return nil
	}
	h := s.h
	s.h = nil
	return cuErr(C.tr_cuStreamDestroy(s.ctx.h, h), "cuStreamDestroy")
}

// HostMem is page-locked host memory: fast and truly asynchronous copies.
type HostMem struct {
	ctx *Context
	p   unsafe.Pointer
	n   int
}

// MemHostAlloc allocates bytes of pinned host memory.
func (c *Context) MemHostAlloc(bytes int) (*HostMem, error) {
	if bytes <= 0 {
		return nil, fmt.Errorf("cuda: cuMemHostAlloc: size %d must be positive", bytes)
	}
	var p unsafe.Pointer
	if r := C.tr_cuMemHostAlloc(c.h, &p, C.size_t(bytes), 0); r != 0 {
		return nil, cuErr(r, allocOp("cuMemHostAlloc", bytes, "pinned host memory"))
	}
	return &HostMem{ctx: c, p: p, n: bytes}, nil
}

// Ptr is the start of the memory, for the Memcpy calls.
func (h *HostMem) Ptr() unsafe.Pointer { return h.p }

// Len is the size in bytes.
func (h *HostMem) Len() int { return h.n }

// Bytes views the memory as bytes; the view is invalid after Free.
func (h *HostMem) Bytes() []byte { return unsafe.Slice((*byte)(h.p), h.n) }

// Float32s views the memory as float32s (Len/4 of them); invalid after Free.
func (h *HostMem) Float32s() []float32 { return unsafe.Slice((*float32)(h.p), h.n/4) }

// Int32s views the memory as int32s (Len/4 of them); invalid after Free.
func (h *HostMem) Int32s() []int32 { return unsafe.Slice((*int32)(h.p), h.n/4) }

// Free releases the memory; the second call does nothing.
func (h *HostMem) Free() error {
	if h.p == nil {
		return nil
	}
	p := h.p
	h.p, h.n = nil, 0
	return cuErr(C.tr_cuMemFreeHost(h.ctx.h, p), "cuMemFreeHost")
}

// Event marks a point in a stream, for timing and waiting.
type Event struct {
	ctx *Context
	h   C.CUevent
}

// NewEvent creates an event with timing enabled.
func (c *Context) NewEvent() (*Event, error) {
	var h C.CUevent
	if err := cuErr(C.tr_cuEventCreate(c.h, &h, 0), "cuEventCreate"); err != nil {
		return nil, err
	}
	return &Event{ctx: c, h: h}, nil
}

// Record queues the event on s (nil: the legacy default stream).
func (e *Event) Record(s *Stream) error {
	var sh C.CUstream
	if s != nil {
		sh = s.h
	}
	return cuErr(C.tr_cuEventRecord(e.ctx.h, e.h, sh), "cuEventRecord")
}

// Synchronize waits until the event has happened.
func (e *Event) Synchronize() error {
	return cuErr(C.tr_cuEventSynchronize(e.ctx.h, e.h), "cuEventSynchronize")
}

// Destroy destroys the event; the second call does nothing.
func (e *Event) Destroy() error {
	if e.h == nil {
		return nil
	}
	h := e.h
	e.h = nil
	return cuErr(C.tr_cuEventDestroy(e.ctx.h, h), "cuEventDestroy")
}

// ElapsedMs is the time in milliseconds between two recorded, completed events.
func ElapsedMs(start, end *Event) (float32, error) {
	var ms C.float
	if err := cuErr(C.tr_cuEventElapsedTime(start.ctx.h, &ms, start.h, end.h), "cuEventElapsedTime"); err != nil {
		return 0, err
	}
	return float32(ms), nil
}

// Module is loaded device code (PTX, cubin or fatbin).
type Module struct {
	ctx *Context
	h   C.CUmodule
}

// jitLogSize is the size of each JIT log buffer.
const jitLogSize = 16 << 10

// LoadModule loads a PTX (or cubin/fatbin) image; on failure the error's Log holds the JIT error log.
func (c *Context) LoadModule(image []byte) (*Module, error) {
	// Copy with a terminating NUL (PTX is text) into C memory.
	img := C.malloc(C.size_t(len(image) + 1))
	defer C.free(img)
	if len(image) > 0 {
		C.memcpy(img, unsafe.Pointer(&image[0]), C.size_t(len(image)))
	}
	*(*byte)(unsafe.Add(img, len(image))) = 0
	logs := C.malloc(2 * jitLogSize)
	defer C.free(logs)
	errbuf, infobuf := (*C.char)(logs), (*C.char)(unsafe.Add(logs, jitLogSize))
	sizes := (*[2]C.size_t)(C.malloc(C.size_t(unsafe.Sizeof([2]C.size_t{}))))
	defer C.free(unsafe.Pointer(sizes))
	sizes[0], sizes[1] = jitLogSize, jitLogSize
	var h C.CUmodule
	r := C.tr_cuModuleLoadDataEx(c.h, &h, img, errbuf, &sizes[0], infobuf, &sizes[1])
	if r != 0 {
		e := newCUDAError(int(r), fmt.Sprintf("cuModuleLoadDataEx(%d-byte image)", len(image)))
		// The log is NUL-terminated; make sure of it rather than trust the size.
		*(*byte)(unsafe.Add(logs, jitLogSize-1)) = 0
		e.Log = strings.TrimSpace(C.GoString(errbuf))
		return nil, e
	}
	return &Module{ctx: c, h: h}, nil
}

// Function looks up a kernel by its (extern "C" or mangled) name.
func (m *Module) Function(name string) (*Function, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var f C.CUfunction
	if err := cuErr(C.tr_cuModuleGetFunction(m.ctx.h, &f, m.h, cname), fmt.Sprintf("cuModuleGetFunction(%q)", name)); err != nil {
		return nil, err
	}
	return &Function{ctx: m.ctx, h: f, name: name}, nil
}

// Unload unloads the module; its Functions become invalid. The second call does nothing.
func (m *Module) Unload() error {
	if m.h == nil {
		return nil
	}
	h := m.h
	m.h = nil
	return cuErr(C.tr_cuModuleUnload(m.ctx.h, h), "cuModuleUnload")
}

// Function is a kernel in a loaded Module.
type Function struct {
	ctx  *Context
	h    C.CUfunction
	name string
}

// Name is the kernel's name.
func (f *Function) Name() string { return f.name }

// Launch queues the kernel on s with the given grid and block sizes, dynamic
// shared memory in bytes, and arguments (nil for none); s nil means the
// legacy default stream. It allocates nothing.
// Errors in the kernel itself show up at the next synchronising call.
func (f *Function) Launch(s *Stream, grid, block [3]uint32, sharedMem uint32, args *Args) error {
	var params *unsafe.Pointer
	if args != nil {
		if args.err != nil {
			return args.err
		}
		if args.n > 0 {
			params = (*unsafe.Pointer)(args.ptrs)
		}
	}
	var sh C.CUstream
	if s != nil {
		sh = s.h
	}
	r := C.tr_cuLaunchKernel(f.ctx.h, f.h,
		C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]),
		C.uint(block[0]), C.uint(block[1]), C.uint(block[2]),
		C.uint(sharedMem), sh, params)
	if r != 0 {
		n := 0
		if args != nil {
			n = args.n
		}
		return cuErr(r, fmt.Sprintf("cuLaunchKernel(%s, grid %v, block %v, %d B shared, %d args)", f.name, grid, block, sharedMem, n))
	}
	return nil
}

// ---- Args memory: C heap ----

// argMem is unused with cgo: the memory is C's.
type argMem = *runtime.Cleanup

// newArgMem mallocs the value slots and the pointer array in one C block; a
// cleanup frees it if the Args is dropped without Free.
func newArgMem(a *Args) (vals, ptrs unsafe.Pointer, mem argMem) {
	block := C.malloc(C.size_t(2 * 8 * MaxArgs))
	if block == nil {
		panic("cuda: out of C memory for kernel arguments")
	}
	vals = block
	ptrs = unsafe.Add(block, 8*MaxArgs)
	C.tr_args_init((*unsafe.Pointer)(ptrs), (*C.char)(vals), MaxArgs)
	c := runtime.AddCleanup(a, func(p unsafe.Pointer) { C.free(p) }, block)
	return vals, ptrs, &c
}

// freeArgMem frees the block and cancels the cleanup.
func freeArgMem(vals unsafe.Pointer, mem argMem) {
	if mem != nil {
		mem.Stop()
	}
	C.free(vals)
}

// clearCurrentContext leaves no context current on this OS thread (for tests).
func clearCurrentContext() error { return cuErr(C.tr_cuCtxSetCurrent(nil), "cuCtxSetCurrent(NULL)") }

// resetForTest forgets the loaded libraries, so that the next Load reads the
// environment again (for tests, which run one at a time). Libraries stay
// mapped; nothing made with the old tables may be used afterwards.
func resetForTest() {
	drv, blas = loadState{}, loadState{}
	initDone.Store(false)
	C.tr_cu = C.tr_cu_api{}
	C.tr_cug = C.tr_cu_graph_api{}
	C.tr_blas = C.tr_blas_api{}
	C.tr_blaso = C.tr_blas_opt_api{}
}

// driverSymbolNames lists the driver table's names (for tests).
func driverSymbolNames() []string {
	var a C.tr_cu_api
	return symbolNames(driverSymbols(&a))
}

// blasSymbolNames lists the cuBLAS table's names (for tests).
func blasSymbolNames() []string {
	var a C.tr_blas_api
	return symbolNames(blasSymbols(&a))
}

// optionalSymbolNames lists the optional tables' names, the driver's then
// cuBLAS's (for tests).
func optionalSymbolNames() (driver, blas []string) {
	var g C.tr_cu_graph_api
	var o C.tr_blas_opt_api
	return symbolNames(graphSymbols(&g)), symbolNames(blasOptSymbols(&o))
}

func symbolNames(t []symbol) []string {
	out := make([]string, len(t))
	for i, s := range t {
		out[i] = s.name
	}
	return out
}

// loadDriverFrom resolves the driver table from names without touching the
// loaded state (for tests).
func loadDriverFrom(names []string) (string, error) {
	var a C.tr_cu_api
	var g C.tr_cu_graph_api
	path, _, err := loadFrom("CUDA driver", EnvLibCUDA, names, driverSymbols(&a), graphSymbols(&g))
	return path, err
}

// loadBlasFrom is loadDriverFrom for cuBLAS.
func loadBlasFrom(names []string) (string, error) {
	var a C.tr_blas_api
	var o C.tr_blas_opt_api
	path, _, err := loadFrom("cuBLAS", EnvLibCUBLAS, names, blasSymbols(&a), blasOptSymbols(&o))
	return path, err
}

// tableMatchesStruct checks that the tables name every field of the C
// structs, each at its own field (for tests): a typo cannot resolve a symbol
// into the wrong slot, and no slot is left unresolved.
func tableMatchesStruct() error {
	var cu C.tr_cu_api
	var g C.tr_cu_graph_api
	var bl C.tr_blas_api
	var o C.tr_blas_opt_api
	if err := checkTable(unsafe.Pointer(&cu), reflect.TypeOf(cu), driverSymbols(&cu)); err != nil {
		return err
	}
	if err := checkTable(unsafe.Pointer(&g), reflect.TypeOf(g), graphSymbols(&g)); err != nil {
		return err
	}
	if err := checkTable(unsafe.Pointer(&o), reflect.TypeOf(o), blasOptSymbols(&o)); err != nil {
		return err
	}
	return checkTable(unsafe.Pointer(&bl), reflect.TypeOf(bl), blasSymbols(&bl))
}

func checkTable(base unsafe.Pointer, t reflect.Type, syms []symbol) error {
	if len(syms) != t.NumField() {
		return fmt.Errorf("%s has %d fields but the table %d entries", t, t.NumField(), len(syms))
	}
	for _, s := range syms {
		off := uintptr(unsafe.Pointer(s.ptr)) - uintptr(base)
		found := false
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.Offset == off {
				found = true
				if f.Name != s.name {
					return fmt.Errorf("table entry %q points at field %s", s.name, f.Name)
				}
			}
		}
		if !found {
			return fmt.Errorf("table entry %q points outside %s", s.name, t)
		}
	}
	return nil
}
