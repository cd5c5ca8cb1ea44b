//go:build cgo

package emu

import (
	"fmt"
	"testing"

	"github.com/trainer-go/trainer/kernels"
)

// Tests of step.cu: each *_at_f32 kernel against its by-value twin with the
// same values (bit for bit: a captured step must equal an eager one), the
// step counters against a Go model, under every launch config.

// twin runs at (the *_at kernel) and by (its twin) on copies of the same
// state under every launch config and checks they agree bit for bit.
func twin(t *testing.T, what string, state [][]float32, at, by func(l kernels.Launcher[any], s [][]float32)) {
	t.Helper()
	run := func(f func(kernels.Launcher[any], [][]float32)) []any {
		return each(t, func(cfg Config) ([]any, error) {
			s := make([][]float32, len(state))
			out := make([]any, len(state))
			for i := range state {
				s[i] = clone(state[i])
				out[i] = s[i]
			}
			return out, with(cfg, func(l *launcher) { f(l, s) })
		})
	}
	a, b := run(at), run(by)
	for i := range a {
		equalBits(t, fmt.Sprintf("%s output %d", what, i), a[i].([]float32), b[i].([]float32))
	}
}

func TestAtKernelsMatchTheirTwins(t *testing.T) {
	r := rng(t)
	const n = 777
	p, g, m, v := randF32(r, n), randF32(r, n), randF32(r, n), randF32(r, n)
	for i := range v {
		v[i] *= v[i]
	}
	for _, c := range [][4]float32{{1e-3, 1e-7, 0, 0}, {2e-3, 3e-9, 1e-4, 0}, {5e-4, 1e-8, 0, 2e-5}} {
		lrT, eps, decay, l2 := c[0], c[1], c[2], c[3]
		twin(t, fmt.Sprintf("adam %v", c), [][]float32{p, m, v},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.AdamAt[any](l, s[0], g, s[1], s[2], n, []float32{lrT, eps, decay}, 0.9, 0.999, l2)
			},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.Adam[any](l, s[0], g, s[1], s[2], n, lrT, 0.9, 0.999, eps, l2, decay)
			})
	}
	for _, mom := range []float32{0, 0.9} {
		twin(t, fmt.Sprintf("sgd momentum %v", mom), [][]float32{p, m},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.SGDAt[any](l, s[0], g, s[1], n, []float32{0.03}, mom, 1e-3, true)
			},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.SGD[any](l, s[0], g, s[1], n, 0.03, mom, 1e-3, true)
			})
		twin(t, fmt.Sprintf("rmsprop momentum %v", mom), [][]float32{p, v, m},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.RMSpropAt[any](l, s[0], g, s[1], s[2], n, []float32{0.01}, 0.99, 1e-8, 1e-3, mom)
			},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.RMSprop[any](l, s[0], g, s[1], s[2], n, 0.01, 0.99, 1e-8, 1e-3, mom)
			})
	}
	for _, c := range [][2]float32{{0.3, 0.7}, {1, 0}} {
		twin(t, fmt.Sprintf("axpby %v", c), [][]float32{m},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.AxpbyAt[any](l, p, s[0], n, []float32{c[0], c[1], 1})
			},
			func(l kernels.Launcher[any], s [][]float32) { kernels.Axpby[any](l, p, s[0], n, c[0], c[1]) })
	}
	twin(t, "axpby off", [][]float32{m},
		func(l kernels.Launcher[any], s [][]float32) {
			kernels.AxpbyAt[any](l, p, s[0], n, []float32{0.5, 0.5, 0})
		},
		func(l kernels.Launcher[any], s [][]float32) {})
	const c, imgs, h, w = 3, 4, 7, 6
	src := augmentSrc(r, c*imgs*h*w)
	for _, step := range []int32{0, 5, 1<<31 - 1} {
		for _, m := range augmentModes(2, h, w) {
			twin(t, fmt.Sprintf("augment step %d %+v", step, m), [][]float32{make([]float32, c*imgs*h*w)},
				func(l kernels.Launcher[any], s [][]float32) {
					kernels.AugmentAt[any](l, src, s[0], c, imgs, h, w, 2, m.reflect, m.noFlip, 77, []int32{step})
				},
				func(l kernels.Launcher[any], s [][]float32) {
					kernels.Augment[any](l, src, s[0], c, imgs, h, w, 2, m.reflect, m.noFlip, 77, uint64(step))
				})
		}
		twin(t, fmt.Sprintf("dropout step %d", step), [][]float32{make([]float32, n)},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.DropoutAt[any](l, p, s[0], n, 0.25, kernels.DropoutScale(0.25), 9, []int32{step})
			},
			func(l kernels.Launcher[any], s [][]float32) {
				kernels.Dropout[any](l, p, s[0], n, 0.25, kernels.DropoutScale(0.25), 9, uint64(step))
			})
	}
}

// TestStepBeginEnd: the batch and table row at the counters, the counters
// advanced with the position wrapping, as a Go model has them.
func TestStepBeginEnd(t *testing.T) {
	r := rng(t)
	const stride, k = 5, 3
	perm := make([]int32, 4*stride-1)
	for i := range perm {
		perm[i] = int32(r.IntN(100))
	}
	table := randF32(r, 4*k)
	for _, c := range []struct{ pos, step, first, cnt, wrap int }{{0, 0, 0, 5, 4}, {2, 9, 7, 5, 4}, {3, 12, 9, 4, 4}, {3, 1, 0, 4, 5}} {
		out := each(t, func(cfg Config) ([]any, error) {
			ctr := []int32{int32(c.pos), int32(c.step), int32(c.first)}
			idx, cur := make([]int32, stride), make([]float32, k)
			err := with(cfg, func(l *launcher) {
				kernels.StepBegin[any](l, ctr, perm, stride, c.cnt, idx, table, k, cur)
				kernels.StepEnd[any](l, ctr, c.wrap)
			})
			return []any{ctr, idx, cur}, err
		})
		ctr, idx, cur := out[0].([]int32), out[1].([]int32), out[2].([]float32)
		pos := (c.pos + 1) % c.wrap
		if ctr[0] != int32(pos) || ctr[1] != int32(c.step+1) || ctr[2] != int32(c.first) {
			t.Errorf("%+v: counters %v", c, ctr)
		}
		for j := range c.cnt {
			if idx[j] != perm[c.pos*stride+j] {
				t.Fatalf("%+v: idx %v", c, idx)
			}
		}
		row := c.step - c.first
		equalBits(t, fmt.Sprintf("%+v cur", c), cur, table[row*k:row*k+k])
	}
}
