package device

// StepOps are the ops a captured step (see Grapher) uses where a plain step
// passes a value that changes from step to step: each reads that value from
// a small buffer when it runs, and otherwise computes exactly what its
// by-value twin computes (bit for bit, given the same value).
//
// The step counters ctr (I32 [3]) are {pos, step, first}: the position of
// the step's batch in the epoch, the global step number, and the global
// step of row 0 of a table of per-step scalars (F32, k per row).
type StepOps interface {
	// StepBegin copies the step's batch indices and scalars into fixed
	// slots: idx[j] = perm[pos*stride + j] for j < cnt, and cur[i] =
	// table[(step-first)*k + i] for i < k (table and cur may be nil when k
	// is 0).
	StepBegin(ctr, perm Buffer, stride, cnt int, idx, table Buffer, k int, cur Buffer)
	// StepEnd advances the counters: pos to pos+1 (0 when that is wrap),
	// step to step+1.
	StepEnd(ctr Buffer, wrap int)

	// AdamAt is Adam with lrT, eps and decay read from s[0], s[1], s[2].
	AdamAt(params, grads, m, v Buffer, n int, s Buffer, beta1, beta2, l2 float32)
	// SGDAt is SGD with the learning rate read from lr[0].
	SGDAt(params, grads, buf Buffer, n int, lr Buffer, momentum, l2 float32, nesterov bool)
	// RMSpropAt is RMSprop with the learning rate read from lr[0].
	RMSpropAt(params, grads, sq, buf Buffer, n int, lr Buffer, alpha, eps, l2, momentum float32)
	// AxpbyAt is Axpby with alpha and beta read from s[0] and s[1]; when
	// s[2] is 0 it does nothing.
	AxpbyAt(x, y Buffer, n int, s Buffer)
	// AugmentAt is Augment with the step number read from step[0] (I32).
	AugmentAt(src, dst Buffer, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step Buffer)
	// DropoutAt is Dropout with the step number read from step[0] (I32).
	DropoutAt(x, y Buffer, n int, p float32, seed uint64, step Buffer)
}
