// augment.cu: training-time data augmentation on the device: random crop
// with zero or reflect padding, then random horizontal flip
// (Backend.Augment); and one fixed shift and flip for every image
// (Backend.Translate, test-time augmentation).
//
// augment_f32: src and dst are CNHW [C, N, H, W] floats (not overlapping).
// Image j gets a 64-bit hash h of (seed, step, j), counter-based so the host
// keeps no RNG state and uploads nothing:
//   mix64(z) = splitmix64's finalizer (constants below)
//   key = mix64(seed + (step+1)*G), h = mix64(key + (j+1)*G),
//   G = 0x9E3779B97F4A7C15, all modulo 2^64
// and from its bits, with R = 2*pad+1,
//   dy = (h & 0xFFFFFFFF)*R >> 32, dx = ((h >> 32) & 0x7FFFFFFF)*R >> 31,
//   flip = h >> 63 (forced to 0 when noFlip != 0)
// (device.AugmentHash and device.AugmentDraw in Go). Then
//   dst[ch, j, y, x] = src[ch, j, y+dy-pad, xs], xs = (flip ? W-1-x : x) + dx - pad,
// where a row or column outside the image reads 0 (reflect == 0: pad by pad
// zeros, crop H x W at (dy, dx), mirror the crop when flip is set), or,
// when reflect != 0, the mirrored index augment_reflect(i, size) (PyTorch's
// "reflect" padding, the edge not repeated; device.Reflect; needs pad < H
// and pad < W). One work item per dst element, so stores coalesce; each
// recomputes its image's hash (a few 64-bit multiplies, cheap next to the
// memory traffic). A pure copy: the same bits as the CPU backend. Work
// items: C*N*H*W.
//
// translate_f32: the same view of every image,
//   dst[ch, j, y, x] = src[ch, j, reflect(y+dy, H), reflect(xs+dx, W)],
//   xs = flip ? W-1-x : x, |dy| < H, |dx| < W.
// Work items: C*N*H*W.
//
// Both: below 2^31 - 2^21 elements (kernels.MaxElems). No shared memory, no
// barriers.

__device__ __forceinline__ unsigned long long augment_mix64(unsigned long long z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// augment_reflect maps i in (-size, 2*size-1) into [0, size), mirroring at
// the edges without repeating them (device.Reflect).
__device__ __forceinline__ int augment_reflect(int i, int size)
{
    if (size == 1) {
        return 0;
    }
    if (i < 0) {
        i = -i;
    }
    if (i >= size) {
        i = 2 * (size - 1) - i;
    }
    return i;
}

// augment_run is augment_f32's loop for the step's key (augment_at_f32
// reads the step from device memory and runs the same loop).
__device__ __forceinline__ void augment_run(const float* src, float* dst, int C, int N, int H, int W,
                                            int pad, int reflect, int noFlip, unsigned long long key)
{
    const unsigned long long G = 0x9E3779B97F4A7C15ULL;
    const unsigned long long R = (unsigned long long)(2 * pad + 1);
    const int total = C * N * H * W;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int x = i % W;
        int t = i / W;
        const int y = t % H;
        t /= H;
        const int j = t % N;
        const unsigned long long h = augment_mix64(key + ((unsigned long long)j + 1ULL) * G);
        const int dy = (int)(((h & 0xFFFFFFFFULL) * R) >> 32);
        const int dx = (int)((((h >> 32) & 0x7FFFFFFFULL) * R) >> 31);
        const bool flip = (h >> 63) != 0 && !noFlip;
        int sy = y + dy - pad;
        int sx = (flip ? W - 1 - x : x) + dx - pad;
        float v = 0.0f;
        if (reflect) {
            sy = augment_reflect(sy, H);
            sx = augment_reflect(sx, W);
            v = src[(t * H + sy) * W + sx];
        } else if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
            v = src[(t * H + sy) * W + sx];
        }
        dst[i] = v;
    }
}

extern "C" __global__ void augment_f32(const float* src, float* dst, int C, int N, int H, int W,
                                       int pad, int reflect, int noFlip,
                                       unsigned long long seed, unsigned long long step)
{
    const unsigned long long G = 0x9E3779B97F4A7C15ULL;
    augment_run(src, dst, C, N, H, W, pad, reflect, noFlip, augment_mix64(seed + (step + 1ULL) * G));
}

extern "C" __global__ void translate_f32(const float* src, float* dst, int C, int N, int H, int W,
                                         int dy, int dx, int flip)
{
    const int total = C * N * H * W;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int x = i % W;
        const int t = i / W;
        const int y = t % H;
        const int plane = t / H;
        const int sy = augment_reflect(y + dy, H);
        const int sx = augment_reflect((flip ? W - 1 - x : x) + dx, W);
        dst[i] = src[(plane * H + sy) * W + sx];
    }
}
