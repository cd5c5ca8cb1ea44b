// pool.cu: max and average pooling, forward and backward.
//
// Layout. P independent HxW planes (CNHW data: P = C*N), pooled by a KHxKW
// window with stride SHxSW and no padding ("valid"): OH = (H-KH)/SH+1,
// OW = (W-KW)/SW+1. x, dx are [P, H, W]; y, dy, argmax are [P, OH, OW].
//
// maxpool_fwd_f32: one work item per output. Scans the window row by row, so
// the first maximum in scan order is the one with the smallest plane index
// iy*W+ix; argmax gets that index (strict '>' keeps the first of ties). The
// scan starts from the window's first element, so a NaN there wins; NaNs
// elsewhere are skipped. Work items: P*OH*OW.
//
// With relu != 0 it pools max(0, x) (a ReLU "v < 0 ? 0 : v" fused in: the
// conv before the pool then skips its own), bit for bit what the ReLU
// followed by the pool would give, y and argmax both: when the window's
// maximum m is above 0 (or NaN) the ReLU changes nothing; otherwise every
// value of the ReLU'd window is a zero (or a skipped NaN), so the first
// element wins: y = relu(x[first]) (a -0 stays -0, as in the ReLU) and
// argmax = first.
//
// maxpool_bwd_f32: overwrites dx. A gather, not a scatter: one work item per
// input element visits the outputs whose window covers it (oy*SH <= iy <=
// oy*SH+KH-1, likewise for x) and adds dy where argmax names this element,
// in the order oy then ox ascending. That is the order a sequential scatter
// over the outputs would use, so the result equals "zero dx, then dx[argmax]
// += dy for each output in order" bit for bit, with no atomics, whatever the
// launch. argmax must come from maxpool_fwd_f32 with the same geometry (an
// index outside its own window is never seen). Work items: P*H*W.
//
// With y (the forward's output) not NULL, the ReLU's backward is fused in:
// only the dy with y > 0 are added. That equals the pool's backward
// followed by the ReLU's (mask: the ReLU's output > 0) bit for bit: y[o] > 0
// means y[o] = x[argmax[o]] > 0, and y[o] <= 0 (or NaN) means the ReLU'd
// x[argmax[o]] is not > 0, so every dy an element gathers is kept, or none
// is and it gets the +0 the ReLU's backward writes.
//
// avgpool_fwd_f32: y = (sum of the window, row by row) * inv, with inv =
// 1/(KH*KW) rounded to float. avgpool_bwd_f32: overwrites dx with the sum,
// over the windows covering each element (oy then ox ascending), of dy*inv:
// each dy shared equally over its window. Gather again. Work items: P*OH*OW
// and P*H*W.
//
// All sums start from 0 and add in the orders stated, with no fused
// multiply-adds (the PTX is built with --fmad=false), so results equal a
// sequential float32 evaluation in those orders, bit for bit.
//
// Grid-stride loops over plain int indices: every buffer must hold fewer than
// 2^31 - 2^21 elements (kernels.MaxElems). No shared memory, no barriers.

extern "C" __global__ void maxpool_fwd_f32(const float* x, float* y, int* argmax,
                                           int P, int H, int W, int KH, int KW,
                                           int SH, int SW, int OH, int OW, int relu)
{
    const int total = P * OH * OW;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int ox = i % OW;
        const int t = i / OW;
        const int oy = t % OH;
        const int p = t / OH;
        const float* xp = x + p * H * W;
        const int iy0 = oy * SH;
        const int ix0 = ox * SW;
        int best = iy0 * W + ix0;
        float m = xp[best];
        for (int ky = 0; ky < KH; ++ky) {
            for (int kx = 0; kx < KW; ++kx) {
                const int j = (iy0 + ky) * W + ix0 + kx;
                const float v = xp[j];
                if (v > m) {
                    m = v;
                    best = j;
                }
            }
        }
        if (relu && !(m > 0.0f) && m == m) {
            best = iy0 * W + ix0;
            const float f = xp[best];
            m = f < 0.0f ? 0.0f : f;
        }
        y[i] = m;
        argmax[i] = best;
    }
}

extern "C" __global__ void maxpool_bwd_f32(const float* dy, const float* y, const int* argmax, float* dx,
                                           int P, int H, int W, int KH, int KW,
                                           int SH, int SW, int OH, int OW)
{
    const int total = P * H * W;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int ix = i % W;
        const int t = i / W;
        const int iy = t % H;
        const int p = t / H;
        const int self = iy * W + ix;
        const int oy0 = iy < KH ? 0 : (iy - KH) / SH + 1;
        const int oy1 = iy / SH < OH - 1 ? iy / SH : OH - 1;
        const int ox0 = ix < KW ? 0 : (ix - KW) / SW + 1;
        const int ox1 = ix / SW < OW - 1 ? ix / SW : OW - 1;
        const int base = p * OH * OW;
        float s = 0.0f;
        for (int oy = oy0; oy <= oy1; ++oy) {
            for (int ox = ox0; ox <= ox1; ++ox) {
                const int o = base + oy * OW + ox;
                if (argmax[o] == self && (y == 0 || y[o] > 0.0f)) {
                    s += dy[o];
                }
            }
        }
        dx[i] = s;
    }
}

extern "C" __global__ void avgpool_fwd_f32(const float* x, float* y,
                                           int P, int H, int W, int KH, int KW,
                                           int SH, int SW, int OH, int OW)
{
    const int total = P * OH * OW;
    const int stride = blockDim.x * gridDim.x;
    const float inv = 1.0f / (float)(KH * KW);
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int ox = i % OW;
        const int t = i / OW;
        const int oy = t % OH;
        const int p = t / OH;
        const float* xp = x + p * H * W + oy * SH * W + ox * SW;
        float s = 0.0f;
        for (int ky = 0; ky < KH; ++ky) {
            for (int kx = 0; kx < KW; ++kx) {
                s += xp[ky * W + kx];
            }
        }
        y[i] = s * inv;
    }
}

extern "C" __global__ void avgpool_bwd_f32(const float* dy, float* dx,
                                           int P, int H, int W, int KH, int KW,
                                           int SH, int SW, int OH, int OW)
{
    const int total = P * H * W;
    const int stride = blockDim.x * gridDim.x;
    const float inv = 1.0f / (float)(KH * KW);
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int ix = i % W;
        const int t = i / W;
        const int iy = t % H;
        const int p = t / H;
        const int oy0 = iy < KH ? 0 : (iy - KH) / SH + 1;
        const int oy1 = iy / SH < OH - 1 ? iy / SH : OH - 1;
        const int ox0 = ix < KW ? 0 : (ix - KW) / SW + 1;
        const int ox1 = ix / SW < OW - 1 ? ix / SW : OW - 1;
        const float* dp = dy + p * OH * OW;
        float s = 0.0f;
        for (int oy = oy0; oy <= oy1; ++oy) {
            for (int ox = ox0; ox <= ox1; ++ox) {
                s += dp[oy * OW + ox] * inv;
            }
        }
        dx[i] = s;
    }
}
