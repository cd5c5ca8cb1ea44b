//go:build cgo

package gpu

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/trainer-go/trainer/cuda"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
	"github.com/trainer-go/trainer/kernels/emu"
)

// emuDev is the Backend's dev on the host, for the conformance suite without
// a GPU: device memory is C memory from emu.Malloc (a "device pointer" is its
// address, fenced by guard zones), a launch hands the Backend's packed
// parameter buffer, the very kernelParams it would give cuLaunchKernel, to the
// emulator's host-compiled kernel, and Sgemm and GemmBF16 are a plain
// column-major reference GEMM in float64, GemmBF16 reading bfloat16
// operands (cuBLAS is not emulated: what this checks of Gemm is the
// Backend's operand swap, leading dimensions and operand types).
//
// Every launch is also checked against the kernel's C signature as the C++
// compiler sees it (emu.Signatures): the number of arguments and, slot by
// slot, that the Backend packed each one as the parameter's type (a
// pointer, an int, a float, an unsigned long long), so a wrong order, size
// or type in the packing fails here even where the values would happen to
// read the same.
//
// Capture is the driver's, emulated: while the stream captures, a launch
// or GEMM is recorded (a launch with a copy of its packed argument values,
// as cuLaunchKernel keeps them) instead of run, and anything that would
// wait, allocate, free or copy fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
// and invalidates the capture; a graph launch replays the record in order.
// So the kernels of a replay read device memory as it is then, with the
// arguments of the capture.
type emuDev struct {
	stage uintptr
	t     *testing.T

	noGraphs    error          // GraphSupport's answer (nil: graphs work)
	failCapture error          // when set, every capture ends with this error (a test of the fallback)
	skipReplay  bool           // graph launches do nothing (to count the host's allocations without the emulator's)
	capturing   bool           // recording
	invalid     bool           // something invalidated the capture
	rec         []func() error // the capture's record
	recArgs     []*cuda.Args   // the argument copies the record holds
	reads       [readSlots][readSlotBytes]byte
}

// errCapture is what the driver returns for work a capture cannot hold.
var errCapture = &cuda.Error{Code: 900, Name: "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", Desc: "operation not permitted when stream is capturing"}

// refuse fails and invalidates a capture under way (CUDA's behaviour for
// a synchronisation, an allocation or a pageable copy inside one).
func (d *emuDev) refuse(op string) error {
	if !d.capturing {
		return nil
	}
	d.invalid = true
	e := *errCapture
	e.Op = op
	return &e
}

func (d *emuDev) GraphSupport() error { return d.noGraphs }

func (d *emuDev) BeginCapture() error {
	if d.noGraphs != nil {
		return d.noGraphs
	}
	if d.capturing {
		return &cuda.Error{Code: 401, Name: "CUDA_ERROR_ILLEGAL_STATE", Op: "cuStreamBeginCapture"}
	}
	d.capturing, d.invalid, d.rec, d.recArgs = true, false, nil, nil
	return nil
}

func (d *emuDev) EndCapture() (devGraph, error) {
	if !d.capturing {
		return nil, &cuda.Error{Code: 401, Name: "CUDA_ERROR_ILLEGAL_STATE", Op: "cuStreamEndCapture"}
	}
	g := &emuGraph{d: d, ops: d.rec, args: d.recArgs}
	d.capturing, d.rec, d.recArgs = false, nil, nil
	if d.failCapture != nil {
		g.Destroy()
		return nil, d.failCapture
	}
	if d.invalid {
		g.Destroy()
		return nil, &cuda.Error{Code: 901, Name: "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", Op: "cuStreamEndCapture"}
	}
	return g, nil
}

// emuGraph is a captured record, replayed in order.
type emuGraph struct {
	d    *emuDev
	ops  []func() error
	args []*cuda.Args
}

func (g *emuGraph) Launch() error {
	if g.ops == nil && g.args == nil {
		return &cuda.Error{Code: 400, Name: "CUDA_ERROR_INVALID_HANDLE", Op: "cuGraphLaunch"}
	}
	if g.d.skipReplay {
		return nil
	}
	for _, op := range g.ops {
		if err := op(); err != nil {
			return err
		}
	}
	return nil
}

func (g *emuGraph) Destroy() error {
	for _, a := range g.args {
		a.Free()
	}
	g.ops, g.args = nil, nil
	return nil
}

// copyArgs copies a launch's packed argument values, as the driver does at
// cuLaunchKernel (in a capture, the node keeps the copy).
func copyArgs(a *cuda.Args) *cuda.Args {
	c := cuda.NewArgs()
	for i := range a.Len() {
		p := *(*unsafe.Pointer)(unsafe.Add(a.Params(), 8*i))
		switch a.Kind(i) {
		case cuda.KindI32:
			c.I32(*(*int32)(p))
		case cuda.KindU32:
			c.U32(*(*uint32)(p))
		case cuda.KindF32:
			c.F32(*(*float32)(p))
		case cuda.KindI64:
			c.I64(*(*int64)(p))
		default:
			c.Ptr(*(*cuda.DevicePtr)(p))
		}
	}
	return c
}

func (d *emuDev) ReadAsync(i int, src cuda.DevicePtr, bytes int) error {
	if err := d.refuse("cuMemcpyDtoHAsync"); err != nil {
		return err
	}
	copy(d.reads[i][:], emu.Bytes(uintptr(src), bytes)) // in stream order: the emulator runs every op at once
	return nil
}

func (d *emuDev) ReadWait(i int) ([]byte, error) { return d.reads[i][:], nil }

// emuSigs is emu.Signatures, read once.
var emuSigs = sync.OnceValue(emu.Signatures)

// kindOf is the cuda.Args kind that packs a parameter of C type ctype.
func kindOf(ctype string) cuda.ArgKind {
	switch {
	case ctype == "int":
		return cuda.KindI32
	case ctype == "float":
		return cuda.KindF32
	case ctype == "unsigned long long":
		return cuda.KindI64
	case strings.HasSuffix(ctype, "*"):
		return cuda.KindPtr
	}
	return 0
}

// checkPacking compares a launch's packed arguments with k's signature.
func checkPacking(k *kernels.Kernel, args *cuda.Args) error {
	sig, ok := emuSigs()[k.Name]
	if !ok {
		return fmt.Errorf("emu: no kernel %s", k.Name)
	}
	if args.Len() != len(sig) {
		return fmt.Errorf("emu: %s takes %d arguments, the Backend packed %d", k.Name, len(sig), args.Len())
	}
	for i, ctype := range sig {
		if want := kindOf(ctype); args.Kind(i) != want {
			return fmt.Errorf("emu: %s parameter %d is %s, the Backend packed it as %v", k.Name, i, ctype, args.Kind(i))
		}
	}
	return nil
}

// emuMemory is the device memory emuDev pretends to have: larger requests
// fail with CUDA_ERROR_OUT_OF_MEMORY, as on a GPU.
const emuMemory = 1 << 30

func newEmuBackend(t *testing.T) *Backend {
	return newEmuBackendAt(t, device.PrecisionFP32)
}

// newEmuBackendAt is newEmuBackend computing its GEMMs in precision prec.
func newEmuBackendAt(t *testing.T, prec device.Precision) *Backend {
	return newBackend(&emuDev{t: t}, "GPU backend on the kernel emulator", emuMemory, prec, true)
}

func (d *emuDev) MemAlloc(bytes int, what string) (cuda.DevicePtr, error) {
	if err := d.refuse("cuMemAlloc"); err != nil {
		return 0, err
	}
	var p uintptr
	if bytes <= emuMemory {
		p = emu.Malloc(bytes)
	}
	if p == 0 {
		return 0, &cuda.Error{Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory",
			Op: fmt.Sprintf("cuMemAlloc(%d bytes for %q)", bytes, what)}
	}
	return cuda.DevicePtr(p), nil
}

func (d *emuDev) MemFree(p cuda.DevicePtr) error {
	if err := d.refuse("cuMemFree"); err != nil {
		return err
	}
	return emu.Free(uintptr(p))
}

func (d *emuDev) MemInfo() (free, total uint64, err error) { return emuMemory, emuMemory, nil }

func (d *emuDev) MemsetD8(p cuda.DevicePtr, v uint8, bytes int) error {
	if err := d.refuse("cuMemsetD8Async"); err != nil { // CUDA would capture it; the backend never needs to
		return err
	}
	b := emu.Bytes(uintptr(p), bytes)
	for i := range b {
		b[i] = v
	}
	return nil
}

func (d *emuDev) Staging() ([]byte, error) {
	if d.stage == 0 {
		d.stage = emu.Malloc(stageBytes)
	}
	return emu.Bytes(d.stage, stageBytes), nil
}

func (d *emuDev) MemcpyHtoD(dst cuda.DevicePtr, src unsafe.Pointer, bytes int) error {
	if err := d.refuse("cuMemcpyHtoDAsync"); err != nil {
		return err
	}
	copy(emu.Bytes(uintptr(dst), bytes), unsafe.Slice((*byte)(src), bytes))
	return nil
}

func (d *emuDev) MemcpyDtoH(dst unsafe.Pointer, src cuda.DevicePtr, bytes int) error {
	if err := d.refuse("cuMemcpyDtoHAsync"); err != nil {
		return err
	}
	copy(unsafe.Slice((*byte)(dst), bytes), emu.Bytes(uintptr(src), bytes))
	return nil
}

func (d *emuDev) Synchronize() error { return d.refuse("cuStreamSynchronize") }

func (d *emuDev) Launch(k *kernels.Kernel, grid, block int, args *cuda.Args) error {
	if args.Err() != nil {
		return args.Err()
	}
	if err := checkPacking(k, args); err != nil {
		return err
	}
	if d.capturing {
		c := copyArgs(args)
		d.recArgs = append(d.recArgs, c)
		d.rec = append(d.rec, func() error {
			return emu.LaunchParams(k.Name, emu.Launch{Grid: grid, Block: block}, c.Params(), c.Len())
		})
		return nil
	}
	return emu.LaunchParams(k.Name, emu.Launch{Grid: grid, Block: block}, args.Params(), args.Len())
}

// f32s views n float32 at p.
func f32s(p cuda.DevicePtr, n int) []float32 {
	if n <= 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&emu.Bytes(uintptr(p), 4*n)[0])), n)
}

// u16s views n uint16 (bfloat16 bits) at p.
func u16s(p cuda.DevicePtr, n int) []uint16 {
	if n <= 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&emu.Bytes(uintptr(p), 2*n)[0])), n)
}

// Sgemm is cuBLAS's column-major C = alpha*op(A)*op(B) + beta*C, op(A) m x k,
// summed in float64; beta = 0 ignores C (NaN there does not propagate).
func (d *emuDev) Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error {
	return d.gemm(func() error {
		return emuGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
			func(p cuda.DevicePtr, n int) func(int) float64 {
				s := f32s(p, n)
				return func(i int) float64 { return float64(s[i]) }
			})
	})
}

// gemm runs a GEMM now, or records it while capturing (cuBLAS's kernels
// are captured with these arguments).
func (d *emuDev) gemm(run func() error) error {
	if d.capturing {
		d.rec = append(d.rec, run)
		return nil
	}
	return run()
}

// GemmBF16 is Sgemm reading A and B as bfloat16 (exact in float64).
func (d *emuDev) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error {
	return d.gemm(func() error {
		return emuGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
			func(p cuda.DevicePtr, n int) func(int) float64 {
				s := u16s(p, n)
				return func(i int) float64 { return float64(device.BF16Float(s[i])) }
			})
	})
}

// emuGemm is the reference of Sgemm and GemmBF16, reading the n elements
// of an operand at p through operand(p, n).
func emuGemm(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int, operand func(p cuda.DevicePtr, n int) func(int) float64) error {
	if m == 0 || n == 0 {
		return nil
	}
	ra, ca, rb, cb := m, k, k, n // stored rows and columns of A and B
	if transA {
		ra, ca = k, m
	}
	if transB {
		rb, cb = n, k
	}
	A, B, C := operand(a, lda*(ca-1)+ra), operand(b, ldb*(cb-1)+rb), f32s(c, ldc*(n-1)+m)
	at := func(i, l int) float64 {
		if transA {
			return A(l + i*lda)
		}
		return A(i + l*lda)
	}
	bt := func(l, j int) float64 {
		if transB {
			return B(j + l*ldb)
		}
		return B(l + j*ldb)
	}
	for j := range n {
		for i := range m {
			s := 0.0
			for l := range k {
				s += at(i, l) * bt(l, j)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(C[i+j*ldc])
			}
			C[i+j*ldc] = float32(v)
		}
	}
	return nil
}

func (d *emuDev) Close() error {
	err := emu.CheckGuards()
	if d.stage != 0 {
		emu.Free(d.stage)
		d.stage = 0
	}
	return err
}
