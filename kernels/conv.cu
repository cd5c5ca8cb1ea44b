// conv.cu: im2col and its adjoint col2im over CNHW activations.
//
// Layouts (device/backend.go). x and dx are CNHW [C, N, H, W]. The im2col
// matrix col is [C*KH*KW, N*OH*OW]: row (c*KH+ky)*KW+kx, column
// (n*OH+oy)*OW+ox, holding x[c, n, oy*SH-PH+ky, ox*SW-PW+kx] or 0 where that
// falls in the padding. PH/PW rows/columns of zeros come before the image;
// OH/OW decide how much padding is implied after it (possibly none, possibly
// leaving trailing input rows/columns unread).
//
// im2col_f32: one work item per (c, n, oy, ox), which writes that column's
// KH*KW rows of channel c (darknet's division of the work). Consecutive items
// are consecutive columns, so each of the KH*KW stores is coalesced; loads of
// x are strided by SW. Work items: C*N*OH*OW.
//
// col2im_f32: the adjoint, dx[c,n,iy,ix] = sum of every col entry that was
// read from x[c,n,iy,ix]. Written as a gather, not a scatter: one work item
// per input element visits exactly the outputs (oy, ox) whose window covers
// it (oy*SH <= iy+PH <= oy*SH+KH-1, likewise for x). So dx is overwritten (no
// zero fill needed), no atomics are used, and the result is bit-for-bit
// deterministic whatever the launch configuration. The adds run from 0 in the
// order of col's rows, ky then kx ascending (oy, ox descending): the order in
// which a plain scatter over the rows of col, like the CPU backend's, adds
// them, so the two agree bit for bit. Work items: C*N*H*W.
//
// im2col_bf16: im2col_f32 writing bfloat16 (bf16_rn of bf16.cu) for the
// bfloat16 GEMMs of --precision bf16; the same loop (one template).
//
// Indices. The work items (C*N*OH*OW, C*N*H*W) and x and dx are indexed with
// plain ints: each must stay below 2^31 - 2^21 elements (kernels.MaxElems;
// the 2^21 is the largest grid-stride step of the recommended launch), which
// model.Network.Build checks for every layer. col is KH*KW times larger than
// the work (C*KH*KW*N*OH*OW elements: past 2^31 at batch 44,122 for the
// default model's second conv, at 456 for conv512k3same after a 512-channel
// layer), so every offset into col is computed in 64 bits: a row's start
// (long long)(c*KH*KW) * cols, the row within the channel (long long)(ky*KW+kx)
// * cols. No shared memory, no barriers.

// col_put stores one im2col value as the col matrix's element type.
__device__ __forceinline__ void col_put(float* p, float v) { *p = v; }
__device__ __forceinline__ void col_put(unsigned short* p, float v) { *p = bf16_rn(v); }

template <typename T>
__device__ __forceinline__ void im2col(const float* x, T* col,
                                       int C, int N, int H, int W,
                                       int KH, int KW, int SH, int SW,
                                       int PH, int PW, int OH, int OW)
{
    const int cols = N * OH * OW;  // columns of col
    const int total = C * cols;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int q = i % cols;  // column (n*OH+oy)*OW+ox
        const int c = i / cols;
        const int ox = q % OW;
        const int t = q / OW;
        const int oy = t % OH;
        const int n = t / OH;
        const float* xp = x + (c * N + n) * H * W;
        T* cp = col + (long long)(c * KH * KW) * cols + q;
        const int iy0 = oy * SH - PH;
        const int ix0 = ox * SW - PW;
        for (int ky = 0; ky < KH; ++ky) {
            const int iy = iy0 + ky;
            const bool rowin = iy >= 0 && iy < H;
            for (int kx = 0; kx < KW; ++kx) {
                const int ix = ix0 + kx;
                col_put(cp, (rowin && ix >= 0 && ix < W) ? xp[iy * W + ix] : 0.0f);
                cp += cols;
            }
        }
    }
}

extern "C" __global__ void im2col_f32(const float* x, float* col,
                                      int C, int N, int H, int W,
                                      int KH, int KW, int SH, int SW,
                                      int PH, int PW, int OH, int OW)
{
    im2col(x, col, C, N, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
}

extern "C" __global__ void im2col_bf16(const float* x, unsigned short* col,
                                       int C, int N, int H, int W,
                                       int KH, int KW, int SH, int SW,
                                       int PH, int PW, int OH, int OW)
{
    im2col(x, col, C, N, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
}

extern "C" __global__ void col2im_f32(const float* col, float* dx,
                                      int C, int N, int H, int W,
                                      int KH, int KW, int SH, int SW,
                                      int PH, int PW, int OH, int OW)
{
    const int cols = N * OH * OW;
    const int total = C * N * H * W;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int ix = i % W;
        int t = i / W;
        const int iy = t % H;
        t /= H;
        const int n = t % N;
        const int c = t / N;
        // Position in the padded image, and the outputs whose window covers it.
        const int py = iy + PH;
        const int px = ix + PW;
        const int oy0 = py < KH ? 0 : (py - KH) / SH + 1;
        const int oy1 = py / SH < OH - 1 ? py / SH : OH - 1;
        const int ox0 = px < KW ? 0 : (px - KW) / SW + 1;
        const int ox1 = px / SW < OW - 1 ? px / SW : OW - 1;
        const float* cp = col + (long long)(c * KH * KW) * cols + n * OH * OW;
        float s = 0.0f;
        for (int oy = oy1; oy >= oy0; --oy) {  // ky ascending
            const int ky = py - oy * SH;
            for (int ox = ox1; ox >= ox0; --ox) {  // kx ascending
                const int kx = px - ox * SW;
                s += cp[(long long)(ky * KW + kx) * cols + oy * OW + ox];
            }
        }
        dx[i] = s;
    }
}
