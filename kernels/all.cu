// all.cu: the single translation unit that scripts/build-kernels.sh compiles
// to kernels.ptx (one PTX module holding every kernel, so the GPU backend
// loads one module). The host emulator (emu/) compiles it too. Order
// matters where a file uses another's helpers: pointwise.cu uses
// augment.cu's hash, norm.cu and elementwise.cu pointwise.cu's GELU,
// conv.cu bf16.cu's rounding, optim.cu adam.cu's segment table.
#include "bf16.cu"
#include "conv.cu"
#include "pool.cu"
#include "loss.cu"
#include "adam.cu"
#include "gather.cu"
#include "augment.cu"
#include "optim.cu"
#include "pointwise.cu"
#include "elementwise.cu"
#include "norm.cu"
#include "step.cu"
