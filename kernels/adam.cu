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
// Grid-stride loop over plain int indices: n must be below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers.

extern "C" __global__ void adam_f32(float* p, const float* g, float* m, float* v, int n,
                                    float lrT, float beta1, float beta2, float eps,
                                    float l2, float decay)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
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
}
