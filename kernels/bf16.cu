// bf16.cu: bfloat16 for the GEMMs of --precision bf16 (device.PrecisionBF16).
//
// A bfloat16 is the upper 16 bits of a float32 (sign, 8-bit exponent, 7-bit
// mantissa), stored as unsigned short: cuBLAS's CUDA_R_16BF. The
// conversions are written in integer arithmetic, not with cuda_bf16.h, so
// that they assemble for sm_70 (cvt.rn.bf16.f32 needs sm_80) and the host
// emulator runs the very same code:
//
// bf16_rn: float32 to the nearest bfloat16, ties to even (add 0x7FFF plus
// the lowest kept bit, keep the upper half): what cvt.rn.bf16.f32 and
// device.BF16Bits compute, bit for bit. Overflow rounds to infinity,
// subnormals round like any other value, and a NaN becomes the canonical
// quiet NaN 0x7FFF (as the hardware conversion does). bf16_f: back to
// float32, exact.
//
// f32_to_bf16: y[i] = bf16_rn(x[i]). bf16_to_f32: y[i] = bf16_f(x[i]).
// Work items: n. (im2col_bf16, im2col writing bfloat16, is in conv.cu.)
//
// Grid-stride loops over plain int indices: n must be below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers.

__device__ __forceinline__ unsigned short bf16_rn(float f)
{
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return 0x7fff;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

__device__ __forceinline__ float bf16_f(unsigned short h)
{
    return __uint_as_float((unsigned int)h << 16);
}

extern "C" __global__ void f32_to_bf16(const float* x, unsigned short* y, int n)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = bf16_rn(x[i]);
    }
}

extern "C" __global__ void bf16_to_f32(const unsigned short* x, float* y, int n)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = bf16_f(x[i]);
    }
}
