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

// launcher runs the launch functions of package kernels with Run: P is a
// []float32, []int32 or []uint8 (nil for NULL). Each launch also checks the
// Go description's C types against the C++ compiler's signature, so every
// launch function the tests reach is proven to match its kernel.
type launcher struct {
	cfg Config
	err error
}

func (l *launcher) Launch(k *kernels.Kernel, work int, a kernels.Args[any]) {
	if l.err != nil {
		return
	}
	args, err := goArgs(k, a)
	if err != nil {
		l.err = err
		return
	}
	l.err = Run(k.Name, l.cfg(work), args...)
}

// goArgs converts a launch's arguments to Run's, checking their C types.
func goArgs(k *kernels.Kernel, a kernels.Args[any]) ([]any, error) {
	sig, err := signature(k.Name, a.Len())
	if err != nil {
		return nil, err
	}
	args := make([]any, a.Len())
	for i := range args {
		x := a.At(i)
		if x.Type.String() != sig[i] {
			return nil, fmt.Errorf("emu: %s parameter %d (%s): the launch function says %s, the C source %s", k.Name, i, x.Name, x.Type, sig[i])
		}
		switch x.Type {
		case kernels.Int:
			args[i] = x.Int()
		case kernels.Float:
			args[i] = x.Float()
		case kernels.U64:
			args[i] = x.Bits
		default:
			args[i] = x.Ptr
		}
	}
	return args, nil
}

// with runs f, the launches of one op, under cfg.
func with(cfg Config, f func(l *launcher)) error {
	l := &launcher{cfg: cfg}
	f(l)
	return l.err
}

func convOf(g device.ConvGeom) kernels.Conv {
	return kernels.Conv{C: g.C, N: g.N, H: g.H, W: g.W, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PadH, PW: g.PadW, OH: g.OH, OW: g.OW}
}

func poolOf(g device.PoolGeom) kernels.Pool {
	return kernels.Pool{P: g.Planes, H: g.H, W: g.W, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, OH: g.OH, OW: g.OW}
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
	return with(cfg, func(l *launcher) { kernels.Im2Col[any](l, convOf(g), x, col) })
}

// Im2ColBF16 runs im2col_bf16 (Backend.Im2Col into a BF16 col; col holds
// bfloat16 bits).
func Im2ColBF16(cfg Config, g device.ConvGeom, x []float32, col []uint16) error {
	x, err := need("Im2ColBF16", "x", x, g.C*g.N*g.H*g.W)
	if err != nil {
		return err
	}
	if col, err = need("Im2ColBF16", "col", col, g.ColRows()*g.ColCols()); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.Im2ColBF16[any](l, convOf(g), x, col) })
}

// F32ToBF16 runs f32_to_bf16 (Backend.Convert to BF16; y holds bfloat16
// bits).
func F32ToBF16(cfg Config, x []float32, y []uint16, n int) error {
	x, err := need("F32ToBF16", "x", x, n)
	if err != nil {
		return err
	}
	if y, err = need("F32ToBF16", "y", y, n); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.F32ToBF16[any](l, x, y, n) })
}

// BF16ToF32 runs bf16_to_f32 (Backend.Convert to F32).
func BF16ToF32(cfg Config, x []uint16, y []float32, n int) error {
	x, err := need("BF16ToF32", "x", x, n)
	if err != nil {
		return err
	}
	if y, err = need("BF16ToF32", "y", y, n); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.BF16ToF32[any](l, x, y, n) })
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
	return with(cfg, func(l *launcher) { kernels.Col2Im[any](l, convOf(g), col, dx) })
}

// MaxPoolForward runs maxpool_fwd_f32.
func MaxPoolForward(cfg Config, g device.PoolGeom, x, y []float32, argmax []int32) error {
	return maxPoolForward(cfg, g, x, y, argmax, false)
}

// MaxPoolReLUForward runs maxpool_fwd_f32 with the ReLU fused in.
func MaxPoolReLUForward(cfg Config, g device.PoolGeom, x, y []float32, argmax []int32) error {
	return maxPoolForward(cfg, g, x, y, argmax, true)
}

func maxPoolForward(cfg Config, g device.PoolGeom, x, y []float32, argmax []int32, relu bool) error {
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
	return with(cfg, func(l *launcher) { kernels.MaxPoolFwd[any](l, poolOf(g), x, y, argmax, relu) })
}

// MaxPoolBackward runs maxpool_bwd_f32.
func MaxPoolBackward(cfg Config, g device.PoolGeom, dy []float32, argmax []int32, dx []float32) error {
	return maxPoolBackward(cfg, g, dy, nil, argmax, dx)
}

// MaxPoolReLUBackward runs maxpool_bwd_f32 with the ReLU's mask (y, the
// forward's output).
func MaxPoolReLUBackward(cfg Config, g device.PoolGeom, dy, y []float32, argmax []int32, dx []float32) error {
	if y == nil {
		return fmt.Errorf("MaxPoolReLUBackward: y is nil")
	}
	return maxPoolBackward(cfg, g, dy, y, argmax, dx)
}

func maxPoolBackward(cfg Config, g device.PoolGeom, dy, y []float32, argmax []int32, dx []float32) error {
	out := g.Planes * g.OH * g.OW
	dy, err := need("MaxPoolBackward", "dy", dy, out)
	if err != nil {
		return err
	}
	if y, err = opt("MaxPoolBackward", "y", y, out); err != nil {
		return err
	}
	if argmax, err = need("MaxPoolBackward", "argmax", argmax, out); err != nil {
		return err
	}
	if dx, err = need("MaxPoolBackward", "dx", dx, g.Planes*g.H*g.W); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.MaxPoolBwd[any](l, poolOf(g), dy, y, argmax, dx) })
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
	return with(cfg, func(l *launcher) { kernels.AvgPoolFwd[any](l, poolOf(g), x, y) })
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
	return with(cfg, func(l *launcher) { kernels.AvgPoolBwd[any](l, poolOf(g), dy, dx) })
}

// AddBias runs bias_act_f32 in place (y as z and y) with act ReLU or
// none (Backend.AddBias).
func AddBias(cfg Config, y, bias []float32, outer, c, inner int, relu bool) error {
	act := device.ActNone
	if relu {
		act = device.ActReLU
	}
	return BiasAct(cfg, y, y, bias, outer, c, inner, act)
}

// BiasAct runs bias_act_f32 (Backend.BiasAct); y may be z.
func BiasAct(cfg Config, z, y, bias []float32, outer, c, inner int, act device.Act) error {
	if err := needAll("BiasAct", outer*c*inner, &z, &y); err != nil {
		return err
	}
	bias, err := need("BiasAct", "bias", bias, c)
	if err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.BiasAct[any](l, z, y, bias, outer, c, inner, int(act)) })
}

// BiasGrad runs bias_grad_f32 (Backend.BiasGrad) with its scratch: the
// unit sums (NaN to begin with: each must be written before it is read)
// and the tickets (zeros, which the kernel must leave as zeros).
func BiasGrad(cfg Config, dy, db []float32, outer, c, inner int) error {
	return biasGrad(cfg, device.ActNone, nil, dy, db, outer, c, inner)
}

// ActBiasGrad runs bias_grad_f32 with an activation's backward
// (Backend.ActBiasGrad): a is the ReLU's output or the GELU's input; dy is
// overwritten with the activation's gradient.
func ActBiasGrad(cfg Config, act device.Act, a, dy, db []float32, outer, c, inner int) error {
	if a == nil || act == device.ActNone {
		return fmt.Errorf("ActBiasGrad: no activation (%v) or no input", act)
	}
	return biasGrad(cfg, act, a, dy, db, outer, c, inner)
}

func biasGrad(cfg Config, act device.Act, a, dy, db []float32, outer, c, inner int) error {
	dy, err := need("BiasGrad", "dy", dy, outer*c*inner)
	if err != nil {
		return err
	}
	if a, err = opt("BiasGrad", "a", a, outer*c*inner); err != nil {
		return err
	}
	if db, err = need("BiasGrad", "db", db, c); err != nil {
		return err
	}
	part, count := nanF32(c*kernels.BiasGradUnits(outer, inner)), make([]int32, c)
	if err := with(cfg, func(l *launcher) { kernels.BiasGrad[any](l, dy, a, db, part, count, outer, c, inner, int(act)) }); err != nil {
		return err
	}
	for ch, v := range count {
		if v != 0 {
			return fmt.Errorf("BiasGrad: channel %d's ticket left at %d, not 0", ch, v)
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
	return with(cfg, func(l *launcher) { kernels.ReLUFwd[any](l, x, y, n) })
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
	return with(cfg, func(l *launcher) { kernels.ReLUBwd[any](l, y, dy, dx, n) })
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
	return with(cfg, func(l *launcher) { kernels.SwapAxes01[any](l, src, dst, a, b, inner) })
}

// SoftmaxXent runs softmax_xent_f32 with label smoothing eps = smoothing;
// dlogits may be nil.
func SoftmaxXent(cfg Config, logits []float32, labels []int32, n, k int, gradScale, smoothing float32, dlogits, stats []float32) error {
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
	return with(cfg, func(l *launcher) {
		kernels.SoftmaxXent[any](l, logits, labels, n, k, gradScale, smoothing, dlogits, stats)
	})
}

// Adam runs adam_f32.
func Adam(cfg Config, p, g, m, v []float32, n int, lrT, beta1, beta2, eps, l2, decay float32) error {
	if err := needAll("Adam", n, &p, &g, &m, &v); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.Adam[any](l, p, g, m, v, n, lrT, beta1, beta2, eps, l2, decay) })
}

// OptimizerStep runs adam_seg_f32, sgd_seg_f32 or rmsprop_seg_f32 over
// the segments (Backend.OptimizerStep): m and v as Backend.OptimizerStep
// assigns them; those an update does not read may be nil.
func OptimizerStep(cfg Config, p, g, m, v []float32, segs []device.OptimSegment, s device.OptimStep) error {
	n := device.SegmentsEnd(segs)
	if err := needAll("OptimizerStep", n, &p, &g); err != nil {
		return err
	}
	m, err := opt("OptimizerStep", "m", m, n)
	if err != nil {
		return err
	}
	if v, err = opt("OptimizerStep", "v", v, n); err != nil {
		return err
	}
	tab, lr := device.SegmentTable(segs), math.Float64bits(s.LR)
	return with(cfg, func(l *launcher) {
		switch s.Kind {
		case device.OptimAdam, device.OptimAdamW:
			bc2, pb1 := s.BiasCorrection()
			kernels.AdamSeg[any](l, p, g, m, v, tab, len(segs), n, lr, math.Float64bits(bc2), math.Float64bits(pb1),
				float32(s.Beta1), float32(s.Beta2), s.Scalars(segs[0]).Eps, s.Kind == device.OptimAdamW)
		case device.OptimSGD:
			kernels.SGDSeg[any](l, p, g, m, tab, len(segs), n, lr, float32(s.Momentum), s.Nesterov)
		case device.OptimRMSprop:
			kernels.RMSpropSeg[any](l, p, g, v, m, tab, len(segs), n, lr, float32(s.Alpha), float32(s.Eps), float32(s.Momentum))
		}
	})
}

// needAll cuts each of the slices to n elements, or fails when one is nil or
// shorter.
func needAll(op string, n int, s ...*[]float32) error {
	var err error
	for _, x := range s {
		if *x, err = need(op, "buffer", *x, n); err != nil {
			return err
		}
	}
	return nil
}

// SGD runs sgd_f32; buf may be nil when momentum is 0.
func SGD(cfg Config, p, g, buf []float32, n int, lr, momentum, l2 float32, nesterov bool) error {
	if err := needAll("SGD", n, &p, &g); err != nil {
		return err
	}
	buf, err := momentumBuf("SGD", buf, n, momentum)
	if err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.SGD[any](l, p, g, buf, n, lr, momentum, l2, nesterov) })
}

// RMSprop runs rmsprop_f32; buf may be nil when momentum is 0.
func RMSprop(cfg Config, p, g, sq, buf []float32, n int, lr, alpha, eps, l2, momentum float32) error {
	if err := needAll("RMSprop", n, &p, &g, &sq); err != nil {
		return err
	}
	buf, err := momentumBuf("RMSprop", buf, n, momentum)
	if err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.RMSprop[any](l, p, g, sq, buf, n, lr, alpha, eps, l2, momentum) })
}

// momentumBuf is the momentum buffer cut to n: needed when momentum != 0,
// else optional.
func momentumBuf(op string, buf []float32, n int, momentum float32) ([]float32, error) {
	if momentum != 0 {
		return need(op, "buf", buf, n)
	}
	return opt(op, "buf", buf, n)
}

// GELUForward runs gelu_fwd_f32; y may be x.
func GELUForward(cfg Config, x, y []float32, n int) error {
	if err := needAll("GELUForward", n, &x, &y); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.GELUFwd[any](l, x, y, n) })
}

// GELUBackward runs gelu_bwd_f32; dx may be dy.
func GELUBackward(cfg Config, x, dy, dx []float32, n int) error {
	if err := needAll("GELUBackward", n, &x, &dy, &dx); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.GELUBwd[any](l, x, dy, dx, n) })
}

// Add runs add_f32; y may be a or b.
func Add(cfg Config, a, b, y []float32, n int, relu bool) error {
	if err := needAll("Add", n, &a, &b, &y); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.Add[any](l, a, b, y, n, relu) })
}

// Axpby runs axpby_f32.
func Axpby(cfg Config, x, y []float32, n int, alpha, beta float32) error {
	if err := needAll("Axpby", n, &x, &y); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.Axpby[any](l, x, y, n, alpha, beta) })
}

// Dropout runs dropout_f32 with scale kernels.DropoutScale(p), as the GPU
// backend does; y may be x.
func Dropout(cfg Config, x, y []float32, n int, p float32, seed uint64, step int) error {
	if err := needAll("Dropout", n, &x, &y); err != nil {
		return err
	}
	return with(cfg, func(l *launcher) {
		kernels.Dropout[any](l, x, y, n, p, kernels.DropoutScale(p), seed, uint64(step))
	})
}

// bnScratch is the scratch of a channel_sum_f32 plan for [outer, c, inner],
// filled with NaN (every pass must write what the next reads).
func bnScratch(outer, c, inner int) ([]kernels.ChannelSumStep, func(off, n int) any) {
	steps, n := kernels.ChannelSumPlan(outer, c, inner)
	scratch := nanF32(n)
	return steps, func(off, n int) any { return scratch[off : off+n] }
}

// nanF32 is n float32 NaNs.
func nanF32(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

// BatchNormStats runs Backend.BatchNormStats as the GPU backend does: the
// channel_sum_f32 passes of the mean (term x, divided by M), then those of
// the variance (term (x-mean)^2, divided by M).
func BatchNormStats(cfg Config, x, mean, variance []float32, outer, c, inner int) error {
	x, err := need("BatchNormStats", "x", x, outer*c*inner)
	if err != nil {
		return err
	}
	if err := needAll("BatchNormStats", c, &mean, &variance); err != nil {
		return err
	}
	steps, at := bnScratch(outer, c, inner)
	m := float32(outer * inner)
	return with(cfg, func(l *launcher) {
		kernels.ChannelSumPasses[any](l, steps, kernels.SumX, x, []float32(nil), []float32(nil), []float32(nil), []float32(nil), mean, 0, c, m, at)
		kernels.ChannelSumPasses[any](l, steps, kernels.SumSqDev, x, []float32(nil), mean, []float32(nil), []float32(nil), variance, 0, c, m, at)
	})
}

// BatchNormForward runs bn_invstd_f32 into a scratch slice, then
// bn_fwd_f32; z may be nil.
func BatchNormForward(cfg Config, x, mean, variance, gamma, beta []float32, outer, c, inner int, eps float32, act device.Act, z, y []float32) error {
	n := outer * c * inner
	if err := needAll("BatchNormForward", n, &x, &y); err != nil {
		return err
	}
	if err := needAll("BatchNormForward", c, &mean, &variance, &gamma, &beta); err != nil {
		return err
	}
	z, err := opt("BatchNormForward", "z", z, n)
	if err != nil {
		return err
	}
	inv := nanF32(c)
	return with(cfg, func(l *launcher) {
		kernels.BNInvStd[any](l, variance, inv, c, eps)
		kernels.BNFwd[any](l, x, mean, inv, gamma, beta, z, y, outer, c, inner, int(act))
	})
}

// BatchNormBackward runs bn_invstd_f32, the channel_sum_f32 passes of
// dbeta (term dz) and dgamma (term dz*xhat), then bn_bwd_f32; dx may be dz.
func BatchNormBackward(cfg Config, x, dz, mean, variance, gamma []float32, outer, c, inner int, eps float32, dx, dgamma, dbeta []float32) error {
	return BatchNormActBackward(cfg, device.ActNone, nil, x, dz, mean, variance, gamma, outer, c, inner, eps, dx, dgamma, dbeta)
}

// BatchNormActBackward is BatchNormBackward with the activation's backward
// fused into the first pass of dbeta's sums (Backend.BatchNormActBackward):
// dy, the activation's output gradient, is overwritten with dz; a is the
// ReLU's output or the GELU's input.
func BatchNormActBackward(cfg Config, act device.Act, a, x, dz, mean, variance, gamma []float32, outer, c, inner int, eps float32, dx, dgamma, dbeta []float32) error {
	n := outer * c * inner
	if err := needAll("BatchNormBackward", n, &x, &dz, &dx); err != nil {
		return err
	}
	a, err := opt("BatchNormBackward", "a", a, n)
	if err != nil {
		return err
	}
	if (a == nil) != (act == device.ActNone) {
		return fmt.Errorf("BatchNormActBackward: activation %v with a %v", act, a != nil)
	}
	if err := needAll("BatchNormBackward", c, &mean, &variance, &gamma, &dgamma, &dbeta); err != nil {
		return err
	}
	steps, at := bnScratch(outer, c, inner)
	inv := nanF32(c)
	return with(cfg, func(l *launcher) {
		kernels.BNInvStd[any](l, variance, inv, c, eps)
		kernels.ChannelSumPasses[any](l, steps, kernels.SumX, dz, []float32(nil), []float32(nil), []float32(nil), a, dbeta, int(act), c, 1, at)
		kernels.ChannelSumPasses[any](l, steps, kernels.SumYXhat, x, dz, mean, inv, []float32(nil), dgamma, 0, c, 1, at)
		kernels.BNBwd[any](l, x, dz, mean, inv, gamma, dgamma, dbeta, dx, outer, c, inner)
	})
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
	return with(cfg, func(l *launcher) {
		kernels.GatherImages[any](l, src, idx, n, c, hw, scale, dst, labels, dstLabels)
	})
}

// Augment runs augment_f32 (Backend.Augment): src and dst are CNHW
// [c, n, h, w] and must not overlap.
func Augment(cfg Config, src, dst []float32, c, n, h, w, pad int, reflect, noFlip bool, seed uint64, step int) error {
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
	if reflect && (pad >= h || pad >= w) {
		return fmt.Errorf("Augment: reflect padding %d not below the image size %dx%d", pad, h, w)
	}
	return with(cfg, func(l *launcher) {
		kernels.Augment[any](l, src, dst, c, n, h, w, pad, reflect, noFlip, seed, uint64(step))
	})
}

// Translate runs translate_f32 (Backend.Translate): src and dst are CNHW
// [c, n, h, w] and must not overlap; |dy| < h, |dx| < w.
func Translate(cfg Config, src, dst []float32, c, n, h, w, dy, dx int, flip bool) error {
	size := c * n * h * w
	if err := needAll("Translate", size, &src, &dst); err != nil {
		return err
	}
	if dy <= -h || dy >= h || dx <= -w || dx >= w {
		return fmt.Errorf("Translate: shift (%d, %d) not inside the image size %dx%d", dy, dx, h, w)
	}
	return with(cfg, func(l *launcher) { kernels.Translate[any](l, src, dst, c, n, h, w, dy, dx, flip) })
}

// Fill runs fill_f32.
func Fill(cfg Config, x []float32, n int, v float32) error {
	x, err := need("Fill", "x", x, n)
	if err != nil {
		return err
	}
	return with(cfg, func(l *launcher) { kernels.Fill[any](l, x, n, v) })
}
