// gather.cu: assemble a batch from the uint8 dataset on the device.
//
// gather_images_f32: src holds the whole dataset, image after image, each
// c*hw bytes, channel-major (as in the CIFAR-10 files). For j < n it writes
// image idx[j] to dst as CNHW floats scaled by scale:
//   dst[(ch*n + j)*hw + p] = src[idx[j]*c*hw + ch*hw + p] * scale
// and, when labels and dstLabels are both non-NULL, dstLabels[j] =
// labels[idx[j]]. One work item per dst element, so stores coalesce and each
// warp reads runs of consecutive bytes; the first n work items also copy the
// labels. Work items: max(c*n*hw, n).
//
// Sizes. The dataset offset idx[j]*c*hw is computed in 64 bits, so src may
// exceed 2^31 bytes; the batch (c*n*hw floats) must stay below 2^31 - 2^21
// (kernels.MaxElems). No shared memory, no barriers.

extern "C" __global__ void gather_images_f32(const unsigned char* src, const int* idx,
                                             int n, int c, int hw, float scale,
                                             float* dst, const int* labels, int* dstLabels)
{
    const int total = c * n * hw;
    const int work = total > n ? total : n;
    const bool withLabels = labels != 0 && dstLabels != 0;
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < work; i += stride) {
        if (i < total) {
            const int p = i % hw;
            const int t = i / hw;
            const int j = t % n;
            const int ch = t / n;
            const long long off = (long long)idx[j] * (c * hw) + ch * hw + p;
            dst[i] = (float)src[off] * scale;
        }
        if (withLabels && i < n) {
            dstLabels[i] = labels[idx[i]];
        }
    }
}
