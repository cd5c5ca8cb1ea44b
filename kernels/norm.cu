// norm.cu: batch normalisation over x viewed as [outer, C, inner] (CNHW conv
// output: outer 1, inner N*H*W; dense output [N, F]: outer N, C = F, inner
// 1), M = outer*inner elements per channel.
//
// channel_sum_f32: the per-channel reductions, deterministic and without
// atomics or barriers, in the passes of kernels.ChannelSumPlan (the plan
// depends only on the shape, so the summation order, and the
// result, is the same on every run, every GPU and every launch
// configuration). out[c*chunks + j] = (sum over the flat positions e =
// o*inner + r < outer*inner with e = j (mod chunks), e ascending, of
// term(o, c, r)) / div, the sum in float32, where term is
//   0 (CHANNEL_SUM_X):     x
//   1 (CHANNEL_SUM_SQDEV): d*d, d = x - mean[c]
//   2 (CHANNEL_SUM_YXHAT): y * ((x - mean[c]) * invstd[c])
// The first pass of a plan computes the term, the later ones (outer 1,
// inner = the previous chunks) add partial sums with term 0, and the last
// writes the result (chunks 1), divided by div (1 for a plain sum, exact; M
// for a mean). Unused pointers may be NULL (mean for term 0, y and invstd
// for terms 0 and 1, a for act 0). With act != 0 (the first pass of term 0
// only: BatchNorm's backward with its activation fused) each x is first
// replaced by act_grad_f(x, a, act) of pointwise.cu, written back: the
// ReLU's (a its output) or the GELU's (a its input) backward, bit for bit
// relu_bwd_f32's and gelu_bwd_f32's. Work items: C*chunks.
//
// Precision. The sums are float32 partial sums of at most 64 terms (256 for
// channels over 2^18 elements), then of at most 64 partial sums per level;
// the CPU backend sums in float64. The difference is below about 1e-6 of
// the sum of the terms' magnitudes (2e-7 per term of the first level plus
// 2^-24 per level, a worst case; random data does far better).
//
// bn_invstd_f32: invstd[c] = (float)(1.0 / sqrt((double)variance[c] +
// (double)eps)), in double and rounded once: the CPU backend's bnInvStd, bit
// for bit (double division and sqrt are IEEE-rounded on the GPU). One work
// item per channel (C of them; doubles cost nothing here), into scratch.
//
// bn_fwd_f32: z = ((x - mean[c]) * invstd[c]) * gamma[c] + beta[c], each
// operation rounded to float32 as written (no FMAs: --fmad=false), then
// y = act(z): 0 none (y = z), 1 ReLU (z < 0 ? 0 : z), 2 the exact GELU
// (gelu_f of pointwise.cu). z is stored only when the z pointer is not NULL.
// With act none or ReLU the result is bit for bit the CPU backend's; the
// GELU is within the tolerance of gelu_fwd_f32. y may be x. Work items:
// outer*C*inner.
//
// bn_bwd_f32: dx of the training-mode batch norm, given the channel sums
// dbeta = sum dz and dgamma = sum dz*xhat (channel_sum_f32 terms 0 and 2):
//   xhat = (x - mean[c]) * invstd[c]
//   dx = (gamma[c]*invstd[c]) * ((dz - dbeta[c]/M) - xhat*(dgamma[c]/M))
// in float32, M = (float)(outer*inner). The CPU backend evaluates the same
// expression in float64 from unrounded float64 sums; the difference is a
// few float32 ulps of gamma*invstd*max|dz| (the sums' error divided by M,
// plus the rounding of the cancelling difference). dx may be dz. Work
// items: outer*C*inner.
//
// Grid-stride loops over plain int indices: every buffer must hold fewer
// than 2^31 - 2^21 elements (kernels.MaxElems). No shared memory, no
// barriers.

#define CHANNEL_SUM_X 0
#define CHANNEL_SUM_SQDEV 1
#define CHANNEL_SUM_YXHAT 2

extern "C" __global__ void channel_sum_f32(float* x, const float* y, const float* mean,
                                           const float* invstd, const float* a, float* out,
                                           int outer, int C, int inner, int chunks, int term, float div, int act)
{
    const int len = outer * inner; // elements per channel
    const int total = C * chunks;
    const int stride = blockDim.x * gridDim.x;
    const int dq = chunks / inner; // step of e = o*inner + r, split into o and r
    const int dr = chunks % inner;
    const int ostride = C * inner;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int j = i % chunks;
        const int c = i / chunks;
        const int base = c * inner;
        const float mc = term != CHANNEL_SUM_X ? mean[c] : 0.0f;
        const float ic = term == CHANNEL_SUM_YXHAT ? invstd[c] : 0.0f;
        int o = j / inner;
        int r = j % inner;
        float s = 0.0f;
        for (int e = j; e < len; e += chunks) {
            const int k = base + o * ostride + r;
            float v = x[k];
            if (act) {
                v = act_grad_f(v, a[k], act);
                x[k] = v;
            }
            if (term == CHANNEL_SUM_SQDEV) {
                const float d = v - mc;
                v = d * d;
            } else if (term == CHANNEL_SUM_YXHAT) {
                v = y[k] * ((v - mc) * ic);
            }
            s += v;
            o += dq;
            r += dr;
            if (r >= inner) {
                r -= inner;
                ++o;
            }
        }
        out[i] = s / div;
    }
}

extern "C" __global__ void bn_invstd_f32(const float* variance, float* invstd, int C, float eps)
{
    const int stride = blockDim.x * gridDim.x;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += stride) {
        invstd[c] = (float)(1.0 / sqrt((double)variance[c] + (double)eps));
    }
}

extern "C" __global__ void bn_fwd_f32(const float* x, const float* mean, const float* invstd,
                                      const float* gamma, const float* beta, float* z, float* y,
                                      int outer, int C, int inner, int act)
{
    const int total = outer * C * inner;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int c = (i / inner) % C;
        const float xh = (x[i] - mean[c]) * invstd[c];
        const float zv = xh * gamma[c] + beta[c];
        if (z != 0) {
            z[i] = zv;
        }
        float v = zv;
        if (act == 1) {
            if (v < 0.0f) {
                v = 0.0f;
            }
        } else if (act == 2) {
            v = gelu_f(v);
        }
        y[i] = v;
    }
}

extern "C" __global__ void bn_bwd_f32(const float* x, const float* dz, const float* mean,
                                      const float* invstd, const float* gamma,
                                      const float* dgamma, const float* dbeta, float* dx,
                                      int outer, int C, int inner)
{
    const int total = outer * C * inner;
    const float M = (float)(outer * inner);
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int c = (i / inner) % C;
        const float inv = invstd[c];
        const float xh = (x[i] - mean[c]) * inv;
        const float k = gamma[c] * inv;
        const float a = dbeta[c] / M;
        const float g = dgamma[c] / M;
        dx[i] = k * ((dz[i] - a) - xh * g);
    }
}
