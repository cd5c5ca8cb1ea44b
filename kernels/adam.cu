// adam.cu: the Adam update, Keras/TF2 form, one fused pass over n parameters,
// with an optional L2 penalty and decoupled weight decay (AdamW):
//
//   g = g + l2*p                  (only when l2 != 0)
//   p = p - decay*p               (only when decay != 0)
//   m = beta1*m + (1-beta1)*g
//   v = beta2*v + (1-beta2)*g*g
//   p = p - lrT * m / (sqrt(v) + eps)
//
// lrT is the bias-corrected step the caller computes on the host,
// lr*sqrt(1-beta2^t)/(1-beta1^t); decay is lr*weight_decay. A zero l2 or
// decay skips its term (as PyTorch does: an infinite or NaN p does not leak
// into g through 0*p), so l2 = decay = 0 is exactly the plain update. Reads
// p, g, m, v and writes p, m, v once each: memory-bound, 28 bytes per
// parameter. sqrtf and the division are the IEEE-rounded ones (nvcc's
// defaults -prec-sqrt=true -prec-div=true) and the PTX is built with
// --fmad=false, so each step rounds exactly like the float32 expression
// evaluated left to right on the host (the CPU backend: bit for bit). Work
// items: n.
//
// adam_seg_f32 is the same update over several segments of the flat
// buffers in one launch, each with its own coefficients (the one optimiser
// launch of a step): seg holds, per segment, four doubles: the first element,
// the end (one past the last), the learning-rate factor f and the weight
// decay wd, in increasing order of the elements; elements of no segment are
// not touched. From the step's learning rate lr and Adam's bias correction
// bc2 = sqrt(1-beta2^t) and pb1 = 1-beta1^t (doubles, passed as their bits)
// each element's segment gives, in double and rounded once to float as
// device.OptimStep.Scalars computes them on the host:
//   r = lr*f;  lrT = r*bc2/pb1
//   adam:  l2 = wd, decay = 0;   adamw: l2 = 0, decay = r*wd
// then the update above (eps as given: Eps, or Eps*bc2 for AdamW). Bit for
// bit adam_f32 launched on each segment with those coefficients. Work
// items: n, the end of the last segment. (The segment table is searched
// per element: a few cached loads.)
//
// seg_find (also optim.cu's) is the index of the segment holding element
// i, or -1.
//
// Grid-stride loop over plain int indices: n must be below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers.

// adam_one is the update of element i.
__device__ __forceinline__ void adam_one(float* p, const float* g, float* m, float* v, int i,
                                         float lrT, float beta1, float beta2, float eps,
                                         float l2, float decay)
{
    float pi = p[i];
    float gi = g[i];
    if (l2 != 0.0f) {
        gi += l2 * pi;
    }
    if (decay != 0.0f) {
        pi -= decay * pi;
    }
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - lrT * mi / (sqrtf(vi) + eps);
}

extern "C" __global__ void adam_f32(float* p, const float* g, float* m, float* v, int n,
                                    float lrT, float beta1, float beta2, float eps,
                                    float l2, float decay)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        adam_one(p, g, m, v, i, lrT, beta1, beta2, eps, l2, decay);
    }
}

__device__ __forceinline__ int seg_find(const double* seg, int nseg, int i)
{
    int lo = 0, hi = nseg;  // the first segment whose end is above i
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (seg[4 * mid + 1] > (double)i) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo < nseg && (double)i >= seg[4 * lo] ? lo : -1;
}

__device__ __forceinline__ double bits_double(unsigned long long b)
{
    return __longlong_as_double((long long)b);
}

extern "C" __global__ void adam_seg_f32(float* p, const float* g, float* m, float* v,
                                        const double* seg, int nseg, int n,
                                        unsigned long long lr, unsigned long long bc2, unsigned long long pb1,
                                        float beta1, float beta2, float eps, int adamw)
{
    const double lrd = bits_double(lr), bc2d = bits_double(bc2), pb1d = bits_double(pb1);
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int s = seg_find(seg, nseg, i);
        if (s < 0) {
            continue;
        }
        const double r = lrd * seg[4 * s + 2];
        const double wd = seg[4 * s + 3];
        const float lrT = (float)(r * bc2d / pb1d);
        adam_one(p, g, m, v, i, lrT, beta1, beta2, eps, adamw ? 0.0f : (float)wd, adamw ? (float)(r * wd) : 0.0f);
    }
}
