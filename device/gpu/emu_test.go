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
type emuDev struct {
	stage uintptr
	t     *testing.T
}

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

func (d *emuDev) MemFree(p cuda.DevicePtr) error { return emu.Free(uintptr(p)) }

func (d *emuDev) MemInfo() (free, total uint64, err error) { return emuMemory, emuMemory, nil }

func (d *emuDev) MemsetD8(p cuda.DevicePtr, v uint8, bytes int) error {
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
	copy(emu.Bytes(uintptr(dst), bytes), unsafe.Slice((*byte)(src), bytes))
	return nil
}

func (d *emuDev) MemcpyDtoH(dst unsafe.Pointer, src cuda.DevicePtr, bytes int) error {
	copy(unsafe.Slice((*byte)(dst), bytes), emu.Bytes(uintptr(src), bytes))
	return nil
}

func (d *emuDev) Synchronize() error { return nil }

func (d *emuDev) Launch(k *kernels.Kernel, grid, block int, args *cuda.Args) error {
	if args.Err() != nil {
		return args.Err()
	}
	if err := checkPacking(k, args); err != nil {
		return err
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
	return emuGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
		func(p cuda.DevicePtr, n int) func(int) float64 {
			s := f32s(p, n)
			return func(i int) float64 { return float64(s[i]) }
		})
}

// GemmBF16 is Sgemm reading A and B as bfloat16 (exact in float64).
func (d *emuDev) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a cuda.DevicePtr, lda int,
	b cuda.DevicePtr, ldb int, beta float32, c cuda.DevicePtr, ldc int) error {
	return emuGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
		func(p cuda.DevicePtr, n int) func(int) float64 {
			s := u16s(p, n)
			return func(i int) float64 { return float64(device.BF16Float(s[i])) }
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
