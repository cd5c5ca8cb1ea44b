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

#include <string>
#include <utility>

#include "launch.h"

namespace {

template <typename T> struct ctype;
template <> struct ctype<float*> { static constexpr const char* name = "float*"; };
template <> struct ctype<const float*> { static constexpr const char* name = "const float*"; };
template <> struct ctype<int*> { static constexpr const char* name = "int*"; };
template <> struct ctype<const int*> { static constexpr const char* name = "const int*"; };
template <> struct ctype<const unsigned char*> { static constexpr const char* name = "const unsigned char*"; };
template <> struct ctype<int> { static constexpr const char* name = "int"; };
template <> struct ctype<unsigned long long> { static constexpr const char* name = "unsigned long long"; };
template <> struct ctype<float> { static constexpr const char* name = "float"; };

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

const Entry table[] = {
    KERNEL(im2col_f32),
    KERNEL(col2im_f32),
    KERNEL(maxpool_fwd_f32),
    KERNEL(maxpool_bwd_f32),
    KERNEL(avgpool_fwd_f32),
    KERNEL(avgpool_bwd_f32),
    KERNEL(bias_add_f32),
    KERNEL(bias_grad_f32),
    KERNEL(relu_fwd_f32),
    KERNEL(relu_bwd_f32),
    KERNEL(swap_axes01_f32),
    KERNEL(fill_f32),
    KERNEL(softmax_xent_f32),
    KERNEL(adam_f32),
    KERNEL(gather_images_f32),
    KERNEL(augment_f32),
    KERNEL(translate_f32),
    KERNEL(sgd_f32),
    KERNEL(rmsprop_f32),
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
            e.launch(grid, block, first, reverse, args);
            return 0;
        }
    }
    return -1;
}
