// elementwise.cu: bias (+ fused activation), bias gradient (+ fused
// activation backward), ReLU, axis swap and fill. (It uses pointwise.cu's
// GELU: all.cu includes it after that.)
//
// bias_act_f32: z viewed as [outer, C, inner] gets bias[c] added, and y =
// act(z) in the same pass: act 0 none (y = z), 1 the ReLU "v < 0 ? 0 : v"
// (NaN and -0 pass through), 2 the exact GELU (gelu_f of pointwise.cu). z
// is written back with the bias added (the GELU's backward reads it); y may
// be z (none, ReLU: one read, one write). The same float32 operations as
// the bias add followed by relu_fwd_f32 or gelu_fwd_f32: bit for bit those.
// Conv output (CNHW) is outer 1, inner N*OH*OW; dense output [N, F] is outer
// N, inner 1. Work items: outer*C*inner.
//
// bias_grad_f32: db[c] = sum of dy[o, c, r] over o < outer, r < inner, in
// one launch, deterministic (the same bits on every run, GPU and launch
// configuration) and without atomics on floats. With act != 0 it first
// applies an activation's backward to each dy, writing it back (the
// activation's backward and BiasGrad fused: the GEMMs that follow read the
// new dy): act 1, the ReLU, dy = a > 0 ? dy : 0 with a the ReLU's output;
// act 2, the GELU, dy = dy * gelu_grad_f(a) with a the GELU's input
// (act_grad_f of pointwise.cu: relu_bwd_f32's and gelu_bwd_f32's
// expressions, bit for bit). a is unused (may be NULL) with act 0.
//
// The sum of a channel, of L = outer*inner elements at flat positions e =
// o*inner + r, is split into `units` parts (kernels.BiasGradUnits: about
// L/4096, at most 4096; a function of the shape only). Unit k of channel c
// is one block's work: its BIAS_LANES (256) lanes each add, from 0 and e
// ascending, the elements e = k*256 + l (mod units*256); a fixed binary
// tree in shared memory adds the 256 lane sums (lane l += lane l+w, w =
// 128, 64, ..., 1). With one unit that is db[c]. Otherwise the block writes
// its sum to part[c*units + k], and the block that completes the channel's
// last unit (a per-channel ticket in count[c], taken after a
// __threadfence) adds the channel's unit sums the same way (lane l adds
// the units j = l (mod 256), j ascending, then the tree), writes db[c] and
// resets count[c] to 0 for the next launch. The lanes are logical: a block
// of any size loops over them, and blocks loop over the C*units units, so
// the result does not depend on the launch. count must hold C zeros; part
// C*units floats (both unused, and may be NULL, when units is 1).
//
// Precision: float32 sums of about 16 terms per lane, then two trees of
// depth 8: well inside the float32-partial-sum tolerance of the CPU
// backend's float64 sums. Work items: C*units*256 (one block of 256 threads
// per unit; the launch caps the blocks at kernels.MaxGrid).
//
// relu_fwd_f32: y = x < 0 ? 0 : x (y may be x). relu_bwd_f32: dx = y > 0 ?
// dy : 0 where y is the ReLU output (dx may be dy). swap_axes01_f32:
// dst[b, a, i] = src[a, b, i] for src viewed as [A, B, inner]; one work item
// per dst element so stores coalesce. fill_f32: x[i] = v. Work items: n, or
// A*B*inner for the swap.
//
// No pointer is __restrict__: several ops allow in-place use. Grid-stride
// loops over plain int indices: every buffer must hold fewer than 2^31 - 2^21
// elements (kernels.MaxElems). Only bias_grad_f32 uses shared memory and
// barriers (1 KiB, block-uniform).

// act_f applies bias_act_f32's activation.
__device__ __forceinline__ float act_f(float v, int act)
{
    if (act == 1) {
        return v < 0.0f ? 0.0f : v;
    }
    return act == 2 ? gelu_f(v) : v;
}

extern "C" __global__ void bias_act_f32(float* z, float* y, const float* bias,
                                        int outer, int C, int inner, int act)
{
    const int total = outer * C * inner;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const float v = z[i] + bias[(i / inner) % C];
        z[i] = v;
        y[i] = act_f(v, act);
    }
}

#define BIAS_LANES 256

// bias_tree adds s[0..BIAS_LANES) into s[0] by the fixed binary tree; all
// threads of the block call it.
__device__ __forceinline__ void bias_tree(float* s)
{
    for (int w = BIAS_LANES / 2; w > 0; w >>= 1) {
        for (int l = threadIdx.x; l < w; l += blockDim.x) {
            s[l] += s[l + w];
        }
        __syncthreads();
    }
}

extern "C" __global__ void bias_grad_f32(float* dy, const float* a, float* db, float* part, int* count,
                                         int outer, int C, int inner, int units, int act)
{
    __shared__ float s[BIAS_LANES];
    __shared__ int last;
    const int len = outer * inner;  // elements per channel
    const int ostride = C * inner;
    const int step = units * BIAS_LANES;  // between a lane's elements
    const int dq = step / inner;          // the step of e = o*inner + r, split into o and r
    const int dr = step % inner;
    for (int u = blockIdx.x; u < C * units; u += gridDim.x) {
        const int c = u / units;
        const int k = u % units;
        float* p = dy + c * inner;
        const float* q = act ? a + c * inner : a;
        for (int l = threadIdx.x; l < BIAS_LANES; l += blockDim.x) {
            const int e0 = k * BIAS_LANES + l;
            int o = e0 / inner;
            int r = e0 % inner;
            float acc = 0.0f;
            for (int e = e0; e < len; e += step) {
                const int idx = o * ostride + r;
                float v = p[idx];
                if (act) {
                    v = act_grad_f(v, q[idx], act);
                    p[idx] = v;
                }
                acc += v;
                o += dq;
                r += dr;
                if (r >= inner) {
                    r -= inner;
                    ++o;
                }
            }
            s[l] = acc;
        }
        __syncthreads();
        bias_tree(s);
        if (units == 1) {
            if (threadIdx.x == 0) {
                db[c] = s[0];
            }
        } else {
            if (threadIdx.x == 0) {
                part[u] = s[0];
                __threadfence();
                last = atomicAdd(&count[c], 1) == units - 1;
            }
            __syncthreads();
            if (last) {
                __threadfence();
                const volatile float* pc = part + c * units;
                for (int l = threadIdx.x; l < BIAS_LANES; l += blockDim.x) {
                    float acc = 0.0f;
                    for (int j = l; j < units; j += BIAS_LANES) {
                        acc += pc[j];
                    }
                    s[l] = acc;
                }
                __syncthreads();
                bias_tree(s);
                if (threadIdx.x == 0) {
                    db[c] = s[0];
                    count[c] = 0;
                }
            }
        }
        __syncthreads();  // s and last are the next unit's
    }
}

extern "C" __global__ void relu_fwd_f32(const float* x, float* y, int n)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        y[i] = v < 0.0f ? 0.0f : v;
    }
}

extern "C" __global__ void relu_bwd_f32(const float* y, const float* dy, float* dx, int n)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    }
}

extern "C" __global__ void swap_axes01_f32(const float* src, float* dst, int A, int B, int inner)
{
    const int total = A * B * inner;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int r = i % inner;
        const int t = i / inner;
        const int a = t % A;
        const int b = t / A;
        dst[i] = src[(a * B + b) * inner + r];
    }
}

extern "C" __global__ void fill_f32(float* x, int n, float v)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        x[i] = v;
    }
}
