package model

import (
	"fmt"
	"slices"

	"github.com/trainer-go/trainer/device"
)

// OptimConfig chooses the optimiser and its settings. Zero values mean the
// defaults of DefaultOptim(Kind).
type OptimConfig struct {
	Kind        string  // adam (Keras/TF2 form, the default), adamw, sgd, rmsprop
	Beta1       float64 // adam, adamw
	Beta2       float64
	Eps         float64 // adam, adamw, rmsprop
	Momentum    float64 // sgd, rmsprop
	Nesterov    bool    // sgd
	Alpha       float64 // rmsprop's smoothing constant
	WeightDecay float64 // L2 (adam, sgd, rmsprop) or decoupled (adamw)
	// BiasWeightDecay and NormWeightDecay replace WeightDecay for conv and
	// dense biases and for BatchNorm's weight and bias; nil: WeightDecay.
	BiasWeightDecay, NormWeightDecay *float64
	// NormLRFactor multiplies the learning rate of BatchNorm's weight and
	// bias (0: 1).
	NormLRFactor float64
}

// Optimizers lists the optimiser names.
var Optimizers = []string{"adam", "adamw", "sgd", "rmsprop"}

// DefaultOptim is the optimiser kind's settings with its defaults: Keras's
// for adam (today's trainer), PyTorch's for the others.
func DefaultOptim(kind string) OptimConfig {
	switch kind {
	case "adamw":
		return OptimConfig{Kind: kind, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	case "sgd":
		return OptimConfig{Kind: kind}
	case "rmsprop":
		return OptimConfig{Kind: kind, Alpha: 0.99, Eps: 1e-8}
	}
	return OptimConfig{Kind: "adam", Beta1: 0.9, Beta2: 0.999, Eps: 1e-7}
}

// DefaultAdam is the default optimiser, Keras's Adam.
var DefaultAdam = DefaultOptim("adam")

// Check validates the settings.
func (c OptimConfig) Check() error {
	if !oneOf(c.Kind, Optimizers) {
		return fmt.Errorf("optimizer %q: want one of adam, adamw, sgd, rmsprop", c.Kind)
	}
	in01 := func(what string, v float64) error {
		if !(v >= 0 && v < 1) {
			return fmt.Errorf("%s %g: want 0 <= value < 1", what, v)
		}
		return nil
	}
	for _, x := range []struct {
		what string
		v    float64
	}{{"beta1", c.Beta1}, {"beta2", c.Beta2}, {"momentum", c.Momentum}, {"alpha", c.Alpha}} {
		if err := in01(x.what, x.v); err != nil {
			return err
		}
	}
	if c.Nesterov && (c.Kind != "sgd" || c.Momentum <= 0) {
		return fmt.Errorf("nesterov needs --optimizer sgd with a --momentum above 0")
	}
	wds := []float64{c.WeightDecay}
	if c.BiasWeightDecay != nil {
		wds = append(wds, *c.BiasWeightDecay)
	}
	if c.NormWeightDecay != nil {
		wds = append(wds, *c.NormWeightDecay)
	}
	for _, w := range wds {
		if !(w >= 0 && w < 1e3) {
			return fmt.Errorf("weight-decay %g: want a value >= 0", w)
		}
	}
	if !(c.NormLRFactor >= 0 && c.NormLRFactor < 1e6) {
		return fmt.Errorf("norm-lr-factor %g: want a positive value", c.NormLRFactor)
	}
	if (c.Kind == "adam" || c.Kind == "adamw" || c.Kind == "rmsprop") && !(c.Eps > 0) {
		return fmt.Errorf("eps %g: want a small positive value", c.Eps)
	}
	return nil
}

// StateNames are the checkpoint names of the optimiser's two flat state
// vectors (M, V), as PyTorch's optimizer state calls them; "" is unused.
func (c OptimConfig) StateNames() (m, v string) {
	switch c.Kind {
	case "sgd":
		return "optimizer.momentum_buffer", ""
	case "rmsprop":
		return "optimizer.momentum_buffer", "optimizer.square_avg"
	}
	return TensorAdamM, TensorAdamV
}

// Optimizer updates a network's trained parameters.
type Optimizer struct {
	c    OptimConfig
	kind device.OptimKind
	segs []device.OptimSegment // runs of the flat buffers with one learning-rate factor and weight decay
}

// optimKinds maps OptimConfig.Kind to the backend's update rules.
var optimKinds = map[string]device.OptimKind{"adam": device.OptimAdam, "adamw": device.OptimAdamW, "sgd": device.OptimSGD, "rmsprop": device.OptimRMSprop}

// NewOptimizer prepares the update of net's trained tensors (frozen tensors
// and buffers are never touched) in as few runs of the flat buffers as
// the settings allow, in the buffers' order; one backend op updates them
// all (OptimizerStep).
func NewOptimizer(net *Network, c OptimConfig) (*Optimizer, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	o := &Optimizer{c: c, kind: optimKinds[c.Kind]}
	params := slices.Clone(net.params) // layer order; the flat buffers group them (see paramGroup)
	slices.SortFunc(params, func(a, b *param) int { return a.Off - b.Off })
	for _, p := range params {
		if p.Group == groupFrozen || p.Group == groupBuffer {
			continue
		}
		lrF, wd := 1.0, c.WeightDecay
		switch p.Group {
		case groupBias:
			if c.BiasWeightDecay != nil {
				wd = *c.BiasWeightDecay
			}
		case groupNorm:
			if c.NormWeightDecay != nil {
				wd = *c.NormWeightDecay
			}
			if c.NormLRFactor > 0 {
				lrF = c.NormLRFactor
			}
		}
		if k := len(o.segs) - 1; k >= 0 && o.segs[k].Off+o.segs[k].N == p.Off && o.segs[k].LRFactor == lrF && o.segs[k].WeightDecay == wd {
			o.segs[k].N += p.N
			continue
		}
		o.segs = append(o.segs, device.OptimSegment{Off: p.Off, N: p.N, LRFactor: lrF, WeightDecay: wd})
	}
	return o, nil
}

// Config is the optimiser's settings.
func (o *Optimizer) Config() OptimConfig { return o.c }

// Step applies one update from the network's gradients at learning rate
// lr (the schedule's value for this step) and counts the step. Each
// segment's coefficients are device.OptimStep.Scalars': lr times its
// factor, and Adam's bias correction for the step's number.
func (o *Optimizer) Step(net *Network, lr float64) {
	net.step++
	net.b.OptimizerStep(net.Params, net.Grads, net.M, net.V, o.segs, o.stepOf(lr, net.step))
}

// stepOf is the OptimStep of step t (1-based) at learning rate lr.
func (o *Optimizer) stepOf(lr float64, t int) device.OptimStep {
	c := o.c
	return device.OptimStep{Kind: o.kind, LR: lr, T: t, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps,
		Momentum: c.Momentum, Alpha: c.Alpha, Nesterov: c.Nesterov}
}

// valuesPerStep is the number of floats stepValues writes.
func (o *Optimizer) valuesPerStep() int { return 3 * len(o.segs) }

// stepValues writes what each segment's update reads at learning rate lr
// in step t (1-based) to dst, 3 per segment, the layout StepAt reads:
// device.OptimStep.Scalars' LR (Adam's bias-corrected lrT; SGD's and
// RMSprop's rate), Eps and Decay, the float32 values the one-launch
// update of Step computes from the same doubles in the same order.
func (o *Optimizer) stepValues(dst []float32, lr float64, t int) {
	st := o.stepOf(lr, t)
	for i, g := range o.segs {
		v := st.Scalars(g)
		dst[3*i], dst[3*i+1], dst[3*i+2] = v.LR, v.Eps, v.Decay
	}
}

// StepAt queues the update with the values read from cur (stepValues'
// layout) when it runs: the update of a captured step, one launch per
// segment (AdamAt, SGDAt, RMSpropAt), bit for bit Step's one launch with
// the same values. It does not count the step (the caller does, per
// launch).
func (o *Optimizer) StepAt(net *Network, cur device.Buffer) {
	c, b := o.c, net.b
	for i, g := range o.segs {
		p, gr := b.View(net.Params, g.Off, g.N), b.View(net.Grads, g.Off, g.N)
		m, v := b.View(net.M, g.Off, g.N), b.View(net.V, g.Off, g.N)
		l2 := float32(g.WeightDecay)
		switch o.kind {
		case device.OptimAdam, device.OptimAdamW:
			if o.kind == device.OptimAdamW {
				l2 = 0 // decoupled: the decay is read from cur
			}
			b.AdamAt(p, gr, m, v, g.N, b.View(cur, 3*i, 3), float32(c.Beta1), float32(c.Beta2), l2)
		case device.OptimSGD:
			b.SGDAt(p, gr, m, g.N, b.View(cur, 3*i, 1), float32(c.Momentum), l2, c.Nesterov)
		case device.OptimRMSprop:
			b.RMSpropAt(p, gr, v, m, g.N, b.View(cur, 3*i, 1), float32(c.Alpha), float32(c.Eps), l2, float32(c.Momentum))
		}
	}
}
