//go:build cgo

// kernels.cc: compiles the very CUDA sources the PTX is built from
// (../all.cu) as host C++, and launches them by name, cuLaunchKernel style.
//
// Multiply-adds are not fused into FMAs here (the flag is not one cgo
// accepts, hence the pragmas), so the emulator rounds like plain Go code;
// nvcc does fuse them, which the tests' tolerances allow for.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "cuda_host.h"

#include "../all.cu"

#include <stddef.h>
#include <string.h>
#include <ucontext.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "launch.h"

namespace {

// ---- coroutines for kernels with barriers (see cuda_host.h) ----

// fiber is one thread of a block, run as a coroutine.
struct fiber {
    ucontext_t ctx;
    std::unique_ptr<char[]> stack; // fiberStack bytes, allocated once per launching thread
    bool done;
};

const size_t fiberStack = 64 << 10;

thread_local ucontext_t sched;               // the launch's own context
thread_local fiber* current = nullptr;       // the running fiber, nullptr outside a barrier launch
thread_local const std::function<void()>* body = nullptr;
thread_local bool strayBarrier = false;      // __syncthreads outside a barrier launch
thread_local std::vector<fiber> fibers;

void trampoline()
{
    (*body)();
    current->done = true; // uc_link returns to sched
}

} // namespace

void __syncthreads(void)
{
    if (current == nullptr) {
        strayBarrier = true;
        return;
    }
    swapcontext(&current->ctx, &sched);
}

namespace {

// runBlockFibers runs one block of block threads (blockIdx already set)
// as coroutines: every thread in turn until it reaches a barrier or ends,
// then the next round, until all have ended.
void runBlockFibers(int block, int reverse, const std::function<void()>& f)
{
    if ((int)fibers.size() < block) {
        fibers.resize(block);
    }
    body = &f;
    for (int t = 0; t < block; ++t) {
        fiber& fb = fibers[t];
        if (!fb.stack) {
            fb.stack.reset(new char[fiberStack]);
        }
        fb.done = false;
        getcontext(&fb.ctx);
        fb.ctx.uc_stack.ss_sp = fb.stack.get();
        fb.ctx.uc_stack.ss_size = fiberStack;
        fb.ctx.uc_link = &sched;
        makecontext(&fb.ctx, trampoline, 0);
    }
    for (int live = block; live > 0;) {
        live = 0;
        for (int ti = 0; ti < block; ++ti) {
            const int t = reverse ? block - 1 - ti : ti;
            fiber& fb = fibers[t];
            if (fb.done) {
                continue;
            }
            threadIdx = {(unsigned)t, 0, 0};
            current = &fb;
            swapcontext(&sched, &fb.ctx);
            current = nullptr;
            live += fb.done ? 0 : 1;
        }
    }
    body = nullptr;
}

template <typename T> struct ctype;
template <> struct ctype<float*> { static constexpr const char* name = "float*"; };
template <> struct ctype<const float*> { static constexpr const char* name = "const float*"; };
template <> struct ctype<int*> { static constexpr const char* name = "int*"; };
template <> struct ctype<const int*> { static constexpr const char* name = "const int*"; };
template <> struct ctype<const unsigned char*> { static constexpr const char* name = "const unsigned char*"; };
template <> struct ctype<int> { static constexpr const char* name = "int"; };
template <> struct ctype<unsigned long long> { static constexpr const char* name = "unsigned long long"; };
template <> struct ctype<float> { static constexpr const char* name = "float"; };
template <> struct ctype<unsigned short*> { static constexpr const char* name = "unsigned short*"; };
template <> struct ctype<const unsigned short*> { static constexpr const char* name = "const unsigned short*"; };
template <> struct ctype<const double*> { static constexpr const char* name = "const double*"; };

template <typename... P, size_t... I>
void call(void (*k)(P...), void** args, std::index_sequence<I...>)
{
    k(*static_cast<P*>(args[I])...);
}

// run runs blocks first..grid-1 of a grid of grid blocks (first 0: all).
template <typename... P>
void run(void (*k)(P...), int grid, int block, int first, int reverse, void** args)
{
    gridDim = {(unsigned)grid, 1, 1};
    blockDim = {(unsigned)block, 1, 1};
    for (int bi = first; bi < grid; ++bi) {
        const int b = reverse ? grid - 1 - (bi - first) : bi;
        for (int ti = 0; ti < block; ++ti) {
            const int t = reverse ? block - 1 - ti : ti;
            blockIdx = {(unsigned)b, 0, 0};
            threadIdx = {(unsigned)t, 0, 0};
            call(k, args, std::index_sequence_for<P...>{});
        }
    }
}

// runBarriers is run for a kernel with barriers: each block's threads as
// coroutines.
template <typename... P>
void runBarriers(void (*k)(P...), int grid, int block, int first, int reverse, void** args)
{
    gridDim = {(unsigned)grid, 1, 1};
    blockDim = {(unsigned)block, 1, 1};
    const std::function<void()> f = [&] { call(k, args, std::index_sequence_for<P...>{}); };
    for (int bi = first; bi < grid; ++bi) {
        const int b = reverse ? grid - 1 - (bi - first) : bi;
        blockIdx = {(unsigned)b, 0, 0};
        runBlockFibers(block, reverse, f);
    }
}

template <typename... P>
std::string sig(void (*)(P...))
{
    std::string s;
    for (const char* n : {ctype<P>::name...}) {
        if (!s.empty()) {
            s += ",";
        }
        s += n;
    }
    return s;
}

template <typename... P>
constexpr int arity(void (*)(P...))
{
    return sizeof...(P);
}

struct Entry {
    const char* name;
    void (*launch)(int grid, int block, int first, int reverse, void** args);
    int nparams;
    std::string sig;
};

#define KERNEL(k) \
    Entry { #k, [](int g, int b, int f, int r, void** a) { run(k, g, b, f, r, a); }, arity(k), sig(k) }

// KERNEL_BARRIERS registers a kernel that calls __syncthreads.
#define KERNEL_BARRIERS(k) \
    Entry { #k, [](int g, int b, int f, int r, void** a) { runBarriers(k, g, b, f, r, a); }, arity(k), sig(k) }

const Entry table[] = {
    KERNEL(f32_to_bf16),
    KERNEL(bf16_to_f32),
    KERNEL(im2col_f32),
    KERNEL(im2col_bf16),
    KERNEL(col2im_f32),
    KERNEL(maxpool_fwd_f32),
    KERNEL(maxpool_bwd_f32),
    KERNEL(avgpool_fwd_f32),
    KERNEL(avgpool_bwd_f32),
    KERNEL(bias_act_f32),
    KERNEL_BARRIERS(bias_grad_f32),
    KERNEL(relu_fwd_f32),
    KERNEL(relu_bwd_f32),
    KERNEL(swap_axes01_f32),
    KERNEL(fill_f32),
    KERNEL(softmax_xent_f32),
    KERNEL(adam_f32),
    KERNEL(adam_seg_f32),
    KERNEL(gather_images_f32),
    KERNEL(augment_f32),
    KERNEL(translate_f32),
    KERNEL(sgd_f32),
    KERNEL(rmsprop_f32),
    KERNEL(sgd_seg_f32),
    KERNEL(rmsprop_seg_f32),
    KERNEL(gelu_fwd_f32),
    KERNEL(gelu_bwd_f32),
    KERNEL(add_f32),
    KERNEL(axpby_f32),
    KERNEL(dropout_f32),
    KERNEL(channel_sum_f32),
    KERNEL(bn_invstd_f32),
    KERNEL(bn_fwd_f32),
    KERNEL(bn_bwd_f32),
};

const int ntable = sizeof table / sizeof table[0];

} // namespace

extern "C" int emu_kernels(void) { return ntable; }

extern "C" const char* emu_kernel_name(int i) { return i >= 0 && i < ntable ? table[i].name : nullptr; }

extern "C" const char* emu_kernel_sig(int i) { return i >= 0 && i < ntable ? table[i].sig.c_str() : nullptr; }

extern "C" int emu_launch(const char* name, int grid, int block, int first, int reverse, void** args, int nargs)
{
    for (const Entry& e : table) {
        if (strcmp(e.name, name) == 0) {
            if (nargs != e.nparams) {
                return -2;
            }
            if (grid < 0 || block <= 0 || first < 0 || (first > 0 && first >= grid)) {
                return -3;
            }
            strayBarrier = false;
            e.launch(grid, block, first, reverse, args);
            return strayBarrier ? -4 : 0;
        }
    }
    return -1;
}
