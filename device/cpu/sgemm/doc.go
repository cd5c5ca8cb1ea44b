// Package sgemm is a single-precision matrix multiply (SGEMM) for the CPU
// backend: C = alpha*op(A)*op(B) + beta*C on row-major float32 matrices, in
// pure Go plus Go assembly (no cgo).
//
// Design (BLIS/GotoBLAS style). op(A) is copied ("packed") into panels of MR
// rows and op(B) into panels of NR columns, each laid out in the order the
// micro-kernel reads them, so the kernel streams both with unit stride
// whatever the transposes and strides of the caller; packing also zero-pads
// the edges. The k dimension is cut into blocks of at most KC so that one B
// micro-panel (KC x NR) stays in L1 and a packed A block (MC x KC) in L2.
// The micro-kernel keeps an MR x NR tile of C in registers for a whole k
// block: on amd64 with AVX2+FMA it is a 6x16 tile (12 YMM accumulators,
// VBROADCASTSS + VFMADD231PS), chosen at run time; elsewhere a portable Go
// 4x4 kernel is used. Edge tiles are computed into a scratch tile and merged.
//
// Parallelism. An Engine owns a fixed set of worker goroutines (the calling
// goroutine is one of them) with per-worker packing buffers that are grown
// once and reused, and jobs are handed over through preallocated state, so a
// call allocates nothing in steady state. The output is cut into blocks along
// n (or along m when m > n), aligned to whole tiles, and workers take blocks
// from an atomic counter. Products too small to amortise the hand-over run on
// the caller alone.
//
// Long k with a small C (the weight gradients, e.g. 32x27 with k=28800) is
// split instead into fixed k chunks whose partial products go to separate
// buffers, then summed in chunk order.
//
// Determinism. The k blocking, the tile grid and the choice of k chunks
// depend only on the shape, never on the number of threads or on which
// worker runs what: every element of C is summed over k in the same order,
// so results are bit-identical for any thread count (for a given kernel).
package sgemm
