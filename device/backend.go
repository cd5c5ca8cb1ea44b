// Package device defines the one interface every compute backend implements.
//
// Design. The model holds only Buffers: opaque, backend-resident arrays of one
// element type. It moves data across the host boundary with the Upload*/Download*
// calls and otherwise only asks the backend to run ops on buffers. A CPU buffer
// is a Go slice; a GPU buffer is a device pointer. Ops are issued in order and
// may run asynchronously (the GPU backend queues them on one stream); Download*
// and Sync are the only points where the host waits.
//
// Layouts. Convolutional activations are kept channel-major, "CNHW": a tensor of
// C channels, N images of HxW is stored as C blocks of N*H*W floats. With that
// layout the im2col matrix of a whole batch is [C*KH*KW, N*OH*OW] and one GEMM
// W[OC, C*KH*KW] x col gives the next activation [OC, N*OH*OW], again CNHW.
// Flatten turns CNHW into the row-major [N, C*H*W] of PyTorch's flatten order
// with SwapAxes01. Dense activations are row-major [N, F].
//
// Every op states its exact semantics below; the CPU backend is the reference
// and the GPU backend is tested against it op by op.
package device

import "fmt"

// DType is the element type of a Buffer.
type DType int

// The element types a Buffer can hold.
const (
	F32  DType = iota // float32
	I32               // int32
	U8                // uint8
	BF16              // bfloat16: GEMM operands under PrecisionBF16 (see RoundBF16)
)

// String names the type as in NumPy.
func (d DType) String() string {
	switch d {
	case F32:
		return "float32"
	case I32:
		return "int32"
	case U8:
		return "uint8"
	case BF16:
		return "bfloat16"
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size is the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case U8:
		return 1
	case BF16:
		return 2
	}
	return 4
}

// Buffer is a backend-resident array. Only the backend that made it may use it.
type Buffer interface {
	Len() int     // number of elements
	DType() DType // element type
}

// ConvGeom describes one 2-D convolution (or its im2col) over CNHW data.
// Padding may be asymmetric: PadH/PadW are the rows/columns added before the
// image; the output size OH/OW decides how many are implied after it.
type ConvGeom struct {
	C, N, H, W int // input channels, images, height, width
	KH, KW     int // kernel size
	SH, SW     int // stride
	PadH, PadW int // zero padding before the first row / column
	OH, OW     int // output height, width
}

// ColRows is the number of rows of the im2col matrix, C*KH*KW.
func (g ConvGeom) ColRows() int { return g.C * g.KH * g.KW }

// ColCols is the number of columns of the im2col matrix, N*OH*OW.
func (g ConvGeom) ColCols() int { return g.N * g.OH * g.OW }

// ConvPlan is how a backend runs one convolution shape other than as
// Im2Col and Gemm, chosen once by PlanConv for the largest batch. The zero
// value (Algo "") says the backend has nothing better for that shape: the
// caller runs Im2Col and Gemm, and never passes the plan to the Conv ops.
type ConvPlan struct {
	// Algo names the algorithm, e.g. "winograd F(4x4,3x3)"; "" for none.
	Algo string
	// Workspace is the number of float32 elements of workspace the Conv
	// ops need; the caller allocates it once and passes it to every call.
	Workspace int
	// G is the shape planned (G.N the largest batch), K the output channels.
	G ConvGeom
	K int
	// Variant holds the algorithm's parameters, which only the backend
	// reads (for Winograd: the output tile, and which passes run as im2col).
	Variant int
}

// PoolGeom describes a pooling window over Planes independent HxW planes
// (for CNHW data Planes = C*N). No padding: windows that would cross the
// bottom or right edge are not formed (Keras "valid").
type PoolGeom struct {
	Planes, H, W int // number of planes, plane height and width
	KH, KW       int // window
	SH, SW       int // stride
	OH, OW       int // output size: (H-KH)/SH+1, (W-KW)/SW+1
}

// Backend runs the ops of the model. A Backend is not safe for concurrent use:
// one training loop drives it.
type Backend interface {
	// Name is the registry name ("cpu", "gpu").
	Name() string
	// Describe is one human-readable line about the hardware in use.
	Describe() string
	// Caps says what the backend can do.
	Caps() Caps
	// MemInfo is the memory free for new buffers and the total, in bytes:
	// the device's own memory, or the host's available memory for a backend
	// that uses host memory.
	MemInfo() (free, total uint64, err error)

	// Alloc returns a zero-filled buffer of n elements. The error names the
	// request (what, how much) when memory runs out; what is a short label.
	Alloc(what string, dt DType, n int) (Buffer, error)
	// Free releases a buffer made by Alloc; views must not be freed.
	Free(b Buffer)
	// View is the sub-array b[off:off+n]; it shares memory with b.
	View(b Buffer, off, n int) Buffer
	// HostU8 and HostI32 return a buffer holding src, for data that stays
	// fixed while the buffer is used (a dataset). Where Caps().HostMemory
	// the buffer is src itself, no copy: the caller must not change src
	// while the buffer is in use, and Free does not release it. Otherwise
	// it is a copy made with Alloc and Upload.
	HostU8(what string, src []uint8) (Buffer, error)
	HostI32(what string, src []int32) (Buffer, error)

	// Upload and download copy host data to b[off:] and back. Downloads wait
	// for all queued work.
	UploadF32(dst Buffer, off int, src []float32) error
	UploadI32(dst Buffer, off int, src []int32) error
	UploadU8(dst Buffer, off int, src []uint8) error
	DownloadF32(src Buffer, off int, dst []float32) error
	DownloadI32(src Buffer, off int, dst []int32) error
	// Sync waits for all queued work and reports any asynchronous error.
	Sync() error
	// Close releases everything the backend holds.
	Close() error

	// Gemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices:
	// op(A) is m x k, op(B) is k x n, C is m x n; lda, ldb, ldc are the row
	// strides of A, B, C as stored (A is m x k, or k x m when transA). When
	// beta is 0, C is not read (NaNs in C do not propagate). A and B may
	// both be BF16 (PrecisionBF16): bfloat16 operands, float32
	// accumulation. C is F32.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int)

	// Im2Col writes col[(c*KH+ky)*KW+kx, (n*OH+oy)*OW+ox] =
	// x[c, n, oy*SH-PadH+ky, ox*SW-PadW+kx], or 0 outside the image.
	// x is CNHW [C, N, H, W]; col is [C*KH*KW, N*OH*OW]. col may be BF16:
	// each value is rounded to bfloat16 as Convert rounds.
	Im2Col(g ConvGeom, x, col Buffer)
	// Col2Im is the adjoint of Im2Col: dx = sum of col entries over every
	// position that read each input element. dx is overwritten.
	Col2Im(g ConvGeom, col, dx Buffer)

	// PlanConv says how the backend would run the convolution of g (g.N the
	// largest batch) with k output channels besides Im2Col and Gemm, and how
	// much workspace that needs; the zero ConvPlan when it has nothing
	// better. It allocates nothing the caller must free.
	PlanConv(g ConvGeom, k int) ConvPlan
	// ConvForward writes, for the first n <= p.G.N images, the convolution
	//   y[o, j, oy, ox] = sum over c, ky, kx of
	//                     w[o, c, ky, kx] * x[c, j, oy*SH-PadH+ky, ox*SW-PadW+kx]
	// (0 outside the image): x is CNHW [C, n, H, W], w is [K, C, KH, KW]
	// (PyTorch's layout, the im2col GEMM's [K, C*KH*KW]) and y is [K, n, OH,
	// OW]. This is what Im2Col and Gemm(W, col) compute, up to rounding. ws is
	// p's workspace; what ConvForward keeps there serves ConvBackward.
	ConvForward(p ConvPlan, ws, x, w, y Buffer, n int)
	// ConvBackward is the backward pass of the latest ConvForward on ws,
	// whose x (unchanged since) and n it takes again: given dy = dL/dy it
	// overwrites dw with dL/dw and dx with dL/dx. dx or dw may be nil when
	// that gradient is not needed. dy is not changed.
	ConvBackward(p ConvPlan, ws, x, w, dy, dx, dw Buffer, n int)

	// MaxPoolForward writes y[p, oy, ox] = max over the window of x[p, ...] and
	// the index (within the plane, iy*W+ix) of the first maximum to argmax.
	MaxPoolForward(g PoolGeom, x, y, argmax Buffer)
	// MaxPoolBackward overwrites dx with zeros, then adds each dy[p, oy, ox] to
	// dx[p, argmax[p, oy, ox]].
	MaxPoolBackward(g PoolGeom, dy, argmax, dx Buffer)
	// MaxPoolReLUForward writes what a ReLU of x (v < 0 ? 0 : v, the ReLU
	// of AddBias and BatchNormForward: -0 and NaN pass) followed by
	// MaxPoolForward would write to y and argmax, bit for bit, leaving x as
	// it is: a ReLU fused into the pool (the layer before then skips its
	// own). Where the window's maximum is above 0 (or NaN) that is the
	// maximum; otherwise relu(first element) at the first element.
	MaxPoolReLUForward(g PoolGeom, x, y, argmax Buffer)
	// MaxPoolReLUBackward is MaxPoolBackward followed by the fused ReLU's
	// backward, bit for bit: each dy[p, oy, ox] is added to dx only where
	// y[p, oy, ox] > 0, y being MaxPoolReLUForward's output.
	MaxPoolReLUBackward(g PoolGeom, dy, y, argmax, dx Buffer)
	// AvgPoolForward writes the mean of each window.
	AvgPoolForward(g PoolGeom, x, y Buffer)
	// AvgPoolBackward overwrites dx with each dy shared equally over its window.
	AvgPoolBackward(g PoolGeom, dy, dx Buffer)

	// AddBias adds bias[c] to y viewed as [outer, C, inner] (conv output in
	// CNHW: outer 1, inner N*OH*OW; dense output: outer N, inner 1). With relu
	// it then applies max(0, .) in the same pass.
	AddBias(y, bias Buffer, outer, c, inner int, relu bool)
	// BiasAct is AddBias(z, bias) followed by y = act(z) in one op, bit for
	// bit the two (GELUForward(z, y) for the GELU; y may be z for none and
	// ReLU). z keeps the sum (the GELU's backward reads it).
	BiasAct(z, y, bias Buffer, outer, c, inner int, act Act)
	// BiasGrad overwrites db[c] with the sum of dy over outer and inner.
	BiasGrad(dy, db Buffer, outer, c, inner int)
	// ActBiasGrad is an activation's backward followed by BiasGrad(dy, db)
	// in one op: ReLU: ReLUBackward(a, dy, dy) with a the ReLU's output;
	// GELU: GELUBackward(a, dy, dy) with a the GELU's input. dy is
	// overwritten with the activation's gradient, db with its sums; bit for
	// bit the two ops.
	ActBiasGrad(act Act, a, dy, db Buffer, outer, c, inner int)
	// ReLUForward writes y = max(0, x) for the first n elements (y may be x).
	ReLUForward(x, y Buffer, n int)
	// ReLUBackward writes dx = dy where y > 0, else 0 (dx may be dy); y is the
	// ReLU's output.
	ReLUBackward(y, dy, dx Buffer, n int)

	// SwapAxes01 writes dst[b, a, i] = src[a, b, i] for src viewed as
	// [A, B, inner]. Flatten is SwapAxes01(CNHW, dst, C, N, H*W).
	SwapAxes01(src, dst Buffer, a, b, inner int)

	// SoftmaxXent takes logits [n, k] and int32 labels [n]; it writes the
	// gradient of the mean cross-entropy, (softmax - onehot) * gradScale, to
	// dlogits (nil: no gradient), and adds to stats[0] the sum over rows of
	// -log softmax[label] and to stats[1] the number of rows whose first
	// largest logit is at the label. Labels outside [0, k) are a caller bug.
	//
	// With label smoothing eps (PyTorch's CrossEntropyLoss(label_smoothing=
	// eps)) the target of row r is q = (1-eps)*onehot(label) + eps/k, the
	// row's loss is -sum_j q_j*log softmax_j, and the gradient is
	// (softmax - q) * gradScale. eps 0 is the plain loss above. The
	// accuracy count never depends on eps.
	SoftmaxXent(logits, labels Buffer, n, k int, gradScale, smoothing float32, dlogits, stats Buffer)

	// Adam updates params in place from grads with the moments m and v (all n
	// long). In float32, per element, in this order:
	//   g = grad + l2*p                 (L2 penalty; l2 0: none)
	//   p = p - decay*p                 (decoupled decay, AdamW: decay = lr*wd)
	//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
	//   p = p - lrT*m / (sqrt(v) + eps)
	// The caller passes the bias-corrected step lrT = lr*sqrt(1-b2^t)/(1-b1^t):
	// with eps as given that is Keras/TF2's Adam; with eps*sqrt(1-b2^t) it is
	// PyTorch's Adam/AdamW exactly.
	Adam(params, grads, m, v Buffer, n int, lrT, beta1, beta2, eps, l2, decay float32)
	// SGD is PyTorch's SGD step (dampening 0) on n elements, in float32:
	//   g = grad + l2*p
	//   buf = momentum*buf + g          (only when momentum != 0)
	//   g = nesterov ? g + momentum*buf : buf   (only when momentum != 0)
	//   p = p - lr*g
	// buf starts at zero, which gives PyTorch's first step buf = g.
	SGD(params, grads, buf Buffer, n int, lr, momentum, l2 float32, nesterov bool)
	// OptimizerStep is one update of the segments segs of the flat buffers
	// (no two overlapping, in increasing order), each as Adam (s.Kind adam
	// or adamw; m, v its moments), SGD (m its momentum buffer; v unused) or
	// RMSprop (v its square average, m its momentum buffer) on the
	// segment's elements with the coefficients s.Scalars(segment), bit for
	// bit. Elements outside the segments are not touched. The GPU runs it
	// as one launch for all the segments.
	OptimizerStep(params, grads, m, v Buffer, segs []OptimSegment, s OptimStep)
	// RMSprop is PyTorch's RMSprop step (centered=False) on n elements:
	//   g = grad + l2*p
	//   sq = alpha*sq + (1-alpha)*g*g
	//   a = sqrt(sq) + eps
	//   momentum != 0: buf = momentum*buf + g/a; p = p - lr*buf
	//   momentum == 0: p = p - lr*g/a       (buf not touched, may be nil)
	RMSprop(params, grads, sq, buf Buffer, n int, lr, alpha, eps, l2, momentum float32)

	// BatchNormStats writes the per-channel mean and biased variance
	// (divided by outer*inner) of x viewed as [outer, C, inner] (CNHW conv
	// output: outer 1, inner N*H*W; dense output [N, F]: outer N, inner 1)
	// to mean[c] and variance[c]. Two passes (the mean, then the mean
	// squared deviation), so the variance is never negative.
	BatchNormStats(x, mean, variance Buffer, outer, c, inner int)
	// BatchNormForward writes, for x viewed as [outer, C, inner],
	//   z = (x - mean[c]) / sqrt(variance[c] + eps) * gamma[c] + beta[c]
	//   y = act(z)
	// z is written only when z is not nil (the caller keeps it for a GELU's
	// backward); with ActNone y is z. The statistics may be the batch's
	// (training) or the running ones (evaluation).
	BatchNormForward(x, mean, variance, gamma, beta Buffer, outer, c, inner int, eps float32, act Act, z, y Buffer)
	// BatchNormBackward is the training-mode backward of z above (batch
	// statistics), given dz = dL/dz: per channel, with M = outer*inner,
	// xhat = (x-mean)*invstd, invstd = 1/sqrt(variance+eps):
	//   dbeta[c]  = sum dz           dgamma[c] = sum dz*xhat
	//   dx = gamma*invstd * (dz - dbeta/M - xhat*dgamma/M)
	// dbeta and dgamma are overwritten; dx may be dz.
	BatchNormBackward(x, dz, mean, variance, gamma Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta Buffer)
	// BatchNormActBackward is the backward of y = act(z) (see
	// BatchNormForward) followed by BatchNormBackward, in one op: ReLU:
	// ReLUBackward(a, dy, dy) with a the ReLU's output; GELU:
	// GELUBackward(a, dy, dy) with a the GELU's input. dy is overwritten
	// with dz; dx may be dy. Bit for bit the two ops.
	BatchNormActBackward(act Act, a, x, dy, mean, variance, gamma Buffer, outer, c, inner int, eps float32, dx, dgamma, dbeta Buffer)

	// GELUForward writes y = x * Phi(x) = 0.5*x*(1+erf(x/sqrt(2))) (the exact
	// GELU, PyTorch's default) for n elements (y may be x).
	GELUForward(x, y Buffer, n int)
	// GELUBackward writes dx = dy * (Phi(x) + x*phi(x)), phi the standard
	// normal density, where x is the GELU's input (dx may be dy).
	GELUBackward(x, dy, dx Buffer, n int)
	// Add writes y = a + b for n elements, then max(0, .) when relu (y may be
	// a or b): a residual connection, or a gradient accumulated from two
	// consumers.
	Add(a, bb, y Buffer, n int, relu bool)
	// Axpby writes y = alpha*x + beta*y for n elements; with beta 0, y is not
	// read. EMA, running statistics, copies (alpha 1, beta 0).
	Axpby(x, y Buffer, n int, alpha, beta float32)
	// Dropout writes y = x * keep_i / (1-p) for n elements, where element i
	// is kept when DropoutKeep(seed, step, i, p) (a counter-based hash: the
	// backward pass is the same call on dy with the same seed and step).
	// y may be x.
	Dropout(x, y Buffer, n int, p float32, seed uint64, step int)

	// GatherImages reads images idx[0..n) from the uint8 dataset src (each
	// c*hw bytes, channel-major as in the CIFAR-10 files) and writes them
	// to dst as CNHW floats scaled by scale: dst[ch, j, p] = src[idx[j]*c*hw +
	// ch*hw + p] * scale. labels and dstLabels may be nil; when set,
	// dstLabels[j] = labels[idx[j]].
	GatherImages(src, idx Buffer, n, c, hw int, scale float32, dst Buffer, labels, dstLabels Buffer)
	// Augment writes to dst a randomly cropped and flipped copy of the n
	// images of src; both are CNHW [c, n, h, w] floats and must not overlap.
	// For image j it takes dy, dx, flip = AugmentDraw(seed, step, j, pad) (a
	// counter-based hash: no RNG state, nothing uploaded) and writes
	//   dst[ch, j, y, x] = src[ch, j, y+dy-pad, xs],
	//   xs = (flip ? w-1-x : x) + dx - pad,
	// or 0 where the source row or column lies outside the image. That is:
	// pad the image with pad zeros on every side, take the h x w crop whose
	// top-left corner is (dy, dx) in the padded image, then mirror the crop
	// left-right when flip is set. A pure copy: every backend writes the same
	// bits. pad >= 0; pad 0 only flips.
	//
	// With reflect, the padding mirrors the image instead of zeros (PyTorch's
	// F.pad mode "reflect", the edge not repeated): a source index i outside
	// [0, size) reads Reflect(i, size). pad < h and pad < w. With noFlip
	// the draw's flip bit is ignored (translation only).
	Augment(src, dst Buffer, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step int)
	// Translate writes the same view of every image (test-time
	// augmentation): dst[ch, j, y, x] = src[ch, j, Reflect(y+dy, h),
	// Reflect(xs+dx, w)], xs = flip ? w-1-x : x. |dy| < h, |dx| < w.
	Translate(src, dst Buffer, c, n, h, w, dy, dx int, flip bool)

	// Fill sets the first n elements of a float32 buffer to v.
	Fill(x Buffer, n int, v float32)

	// StepOps: the ops above with per-step values read from buffers.
	StepOps
	// Convert writes dst[i] = src[i] for the first n elements, from F32 to
	// BF16 (rounded to nearest, ties to even: RoundBF16; a NaN becomes
	// bfloat16's canonical NaN) or from BF16 to F32 (exact). Other pairs
	// of DTypes are a caller bug.
	Convert(src, dst Buffer, n int)
}

// Act is an activation fused into an op.
type Act int

// The activations.
const (
	ActNone Act = iota
	ActReLU
	ActGELU
)

func (a Act) String() string {
	switch a {
	case ActNone:
		return "none"
	case ActReLU:
		return "relu"
	case ActGELU:
		return "gelu"
	}
	return fmt.Sprintf("act(%d)", int(a))
}

// Reflect maps an index i in (-size, 2*size-1) into [0, size) by mirroring
// at the edges without repeating them: -1 -> 1, size -> size-2 (PyTorch's
// "reflect" padding). size 1 maps everything to 0.
func Reflect(i, size int) int {
	if size == 1 {
		return 0
	}
	if i < 0 {
		i = -i
	}
	if i >= size {
		i = 2*(size-1) - i
	}
	return i
}

// DropoutKeep says whether Backend.Dropout keeps element i in step step:
// u = (AugmentHash(seed, step, i) >> 40) * 2^-24, a uniform draw on a
// 24-bit grid, computed exactly in float32; kept when u >= p.
func DropoutKeep(seed uint64, step, i int, p float32) bool {
	u := float32(AugmentHash(seed, step, i)>>40) * (1.0 / (1 << 24))
	return u >= p
}

// The hash of Backend.Augment, written once here (the CPU backend uses it)
// and once in C (kernels/augment.cu), bit for bit the same:
//
//	mix64(z)  = splitmix64's finalizer:
//	            z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
//	            z = (z ^ z>>27) * 0x94D049BB133111EB
//	            z ^ z>>31
//	key       = mix64(seed + (step+1)*G)   G = 0x9E3779B97F4A7C15
//	h         = mix64(key + (j+1)*G)
//
// all in uint64 arithmetic modulo 2^64, step and j taken as uint64. key is
// output number step (from 0) of splitmix64 seeded with seed, and h output
// number j of splitmix64 seeded with key. Bits of h, with R = 2*pad+1:
//
//	dy   = (h & 0xFFFFFFFF) * R >> 32          bits 0..31
//	dx   = ((h >> 32) & 0x7FFFFFFF) * R >> 31  bits 32..62
//	flip = h >> 63                             bit 63
//
// so dy and dx lie in [0, 2*pad], each value with probability 1/R to
// within 2^-31 (multiply-shift, no modulo), and flip is set half the time.
const (
	augmentGolden = 0x9E3779B97F4A7C15
	augmentMul1   = 0xBF58476D1CE4E5B9
	augmentMul2   = 0x94D049BB133111EB
)

func augmentMix(z uint64) uint64 {
	z = (z ^ z>>30) * augmentMul1
	z = (z ^ z>>27) * augmentMul2
	return z ^ z>>31
}

// AugmentHash is the 64-bit hash h of image j in step step (see above).
func AugmentHash(seed uint64, step, j int) uint64 {
	key := augmentMix(seed + (uint64(step)+1)*augmentGolden)
	return augmentMix(key + (uint64(j)+1)*augmentGolden)
}

// AugmentDraw is the crop offset (dy, dx, each in [0, 2*pad]) and the flip
// that Backend.Augment applies to image j in step step.
func AugmentDraw(seed uint64, step, j, pad int) (dy, dx int, flip bool) {
	h := AugmentHash(seed, step, j)
	r := uint64(2*pad + 1)
	dy = int((h & 0xFFFFFFFF) * r >> 32)
	dx = int((h >> 32 & 0x7FFFFFFF) * r >> 31)
	return dy, dx, h>>63 != 0
}
