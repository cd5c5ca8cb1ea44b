package cpu_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// bnShape is x viewed as [outer, c, inner].
type bnShape struct{ outer, c, inner int }

func (s bnShape) n() int { return s.outer * s.c * s.inner }

func (s bnShape) String() string { return fmt.Sprintf("[%d,%d,%d]", s.outer, s.c, s.inner) }

// bnShapes: CNHW conv output of C=3, N=5, 7x9; dense [5, 3]; a general
// [2, 3, 7]; and shapes over the pool's threshold (conv, dense, general).
var (
	bnSmall = []bnShape{{1, 3, 5 * 7 * 9}, {5, 3, 1}, {2, 3, 7}}
	bnLarge = []bnShape{{1, 5, 64 * 63}, {2001, 7, 1}, {3, 4, 2001}}
)

var acts = []device.Act{device.ActNone, device.ActReLU, device.ActGELU}

// bnIndex is the index of element (o, ch, t).
func (s bnShape) index(o, ch, t int) int { return (o*s.c+ch)*s.inner + t }

// refStats is the float64 mean and biased variance per channel.
func refStats(x []float64, s bnShape) (mean, variance []float64) {
	mean, variance = make([]float64, s.c), make([]float64, s.c)
	m := float64(s.outer * s.inner)
	for ch := range s.c {
		for o := range s.outer {
			for t := range s.inner {
				mean[ch] += x[s.index(o, ch, t)]
			}
		}
		mean[ch] /= m
		for o := range s.outer {
			for t := range s.inner {
				d := x[s.index(o, ch, t)] - mean[ch]
				variance[ch] += d * d
			}
		}
		variance[ch] /= m
	}
	return mean, variance
}

func refAct(z float64, act device.Act) float64 {
	switch act {
	case device.ActReLU:
		return max(z, 0)
	case device.ActGELU:
		return geluRef(z)
	}
	return z
}

// refBN is z and y of BatchNormForward in float64; nil mean and variance
// take the batch's.
func refBN(x []float64, s bnShape, mean, variance, gamma, beta []float64, eps float64, act device.Act) (z, y []float64) {
	if mean == nil {
		mean, variance = refStats(x, s)
	}
	z, y = make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		ch := i / s.inner % s.c
		z[i] = (v-mean[ch])/math.Sqrt(variance[ch]+eps)*gamma[ch] + beta[ch]
		y[i] = refAct(z[i], act)
	}
	return z, y
}

// TestBatchNormStats: against the float64 two-pass reference, on data
// far from 0 too (a one-pass E[x^2]-E[x]^2 in float32 would lose it all);
// the same bits whatever the thread count.
func TestBatchNormStats(t *testing.T) {
	r := newRand(16)
	for _, s := range append(bnSmall, bnLarge...) {
		for _, offset := range []float32{0, 1000} {
			x := randn(r, s.n())
			for i := range x {
				x[i] = offset + x[i]*(1+float32(i/s.inner%s.c)) // channel ch has sd ch+1
			}
			wm, wv := refStats(f64(x), s)
			var first []float32
			for _, threads := range testThreads {
				b := newBackend(t, threads)
				mb, vb := upload(t, b, make([]float32, s.c)), upload(t, b, make([]float32, s.c))
				b.BatchNormStats(upload(t, b, x), mb, vb, s.outer, s.c, s.inner)
				what := fmt.Sprintf("%v offset %v threads %d", s, offset, threads)
				m, v := download(t, b, mb), download(t, b, vb)
				near(t, what+" mean", m, wm, 1e-7, 1e-12)
				near(t, what+" variance", v, wv, 1e-6, 0)
				if first == nil {
					first = append(m, v...)
				}
				sameF32(t, what+" vs 1 thread", append(m, v...), first)
			}
		}
	}
}

// TestBatchNormForward: every activation, with z written or not, with
// the batch's statistics and with other (running) ones, against float64.
func TestBatchNormForward(t *testing.T) {
	r := newRand(17)
	const eps = 1e-5
	for _, s := range append(bnSmall, bnLarge...) {
		x, gamma, beta := randn(r, s.n()), randn(r, s.c), randn(r, s.c)
		rm, rv := randn(r, s.c), randn(r, s.c)
		for i := range rv {
			rv[i] = rv[i]*rv[i] + 0.1
		}
		for _, act := range acts {
			for _, running := range []bool{false, true} {
				testBNForward(t, s, x, gamma, beta, rm, rv, running, act, eps)
			}
		}
	}
}

func testBNForward(t *testing.T, s bnShape, x, gamma, beta, rm, rv []float32, running bool, act device.Act, eps float32) {
	t.Helper()
	var first []float32
	for _, threads := range testThreads {
		b := newBackend(t, threads)
		xb, mb, vb := upload(t, b, x), upload(t, b, rm), upload(t, b, rv)
		if !running {
			b.BatchNormStats(xb, mb, vb, s.outer, s.c, s.inner)
		}
		m, v := download(t, b, mb), download(t, b, vb)
		wz, wy := refBN(f64(x), s, f64(m), f64(v), f64(gamma), f64(beta), float64(eps), act)
		gb, bb := upload(t, b, gamma), upload(t, b, beta)
		zb, yb := upload(t, b, make([]float32, s.n())), upload(t, b, make([]float32, s.n()))
		what := fmt.Sprintf("%v %v running %v threads %d", s, act, running, threads)
		b.BatchNormForward(xb, mb, vb, gb, bb, s.outer, s.c, s.inner, eps, act, zb, yb)
		z, y := download(t, b, zb), download(t, b, yb)
		near(t, what+" z", z, wz, 1e-6, 1e-6)
		near(t, what+" y", y, wy, 1e-6, 1e-6)
		if act == device.ActNone {
			sameF32(t, what+" y = z", y, z)
		}
		y2 := upload(t, b, make([]float32, s.n()))
		b.BatchNormForward(xb, mb, vb, gb, bb, s.outer, s.c, s.inner, eps, act, nil, y2)
		sameF32(t, what+" without z", download(t, b, y2), y)
		if first == nil {
			first = append(z, y...)
		}
		sameF32(t, what+" vs 1 thread", append(z, y...), first)
	}
}

// bnLoss is sum(w * act(BN(x))) in float64, with the batch's statistics.
func bnLoss(x []float64, s bnShape, gamma, beta, w []float64, eps float64, act device.Act) float64 {
	_, y := refBN(x, s, nil, nil, gamma, beta, eps, act)
	var l float64
	for i := range y {
		l += w[i] * y[i]
	}
	return l
}

// bnBackward runs the training forward and backward on the backend for
// loss sum(w*y): dz is w through the activation's backward op.
func bnBackward(t *testing.T, b device.Backend, s bnShape, x, gamma, beta, w []float32, eps float32, act device.Act, inPlace bool) (dx, dgamma, dbeta []float32) {
	t.Helper()
	n := s.n()
	xb, gb, bb := upload(t, b, x), upload(t, b, gamma), upload(t, b, beta)
	mb, vb := upload(t, b, make([]float32, s.c)), upload(t, b, make([]float32, s.c))
	zb, yb, dzb := upload(t, b, make([]float32, n)), upload(t, b, make([]float32, n)), upload(t, b, w)
	b.BatchNormStats(xb, mb, vb, s.outer, s.c, s.inner)
	b.BatchNormForward(xb, mb, vb, gb, bb, s.outer, s.c, s.inner, eps, act, zb, yb)
	switch act {
	case device.ActReLU:
		b.ReLUBackward(yb, dzb, dzb, n)
	case device.ActGELU:
		b.GELUBackward(zb, dzb, dzb, n)
	}
	dxb := upload(t, b, make([]float32, n))
	if inPlace {
		dxb = dzb
	}
	dgb, dbb := upload(t, b, randn(newRand(1), s.c)), upload(t, b, randn(newRand(2), s.c)) // overwritten
	b.BatchNormBackward(xb, dzb, mb, vb, gb, s.outer, s.c, s.inner, eps, dxb, dgb, dbb)
	return download(t, b, dxb), download(t, b, dgb), download(t, b, dbb)
}

// nearScaled is near with the absolute slack relative to the largest
// |want|: a gradient that nearly cancels is only as accurate as its terms.
func nearScaled(t *testing.T, what string, got []float32, want []float64, rel float64) {
	t.Helper()
	var mx float64
	for _, v := range want {
		mx = max(mx, math.Abs(v))
	}
	near(t, what, got, want, rel, rel*mx)
}

// TestBatchNormBackward: dx, dgamma and dbeta of the training-mode
// BatchNorm, each activation composed (its backward op applied in the
// test), against float64 central differences of sum(w * act(BN(x)));
// dx in place of dz gives the same bits, and so does any thread count.
func TestBatchNormBackward(t *testing.T) {
	const eps = 1e-5
	r := newRand(18)
	for _, s := range bnSmall {
		x, gamma, beta, w := randn(r, s.n()), randn(r, s.c), randn(r, s.c), randn(r, s.n())
		for i := range gamma {
			gamma[i] += 1.5
		}
		x64, g64, b64, w64 := f64(x), f64(gamma), f64(beta), f64(w)
		for _, act := range acts {
			loss := func() float64 { return bnLoss(x64, s, g64, b64, w64, eps, act) }
			wdx, wdg, wdb := fdGrad(x64, loss), fdGrad(g64, loss), fdGrad(b64, loss)
			var first []float32
			for _, threads := range testThreads {
				b := newBackend(t, threads)
				what := fmt.Sprintf("%v %v threads %d", s, act, threads)
				dx, dg, db := bnBackward(t, b, s, x, gamma, beta, w, eps, act, false)
				nearScaled(t, what+" dx", dx, wdx, 5e-6)
				nearScaled(t, what+" dgamma", dg, wdg, 1e-6)
				nearScaled(t, what+" dbeta", db, wdb, 1e-6)
				dx2, _, _ := bnBackward(t, b, s, x, gamma, beta, w, eps, act, true)
				sameF32(t, what+" dx in place", dx2, dx)
				all := append(append(dx, dg...), db...)
				if first == nil {
					first = all
				}
				sameF32(t, what+" vs 1 thread", all, first)
			}
		}
	}
}

// TestBatchNormBackwardLarge: the shapes over the pool's threshold against
// the formula of device.Backend in float64 (finite differences would take
// too long), the same bits on 1 and 3 threads.
func TestBatchNormBackwardLarge(t *testing.T) {
	const eps = 1e-3
	r := newRand(19)
	for _, s := range bnLarge {
		x, dz, gamma := randn(r, s.n()), randn(r, s.n()), randn(r, s.c)
		mean, variance := refStats(f64(x), s)
		want := make([]float64, s.n())
		sb, sg := make([]float64, s.c), make([]float64, s.c)
		xhat := func(i int) float64 {
			ch := i / s.inner % s.c
			return (float64(x[i]) - mean[ch]) / math.Sqrt(variance[ch]+eps)
		}
		for i := range x {
			ch := i / s.inner % s.c
			sb[ch] += float64(dz[i])
			sg[ch] += float64(dz[i]) * xhat(i)
		}
		m := float64(s.outer * s.inner)
		for i := range x {
			ch := i / s.inner % s.c
			want[i] = float64(gamma[ch]) / math.Sqrt(variance[ch]+eps) * (float64(dz[i]) - sb[ch]/m - xhat(i)*sg[ch]/m)
		}
		var first []float32
		for _, threads := range testThreads {
			b := newBackend(t, threads)
			xb, dzb, gb := upload(t, b, x), upload(t, b, dz), upload(t, b, gamma)
			mb, vb := upload(t, b, make([]float32, s.c)), upload(t, b, make([]float32, s.c))
			b.BatchNormStats(xb, mb, vb, s.outer, s.c, s.inner)
			dxb, dgb, dbb := upload(t, b, make([]float32, s.n())), upload(t, b, make([]float32, s.c)), upload(t, b, make([]float32, s.c))
			b.BatchNormBackward(xb, dzb, mb, vb, gb, s.outer, s.c, s.inner, eps, dxb, dgb, dbb)
			what := fmt.Sprintf("%v threads %d", s, threads)
			dx, dg, db := download(t, b, dxb), download(t, b, dgb), download(t, b, dbb)
			nearScaled(t, what+" dx", dx, want, 2e-6)
			nearScaled(t, what+" dgamma", dg, sg, 1e-6)
			nearScaled(t, what+" dbeta", db, sb, 1e-6)
			all := append(append(dx, dg...), db...)
			if first == nil {
				first = all
			}
			sameF32(t, what+" vs 1 thread", all, first)
		}
	}
}
