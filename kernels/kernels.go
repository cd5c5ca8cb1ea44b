// Package kernels holds the CUDA kernels of the GPU backend: the CUDA C
// sources (*.cu, in this folder), the PTX that scripts/build-kernels.sh makes
// from them (kernels.ptx, committed and embedded here), and the table of every
// kernel with its parameters and launch configuration.
//
// The package has no cgo and no CUDA dependency: the GPU backend loads PTX
// with the driver (cuModuleLoadData, which JIT-compiles it for the GPU in use)
// and looks each kernel up by Name (cuModuleGetFunction). The PTX targets
// compute_70, so any GPU from Volta (sm_70) on runs it.
//
// Every kernel is a 1-D grid-stride loop over a number of work items stated in
// its table entry (Kernel.Work): launch it with Block threads per block and
// Grid(work) blocks. Results never depend on the launch configuration (the
// host emulator in kernels/emu checks this), so the configuration is a
// performance choice only. No kernel uses shared memory or barriers, and
// none uses atomics except softmax_xent_f32 for its two statistics.
//
// Rounding. The PTX is built with --fmad=false and IEEE division and sqrt:
// each kernel computes exactly the float32 operations its source states, in
// the order it states, like plain Go code on amd64. Only bias_grad_f32 (sum
// order), softmax_xent_f32 (expf/logf; the loss sum's order) differ from
// the CPU backend beyond that by design; the others can match it bit for
// bit.
//
// Limits: sizes are C int. Every buffer a kernel touches, and every Work
// count, must be at most MaxElems elements. The dataset of
// gather_images_f32 is addressed in 64 bits and may be larger.
//
// Regenerate the PTX after editing a .cu file with scripts/build-kernels.sh;
// scripts/check-ptx.sh fails when it is stale and assembles it with ptxas for
// sm_70, sm_80 and sm_90.
package kernels

import (
	"embed"
	"fmt"
	"strings"
)

// PTX is the PTX module holding every kernel in Kernels (NUL-free text; append
// a 0 byte before handing it to cuModuleLoadData).
//
//go:embed kernels.ptx
var PTX []byte

// Sources holds the CUDA C sources the PTX was built from (all.cu includes
// the others).
//
//go:embed *.cu
var Sources embed.FS

// Launch configuration shared by every kernel.
const (
	// Block is the number of threads per block.
	Block = 256
	// MaxGrid caps the number of blocks: beyond it the grid-stride loops
	// take more than one step. 8192*256 = 2^21 threads fill any current GPU.
	MaxGrid = 8192
	// MaxElems is the largest element count a kernel may index: an int loop
	// index i < n stepping by at most Block*MaxGrid must not overflow.
	MaxElems = 1<<31 - Block*MaxGrid
)

// Grid is the number of blocks for work items: ceil(work/Block), at most
// MaxGrid. It is 0 when work <= 0: launch nothing then (a CUDA grid of 0
// blocks is an error).
func Grid(work int) int {
	if work <= 0 {
		return 0
	}
	return min((work+Block-1)/Block, MaxGrid)
}

// Param is one kernel parameter.
type Param struct {
	Name string // as in the .cu source
	Type string // C type: "float*", "const float*", "int*", "const int*", "const unsigned char*", "int", "unsigned long long" or "float"
}

// Kernel documents one kernel of the PTX module.
type Kernel struct {
	Name   string  // entry name in the PTX
	File   string  // source file
	Params []Param // in order
	Work   string  // number of grid-stride work items, in terms of Params
	Doc    string  // what it computes
}

// Signature is the kernel's C prototype without "extern "C" __global__ void".
func (k Kernel) Signature() string {
	ps := make([]string, len(k.Params))
	for i, p := range k.Params {
		ps[i] = p.Type + " " + p.Name
	}
	return k.Name + "(" + strings.Join(ps, ", ") + ")"
}

// Launch is the recommended launch: Grid(work) blocks of Block threads.
func (k Kernel) Launch(work int) (grid, block int) { return Grid(work), Block }

// Lookup finds a kernel by name.
func Lookup(name string) (Kernel, bool) {
	for _, k := range Kernels {
		if k.Name == name {
			return k, true
		}
	}
	return Kernel{}, false
}

func params(s string) []Param {
	var ps []Param
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		i := strings.LastIndexAny(f, " *")
		if i < 0 {
			panic("kernels: bad parameter " + f)
		}
		ps = append(ps, Param{Name: f[i+1:], Type: strings.TrimSpace(f[:i+1])})
	}
	return ps
}

const (
	convParams = "const float* x, float* col, int C, int N, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW"
	poolDims   = "int P, int H, int W, int KH, int KW, int SH, int SW, int OH, int OW"
)

// Kernels lists every kernel in PTX, in source order. device.ConvGeom maps to
// the conv parameters as C, N, H, W, KH, KW, SH, SW, PH=PadH, PW=PadW, OH,
// OW; device.PoolGeom to the pool ones as P=Planes, H, W, KH, KW, SH, SW, OH,
// OW.
var Kernels = []Kernel{
	{Name: "im2col_f32", File: "conv.cu", Params: params(convParams), Work: "C*N*OH*OW",
		Doc: "Backend.Im2Col: col [C*KH*KW, N*OH*OW] from CNHW x; one work item per (c, n, oy, ox) writes KH*KW rows."},
	{Name: "col2im_f32", File: "conv.cu",
		Params: params("const float* col, float* dx, int C, int N, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW"),
		Work:   "C*N*H*W",
		Doc:    "Backend.Col2Im: overwrites dx with the adjoint of im2col, gathered per dx element (deterministic, no atomics)."},
	{Name: "maxpool_fwd_f32", File: "pool.cu",
		Params: params("const float* x, float* y, int* argmax, " + poolDims), Work: "P*OH*OW",
		Doc: "Backend.MaxPoolForward: window max and the plane index iy*W+ix of its first occurrence (row-major scan)."},
	{Name: "maxpool_bwd_f32", File: "pool.cu",
		Params: params("const float* dy, const int* argmax, float* dx, " + poolDims), Work: "P*H*W",
		Doc: "Backend.MaxPoolBackward: overwrites dx; each dx element gathers the dy whose argmax names it (argmax from maxpool_fwd_f32)."},
	{Name: "avgpool_fwd_f32", File: "pool.cu",
		Params: params("const float* x, float* y, " + poolDims), Work: "P*OH*OW",
		Doc: "Backend.AvgPoolForward: window sum * (1/(KH*KW))."},
	{Name: "avgpool_bwd_f32", File: "pool.cu",
		Params: params("const float* dy, float* dx, " + poolDims), Work: "P*H*W",
		Doc: "Backend.AvgPoolBackward: overwrites dx with the sum of dy*(1/(KH*KW)) over the covering windows, gathered."},
	{Name: "bias_add_f32", File: "elementwise.cu",
		Params: params("float* y, const float* bias, int outer, int C, int inner, int relu"), Work: "outer*C*inner",
		Doc: "Backend.AddBias: y[o, c, i] += bias[c], then max(0, .) when relu != 0 (fused, one pass)."},
	{Name: "bias_grad_f32", File: "elementwise.cu",
		Params: params("const float* dy, float* out, int outer, int C, int inner, int chunks"), Work: "C*chunks",
		Doc: "Backend.BiasGrad, one pass of BiasGradPlan: out[c*chunks+j] = sum of dy[o, c, r] over e = o*inner+r = j (mod chunks), e ascending."},
	{Name: "relu_fwd_f32", File: "elementwise.cu",
		Params: params("const float* x, float* y, int n"), Work: "n",
		Doc: "Backend.ReLUForward: y = x < 0 ? 0 : x (y may be x)."},
	{Name: "relu_bwd_f32", File: "elementwise.cu",
		Params: params("const float* y, const float* dy, float* dx, int n"), Work: "n",
		Doc: "Backend.ReLUBackward: dx = y > 0 ? dy : 0 (dx may be dy)."},
	{Name: "swap_axes01_f32", File: "elementwise.cu",
		Params: params("const float* src, float* dst, int A, int B, int inner"), Work: "A*B*inner",
		Doc: "Backend.SwapAxes01: dst[b, a, i] = src[a, b, i]."},
	{Name: "fill_f32", File: "elementwise.cu",
		Params: params("float* x, int n, float v"), Work: "n",
		Doc: "Backend.Fill: x[i] = v."},
	{Name: "copy_f32", File: "elementwise.cu",
		Params: params("const float* src, float* dst, int n"), Work: "n",
		Doc: "Backend.Copy: dst[i] = src[i] (cuMemcpyDtoDAsync does the same)."},
	{Name: "axpy_f32", File: "elementwise.cu",
		Params: params("int n, float alpha, const float* x, float* y"), Work: "n",
		Doc: "Backend.Axpy: y += alpha*x."},
	{Name: "scale_f32", File: "elementwise.cu",
		Params: params("int n, float alpha, float* x"), Work: "n",
		Doc: "Backend.Scale: x *= alpha."},
	{Name: "softmax_xent_f32", File: "loss.cu",
		Params: params("const float* logits, const int* labels, int n, int k, float gradScale, float* dlogits, float* stats"),
		Work:   "n",
		Doc:    "Backend.SoftmaxXent: one row per work item; dlogits may be NULL; stats[0] += loss, stats[1] += correct by atomicAdd."},
	{Name: "adam_f32", File: "adam.cu",
		Params: params("float* p, const float* g, float* m, float* v, int n, float lrT, float beta1, float beta2, float eps"),
		Work:   "n",
		Doc:    "Backend.Adam: fused Keras/TF2 Adam step with the bias-corrected lrT."},
	{Name: "gather_images_f32", File: "gather.cu",
		Params: params("const unsigned char* src, const int* idx, int n, int c, int hw, float scale, float* dst, const int* labels, int* dstLabels"),
		Work:   "max(c*n*hw, n)",
		Doc:    "Backend.GatherImages: dst[ch, j, p] = src[idx[j]*c*hw + ch*hw + p]*scale; dstLabels[j] = labels[idx[j]] when both are non-NULL."},
	{Name: "augment_f32", File: "augment.cu",
		Params: params("const float* src, float* dst, int C, int N, int H, int W, int pad, unsigned long long seed, unsigned long long step"),
		Work:   "C*N*H*W",
		Doc:    "Backend.Augment: random crop of the pad-zero-padded image at (dy, dx), then mirror when flip; dy, dx, flip from device.AugmentDraw(seed, step, j, pad), recomputed per element."},
}

// BiasGradStep is one launch of bias_grad_f32 in a BiasGrad plan. In and
// Out say where the pass reads and writes: -1 means the caller's dy (In) or
// db (Out), any other value is an offset in float32 elements into the
// caller's scratch buffer. The launch is bias_grad_f32(In, Out, Outer, C,
// Inner, Chunks) with Grid(C*Chunks) blocks, C being the caller's.
type BiasGradStep struct {
	In, Out              int
	Outer, Inner, Chunks int
}

// BiasGradPlan returns the passes that compute BiasGrad(dy, db, outer, c,
// inner) deterministically, and the float32 scratch they need (0 when the
// plan is a single pass). The plan depends only on the shape:
//
//   - a channel of L = outer*inner <= 256 elements: one pass, chunks 1,
//     straight into db;
//   - otherwise the first pass reduces each channel to K1 = min(ceil(L/64),
//     4096) partial sums, and each further pass reduces K to ceil(K/64)
//     (to 1 once K <= 256), alternating between two scratch regions; the
//     last pass writes db.
//
// Scratch is at most c*(4096+64) floats; for a 64-channel conv layer over a
// batch of 128 32x32 images (L = 131072: passes of 2048, 32, 1) it is
// 64*(2048+32).
func BiasGradPlan(outer, c, inner int) (steps []BiasGradStep, scratch int) {
	l := outer * inner
	if l <= 256 {
		return []BiasGradStep{{In: -1, Out: -1, Outer: outer, Inner: inner, Chunks: 1}}, 0
	}
	ks := []int{min((l+63)/64, 4096)}
	for k := ks[0]; k > 1; {
		if k <= 256 {
			k = 1
		} else {
			k = (k + 63) / 64
		}
		ks = append(ks, k)
	}
	// Region A holds c*ks[0] floats at offset 0, region B c*ks[1] after it;
	// pass i writes A when i is even, B when odd, and db when it is last.
	regions := [2]int{0, c * ks[0]}
	in, o, inn := -1, outer, inner
	for i, k := range ks {
		out := -1
		if i < len(ks)-1 {
			out = regions[i%2]
		}
		steps = append(steps, BiasGradStep{In: in, Out: out, Outer: o, Inner: inn, Chunks: k})
		in, o, inn = out, 1, k
	}
	if len(ks) > 2 {
		scratch = c * (ks[0] + ks[1])
	} else {
		scratch = c * ks[0]
	}
	return steps, scratch
}

// Table formats Kernels as text: each signature, then its launch.
func Table() string {
	var b strings.Builder
	for _, k := range Kernels {
		fmt.Fprintf(&b, "%s\n\twork %s, block %d, grid min(ceil(work/%d), %d)\n", k.Signature(), k.Work, Block, Block, MaxGrid)
	}
	return b.String()
}
