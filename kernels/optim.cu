// optim.cu: the SGD and RMSprop updates of PyTorch, one fused pass over n
// parameters each.
//
// sgd_f32 (torch.optim.SGD, dampening 0):
//   g = g + l2*p                                  (only when l2 != 0)
//   buf = momentum*buf + g                        (only when momentum != 0)
//   g = nesterov ? g + momentum*buf : buf         (only when momentum != 0)
//   p = p - lr*g
// buf starts at zero, which gives PyTorch's first step buf = g. With
// momentum 0, buf is neither read nor written and may be NULL.
//
// rmsprop_f32 (torch.optim.RMSprop, centered=False):
//   g = g + l2*p                                  (only when l2 != 0)
//   sq = alpha*sq + (1-alpha)*g*g
//   a = sqrt(sq) + eps
//   momentum != 0: buf = momentum*buf + g/a; p = p - lr*buf
//   momentum == 0: p = p - lr*g/a                 (buf may be NULL)
//
// Every operation is one float32 operation, evaluated left to right
// ((1-alpha)*g*g is ((1-alpha)*g)*g, lr*g/a is (lr*g)/a); the PTX has no
// FMAs (--fmad=false) and sqrtf and the division are IEEE-rounded, so the
// results are bit for bit the CPU backend's. A zero l2 or momentum skips
// its term (PyTorch's rule). Work items: n.
//
// sgd_seg_f32 and rmsprop_seg_f32 are the same updates over the segments
// of a table (see adam_seg_f32 in adam.cu) in one launch: per element's
// segment, lr = (float)(lr_step*f) and l2 = (float)wd in double, rounded
// once (device.OptimStep.Scalars); bit for bit sgd_f32 and rmsprop_f32 on
// each segment. Work items: n, the end of the last segment.
//
// Grid-stride loops over plain int indices: n must be below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers.

__device__ __forceinline__ void sgd_one(float* p, const float* g, float* buf, int i,
                                        float lr, float momentum, float l2, int nesterov)
{
    const float pi = p[i];
    float gi = g[i];
    if (l2 != 0.0f) {
        gi += l2 * pi;
    }
    if (momentum != 0.0f) {
        const float bi = momentum * buf[i] + gi;
        buf[i] = bi;
        gi = nesterov ? gi + momentum * bi : bi;
    }
    p[i] = pi - lr * gi;
}

__device__ __forceinline__ void rmsprop_one(float* p, const float* g, float* sq, float* buf, int i,
                                            float lr, float alpha, float eps, float l2, float momentum)
{
    const float pi = p[i];
    float gi = g[i];
    if (l2 != 0.0f) {
        gi += l2 * pi;
    }
    const float si = alpha * sq[i] + (1.0f - alpha) * gi * gi;
    sq[i] = si;
    const float a = sqrtf(si) + eps;
    if (momentum != 0.0f) {
        const float bi = momentum * buf[i] + gi / a;
        buf[i] = bi;
        p[i] = pi - lr * bi;
    } else {
        p[i] = pi - lr * gi / a;
    }
}

extern "C" __global__ void sgd_f32(float* p, const float* g, float* buf, int n,
                                   float lr, float momentum, float l2, int nesterov)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        sgd_one(p, g, buf, i, lr, momentum, l2, nesterov);
    }
}

extern "C" __global__ void rmsprop_f32(float* p, const float* g, float* sq, float* buf, int n,
                                       float lr, float alpha, float eps, float l2, float momentum)
{
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        rmsprop_one(p, g, sq, buf, i, lr, alpha, eps, l2, momentum);
    }
}

extern "C" __global__ void sgd_seg_f32(float* p, const float* g, float* buf,
                                       const double* seg, int nseg, int n, unsigned long long lr,
                                       float momentum, int nesterov)
{
    const double lrd = bits_double(lr);
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int s = seg_find(seg, nseg, i);
        if (s >= 0) {
            sgd_one(p, g, buf, i, (float)(lrd * seg[4 * s + 2]), momentum, (float)seg[4 * s + 3], nesterov);
        }
    }
}

extern "C" __global__ void rmsprop_seg_f32(float* p, const float* g, float* sq, float* buf,
                                           const double* seg, int nseg, int n, unsigned long long lr,
                                           float alpha, float eps, float momentum)
{
    const double lrd = bits_double(lr);
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int s = seg_find(seg, nseg, i);
        if (s >= 0) {
            rmsprop_one(p, g, sq, buf, i, (float)(lrd * seg[4 * s + 2]), alpha, eps, (float)seg[4 * s + 3], momentum);
        }
    }
}
