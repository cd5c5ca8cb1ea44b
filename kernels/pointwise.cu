// pointwise.cu: the exact GELU and its derivative, a sum with optional ReLU,
// y = alpha*x + beta*y, and dropout. Every output element depends on the same
// element of the inputs only, so each kernel may run in place (no pointer is
// __restrict__). Work items: n.
//
// gelu_fwd_f32: y = 0.5f*x*(1 + erff(x*sqrt(1/2))), in float32 with the
// precise erff (PyTorch's CUDA formula for the exact GELU). gelu_bwd_f32:
// dx = dy*(Phi + x*phi), Phi = 0.5f*(1 + erff(x*sqrt(1/2))),
// phi = expf(-0.5f*x*x)*(1/sqrt(2*pi)), x the GELU's input. The CPU backend
// computes both in float64 and rounds once; erff and expf are within 2 ulp
// (CUDA's and glibc's both), and for x << 0, 1 + erff(.) cancels: the
// result differs from the CPU's by at most a few 1e-7 absolutely (|x| <= 8)
// and a few float32 ulps relatively.
//
// add_f32: y = a + b, then, when relu != 0, y < 0 ? 0 : y (NaN and -0 pass,
// as in bias_add_f32). axpby_f32: y = alpha*x + beta*y, or y = alpha*x when
// beta == 0 (y is not read: a NaN there does not propagate). Both one
// float32 operation per step, no FMAs (--fmad=false): bit for bit the CPU
// backend's.
//
// dropout_f32: element i is kept when u >= p, u = (h >> 40) * 2^-24 (exact
// in float32), h the hash augment_f32 computes for image j = i:
//   key = mix64(seed + (step+1)*G), h = mix64(key + (i+1)*G)
// (device.DropoutKeep). A kept element is y = x*scale, one float32
// multiply, or x itself when scale == 1 (p == 0: a copy, NaN payloads
// kept); a dropped one is +0. scale is computed once on the host, in Go, by
// the GPU backend as float32(1/(1-float64(p))) (the float64 quotient
// rounded to float32, the CPU backend's factor), so both backends multiply
// by the same float32 and agree bit for bit (x NaN aside: the GPU returns
// its canonical NaN). The backward pass is the same call on dy.
//
// Grid-stride loops over plain int indices: n must be below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers.

#define GELU_SQRT1_2 0.70710678118654752440f      // 1/sqrt(2), rounded to float
#define GELU_INV_SQRT_2PI 0.39894228040143267794f // 1/sqrt(2*pi), rounded to float

// gelu_f is the exact GELU in float32: 0.5f*x*(1 + erff(x*GELU_SQRT1_2)).
__device__ __forceinline__ float gelu_f(float x)
{
    return 0.5f * x * (1.0f + erff(x * GELU_SQRT1_2));
}

// gelu_grad_f is the GELU's derivative Phi(x) + x*phi(x) in float32.
__device__ __forceinline__ float gelu_grad_f(float x)
{
    const float cdf = 0.5f * (1.0f + erff(x * GELU_SQRT1_2));
    const float pdf = expf(-0.5f * x * x) * GELU_INV_SQRT_2PI;
    return cdf + x * pdf;
}

// act_grad_f is an activation's backward for one element, as relu_bwd_f32
// and gelu_bwd_f32 compute it: act 1, the ReLU, dy where its output a > 0,
// else 0; act 2, the GELU, dy * gelu_grad_f(a) with a its input; else dy.
__device__ __forceinline__ float act_grad_f(float dy, float a, int act)
{
    if (act == 1) {
        return a > 0.0f ? dy : 0.0f;
    }
    return act == 2 ? dy * gelu_grad_f(a) : dy;
}

extern "C" __global__ void gelu_fwd_f32(const float* x, float* y, int n)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = gelu_f(x[i]);
    }
}

extern "C" __global__ void gelu_bwd_f32(const float* x, const float* dy, float* dx, int n)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dx[i] = dy[i] * gelu_grad_f(x[i]);
    }
}

extern "C" __global__ void add_f32(const float* a, const float* b, float* y, int n, int relu)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = a[i] + b[i];
        if (relu && v < 0.0f) {
            v = 0.0f;
        }
        y[i] = v;
    }
}

extern "C" __global__ void axpby_f32(const float* x, float* y, int n, float alpha, float beta)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        if (beta == 0.0f) {
            y[i] = alpha * x[i];
        } else {
            y[i] = alpha * x[i] + beta * y[i];
        }
    }
}

extern "C" __global__ void dropout_f32(const float* x, float* y, int n, float p, float scale,
                                       unsigned long long seed, unsigned long long step)
{
    const unsigned long long G = 0x9E3779B97F4A7C15ULL;
    const unsigned long long key = augment_mix64(seed + (step + 1ULL) * G);
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const unsigned long long h = augment_mix64(key + ((unsigned long long)i + 1ULL) * G);
        const float u = (float)(unsigned int)(h >> 40) * 5.9604644775390625e-8f; // 2^-24
        const float v = x[i];
        y[i] = u >= p ? (scale == 1.0f ? v : v * scale) : 0.0f;
    }
}
