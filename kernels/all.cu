// all.cu: the single translation unit that scripts/build-kernels.sh compiles
// to kernels.ptx (one PTX module holding every kernel, so the GPU backend
// loads one module). The host emulator (emu/) compiles it too.
#include "conv.cu"
#include "pool.cu"
#include "elementwise.cu"
#include "loss.cu"
#include "adam.cu"
#include "gather.cu"
#include "augment.cu"
