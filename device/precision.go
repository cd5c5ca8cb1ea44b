package device

import (
	"fmt"
	"math"
)

// Precision is the arithmetic of a backend's GEMMs (the convolutions, as
// im2col GEMMs, and the dense layers). Everything else (BatchNorm's
// statistics, the softmax and loss, the optimiser, the master weights)
// stays float32 whatever the precision.
type Precision int

// The precisions.
const (
	// PrecisionFP32: float32 operands, float32 accumulation (the default).
	PrecisionFP32 Precision = iota
	// PrecisionTF32: float32 operands rounded to TF32 (8-bit exponent,
	// 10-bit mantissa) inside the GEMM, float32 accumulation: cuBLAS's
	// TF32 tensor-core math on the GPU (Ampere and later; older GPUs
	// compute in float32).
	PrecisionTF32
	// PrecisionBF16: the GEMMs read bfloat16 operands (8-bit exponent,
	// 7-bit mantissa) and accumulate in float32: the model keeps a
	// bfloat16 copy of the weights, made from the float32 master weights
	// once per forward pass, and converts the activations and gradients
	// where a GEMM reads them (Buffers of DType BF16).
	PrecisionBF16
)

// Precisions lists the names ParsePrecision accepts.
var Precisions = []string{"fp32", "tf32", "bf16"}

// String is the precision's name as --precision takes it.
func (p Precision) String() string {
	if p >= 0 && int(p) < len(Precisions) {
		return Precisions[p]
	}
	return fmt.Sprintf("precision(%d)", int(p))
}

// ParsePrecision reads fp32, tf32 or bf16.
func ParsePrecision(s string) (Precision, error) {
	for i, n := range Precisions {
		if s == n {
			return Precision(i), nil
		}
	}
	return 0, fmt.Errorf("precision %q: use fp32, tf32 or bf16", s)
}

// BF16Bits is the bfloat16 nearest to f, ties to even (the upper 16 bits
// of a float32 after rounding): cvt.rn.bf16.f32, and what the bf16
// kernels compute in integer arithmetic. Overflow rounds to infinity; a
// NaN becomes the canonical quiet NaN 0x7FFF.
func BF16Bits(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return 0x7fff
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// BF16Float is the float32 value of bfloat16 bits h (exact).
func BF16Float(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundBF16 is f rounded to bfloat16 (BF16Bits), as a float32.
func RoundBF16(f float32) float32 { return BF16Float(BF16Bits(f)) }

// RoundTF32 is f rounded to TF32 (the low 13 mantissa bits cleared), to
// nearest with ties away from zero: PTX's cvt.rna.tf32.f32. Overflow rounds
// to infinity; a NaN stays a (quiet) NaN. The GPU's tensor cores may
// instead drop the low bits of a float32 operand (truncation), which errs
// up to twice as much: the CPU's TF32 emulation shows the size of the
// effect, not the GPU's bits.
func RoundTF32(f float32) float32 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return math.Float32frombits((u | 0x00400000) &^ 0x1fff)
	}
	return math.Float32frombits((u + 0x1000) &^ 0x1fff)
}
