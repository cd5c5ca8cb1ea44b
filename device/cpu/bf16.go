package cpu

import (
	"fmt"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/internal/pool"
)

// bfloat16 on the CPU is an emulation: a BF16 buffer is stored as float32
// (Alloc), each element holding a value that bfloat16 represents exactly,
// the float32 of its bits. Convert to BF16 and Im2Col into a BF16 col round
// to nearest, ties to even (device.RoundBF16), as the GPU's kernels do, and
// a GEMM of BF16 operands is the plain float32 SGEMM of those values: what
// the GPU's bfloat16 GEMMs compute (bfloat16 products are exact in
// float32), up to the order of the float32 accumulation. The memory is not
// halved, the numerics are the GPU's.

type roundJob struct{ src, dst []float32 }

func (j *roundJob) Run(w, nw int) {
	lo, hi := pool.Span(len(j.dst), w, nw)
	for i, v := range j.src[lo:hi] {
		j.dst[lo+i] = device.RoundBF16(v)
	}
}

// roundBF16 writes dst = RoundBF16(src) (dst may be src).
func (b *Backend) roundBF16(src, dst []float32) {
	j := &b.jRound
	j.src, j.dst = src[:len(dst)], dst
	b.par(j, len(dst)*4)
}

// Convert: see device.Backend. To BF16 rounds; to F32 copies (the values
// are bfloat16's already).
func (b *Backend) Convert(src, dst device.Buffer, n int) {
	s, d := src.(*buf), dst.(*buf)
	switch {
	case s.dt == device.F32 && d.dt == device.BF16:
		b.roundBF16(s.f[:n], d.f[:n])
	case s.dt == device.BF16 && d.dt == device.F32:
		copy(d.f[:n], s.f[:n])
	default:
		panic(fmt.Sprintf("cpu: Convert from %v to %v", s.dt, d.dt))
	}
}
