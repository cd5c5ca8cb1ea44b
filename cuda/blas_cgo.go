//go:build cgo

package cuda

/*
#include "api.h"
*/
import "C"

import (
	"fmt"
	"math"
)

// cuBLAS enum values (cublas_api.h).
const (
	cublasOpN              = 0
	cublasOpT              = 1
	cublasDefaultMath      = 0
	cublasTF32TensorOpMath = 3
	cudaR32F               = 0  // CUDA_R_32F (library_types.h)
	cudaR16BF              = 14 // CUDA_R_16BF
	cublasCompute32F       = 68 // CUBLAS_COMPUTE_32F
	cublasGemmDefault      = -1 // CUBLAS_GEMM_DEFAULT
)

// blasErr turns a shim's result into nil or an *Error: > 0 is a cuBLAS
// status, < 0 minus the CUresult of making the context current.
func blasErr(r C.int, op string) error {
	switch {
	case r == 0:
		return nil
	case r < 0:
		return newCUDAError(int(-r), op)
	}
	return blasError(int(r), op)
}

// BlasVersion loads cuBLAS if needed and returns its version, e.g. "12.4.5" (needs no GPU).
func BlasVersion() (string, error) {
	if _, err := Load(); err != nil {
		return "", err
	}
	var v [3]C.int
	for i := range v {
		if err := blasErr(C.tr_cublasGetProperty(C.int(i), &v[i]), "cublasGetProperty"); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]), nil
}

// checkBlasHandle creates and destroys a cuBLAS handle in device d's
// primary context: the proof that the loaded cuBLAS works with this driver
// (a cuBLAS newer than the driver loads, then fails here).
func checkBlasHandle(d Device) error {
	ctx, err := d.RetainPrimaryContext()
	if err != nil {
		return err
	}
	defer ctx.Release()
	var h C.cublasHandle_t
	if err := blasErr(C.tr_cublasCreate(ctx.h, &h), "cublasCreate"); err != nil {
		return err
	}
	return blasErr(C.tr_cublasDestroy(ctx.h, h), "cublasDestroy")
}

// Blas is a cuBLAS handle bound to one stream. Not safe for concurrent use.
type Blas struct {
	ctx     *Context
	h       C.cublasHandle_t
	version int
}

// NewBlas loads cuBLAS if needed and creates a handle that queues its work on s (not nil).
func NewBlas(s *Stream) (*Blas, error) {
	if _, err := Load(); err != nil {
		return nil, err
	}
	var h C.cublasHandle_t
	if err := blasErr(C.tr_cublasCreate(s.ctx.h, &h), "cublasCreate"); err != nil {
		return nil, err
	}
	b := &Blas{ctx: s.ctx, h: h}
	if err := blasErr(C.tr_cublasSetStream(h, s.h), "cublasSetStream"); err != nil {
		b.Destroy()
		return nil, err
	}
	var v C.int
	if err := blasErr(C.tr_cublasGetVersion(h, &v), "cublasGetVersion"); err != nil {
		b.Destroy()
		return nil, err
	}
	b.version = int(v)
	return b, nil
}

// Version is cuBLAS's version number, major*10000 + minor*100 + patch (e.g. 120405).
func (bl *Blas) Version() int { return bl.version }

// SetMathMode allows TF32 tensor-core math in Sgemm (tf32 true) or requires
// full FP32 (CUBLAS_DEFAULT_MATH, the default).
func (bl *Blas) SetMathMode(tf32 bool) error {
	mode := cublasDefaultMath
	if tf32 {
		mode = cublasTF32TensorOpMath
	}
	return blasErr(C.tr_cublasSetMathMode(bl.h, C.int(mode)), fmt.Sprintf("cublasSetMathMode(%d)", mode))
}

// op is the cublasOperation_t for a transpose flag.
func op(trans bool) C.int {
	if trans {
		return cublasOpT
	}
	return cublasOpN
}

// opName is "N" or "T" for messages.
func opName(trans bool) string {
	if trans {
		return "T"
	}
	return "N"
}

// fitsInt32 reports whether every value is a valid cuBLAS int.
func fitsInt32(vs ...int) bool {
	for _, v := range vs {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return false
		}
	}
	return true
}

// Sgemm queues C = alpha*op(A)*op(B) + beta*C in cuBLAS's COLUMN-MAJOR
// convention: C is m x n with leading dimension ldc, op(A) is m x k, op(B) is
// k x n, and op(X) is X or its transpose. For row-major data compute the
// transposed product instead: swap A and B, m and n, and the flags
// (row-major C = A*B is column-major C^T = B^T*A^T). Allocates nothing.
func (bl *Blas) Sgemm(transA, transB bool, m, n, k int, alpha float32, a DevicePtr, lda int,
	b DevicePtr, ldb int, beta float32, c DevicePtr, ldc int) error {
	if !fitsInt32(m, n, k, lda, ldb, ldc) {
		return fmt.Errorf("cuda: cublasSgemm: a size exceeds int32 (m=%d n=%d k=%d lda=%d ldb=%d ldc=%d)", m, n, k, lda, ldb, ldc)
	}
	r := C.tr_cublasSgemm(bl.ctx.h, bl.h, op(transA), op(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), C.CUdeviceptr(a), C.int(lda), C.CUdeviceptr(b), C.int(ldb),
		C.float(beta), C.CUdeviceptr(c), C.int(ldc))
	if r != 0 {
		return blasErr(r, fmt.Sprintf("cublasSgemm(%s%s, m=%d n=%d k=%d, lda=%d ldb=%d ldc=%d)",
			opName(transA), opName(transB), m, n, k, lda, ldb, ldc))
	}
	return nil
}

// GemmBF16 queues C = alpha*op(A)*op(B) + beta*C in Sgemm's column-major
// convention with A and B bfloat16 (CUDA_R_16BF, 2 bytes an element), C
// float32 (CUDA_R_32F) and float32 accumulation (CUBLAS_COMPUTE_32F,
// CUBLAS_GEMM_DEFAULT): cublasGemmEx. cuBLAS runs it on tensor cores from
// compute capability 8.0 (Ampere); older GPUs refuse it. Allocates nothing.
func (bl *Blas) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a DevicePtr, lda int,
	b DevicePtr, ldb int, beta float32, c DevicePtr, ldc int) error {
	if !fitsInt32(m, n, k, lda, ldb, ldc) {
		return fmt.Errorf("cuda: cublasGemmEx: a size exceeds int32 (m=%d n=%d k=%d lda=%d ldb=%d ldc=%d)", m, n, k, lda, ldb, ldc)
	}
	r := C.tr_cublasGemmEx(bl.ctx.h, bl.h, op(transA), op(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), C.CUdeviceptr(a), cudaR16BF, C.int(lda), C.CUdeviceptr(b), cudaR16BF, C.int(ldb),
		C.float(beta), C.CUdeviceptr(c), cudaR32F, C.int(ldc), cublasCompute32F, cublasGemmDefault)
	if r != 0 {
		return blasErr(r, fmt.Sprintf("cublasGemmEx(%s%s, bf16 x bf16 -> f32, m=%d n=%d k=%d, lda=%d ldb=%d ldc=%d)",
			opName(transA), opName(transB), m, n, k, lda, ldb, ldc))
	}
	return nil
}

// SgemmStridedBatched is batch Sgemm calls (same convention), the i-th on
// a + i*strideA, b + i*strideB, c + i*strideC; strides count elements.
func (bl *Blas) SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32,
	a DevicePtr, lda int, strideA int64, b DevicePtr, ldb int, strideB int64,
	beta float32, c DevicePtr, ldc int, strideC int64, batch int) error {
	if !fitsInt32(m, n, k, lda, ldb, ldc, batch) {
		return fmt.Errorf("cuda: cublasSgemmStridedBatched: a size exceeds int32 (m=%d n=%d k=%d lda=%d ldb=%d ldc=%d batch=%d)", m, n, k, lda, ldb, ldc, batch)
	}
	r := C.tr_cublasSgemmStridedBatched(bl.ctx.h, bl.h, op(transA), op(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), C.CUdeviceptr(a), C.int(lda), C.longlong(strideA),
		C.CUdeviceptr(b), C.int(ldb), C.longlong(strideB),
		C.float(beta), C.CUdeviceptr(c), C.int(ldc), C.longlong(strideC), C.int(batch))
	if r != 0 {
		return blasErr(r, fmt.Sprintf("cublasSgemmStridedBatched(%s%s, m=%d n=%d k=%d, lda=%d ldb=%d ldc=%d, batch=%d)",
			opName(transA), opName(transB), m, n, k, lda, ldb, ldc, batch))
	}
	return nil
}

// Destroy releases the handle; the second call does nothing.
func (bl *Blas) Destroy() error {
	if bl.h == nil {
		return nil
	}
	h := bl.h
	bl.h = nil
	return blasErr(C.tr_cublasDestroy(bl.ctx.h, h), "cublasDestroy")
}
