// Package sgemm is a single-precision matrix multiply (SGEMM) for the CPU
// backend: C = alpha*op(A)*op(B) + beta*C on row-major float32 matrices, in
// pure Go plus Go assembly (no cgo).
//
// Packing and blocking (BLIS/GotoBLAS style). op(A) is copied ("packed")
// into panels of MR rows and op(B) into panels of NR columns, each laid out
// in the order the micro-kernel reads them, so the kernel streams both with
// unit stride whatever the transposes and strides of the caller, and the
// edges are zero-padded. k is cut into blocks of at most KC=256 so that a B
// micro-panel (KC x NR, 16 or 32 KiB) stays in L1 while the kernel sweeps the A
// block (MC x KC, 144 KiB) in L2; a task's B panel is at most 256 columns
// (256 KiB, L2). On amd64 the packing is AVX assembly too (8x8 transposes
// for the transposed cases, row-wise copies otherwise), since for the
// tall-k shapes it is as much work as the multiply.
//
// Micro-kernel. With AVX-512F (checked at run time) it is an 8x32 tile held
// in 16 ZMM accumulators: per k step two B loads, eight VBROADCASTSS of A
// and sixteen VFMADD231PS; eight rows divide the usual channel counts (16,
// 32, 64). With AVX2+FMA only, or with TRAINER_CPU_NOAVX512=1, it is a 6x16
// tile in 12 YMM accumulators (two B loads, six broadcasts and twelve FMAs
// per k step). One call sweeps every MR-row panel of the A block for one B
// panel and stores partial row tiles directly; only the right edge (n not a
// multiple of NR) goes through a scratch tile. Elsewhere a portable Go 4x4
// kernel is used (also on other architectures).
//
// Non-temporal stores. A product with beta = 0, one k block and a C of 32 MiB
// or more (the data gradient of a wide convolution, W^T dy with k = the
// output channels) is bound by memory traffic, not arithmetic: the AVX-512
// kernel then stores whole tiles with VMOVNTPS, so that C is not read for
// ownership first, which halves the traffic (C must be 64-byte aligned, with
// a row stride a multiple of 16 floats).
//
// Parallelism. An Engine runs on a worker pool (internal/pool: its own, or
// with NewEngineOn the one the CPU backend runs its other ops on, so that a
// single set of workers polls for work; the calling goroutine is worker 0),
// with per-worker packing buffers that are grown once and reused; jobs are
// handed over through preallocated state and atomics (workers poll briefly
// after a job, then sleep), so a call allocates nothing in steady state. The
// output is cut into blocks of whole tiles, halving the larger side until
// there are 4 per thread, and workers take blocks from an atomic counter.
// Products under about 0.5M multiply-adds run on the caller alone, and a
// product takes at most one worker per 0.5M.
//
// Long k with a small C (the weight gradients, e.g. 32x27 with k=28800)
// leaves too few tiles to share and packs far more than it reuses, so k is
// cut into fixed chunks whose partial products go to separate buffers and
// are then summed in chunk order. Each chunk is cut into column parts of
// whole tiles, about four tasks per thread in all, and the sum into row
// ranges (neither changes a sum). If it wastes less of the tile, a chunk
// computes C^T = op(B)^T op(A)^T instead. When A and B are both stored with
// k contiguous (C = A B^T, as in a weight gradient) and m, n are a few
// dozen, the chunks skip packing altogether: a 3x4 dot-product kernel reads
// the rows in place, with vectors along k (12 YMM accumulators, summed
// across lanes at the end of each k sub-block).
//
// Determinism. The k blocking, the k chunks, the orientation and the tile
// grid depend only on the shape, never on the number of threads or on which
// worker runs what (the row and column parts of the chunks and the reduce
// ranges do depend on the threads, but only decide who computes a sum): every element of C is summed over k in the same order
// and rounded the same way, so results are bit-identical for any thread
// count (for a given kernel). The AVX-512 and AVX2 kernels give identical
// bits too: they share the k blocking (KC) and the dot kernel, every element
// is the same chain of fused multiply-adds over its k block, rounded the same
// way when stored, and the AVX-512 kernel's right-edge tiles round the
// 16-column groups that the AVX2 kernel would store whole as it does. The
// portable Go kernel multiplies and adds separately (unless the compiler
// fuses them), so its results differ in the last bits.
package sgemm
