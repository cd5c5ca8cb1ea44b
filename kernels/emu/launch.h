// launch.h: the C interface of the host emulator (kernels.cc), for cgo.
#ifndef TRAINER_EMU_LAUNCH_H
#define TRAINER_EMU_LAUNCH_H

#ifdef __cplusplus
extern "C" {
#endif

// emu_kernels is the number of kernels compiled in; emu_kernel_name(i) the
// name of the i-th, emu_kernel_sig(i) its parameter types, comma-separated
// ("const float*,float*,int,..."), in order.
int emu_kernels(void);
const char* emu_kernel_name(int i);
const char* emu_kernel_sig(int i);

// emu_launch runs the named kernel over a grid of grid blocks of block
// threads, blocks and threads in increasing order, or decreasing when
// reverse != 0; only blocks first..grid-1 run (first 0: all of them), for
// tests of index ranges too large to run whole. args points to nargs
// pointers, one to each argument value, as cuLaunchKernel's kernelParams.
// Returns 0, or -1 for an unknown name, -2 for a wrong argument count, -3
// for a bad grid, block or first block, -4 for a kernel that reached
// __syncthreads without being registered as one with barriers.
int emu_launch(const char* name, int grid, int block, int first, int reverse, void** args, int nargs);

#ifdef __cplusplus
}
#endif

#endif
