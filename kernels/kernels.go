// Package kernels holds the CUDA kernels of the GPU backend: the CUDA C
// sources (*.cu, in this folder), the PTX that scripts/build-kernels.sh makes
// from them (kernels.ptx, committed and embedded here), and beside each .cu
// file a .go file with one typed launch function per kernel.
//
// # One launch description per kernel
//
// A kernel's launch is described once, in Go, by its launch function, e.g.
//
//	func Im2Col[P any](l Launcher[P], g Conv, x, col P)
//
// which states the kernel (Im2ColKernel: name, source file, work rule), the
// arguments in parameter order, each with its C name and type, and the work
// count computed from them, and hands them to l.Launch. Both runners
// implement Launcher: the GPU backend (device/gpu, P = a device address)
// packs the arguments into cuLaunchKernel's parameter buffer; the emulator
// (kernels/emu, P = a host slice) runs the same CUDA C compiled for the host.
// So argument order lives in one Go place, checked against the C: the tests
// here record every launch function's arguments and compare them with each
// .entry of the PTX and each prototype in the .cu sources, and the emulator
// checks every launch against the C++ compiler's view of the signature. This
// is llm.c's launcher beside its kernel, candle's one op with a CPU and a
// CUDA half, and cudarc's typed launch builder, in Go: generic over the
// pointer type rather than an interface per argument, so that a launch
// builds its arguments in a fixed array and allocates nothing.
//
// The package has no cgo and no CUDA dependency: the GPU backend loads PTX
// with the driver (cuModuleLoadData, which JIT-compiles it for the GPU in use)
// and looks each kernel up by Name (cuModuleGetFunction). The PTX targets
// compute_70, so any GPU from Volta (sm_70) on runs it, and declares PTX ISA
// 7.0 (scripts/build-kernels.sh lowers nvcc's .version), so any driver from
// CUDA 11.0 on reads it (PTXHeader, DriverNeeded).
//
// Every kernel is a 1-D grid-stride loop over a number of work items (the
// work its launch function passes, documented in Kernel.Work): launch it with
// Block threads per block and Grid(work) blocks. Results never depend on the
// launch configuration (the host emulator in kernels/emu checks this), so the
// configuration is a performance choice only. Only bias_grad_f32 uses shared
// memory and barriers (a block-wide tree over 256 logical lanes, which a
// block of any size loops over; the emulator runs such a kernel's threads
// as coroutines), and only it and softmax_xent_f32 use atomics: the latter
// for its two statistics, the former for an integer ticket that elects the
// block that finishes a channel, never to add floats.
//
// Rounding. The PTX is built with --fmad=false and IEEE division and sqrt:
// each kernel computes exactly the float32 operations its source states, in
// the order it states, like plain Go code on amd64. Only bias_grad_f32 and
// channel_sum_f32 (float32 sums in a fixed order; the CPU sums in float64),
// softmax_xent_f32 (expf/logf; the loss sum's order), gelu_fwd_f32,
// gelu_bwd_f32 and bn_fwd_f32 with the GELU (erff/expf in float32; the CPU
// uses float64) and bn_bwd_f32 (float32 where the CPU uses float64) differ
// from the CPU backend beyond that by design, each within the tolerance
// its source states; the others can match it bit for bit.
//
// Limits: sizes are C int. Every buffer a kernel touches, and every work
// count, must be at most MaxElems elements (the GPU backend reports it as
// device.Caps.MaxElems, and model.Network.Build refuses a batch that would
// pass it). Two buffers are addressed in 64 bits and may be larger: the
// im2col matrix of im2col_f32 and col2im_f32 (KH*KW times the work count:
// past 2^31 elements from batch 44,122 in the default model) and the dataset
// of gather_images_f32.
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

// Kernel is one entry point of the PTX module. Its arguments are described
// once, by its launch function (Im2Col for Im2ColKernel, ...), which the GPU
// backend and the emulator both call.
type Kernel struct {
	Name string // entry name in the PTX
	File string // source file
	Work string // the grid-stride work items, in terms of the parameters (what the launch function passes)
	Doc  string // what it computes
}

// Kernels lists every kernel in PTX, in source order.
var Kernels = []*Kernel{
	F32ToBF16Kernel, BF16ToF32Kernel,
	Im2ColKernel, Im2ColBF16Kernel, Col2ImKernel,
	MaxPoolFwdKernel, MaxPoolBwdKernel, AvgPoolFwdKernel, AvgPoolBwdKernel,
	BiasActKernel, BiasGradKernel, ReLUFwdKernel, ReLUBwdKernel, SwapAxes01Kernel, FillKernel,
	SoftmaxXentKernel, AdamKernel, AdamSegKernel, GatherImagesKernel, AugmentKernel, TranslateKernel,
	SGDKernel, RMSpropKernel, SGDSegKernel, RMSpropSegKernel,
	GELUFwdKernel, GELUBwdKernel, AddKernel, AxpbyKernel, DropoutKernel,
	ChannelSumKernel, BNInvStdKernel, BNFwdKernel, BNBwdKernel,
	StepBeginKernel, StepEndKernel, AdamAtKernel, SGDAtKernel, RMSpropAtKernel, AxpbyAtKernel, AugmentAtKernel, DropoutAtKernel,
}

// ChannelSumStep is one launch of channel_sum_f32 in a ChannelSumPlan. In
// and Out say where the pass reads and writes: -1 means the caller's input
// (In) or result (Out), any other value is an offset in float32 elements
// into the caller's scratch buffer. The launch is channel_sum_f32 on In
// and Out with Outer, C, Inner, Chunks and Grid(C*Chunks) blocks, C being
// the caller's.
type ChannelSumStep struct {
	In, Out              int
	Outer, Inner, Chunks int
}

// ChannelSumPlan returns the passes of channel_sum_f32 that reduce x
// viewed as [outer, c, inner] to c channel sums deterministically (the
// BatchNorm statistics and gradients), and the float32 scratch they need
// (0 when the plan is a single pass). The plan depends only on the shape:
//
//   - a channel of L = outer*inner <= 256 elements: one pass, chunks 1,
//     straight into the result;
//   - otherwise the first pass reduces each channel to K1 = min(ceil(L/64),
//     4096) partial sums, and each further pass reduces K to ceil(K/64)
//     (to 1 once K <= 256), alternating between two scratch regions; the
//     last pass writes the result.
//
// Scratch is at most c*(4096+64) floats; for a 64-channel conv layer over a
// batch of 128 32x32 images (L = 131072: passes of 2048, 32, 1) it is
// 64*(2048+32).
func ChannelSumPlan(outer, c, inner int) (steps []ChannelSumStep, scratch int) {
	l := outer * inner
	if l <= 256 {
		return []ChannelSumStep{{In: -1, Out: -1, Outer: outer, Inner: inner, Chunks: 1}}, 0
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
		steps = append(steps, ChannelSumStep{In: in, Out: out, Outer: o, Inner: inn, Chunks: k})
		in, o, inn = out, 1, k
	}
	if len(ks) > 2 {
		scratch = c * (ks[0] + ks[1])
	} else {
		scratch = c * ks[0]
	}
	return steps, scratch
}

// PTXHeader is the PTX ISA version (e.g. "7.0") and the target (e.g.
// "sm_70") that the embedded module declares in its .version and .target
// lines.
func PTXHeader() (version, target string) {
	for _, line := range strings.Split(string(PTX), "\n") {
		if v, ok := strings.CutPrefix(line, ".version "); ok && version == "" {
			version = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, ".target "); ok && target == "" {
			target = strings.TrimSpace(v)
		}
	}
	return version, target
}

// ptxDrivers maps a PTX ISA version to the CUDA release that introduced
// it (PTX ISA manual, "Release Notes"), as cuDriverGetVersion numbers
// releases: a driver reads PTX up to its own release's ISA.
var ptxDrivers = map[string]int{
	"6.0": 9000, "6.1": 9010, "6.2": 9020, "6.3": 10000, "6.4": 10010, "6.5": 10020,
	"7.0": 11000, "7.1": 11010, "7.2": 11020, "7.3": 11030, "7.4": 11040,
	"7.5": 11050, "7.6": 11060, "7.7": 11070, "7.8": 11080,
	"8.0": 12000, "8.1": 12010, "8.2": 12020, "8.3": 12030, "8.4": 12040, "8.5": 12050,
}

// DriverNeeded is the oldest CUDA driver (e.g. 11000 for CUDA 11.0, as
// cuDriverGetVersion reports it) that loads PTX of ISA version, or an error
// for a version this table does not know.
func DriverNeeded(version string) (int, error) {
	v, ok := ptxDrivers[version]
	if !ok {
		return 0, fmt.Errorf("kernels: unknown PTX ISA version %q", version)
	}
	return v, nil
}
