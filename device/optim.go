package device

import (
	"fmt"
	"math"
)

// OptimKind is an optimiser's update rule (see Backend.Adam, SGD, RMSprop).
type OptimKind int

// The update rules.
const (
	OptimAdam    OptimKind = iota // Adam with an L2 penalty (Keras/TF2's, or PyTorch's given its eps)
	OptimAdamW                    // Adam with decoupled weight decay (PyTorch's AdamW)
	OptimSGD                      // PyTorch's SGD
	OptimRMSprop                  // PyTorch's RMSprop
)

func (k OptimKind) String() string {
	switch k {
	case OptimAdam:
		return "adam"
	case OptimAdamW:
		return "adamw"
	case OptimSGD:
		return "sgd"
	case OptimRMSprop:
		return "rmsprop"
	}
	return fmt.Sprintf("optim(%d)", int(k))
}

// OptimSegment is a run of the flat parameter buffers, elements [Off,
// Off+N), updated with its own learning-rate factor and weight decay.
type OptimSegment struct {
	Off, N      int
	LRFactor    float64 // multiplies the step's learning rate
	WeightDecay float64 // the L2 penalty (adam, sgd, rmsprop) or decoupled decay (adamw)
}

// OptimStep is one optimiser step's settings, common to its segments.
type OptimStep struct {
	Kind  OptimKind
	LR    float64 // the schedule's learning rate for this step
	T     int     // the step's number, from 1 (Adam's bias correction)
	Beta1 float64 // adam, adamw
	Beta2 float64
	Eps   float64 // adam, adamw, rmsprop
	// Momentum is SGD's and RMSprop's; Alpha RMSprop's smoothing constant.
	Momentum, Alpha float64
	Nesterov        bool // sgd
}

// OptimScalars are the float32 coefficients of one segment's update, the
// arguments of Backend.Adam, SGD or RMSprop.
type OptimScalars struct {
	LR    float32 // Adam's bias-corrected lrT; SGD's and RMSprop's lr
	Eps   float32
	L2    float32
	Decay float32 // AdamW's decoupled decay
}

// BiasCorrection is Adam's sqrt(1-beta2^t) and 1-beta1^t, in float64.
func (s *OptimStep) BiasCorrection() (bc2, pb1 float64) {
	t := float64(s.T)
	return math.Sqrt(1 - math.Pow(s.Beta2, t)), 1 - math.Pow(s.Beta1, t)
}

// Scalars are segment g's coefficients, computed in float64 and rounded
// once: with r = LR*LRFactor,
//
//	adam:    lrT = r*bc2/pb1, eps = Eps,      l2 = WeightDecay
//	adamw:   lrT = r*bc2/pb1, eps = Eps*bc2,  decay = r*WeightDecay
//	sgd:     lr = r,          l2 = WeightDecay
//	rmsprop: lr = r,          eps = Eps, l2 = WeightDecay
//
// (bc2 and pb1 from BiasCorrection). The GPU's one-launch update
// (adam_seg_f32, ...) computes the same doubles in the same order.
func (s *OptimStep) Scalars(g OptimSegment) OptimScalars {
	r := s.LR * g.LRFactor
	switch s.Kind {
	case OptimAdam, OptimAdamW:
		bc2, pb1 := s.BiasCorrection()
		lrT := r * bc2 / pb1
		if s.Kind == OptimAdam {
			return OptimScalars{LR: float32(lrT), Eps: float32(s.Eps), L2: float32(g.WeightDecay)}
		}
		return OptimScalars{LR: float32(lrT), Eps: float32(s.Eps * bc2), Decay: float32(r * g.WeightDecay)}
	}
	return OptimScalars{LR: float32(r), Eps: float32(s.Eps), L2: float32(g.WeightDecay)}
}

// SegmentTable is the segments as the GPU's one-launch optimiser kernels
// read them: per segment four float64s, the first element, the end, the
// learning-rate factor and the weight decay.
func SegmentTable(segs []OptimSegment) []float64 {
	t := make([]float64, 0, 4*len(segs))
	for _, g := range segs {
		t = append(t, float64(g.Off), float64(g.Off+g.N), g.LRFactor, g.WeightDecay)
	}
	return t
}

// SegmentsEnd is the end of the last segment (0 for none).
func SegmentsEnd(segs []OptimSegment) int {
	if len(segs) == 0 {
		return 0
	}
	return segs[len(segs)-1].Off + segs[len(segs)-1].N
}
