// cuda_host.h: just enough CUDA C++ for the kernels in ../*.cu to compile as
// plain host C++ and run one (block, thread) at a time.
//
// A launch (see kernels.cc) sets gridDim/blockDim, then for every block and
// every thread sets blockIdx/threadIdx and calls the kernel function. Threads
// run one after another, to completion, so this is exact for kernels without
// barriers (the order can be reversed to show that no result depends on it).
//
// Kernels with barriers (registered with KERNEL_BARRIERS in kernels.cc) run
// each block's threads as coroutines on their own stacks: __syncthreads()
// returns to the launch, which resumes every thread of the block in turn
// (increasing or reversed order) until all reach the barrier, then lets
// them pass; so the threads of a block interleave only at barriers, which
// is all a race-free kernel may assume. __shared__ variables are static
// thread_local: one copy per block run (blocks run one after another), per
// launching OS thread. __syncthreads() in a kernel registered without
// barriers makes the launch fail. __threadfence() orders nothing that needs
// ordering here (threads do not run at once) and is empty.
//
// The built-in indices are thread_local so that tests may launch from several
// goroutines (OS threads) at once.
#ifndef TRAINER_CUDA_HOST_H
#define TRAINER_CUDA_HOST_H

#include <math.h>
#include <string.h>

struct emu_dim3 {
    unsigned int x, y, z;
};

static thread_local emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static thread_local

// __syncthreads is defined in kernels.cc (the coroutine scheduler).
void __syncthreads(void);
static inline void __threadfence(void) {}

// Threads run one at a time, so a plain read-modify-write is atomic.
static inline float atomicAdd(float* p, float v)
{
    const float old = *p;
    *p = old + v;
    return old;
}

static inline int atomicAdd(int* p, int v)
{
    const int old = *p;
    *p = old + v;
    return old;
}

static inline float __int_as_float(int i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline int __float_as_int(float f)
{
    int i;
    memcpy(&i, &f, sizeof i);
    return i;
}

static inline float __uint_as_float(unsigned int u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline unsigned int __float_as_uint(float f)
{
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline double __longlong_as_double(long long i)
{
    double d;
    memcpy(&d, &i, sizeof d);
    return d;
}

// The fast-math intrinsics map to the precise functions; the kernels use
// the precise ones anyway. fmaxf, fminf, expf, logf, erff, sqrtf and the
// double sqrt come from math.h.
// (Macros, as glibc declares __expf/__logf itself.)
#define __expf(x) expf(x)
#define __logf(x) logf(x)
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

#endif
