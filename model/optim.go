package model

import (
	"fmt"
	"math"

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

// segment is a run of the flat buffers with one learning-rate factor and
// weight decay.
type segment struct {
	off, n     int
	lrF, wd    float64
	p, g, m, v device.Buffer
}

// Optimizer updates a network's trained parameters.
type Optimizer struct {
	c    OptimConfig
	segs []segment
}

// NewOptimizer prepares the update of net's trained tensors (frozen tensors
// and buffers are never touched) in as few runs of the flat buffers as
// the settings allow.
func NewOptimizer(net *Network, c OptimConfig) (*Optimizer, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	o := &Optimizer{c: c}
	for _, p := range net.params {
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
		if k := len(o.segs) - 1; k >= 0 && o.segs[k].off+o.segs[k].n == p.Off && o.segs[k].lrF == lrF && o.segs[k].wd == wd {
			o.segs[k].n += p.N
			continue
		}
		o.segs = append(o.segs, segment{off: p.Off, n: p.N, lrF: lrF, wd: wd})
	}
	b := net.b
	for i := range o.segs {
		s := &o.segs[i]
		s.p, s.g = b.View(net.Params, s.off, s.n), b.View(net.Grads, s.off, s.n)
		s.m, s.v = b.View(net.M, s.off, s.n), b.View(net.V, s.off, s.n)
	}
	return o, nil
}

// Config is the optimiser's settings.
func (o *Optimizer) Config() OptimConfig { return o.c }

// Step applies one update from the network's gradients at learning rate
// lr (the schedule's value for this step) and counts the step.
func (o *Optimizer) Step(net *Network, lr float64) {
	net.step++
	c, b := o.c, net.b
	for _, s := range o.segs {
		r, eps, decay := o.values(s, lr, net.step)
		switch c.Kind {
		case "adam", "adamw":
			b.Adam(s.p, s.g, s.m, s.v, s.n, r, float32(c.Beta1), float32(c.Beta2), eps, o.l2(s), decay)
		case "sgd":
			b.SGD(s.p, s.g, s.m, s.n, r, float32(c.Momentum), float32(s.wd), c.Nesterov)
		case "rmsprop":
			b.RMSprop(s.p, s.g, s.v, s.m, s.n, r, float32(c.Alpha), float32(c.Eps), float32(s.wd), float32(c.Momentum))
		}
	}
}

// values are what a segment's update takes at learning rate lr in step t
// (1-based) and what changes with them: Adam's and AdamW's bias-corrected
// step lrT, eps and decoupled decay; SGD's and RMSprop's rate in r (eps
// and decay unused).
func (o *Optimizer) values(s segment, lr float64, t int) (r, eps, decay float32) {
	c := o.c
	rate := lr * s.lrF
	switch c.Kind {
	case "adam", "adamw":
		tf := float64(t)
		bc2 := math.Sqrt(1 - math.Pow(c.Beta2, tf))
		lrT := rate * bc2 / (1 - math.Pow(c.Beta1, tf))
		if c.Kind == "adam" {
			return float32(lrT), float32(c.Eps), 0
		}
		return float32(lrT), float32(c.Eps * bc2), float32(rate * s.wd)
	}
	return float32(rate), 0, 0
}

// l2 is a segment's L2 penalty in Adam (AdamW's decay is decoupled).
func (o *Optimizer) l2(s segment) float32 {
	if o.c.Kind == "adamw" {
		return 0
	}
	return float32(s.wd)
}

// valuesPerStep is the number of floats stepValues writes.
func (o *Optimizer) valuesPerStep() int { return 3 * len(o.segs) }

// stepValues writes the values of every segment for lr and step t to
// dst (3 per segment), the layout StepAt reads.
func (o *Optimizer) stepValues(dst []float32, lr float64, t int) {
	for i, s := range o.segs {
		dst[3*i], dst[3*i+1], dst[3*i+2] = o.values(s, lr, t)
	}
}

// StepAt queues the update with the values read from cur (stepValues'
// layout) when it runs: the update of a captured step. It does not count
// the step (the caller does, per launch).
func (o *Optimizer) StepAt(net *Network, cur device.Buffer) {
	c, b := o.c, net.b
	for i, s := range o.segs {
		switch c.Kind {
		case "adam", "adamw":
			b.AdamAt(s.p, s.g, s.m, s.v, s.n, b.View(cur, 3*i, 3), float32(c.Beta1), float32(c.Beta2), o.l2(s))
		case "sgd":
			b.SGDAt(s.p, s.g, s.m, s.n, b.View(cur, 3*i, 1), float32(c.Momentum), float32(s.wd), c.Nesterov)
		case "rmsprop":
			b.RMSpropAt(s.p, s.g, s.v, s.m, s.n, b.View(cur, 3*i, 1), float32(c.Alpha), float32(c.Eps), float32(s.wd), float32(c.Momentum))
		}
	}
}
