//go:build cgo

package emu

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// bnShapes are [outer, C, inner]: conv (outer 1), dense (inner 1: one, two
// and three reduction passes), general, and channels long enough for one,
// two and three channel_sum_f32 passes.
var bnShapes = [][3]int{
	{1, 4, 7}, {5, 3, 1}, {3, 5, 6}, {128, 10, 1}, {1, 3, 257}, {2, 5, 300}, {64, 33, 1},
	{300, 7, 1}, {1, 7, 4096}, {1, 2, 20000 * 7}, {17000, 3, 1},
}

// bnInput is x for a BatchNorm test: per channel an offset of up to 3 and
// a spread of 0.01 to 1, so that the two-pass variance matters.
func bnInput(t *testing.T, outer, c, inner int) []float32 {
	r := rng(t)
	x := make([]float32, outer*c*inner)
	for o := range outer {
		for ch := range c {
			off, sd := 3*float64(ch%3)-3, math.Pow(10, -float64(ch%3))
			for i := range inner {
				x[(o*c+ch)*inner+i] = float32(off + sd*(2*r.Float64()-1))
			}
		}
	}
	return x
}

// TestBatchNormStats: the mean within 1e-5 relative plus 2e-6 of the mean of
// |x|, the variance within about 1e-5 relative (float32 sums of positive
// terms), against float64; bit for bit the same under every launch config.
func TestBatchNormStats(t *testing.T) {
	for _, s := range bnShapes {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			outer, c, inner := s[0], s[1], s[2]
			x := bnInput(t, outer, c, inner)
			out := each(t, func(cfg Config) ([]any, error) {
				mean, variance := nans(c), nans(c)
				return []any{mean, variance}, BatchNormStats(cfg, x, mean, variance, outer, c, inner)
			})
			mean, variance, mag := refBNStats(x, outer, c, inner)
			closeF64(t, "mean", out[0].([]float32), mean, mag)
			closeF64(t, "variance", out[1].([]float32), variance, variance)
		})
	}
}

// bnParams are the statistics and affine parameters of c channels: the
// exact statistics of x, and gamma, beta around 1 and 0.
func bnParams(t *testing.T, x []float32, outer, c, inner int) (mean, variance, gamma, beta []float32) {
	m, v, _ := refBNStats(x, outer, c, inner)
	r := rng(t)
	mean, variance, gamma, beta = make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
	for ch := range c {
		mean[ch], variance[ch] = float32(m[ch]), float32(v[ch])
		gamma[ch], beta[ch] = float32(0.5+r.Float64()), float32(r.Float64()-0.5)
	}
	return mean, variance, gamma, beta
}

// refInvStd is 1/sqrt(variance+eps) in float64.
func refInvStd(variance, eps float32) float64 {
	return 1 / math.Sqrt(float64(variance)+float64(eps))
}

// TestBatchNormForward: z against float64 within float32 rounding of the
// terms, y = act(z) (the GELU within its tolerance); z not NULL or NULL
// gives the same y.
func TestBatchNormForward(t *testing.T) {
	const eps = 1e-5
	for _, s := range bnShapes {
		for _, act := range []device.Act{device.ActNone, device.ActReLU, device.ActGELU} {
			t.Run(fmt.Sprintf("%v/%v", s, act), func(t *testing.T) {
				outer, c, inner := s[0], s[1], s[2]
				n := outer * c * inner
				x := bnInput(t, outer, c, inner)
				mean, variance, gamma, beta := bnParams(t, x, outer, c, inner)
				out := each(t, func(cfg Config) ([]any, error) {
					z, y, y2 := nans(n), nans(n), nans(n)
					if err := BatchNormForward(cfg, x, mean, variance, gamma, beta, outer, c, inner, eps, act, z, y); err != nil {
						return nil, err
					}
					return []any{z, y, y2}, BatchNormForward(cfg, x, mean, variance, gamma, beta, outer, c, inner, eps, act, nil, y2)
				})
				wz, wy, mz, my := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
				for i, v := range x {
					ch := i / inner % c
					xh := (float64(v) - float64(mean[ch])) * refInvStd(variance[ch], eps)
					wz[i] = xh*float64(gamma[ch]) + float64(beta[ch])
					mz[i] = math.Abs(xh*float64(gamma[ch])) + math.Abs(float64(beta[ch]))
					wy[i], my[i] = wz[i], mz[i]
					switch act {
					case device.ActReLU:
						wy[i] = max(wz[i], 0)
					case device.ActGELU:
						wy[i], _ = refGELU(wz[i])
						my[i] *= 2 // the GELU's own error, per unit of |z|
					}
				}
				closeF64(t, "z", out[0].([]float32), wz, mz)
				closeF64(t, "y", out[1].([]float32), wy, my)
				equalBits(t, "y without z", out[2].([]float32), out[1].([]float32))
				if act == device.ActNone {
					equalBits(t, "y = z", out[1].([]float32), out[0].([]float32))
				}
			})
		}
	}
}

// TestBatchNormBackward: dbeta and dgamma within 1e-5 relative plus 2e-6 of
// the sums of the terms' magnitudes; dx within 1e-5 relative plus 2e-6 of
// gamma*invstd times the magnitudes of its terms (dz, the means and
// xhat*dgamma/M); dx in place (dx = dz) bit for bit the same.
func TestBatchNormBackward(t *testing.T) {
	const eps = 1e-3
	for _, s := range bnShapes {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			outer, c, inner := s[0], s[1], s[2]
			n := outer * c * inner
			x := bnInput(t, outer, c, inner)
			mean, variance, gamma, _ := bnParams(t, x, outer, c, inner)
			// dz correlated with x and with a nonzero mean, so that
			// dgamma/M and dbeta/M both weigh in dx.
			dz := randF32(rng(t), n)
			for i := range dz {
				ch := i / inner % c
				dz[i] = 0.3 + 0.5*dz[i] + 0.5*float32((float64(x[i])-float64(mean[ch]))*refInvStd(variance[ch], eps))
			}
			out := each(t, func(cfg Config) ([]any, error) {
				dx, dg, db := nans(n), nans(c), nans(c)
				if err := BatchNormBackward(cfg, x, dz, mean, variance, gamma, outer, c, inner, eps, dx, dg, db); err != nil {
					return nil, err
				}
				d2, dg2, db2 := clone(dz), nans(c), nans(c)
				return []any{dx, dg, db, d2}, BatchNormBackward(cfg, x, d2, mean, variance, gamma, outer, c, inner, eps, d2, dg2, db2)
			})
			sb, sg, mb, mg := make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c)
			xhat := func(i int) float64 {
				ch := i / inner % c
				return (float64(x[i]) - float64(mean[ch])) * refInvStd(variance[ch], eps)
			}
			for i, d := range dz {
				ch := i / inner % c
				sb[ch] += float64(d)
				mb[ch] += math.Abs(float64(d))
				sg[ch] += float64(d) * xhat(i)
				mg[ch] += math.Abs(float64(d) * xhat(i))
			}
			closeF64(t, "dbeta", out[2].([]float32), sb, mb)
			closeF64(t, "dgamma", out[1].([]float32), sg, mg)
			m := float64(outer * inner)
			wdx, mdx := make([]float64, n), make([]float64, n)
			for i, d := range dz {
				ch := i / inner % c
				k := float64(gamma[ch]) * refInvStd(variance[ch], eps)
				xh := xhat(i)
				wdx[i] = k * (float64(d) - sb[ch]/m - xh*sg[ch]/m)
				mdx[i] = math.Abs(k) * (math.Abs(float64(d)) + math.Abs(sb[ch]/m) + math.Abs(xh*sg[ch]/m) + (mb[ch]+math.Abs(xh)*mg[ch])/m)
			}
			closeF64(t, "dx", out[0].([]float32), wdx, mdx)
			equalBits(t, "dx in place", out[3].([]float32), out[0].([]float32))
		})
	}
}
