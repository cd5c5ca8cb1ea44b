// augment.cu: training-time data augmentation on the device: random crop
// with zero padding, then random horizontal flip (Backend.Augment).
//
// augment_f32: src and dst are CNHW [C, N, H, W] floats (not overlapping).
// Image j gets a 64-bit hash h of (seed, step, j), counter-based so the host
// keeps no RNG state and uploads nothing:
//   mix64(z) = splitmix64's finalizer (constants below)
//   key = mix64(seed + (step+1)*G), h = mix64(key + (j+1)*G),
//   G = 0x9E3779B97F4A7C15, all modulo 2^64
// and from its bits, with R = 2*pad+1,
//   dy = (h & 0xFFFFFFFF)*R >> 32, dx = ((h >> 32) & 0x7FFFFFFF)*R >> 31,
//   flip = h >> 63
// (device.AugmentHash and device.AugmentDraw in Go). Then
//   dst[ch, j, y, x] = src[ch, j, y+dy-pad, xs], xs = (flip ? W-1-x : x) + dx - pad,
// or 0 when that row or column is outside the image: pad by pad zeros, crop
// H x W at (dy, dx), mirror the crop when flip is set. One work item per dst
// element, so stores coalesce; each recomputes its image's hash (a few
// 64-bit multiplies, cheap next to the memory traffic). Work items: C*N*H*W,
// below 2^31 - 2^21 (kernels.MaxElems). No shared memory, no barriers.

__device__ __forceinline__ unsigned long long augment_mix64(unsigned long long z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

extern "C" __global__ void augment_f32(const float* src, float* dst, int C, int N, int H, int W,
                                       int pad, unsigned long long seed, unsigned long long step)
{
    const unsigned long long G = 0x9E3779B97F4A7C15ULL;
    const unsigned long long key = augment_mix64(seed + (step + 1ULL) * G);
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
        const int sy = y + dy - pad;
        const int sx = ((h >> 63) ? W - 1 - x : x) + dx - pad;
        float v = 0.0f;
        if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
            v = src[(t * H + sy) * W + sx];
        }
        dst[i] = v;
    }
}
