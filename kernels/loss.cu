// loss.cu: softmax cross-entropy, its gradient and the batch statistics.
//
// softmax_xent_f32: logits [n, k] row-major, int32 labels [n]. One work item
// per row (k is small for classifiers: 10 for CIFAR-10; a row is read three
// times, from L1/L2). Per row, with m the row max and s = sum exp(l - m):
//   loss  = log(s) - (l[label] - m)             (= -log softmax[label])
//   dlogits[j] = (exp(l[j] - m) / s - [j == label]) * gradScale
// (skipped when dlogits is NULL), and the row counts as correct when the
// first largest logit (strict '>' scan from j = 0) is at the label. Precise
// expf/logf, not the __expf intrinsics, to stay close to the CPU backend.
//
// Label smoothing eps = smoothing (PyTorch's label_smoothing): the target is
// q = (1-eps)*onehot + eps/k. In float32, with p = exp(l[j] - m) / s:
//   dlogits[j] = ((j == label ? p - (1 - eps) : p) - eps/k) * gradScale
//   loss = (1 - eps)*(log(s) - (l[label] - m)) + eps*(log(s) - t/k),
//   t = sum_j (l[j] - m)        (t/k - log(s) is the mean log-softmax)
// With eps 0 the gradient is bit for bit the plain one above (1 - 0 = 1,
// x - 0 = x) and the loss is computed by the plain formula, without t.
// The accuracy count does not depend on eps.
//
// Stats: stats[0] += loss, stats[1] += 1 if correct, by atomicAdd. stats[1]
// holds whole numbers, exact (and so order-independent) below 2^24. stats[0]
// is a float sum in whatever order the rows finish, so it can differ in the
// last bits from run to run; it is only reported, never fed back into
// training. A label outside [0, k) is a caller bug: that row adds NaN to
// stats[0], is not counted correct, and its gradient is the plain softmax.
// Work items: n.
//
// Grid-stride loop over plain int indices: n*k must be below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers.

extern "C" __global__ void softmax_xent_f32(const float* logits, const int* labels,
                                            int n, int k, float gradScale, float smoothing,
                                            float* dlogits, float* stats)
{
    if (k <= 0) {
        return;
    }
    const int stride = blockDim.x * gridDim.x;
    for (int row = blockIdx.x * blockDim.x + threadIdx.x; row < n; row += stride) {
        const float* l = logits + row * k;
        const int label = labels[row];
        const bool valid = label >= 0 && label < k;
        float m = l[0];
        int am = 0;
        for (int j = 1; j < k; ++j) {
            if (l[j] > m) {
                m = l[j];
                am = j;
            }
        }
        float s = 0.0f;
        for (int j = 0; j < k; ++j) {
            s += expf(l[j] - m);
        }
        const float logs = logf(s);
        float loss = valid ? logs - (l[label] - m) : __int_as_float(0x7fc00000);
        if (smoothing != 0.0f) {
            float t = 0.0f;
            for (int j = 0; j < k; ++j) {
                t += l[j] - m;
            }
            loss = (1.0f - smoothing) * loss + smoothing * (logs - t / (float)k);
        }
        if (dlogits != 0) {
            float* d = dlogits + row * k;
            const float hit = 1.0f - smoothing;
            const float q = smoothing / (float)k;
            for (int j = 0; j < k; ++j) {
                const float p = expf(l[j] - m) / s;
                d[j] = ((j == label ? p - hit : p) - q) * gradScale;
            }
        }
        atomicAdd(&stats[0], loss);
        if (valid && am == label) {
            atomicAdd(&stats[1], 1.0f);
        }
    }
}
