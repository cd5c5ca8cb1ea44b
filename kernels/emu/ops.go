//go:build cgo

package emu

import (
	"fmt"
	"math"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/kernels"
)

// The functions below run each device.Backend op the way the GPU backend
// launches it: same kernel, same arguments, same work count. Slices must be
// at least as long as the op needs; only that prefix is handed to the kernel,
// so the guard zones sit right at the end of what it may touch.

func need[T any](op, what string, s []T, n int) ([]T, error) {
	if s == nil {
		return nil, fmt.Errorf("%s: %s is nil", op, what)
	}
	if n < 0 || len(s) < n {
		return nil, fmt.Errorf("%s: %s has %d elements, needs %d", op, what, len(s), n)
	}
	return s[:n], nil
}

// opt is need for a buffer that may be nil.
func opt[T any](op, what string, s []T, n int) ([]T, error) {
	if s == nil {
		return nil, nil
	}
	return need(op, what, s, n)
}

func convArgs(g device.ConvGeom) []any {
	return []any{g.C, g.N, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PadH, g.PadW, g.OH, g.OW}
}

func poolArgs(g device.PoolGeom) []any {
	return []any{g.Planes, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.OH, g.OW}
}

func run(cfg Config, name string, work int, args ...any) error {
	return Run(name, cfg(work), args...)
}

// Im2Col runs im2col_f32 (Backend.Im2Col).
func Im2Col(cfg Config, g device.ConvGeom, x, col []float32) error {
	x, err := need("Im2Col", "x", x, g.C*g.N*g.H*g.W)
	if err != nil {
		return err
	}
	if col, err = need("Im2Col", "col", col, g.ColRows()*g.ColCols()); err != nil {
		return err
	}
	return run(cfg, "im2col_f32", g.C*g.N*g.OH*g.OW, append([]any{x, col}, convArgs(g)...)...)
}

// Col2Im runs col2im_f32 (Backend.Col2Im).
func Col2Im(cfg Config, g device.ConvGeom, col, dx []float32) error {
	col, err := need("Col2Im", "col", col, g.ColRows()*g.ColCols())
	if err != nil {
		return err
	}
	if dx, err = need("Col2Im", "dx", dx, g.C*g.N*g.H*g.W); err != nil {
		return err
	}
	return run(cfg, "col2im_f32", g.C*g.N*g.H*g.W, append([]any{col, dx}, convArgs(g)...)...)
}

// MaxPoolForward runs maxpool_fwd_f32.
func MaxPoolForward(cfg Config, g device.PoolGeom, x, y []float32, argmax []int32) error {
	x, err := need("MaxPoolForward", "x", x, g.Planes*g.H*g.W)
	if err != nil {
		return err
	}
	out := g.Planes * g.OH * g.OW
	if y, err = need("MaxPoolForward", "y", y, out); err != nil {
		return err
	}
	if argmax, err = need("MaxPoolForward", "argmax", argmax, out); err != nil {
		return err
	}
	return run(cfg, "maxpool_fwd_f32", out, append([]any{x, y, argmax}, poolArgs(g)...)...)
}

// MaxPoolBackward runs maxpool_bwd_f32.
func MaxPoolBackward(cfg Config, g device.PoolGeom, dy []float32, argmax []int32, dx []float32) error {
	out := g.Planes * g.OH * g.OW
	dy, err := need("MaxPoolBackward", "dy", dy, out)
	if err != nil {
		return err
	}
	if argmax, err = need("MaxPoolBackward", "argmax", argmax, out); err != nil {
		return err
	}
	if dx, err = need("MaxPoolBackward", "dx", dx, g.Planes*g.H*g.W); err != nil {
		return err
	}
	return run(cfg, "maxpool_bwd_f32", g.Planes*g.H*g.W, append([]any{dy, argmax, dx}, poolArgs(g)...)...)
}

// AvgPoolForward runs avgpool_fwd_f32.
func AvgPoolForward(cfg Config, g device.PoolGeom, x, y []float32) error {
	x, err := need("AvgPoolForward", "x", x, g.Planes*g.H*g.W)
	if err != nil {
		return err
	}
	if y, err = need("AvgPoolForward", "y", y, g.Planes*g.OH*g.OW); err != nil {
		return err
	}
	return run(cfg, "avgpool_fwd_f32", g.Planes*g.OH*g.OW, append([]any{x, y}, poolArgs(g)...)...)
}

// AvgPoolBackward runs avgpool_bwd_f32.
func AvgPoolBackward(cfg Config, g device.PoolGeom, dy, dx []float32) error {
	dy, err := need("AvgPoolBackward", "dy", dy, g.Planes*g.OH*g.OW)
	if err != nil {
		return err
	}
	if dx, err = need("AvgPoolBackward", "dx", dx, g.Planes*g.H*g.W); err != nil {
		return err
	}
	return run(cfg, "avgpool_bwd_f32", g.Planes*g.H*g.W, append([]any{dy, dx}, poolArgs(g)...)...)
}

// AddBias runs bias_add_f32.
func AddBias(cfg Config, y, bias []float32, outer, c, inner int, relu bool) error {
	y, err := need("AddBias", "y", y, outer*c*inner)
	if err != nil {
		return err
	}
	if bias, err = need("AddBias", "bias", bias, c); err != nil {
		return err
	}
	r := 0
	if relu {
		r = 1
	}
	return run(cfg, "bias_add_f32", outer*c*inner, y, bias, outer, c, inner, r)
}

// BiasGrad runs the passes of kernels.BiasGradPlan with bias_grad_f32, using
// a scratch buffer of the size the plan asks for.
func BiasGrad(cfg Config, dy, db []float32, outer, c, inner int) error {
	dy, err := need("BiasGrad", "dy", dy, outer*c*inner)
	if err != nil {
		return err
	}
	if db, err = need("BiasGrad", "db", db, c); err != nil {
		return err
	}
	steps, n := kernels.BiasGradPlan(outer, c, inner)
	scratch := make([]float32, n)
	for i := range scratch {
		scratch[i] = float32(math.NaN()) // every pass must write what the next reads
	}
	for _, s := range steps {
		in, out := dy, db
		if s.In >= 0 {
			in = scratch[s.In : s.In+c*s.Inner]
		}
		if s.Out >= 0 {
			out = scratch[s.Out : s.Out+c*s.Chunks]
		}
		if err := run(cfg, "bias_grad_f32", c*s.Chunks, in, out, s.Outer, c, s.Inner, s.Chunks); err != nil {
			return err
		}
	}
	return nil
}

// ReLUForward runs relu_fwd_f32; y may be x.
func ReLUForward(cfg Config, x, y []float32, n int) error {
	x, err := need("ReLUForward", "x", x, n)
	if err != nil {
		return err
	}
	if y, err = need("ReLUForward", "y", y, n); err != nil {
		return err
	}
	return run(cfg, "relu_fwd_f32", n, x, y, n)
}

// ReLUBackward runs relu_bwd_f32; dx may be dy.
func ReLUBackward(cfg Config, y, dy, dx []float32, n int) error {
	y, err := need("ReLUBackward", "y", y, n)
	if err != nil {
		return err
	}
	if dy, err = need("ReLUBackward", "dy", dy, n); err != nil {
		return err
	}
	if dx, err = need("ReLUBackward", "dx", dx, n); err != nil {
		return err
	}
	return run(cfg, "relu_bwd_f32", n, y, dy, dx, n)
}

// SwapAxes01 runs swap_axes01_f32.
func SwapAxes01(cfg Config, src, dst []float32, a, b, inner int) error {
	src, err := need("SwapAxes01", "src", src, a*b*inner)
	if err != nil {
		return err
	}
	if dst, err = need("SwapAxes01", "dst", dst, a*b*inner); err != nil {
		return err
	}
	return run(cfg, "swap_axes01_f32", a*b*inner, src, dst, a, b, inner)
}

// SoftmaxXent runs softmax_xent_f32; dlogits may be nil.
func SoftmaxXent(cfg Config, logits []float32, labels []int32, n, k int, gradScale float32, dlogits, stats []float32) error {
	logits, err := need("SoftmaxXent", "logits", logits, n*k)
	if err != nil {
		return err
	}
	if labels, err = need("SoftmaxXent", "labels", labels, n); err != nil {
		return err
	}
	if dlogits, err = opt("SoftmaxXent", "dlogits", dlogits, n*k); err != nil {
		return err
	}
	if stats, err = need("SoftmaxXent", "stats", stats, 2); err != nil {
		return err
	}
	return run(cfg, "softmax_xent_f32", n, logits, labels, n, k, gradScale, dlogits, stats)
}

// Adam runs adam_f32.
func Adam(cfg Config, p, g, m, v []float32, n int, lrT, beta1, beta2, eps float32) error {
	var err error
	for _, s := range []*[]float32{&p, &g, &m, &v} {
		if *s, err = need("Adam", "buffer", *s, n); err != nil {
			return err
		}
	}
	return run(cfg, "adam_f32", n, p, g, m, v, n, lrT, beta1, beta2, eps)
}

// GatherImages runs gather_images_f32; labels and dstLabels may be nil.
// src is the whole dataset: every image idx names must lie inside it.
func GatherImages(cfg Config, src []uint8, idx []int32, n, c, hw int, scale float32, dst []float32, labels, dstLabels []int32) error {
	idx, err := need("GatherImages", "idx", idx, n)
	if err != nil {
		return err
	}
	images := 0
	if c*hw > 0 {
		images = len(src) / (c * hw)
	}
	for j, i := range idx {
		if i < 0 || int(i) >= images || (labels != nil && int(i) >= len(labels)) {
			return fmt.Errorf("GatherImages: idx[%d] = %d outside the dataset", j, i)
		}
	}
	if dst, err = need("GatherImages", "dst", dst, c*n*hw); err != nil {
		return err
	}
	if dstLabels, err = opt("GatherImages", "dstLabels", dstLabels, n); err != nil {
		return err
	}
	work := max(c*n*hw, n)
	return run(cfg, "gather_images_f32", work, src, idx, n, c, hw, scale, dst, labels, dstLabels)
}

// Augment runs augment_f32 (Backend.Augment): src and dst are CNHW
// [c, n, h, w] and must not overlap.
func Augment(cfg Config, src, dst []float32, c, n, h, w, pad int, seed uint64, step int) error {
	size := c * n * h * w
	src, err := need("Augment", "src", src, size)
	if err != nil {
		return err
	}
	if dst, err = need("Augment", "dst", dst, size); err != nil {
		return err
	}
	if pad < 0 {
		return fmt.Errorf("Augment: negative pad %d", pad)
	}
	return run(cfg, "augment_f32", size, src, dst, c, n, h, w, pad, seed, uint64(step))
}

// Fill runs fill_f32.
func Fill(cfg Config, x []float32, n int, v float32) error {
	x, err := need("Fill", "x", x, n)
	if err != nil {
		return err
	}
	return run(cfg, "fill_f32", n, x, n, v)
}

// Copy runs copy_f32.
func Copy(cfg Config, src, dst []float32, n int) error {
	src, err := need("Copy", "src", src, n)
	if err != nil {
		return err
	}
	if dst, err = need("Copy", "dst", dst, n); err != nil {
		return err
	}
	return run(cfg, "copy_f32", n, src, dst, n)
}

// Axpy runs axpy_f32: y += alpha*x.
func Axpy(cfg Config, n int, alpha float32, x, y []float32) error {
	x, err := need("Axpy", "x", x, n)
	if err != nil {
		return err
	}
	if y, err = need("Axpy", "y", y, n); err != nil {
		return err
	}
	return run(cfg, "axpy_f32", n, n, alpha, x, y)
}

// Scale runs scale_f32: x *= alpha.
func Scale(cfg Config, n int, alpha float32, x []float32) error {
	x, err := need("Scale", "x", x, n)
	if err != nil {
		return err
	}
	return run(cfg, "scale_f32", n, n, alpha, x)
}
