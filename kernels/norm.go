package kernels

// norm.cu: batch normalisation: per-channel sums, 1/sqrt(variance+eps), the
// fused forward and the input gradient.

// SumTerm is what channel_sum_f32 adds up in the first pass of a plan.
type SumTerm int

// The terms of channel_sum_f32 (CHANNEL_SUM_* in norm.cu).
const (
	SumX     SumTerm = 0 // x
	SumSqDev SumTerm = 1 // (x - mean[c])^2
	SumYXhat SumTerm = 2 // y * ((x - mean[c]) * invstd[c])
)

// ChannelSumKernel is channel_sum_f32.
var ChannelSumKernel = &Kernel{Name: "channel_sum_f32", File: "norm.cu", Work: "C*chunks",
	Doc: "One pass of a ChannelSumPlan: out[c*chunks+j] = (sum of term(x, y, mean, invstd)[o, c, r] over e = o*inner+r = j (mod chunks), e ascending) / div."}

// ChannelSum launches channel_sum_f32(x, y, mean, invstd, a, out, outer,
// C, inner, chunks, term, div, act): one pass. y, mean, invstd and a may be
// null pointers where term and act (a device.Act's number; not 0 only with
// SumX) do not read them.
func ChannelSum[P any](l Launcher[P], x, y, mean, invstd, a, out P, outer, c, inner, chunks int, term SumTerm, div float32, act int) {
	var args Args[P]
	args.ptr("x", FloatPtr, x).ptr("y", ConstFloatPtr, y).ptr("mean", ConstFloatPtr, mean).ptr("invstd", ConstFloatPtr, invstd).
		ptr("a", ConstFloatPtr, a).ptr("out", FloatPtr, out).i("outer", outer).i("C", c).i("inner", inner).i("chunks", chunks).
		i("term", int(term)).f("div", div).i("act", act)
	l.Launch(ChannelSumKernel, c*chunks, args)
}

// ChannelSumPasses launches the passes of steps (from ChannelSumPlan(outer,
// c, inner)) with channel_sum_f32: the first sums term over x [outer, c,
// inner] (reading y, mean, invstd as the term needs), the later ones add
// the partial sums in scratch, and the last writes out[c] = sum / div.
// scratch(off, n) is the caller's scratch buffer from float32 element off
// on, n elements (the plan's scratch size). With act != 0 (term SumX) the
// first pass applies that activation's backward to x, reading a, and
// writes it back (see channel_sum_f32); a may be a null pointer otherwise.
func ChannelSumPasses[P any](l Launcher[P], steps []ChannelSumStep, term SumTerm, x, y, mean, invstd, a, out P, act int, c int, div float32, scratch func(off, n int) P) {
	for i, s := range steps {
		in, dst, t, d, ac := x, out, term, float32(1), act
		if s.In >= 0 {
			in, t, ac = scratch(s.In, c*s.Inner), SumX, 0
		}
		if s.Out >= 0 {
			dst = scratch(s.Out, c*s.Chunks)
		}
		if i == len(steps)-1 {
			d = div
		}
		ChannelSum(l, in, y, mean, invstd, a, dst, s.Outer, c, s.Inner, s.Chunks, t, d, ac)
	}
}

// BNInvStdKernel is bn_invstd_f32.
var BNInvStdKernel = &Kernel{Name: "bn_invstd_f32", File: "norm.cu", Work: "C",
	Doc: "invstd[c] = float32(1/sqrt(float64(variance[c]) + float64(eps))), the CPU backend's rounding."}

// BNInvStd launches bn_invstd_f32(variance, invstd, C, eps).
func BNInvStd[P any](l Launcher[P], variance, invstd P, c int, eps float32) {
	var a Args[P]
	a.ptr("variance", ConstFloatPtr, variance).ptr("invstd", FloatPtr, invstd).i("C", c).f("eps", eps)
	l.Launch(BNInvStdKernel, c, a)
}

// BNFwdKernel is bn_fwd_f32.
var BNFwdKernel = &Kernel{Name: "bn_fwd_f32", File: "norm.cu", Work: "outer*C*inner",
	Doc: "Backend.BatchNormForward given invstd: z = ((x-mean)*invstd)*gamma + beta, stored when z is not NULL; y = act(z), act 0 none, 1 ReLU, 2 GELU."}

// BNFwd launches bn_fwd_f32(x, mean, invstd, gamma, beta, z, y, outer, C,
// inner, act); z may be the null pointer. act is a device.Act value.
func BNFwd[P any](l Launcher[P], x, mean, invstd, gamma, beta, z, y P, outer, c, inner, act int) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("mean", ConstFloatPtr, mean).ptr("invstd", ConstFloatPtr, invstd).
		ptr("gamma", ConstFloatPtr, gamma).ptr("beta", ConstFloatPtr, beta).ptr("z", FloatPtr, z).ptr("y", FloatPtr, y).
		i("outer", outer).i("C", c).i("inner", inner).i("act", act)
	l.Launch(BNFwdKernel, outer*c*inner, a)
}

// BNBwdKernel is bn_bwd_f32.
var BNBwdKernel = &Kernel{Name: "bn_bwd_f32", File: "norm.cu", Work: "outer*C*inner",
	Doc: "Backend.BatchNormBackward's dx given invstd and the sums dbeta, dgamma: dx = (gamma*invstd)*((dz - dbeta/M) - xhat*(dgamma/M))."}

// BNBwd launches bn_bwd_f32(x, dz, mean, invstd, gamma, dgamma, dbeta, dx,
// outer, C, inner).
func BNBwd[P any](l Launcher[P], x, dz, mean, invstd, gamma, dgamma, dbeta, dx P, outer, c, inner int) {
	var a Args[P]
	a.ptr("x", ConstFloatPtr, x).ptr("dz", ConstFloatPtr, dz).ptr("mean", ConstFloatPtr, mean).ptr("invstd", ConstFloatPtr, invstd).
		ptr("gamma", ConstFloatPtr, gamma).ptr("dgamma", ConstFloatPtr, dgamma).ptr("dbeta", ConstFloatPtr, dbeta).
		ptr("dx", FloatPtr, dx).i("outer", outer).i("C", c).i("inner", inner)
	l.Launch(BNBwdKernel, outer*c*inner, a)
}
