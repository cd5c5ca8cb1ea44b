// step.cu: what a captured training step reads from device memory.
//
// A CUDA graph replays each kernel with the argument values it was
// captured with. So what changes from one step to the next (which images
// form the batch, the learning rate and the optimiser's bias correction,
// the weight average's coefficients, the step number that keys the
// augmentation and dropout hashes) reaches a captured step through memory:
//
// step_begin_i32 reads the step counters ctr = {pos, step, first}: pos is
// the batch's position in the epoch, step the global step (optimiser steps
// taken), first the global step of row 0 of table, a [rows, k] float array
// of per-step scalars the host fills ahead. It copies the batch's indices
//   idx[j] = perm[pos*stride + j]     for j < cnt
// and the step's row
//   cur[i] = table[(step - first)*k + i]     for i < k
// into fixed slots that the rest of the step reads. Work items: max(cnt, k).
//
// step_end_i32 (the step's last kernel) advances the counters: pos to
// pos+1, or 0 at wrap (the end of the epoch), and step to step+1. One work
// item (the grid's first thread). It is separate from step_begin_i32 so
// that no thread writes a counter another may still read.
//
// The *_at_f32 kernels are adam_f32, sgd_f32, rmsprop_f32, axpby_f32,
// augment_f32 and dropout_f32 with the per-step values read from device
// memory when they run instead of passed by value: the same float32
// operations in the same order (the loops are copies of theirs), so a
// captured step gives bit for bit what the eager one gives with the same
// values. adam_at_f32 reads lrT, eps, decay = s[0], s[1], s[2];
// sgd_at_f32 and rmsprop_at_f32 read lr = lr[0]; axpby_at_f32 reads alpha,
// beta = s[0], s[1] and does nothing when s[2] == 0 (a step without an
// average update); augment_at_f32 and dropout_at_f32 read the step number
// from step[0] (an int, non-negative).
//
// Grid-stride loops over plain int indices: sizes below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers, no atomics.

extern "C" __global__ void step_begin_i32(const int* ctr, const int* perm, int stride, int cnt, int* idx,
                                          const float* table, int k, float* cur)
{
    const int pos = ctr[0];
    const int row = ctr[1] - ctr[2];
    const int work = cnt > k ? cnt : k;
    const int gs = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < work; i += gs) {
        if (i < cnt) {
            idx[i] = perm[pos * stride + i];
        }
        if (i < k) {
            cur[i] = table[row * k + i];
        }
    }
}

extern "C" __global__ void step_end_i32(int* ctr, int wrap)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        const int pos = ctr[0] + 1;
        ctr[0] = pos == wrap ? 0 : pos;
        ctr[1] = ctr[1] + 1;
    }
}

extern "C" __global__ void adam_at_f32(float* p, const float* g, float* m, float* v, int n,
                                       const float* s, float beta1, float beta2, float l2)
{
    const float lrT = s[0];
    const float eps = s[1];
    const float decay = s[2];
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        adam_one(p, g, m, v, i, lrT, beta1, beta2, eps, l2, decay);
    }
}

extern "C" __global__ void sgd_at_f32(float* p, const float* g, float* buf, int n,
                                      const float* lr, float momentum, float l2, int nesterov)
{
    const float r = lr[0];
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        sgd_one(p, g, buf, i, r, momentum, l2, nesterov);
    }
}

extern "C" __global__ void rmsprop_at_f32(float* p, const float* g, float* sq, float* buf, int n,
                                          const float* lr, float alpha, float eps, float l2, float momentum)
{
    const float r = lr[0];
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        rmsprop_one(p, g, sq, buf, i, r, alpha, eps, l2, momentum);
    }
}

extern "C" __global__ void axpby_at_f32(const float* x, float* y, int n, const float* s)
{
    if (s[2] == 0.0f) {
        return;
    }
    const float alpha = s[0];
    const float beta = s[1];
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        if (beta == 0.0f) {
            y[i] = alpha * x[i];
        } else {
            y[i] = alpha * x[i] + beta * y[i];
        }
    }
}

extern "C" __global__ void augment_at_f32(const float* src, float* dst, int C, int N, int H, int W,
                                          int pad, int reflect, int noFlip,
                                          unsigned long long seed, const int* step)
{
    const unsigned long long G = 0x9E3779B97F4A7C15ULL;
    const unsigned long long key = augment_mix64(seed + ((unsigned long long)step[0] + 1ULL) * G);
    augment_run(src, dst, C, N, H, W, pad, reflect, noFlip, key);
}

extern "C" __global__ void dropout_at_f32(const float* x, float* y, int n, float p, float scale,
                                          unsigned long long seed, const int* step)
{
    const unsigned long long G = 0x9E3779B97F4A7C15ULL;
    const unsigned long long key = augment_mix64(seed + ((unsigned long long)step[0] + 1ULL) * G);
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const unsigned long long h = augment_mix64(key + ((unsigned long long)i + 1ULL) * G);
        const float u = (float)(unsigned int)(h >> 40) * 5.9604644775390625e-8f; // 2^-24
        const float v = x[i];
        y[i] = u >= p ? (scale == 1.0f ? v : v * scale) : 0.0f;
    }
}
