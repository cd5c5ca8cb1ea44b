package model

import (
	"fmt"

	"github.com/trainer-go/trainer/device"
)

// ---- BatchNorm ----

// batchnorm is BatchNorm2d over the channels of image input, BatchNorm1d
// over the features of flat input, with an optional fused activation.
// Training normalises with the batch's statistics (biased variance) and
// updates the running ones as PyTorch does; evaluation uses the running
// ones, and its backward is then that of the fixed per-channel affine map.
type batchnorm struct {
	d               *LayerDesc
	s               Shape
	act             device.Act
	weight, bias    *param
	runMean, runVar *param
	G, Bt, dG, dBt  device.Buffer
	RM, RV          device.Buffer
	mean, vari      device.Buffer // the last training batch's statistics
	x, z, y, dx     device.Buffer
	zeros           device.Buffer // C zeros: the mean and shift of evalBackward's scale
	eps, mom        float32
	eval            bool     // the last forward used the running statistics
	relu            reluPool // the ReLU moved into the next max-pool
	fuse            bool     // the last forward ran the fused ops
}

func newBatchNorm(d *LayerDesc, s Shape) *batchnorm {
	c := s.C
	l := &batchnorm{d: d, s: s, act: actOf(d.Act), eps: float32(*d.Eps), mom: float32(*d.Momentum)}
	wg := groupNorm
	if !*d.TrainWeight {
		wg = groupFrozen
	}
	l.weight = &param{Name: d.Name + ".weight", Shape: []int{c}, N: c, Group: wg, Init: "one"}
	l.bias = &param{Name: d.Name + ".bias", Shape: []int{c}, N: c, Group: groupNorm, Init: "zero"}
	l.runMean = &param{Name: d.Name + ".running_mean", Shape: []int{c}, N: c, Group: groupBuffer, Init: "zero"}
	l.runVar = &param{Name: d.Name + ".running_var", Shape: []int{c}, N: c, Group: groupBuffer, Init: "one"}
	return l
}

func (l *batchnorm) desc() *LayerDesc    { return l.d }
func (l *batchnorm) in() Shape           { return l.s }
func (l *batchnorm) out() Shape          { return l.s }
func (l *batchnorm) params() []*param    { return []*param{l.weight, l.bias, l.runMean, l.runVar} }
func (l *batchnorm) flops(bool) float64  { return 0 }
func (l *batchnorm) floatsPerImage() int { return 3 * l.s.Size() }

// view is the [outer, C, inner] view of n images.
func (l *batchnorm) view(n int) (outer, inner int) {
	if l.s.Flat {
		return n, 1
	}
	return 1, n * l.s.H * l.s.W
}

func (l *batchnorm) setup(b device.Backend, maxN int) error {
	var err error
	name := l.d.Name
	l.mean = alloc(b, name+" batch mean", l.s.C, &err)
	l.vari = alloc(b, name+" batch variance", l.s.C, &err)
	l.y = alloc(b, name+" output", maxN*l.s.Size(), &err)
	l.dx = alloc(b, name+" input gradient", maxN*l.s.Size(), &err)
	l.zeros = alloc(b, name+" zeros", l.s.C, &err)
	l.z = nil
	if l.act == device.ActGELU {
		l.z = alloc(b, name+" pre-activation", maxN*l.s.Size(), &err)
	}
	return err
}

func (l *batchnorm) bind(b device.Backend, params, grads device.Buffer) {
	v := func(p *param) (device.Buffer, device.Buffer) {
		return b.View(params, p.Off, p.N), b.View(grads, p.Off, p.N)
	}
	l.G, l.dG = v(l.weight)
	l.Bt, l.dBt = v(l.bias)
	l.RM, _ = v(l.runMean)
	l.RV, _ = v(l.runVar)
}

func (l *batchnorm) forward(b device.Backend, x device.Buffer, n int, p *pass) device.Buffer {
	outer, inner := l.view(n)
	c := l.s.C
	l.x, l.eval = x, !p.train
	l.relu.set(p)
	l.fuse = p.fuse
	act := l.actNow()
	if !p.train {
		b.BatchNormForward(x, l.RM, l.RV, l.G, l.Bt, outer, c, inner, l.eps, act, l.z, l.y)
		return l.y
	}
	b.BatchNormStats(x, l.mean, l.vari, outer, c, inner)
	b.BatchNormForward(x, l.mean, l.vari, l.G, l.Bt, outer, c, inner, l.eps, act, l.z, l.y)
	if p.update {
		m := outer * inner
		b.Axpby(l.mean, l.RM, c, l.mom, 1-l.mom)
		if m > 1 { // PyTorch refuses a batch of one value per channel; we keep the running variance
			b.Axpby(l.vari, l.RV, c, l.mom*float32(float64(m)/float64(m-1)), 1-l.mom)
		}
	}
	return l.y
}

// actNow is the activation the batch norm applies itself in this pass:
// none when its ReLU has moved into the max-pool after it.
func (l *batchnorm) actNow() device.Act {
	if l.relu.now {
		return device.ActNone
	}
	return l.act
}

func (l *batchnorm) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	outer, inner := l.view(n)
	mean, vari := l.mean, l.vari
	if l.eval {
		mean, vari = l.RM, l.RV
	}
	// dz from dy (in place), then the sums; fused, the activation's backward
	// runs inside the first of them.
	switch act := l.actNow(); {
	case l.fuse && act != device.ActNone:
		a := l.y // the ReLU's mask is its output, the GELU's derivative reads its input
		if act == device.ActGELU {
			a = l.z
		}
		b.BatchNormActBackward(act, a, l.x, dy, mean, vari, l.G, outer, l.s.C, inner, l.eps, l.dx, l.dG, l.dBt)
	default:
		actBackward(b, act, l.z, l.y, dy, n*l.s.Size())
		b.BatchNormBackward(l.x, dy, mean, vari, l.G, outer, l.s.C, inner, l.eps, l.dx, l.dG, l.dBt)
	}
	if !needDx {
		return nil
	}
	if l.eval {
		return l.evalDx(b, dy, outer, inner)
	}
	return l.dx
}

// evalDx is the input gradient of evaluation mode's z = (x - RM) *
// gamma/sqrt(RV+eps) + beta, where the running statistics are constants:
// dgamma = sum dz*xhat and dbeta = sum dz are what BatchNormBackward writes
// when given the running statistics (backward calls it so; its dx, which
// subtracts the batch-mean terms of training, is overwritten here); dx =
// dz * gamma/sqrt(RV+eps) is a per-channel scale: BatchNormForward of dz
// with mean and shift 0.
func (l *batchnorm) evalDx(b device.Backend, dz device.Buffer, outer, inner int) device.Buffer {
	b.BatchNormForward(dz, l.zeros, l.RV, l.G, l.zeros, outer, l.s.C, inner, l.eps, device.ActNone, nil, l.dx)
	return l.dx
}

// ---- residual add ----

// add is y = act(a + b) of two earlier outputs of the same shape. The
// network gives it the second input before forward and takes the second
// input's gradient (a copy: both producers may overwrite theirs) after
// backward.
type add struct {
	d       *LayerDesc
	s       Shape
	relu    bool
	x2      device.Buffer
	y, dx2  device.Buffer
	lastDy  device.Buffer
	lastCnt int
}

func newAdd(d *LayerDesc, a, b Shape) (*add, error) {
	if a != b {
		return nil, fmt.Errorf("add of %q (%s) and %q (%s): the shapes differ (a projection shortcut, a 1x1 conv with stride, can match them)", d.Inputs[0], a, d.Inputs[1], b)
	}
	if d.Act == "gelu" {
		return nil, fmt.Errorf("add supports act none or relu; put a gelu layer after it")
	}
	return &add{d: d, s: a, relu: d.Act == "relu"}, nil
}

func (a *add) desc() *LayerDesc                                   { return a.d }
func (a *add) in() Shape                                          { return a.s }
func (a *add) out() Shape                                         { return a.s }
func (a *add) params() []*param                                   { return nil }
func (a *add) bind(b device.Backend, params, grads device.Buffer) {}
func (a *add) flops(bool) float64                                 { return 0 }
func (a *add) floatsPerImage() int                                { return 2 * a.s.Size() }

func (a *add) setup(b device.Backend, maxN int) error {
	var err error
	a.y = alloc(b, a.d.Name+" output", maxN*a.s.Size(), &err)
	a.dx2 = alloc(b, a.d.Name+" second input gradient", maxN*a.s.Size(), &err)
	return err
}

func (a *add) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	b.Add(x, a.x2, a.y, n*a.s.Size(), a.relu)
	return a.y
}

func (a *add) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if a.relu {
		b.ReLUBackward(a.y, dy, dy, n*a.s.Size())
	}
	a.lastDy, a.lastCnt = dy, n
	return dy
}

// secondGrad is the gradient of the second input: a copy of the first's.
func (a *add) secondGrad(b device.Backend) device.Buffer {
	b.Axpby(a.lastDy, a.dx2, a.lastCnt*a.s.Size(), 1, 0)
	return a.dx2
}

// ---- dropout ----

type dropout struct {
	d     *LayerDesc
	s     Shape
	p     float32
	salt  uint64
	y, dx device.Buffer
	seed  uint64
	step  int
	at    device.Buffer // the step number in device memory (a captured step), else nil
	on    bool          // the last forward dropped (training with p > 0)
}

func (l *dropout) desc() *LayerDesc                                   { return l.d }
func (l *dropout) in() Shape                                          { return l.s }
func (l *dropout) out() Shape                                         { return l.s }
func (l *dropout) params() []*param                                   { return nil }
func (l *dropout) bind(b device.Backend, params, grads device.Buffer) {}
func (l *dropout) flops(bool) float64                                 { return 0 }
func (l *dropout) floatsPerImage() int                                { return 2 * l.s.Size() }

func (l *dropout) setup(b device.Backend, maxN int) error {
	var err error
	l.y = alloc(b, l.d.Name+" output", maxN*l.s.Size(), &err)
	l.dx = alloc(b, l.d.Name+" input gradient", maxN*l.s.Size(), &err)
	return err
}

func (l *dropout) forward(b device.Backend, x device.Buffer, n int, p *pass) device.Buffer {
	l.on = p.train && l.p > 0
	if !l.on {
		return x
	}
	l.seed, l.step, l.at = p.seed^l.salt, p.step, p.stepAt
	l.drop(b, x, l.y, n)
	return l.y
}

// drop applies the pass's mask to x into y: keyed by the step number held
// in device memory in a captured step, else by the one passed.
func (l *dropout) drop(b device.Backend, x, y device.Buffer, n int) {
	if l.at != nil {
		b.DropoutAt(x, y, n*l.s.Size(), l.p, l.seed, l.at)
		return
	}
	b.Dropout(x, y, n*l.s.Size(), l.p, l.seed, l.step)
}

func (l *dropout) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx {
		return nil
	}
	if !l.on {
		return dy
	}
	l.drop(b, dy, l.dx, n)
	return l.dx
}

// ---- normalize: a constant per-channel (x - mean) / std ----

type normalize struct {
	d                 *LayerDesc
	s                 Shape
	mean, vari        device.Buffer // constants: mean, std^2
	zeros, ones       device.Buffer
	y, dx             device.Buffer
	hostMean, hostVar []float32
}

func newNormalize(d *LayerDesc, s Shape) (*normalize, error) {
	if s.Flat || s.C != len(d.Mean) {
		return nil, fmt.Errorf("normalize has %d means and stds, but its input %s has %d channels", len(d.Mean), s, s.C)
	}
	l := &normalize{d: d, s: s}
	for i := range d.Mean {
		l.hostMean = append(l.hostMean, float32(d.Mean[i]))
		l.hostVar = append(l.hostVar, float32(d.Std[i]*d.Std[i]))
	}
	return l, nil
}

func (l *normalize) desc() *LayerDesc                                   { return l.d }
func (l *normalize) in() Shape                                          { return l.s }
func (l *normalize) out() Shape                                         { return l.s }
func (l *normalize) params() []*param                                   { return nil }
func (l *normalize) bind(b device.Backend, params, grads device.Buffer) {}
func (l *normalize) flops(bool) float64                                 { return 0 }
func (l *normalize) floatsPerImage() int                                { return 2 * l.s.Size() }

func (l *normalize) setup(b device.Backend, maxN int) error {
	var err error
	c := l.s.C
	l.mean = alloc(b, l.d.Name+" mean", c, &err)
	l.vari = alloc(b, l.d.Name+" variance", c, &err)
	l.zeros = alloc(b, l.d.Name+" zeros", c, &err)
	l.ones = alloc(b, l.d.Name+" ones", c, &err)
	l.y = alloc(b, l.d.Name+" output", maxN*l.s.Size(), &err)
	l.dx = alloc(b, l.d.Name+" input gradient", maxN*l.s.Size(), &err)
	if err != nil {
		return err
	}
	b.Fill(l.ones, c, 1)
	if err := b.UploadF32(l.mean, 0, l.hostMean); err != nil {
		return err
	}
	return b.UploadF32(l.vari, 0, l.hostVar)
}

func (l *normalize) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	b.BatchNormForward(x, l.mean, l.vari, l.ones, l.zeros, 1, l.s.C, n*l.s.H*l.s.W, 0, device.ActNone, nil, l.y)
	return l.y
}

func (l *normalize) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx {
		return nil
	}
	b.BatchNormForward(dy, l.zeros, l.vari, l.ones, l.zeros, 1, l.s.C, n*l.s.H*l.s.W, 0, device.ActNone, nil, l.dx)
	return l.dx
}
