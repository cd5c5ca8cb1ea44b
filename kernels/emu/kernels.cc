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
#include <stdint.h>
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
//
// A fiber is one thread of a block with its own stack. Switching saves the
// callee-saved registers and the stack pointer and loads another's: on
// x86-64 with a few instructions (emu_switch below: what the SysV ABI
// asks a call to preserve, the SSE and x87 control words included), which
// keeps the block's threads cheap to interleave; elsewhere, or built with
// -DEMU_UCONTEXT, with swapcontext (which also saves the signal mask, a
// system call per switch).

const size_t fiberStack = 64 << 10;

#if defined(__x86_64__) && !defined(EMU_UCONTEXT)

// emu_switch(save, load) stores the caller's stack pointer, with its
// callee-saved registers pushed below it, in *save, and continues on load,
// popping what a previous emu_switch (or fiberStart) left there.
extern "C" void emu_switch(void** save, void* load);
asm(R"(
    .text
    .p2align 4
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");

struct fiber {
    void* sp;
    std::unique_ptr<char[]> stack; // fiberStack bytes, allocated once per launching thread
    bool done;
};

thread_local void* schedSP;

#else

struct fiber {
    ucontext_t ctx;
    std::unique_ptr<char[]> stack;
    bool done;
};

thread_local ucontext_t sched;

#endif

thread_local fiber* current = nullptr;       // the running fiber, nullptr outside a barrier launch
thread_local const std::function<void()>* body = nullptr;
thread_local bool strayBarrier = false;      // __syncthreads outside a barrier launch
thread_local std::vector<fiber> fibers;

// toSched returns from the running fiber to the launch.
void toSched()
{
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
    emu_switch(&current->sp, schedSP);
#else
    swapcontext(&current->ctx, &sched);
#endif
}

// fiberMain is where a fiber starts: the thread's whole run, then back to
// the launch for good.
void fiberMain()
{
    (*body)();
    current->done = true;
    toSched();
    __builtin_trap(); // a finished fiber is never resumed
}

// fiberStart prepares fb to run fiberMain on its stack from the start.
void fiberStart(fiber& fb)
{
    if (!fb.stack) {
        fb.stack.reset(new char[fiberStack]);
    }
    fb.done = false;
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
    // The frame emu_switch pops: control words, r15..rbp (zeros), then
    // fiberMain as the return address, which leaves the stack pointer at
    // 8 mod 16, as after a call.
    uintptr_t top = ((uintptr_t)fb.stack.get() + fiberStack) & ~(uintptr_t)15;
    void** sp = (void**)(top - 16);
    sp[0] = (void*)fiberMain;
    for (int r = 1; r <= 6; ++r) {
        sp[-r] = nullptr;
    }
    unsigned int ctl[2] = {0, 0};
    asm volatile("stmxcsr %0" : "=m"(ctl[0]));
    asm volatile("fnstcw %0" : "=m"(ctl[1]));
    sp[-7] = (void*)((uintptr_t)ctl[0] | (uintptr_t)(ctl[1] & 0xffff) << 32);
    fb.sp = (void*)(sp - 7);
#else
    getcontext(&fb.ctx);
    fb.ctx.uc_stack.ss_sp = fb.stack.get();
    fb.ctx.uc_stack.ss_size = fiberStack;
    fb.ctx.uc_link = nullptr;
    makecontext(&fb.ctx, fiberMain, 0);
#endif
}

// resume runs fb until it reaches a barrier or ends.
void resume(fiber& fb)
{
    current = &fb;
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
    emu_switch(&schedSP, fb.sp);
#else
    swapcontext(&sched, &fb.ctx);
#endif
    current = nullptr;
}

} // namespace

void __syncthreads(void)
{
    if (current == nullptr) {
        strayBarrier = true;
        return;
    }
    toSched();
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
        fiberStart(fibers[t]);
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
            resume(fb);
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
    KERNEL(step_begin_i32),
    KERNEL(step_end_i32),
    KERNEL(adam_at_f32),
    KERNEL(sgd_at_f32),
    KERNEL(rmsprop_at_f32),
    KERNEL(axpby_at_f32),
    KERNEL(augment_at_f32),
    KERNEL(dropout_at_f32),
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
