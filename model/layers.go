package model

import (
	"fmt"

	"github.com/trainer-go/trainer/device"
)

// Shape is the per-image shape of an activation: C x H x W for image-like
// data (stored CNHW on the backend), or a vector of F features when Flat.
type Shape struct {
	C, H, W int
	Flat    bool
}

// Size is the number of floats per image.
func (s Shape) Size() int { return s.C * s.H * s.W }

func (s Shape) String() string {
	if s.Flat {
		return fmt.Sprintf("%d", s.C)
	}
	return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W)
}

// paramGroup says how the optimiser treats a tensor. The flat buffers hold
// the groups in this order: trainable weights and biases of conv and dense
// layers (interleaved, in layer order), BatchNorm's trainable tensors, frozen
// tensors, then the non-trainable buffers (BatchNorm's running statistics).
type paramGroup int

const (
	groupWeight paramGroup = iota // conv/dense weights
	groupBias                     // conv/dense biases (same region as weights)
	groupNorm                     // BatchNorm weight and bias
	groupFrozen                   // trained by nobody (whitening, a fixed BN scale)
	groupBuffer                   // running statistics
)

// region is the flat-buffer region of a group: weights and biases share one.
func (g paramGroup) region() int {
	if g == groupBias {
		return int(groupWeight)
	}
	return int(g)
}

// param is one named tensor inside the flat parameter buffer, in PyTorch's
// state_dict naming and layout.
type param struct {
	Name   string
	Shape  []int
	Off, N int // position in the flat buffer
	Group  paramGroup
	Init   string // torch, glorot, kaiming_normal, dirac, whiten, zero, one
	FanIn  int
	FanOut int
}

// pass is what a forward pass needs to know besides its input.
type pass struct {
	train  bool          // batch statistics, dropout
	update bool          // update BatchNorm's running statistics (training only)
	seed   uint64        // dropout's hash key
	step   int           // optimiser steps taken: dropout's counter
	stepAt device.Buffer // in a captured step: the counter in device memory (I32 [1]), read instead
}

// layer is one node of the network. Buffers are sized for the maximum
// batch at setup; forward/backward take the actual batch n <= max.
type layer interface {
	desc() *LayerDesc
	in() Shape
	out() Shape
	params() []*param
	// setup allocates the layer's buffers for batches of up to maxN.
	setup(b device.Backend, maxN int) error
	// bind points the layer at its slices of the flat parameter and
	// gradient buffers.
	bind(b device.Backend, params, grads device.Buffer)
	forward(b device.Backend, x device.Buffer, n int, p *pass) device.Buffer
	// backward takes dL/dy (which it may overwrite) and returns dL/dx, or
	// nil when needDx is false.
	backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer
	// flops is the training cost (forward + backward GEMM work) per image.
	flops(needDx bool) float64
	// floatsPerImage is what setup allocates per image of the batch.
	floatsPerImage() int
}

func alloc(b device.Backend, what string, n int, err *error) device.Buffer {
	if *err != nil {
		return nil
	}
	buf, e := b.Alloc(what, device.F32, n)
	*err = e
	return buf
}

func actOf(s string) device.Act {
	switch s {
	case "relu":
		return device.ActReLU
	case "gelu":
		return device.ActGELU
	}
	return device.ActNone
}

// actBackward turns dL/dy into dL/dz in place for y = act(z).
func actBackward(b device.Backend, a device.Act, z, y, dy device.Buffer, n int) {
	switch a {
	case device.ActReLU:
		b.ReLUBackward(y, dy, dy, n)
	case device.ActGELU:
		b.GELUBackward(z, dy, dy, n)
	}
}

// ---- Conv2D ----

type conv struct {
	d            *LayerDesc
	is, os       Shape
	padH, padW   int
	act          device.Act
	w, bias      *param
	W, B, dW, dB device.Buffer
	z, y         device.Buffer // z: pre-activation (GELU only)
	col, dcol    device.Buffer
	dx           device.Buffer
}

func newConv(d *LayerDesc, is Shape) (*conv, error) {
	if is.Flat {
		return nil, fmt.Errorf("a convolution needs image input, but its input is a flat vector of %d (put conv layers before flatten)", is.C)
	}
	c := &conv{d: d, is: is, act: actOf(d.Act)}
	k, s := d.Kernel, d.Stride
	var oh, ow int
	switch {
	case d.Padding.Same:
		oh, ow = (is.H+s-1)/s, (is.W+s-1)/s
		c.padH = max((oh-1)*s+k-is.H, 0) / 2
		c.padW = max((ow-1)*s+k-is.W, 0) / 2
	default:
		p := d.Padding.N
		if k > is.H+2*p || k > is.W+2*p {
			return nil, fmt.Errorf("kernel %dx%d is larger than its %s input with padding %d (use fewer pooling layers, a smaller kernel, or more padding)", k, k, is, p)
		}
		oh, ow = (is.H+2*p-k)/s+1, (is.W+2*p-k)/s+1
		c.padH, c.padW = p, p
	}
	c.os = Shape{C: d.Filters, H: oh, W: ow}
	kk := is.C * k * k
	wg := groupWeight
	if d.Init == "whiten" {
		wg = groupFrozen
		if d.Filters != 2*kk {
			return nil, fmt.Errorf("a whitening conv needs 2*C*K*K = %d filters (the eigenvectors and their negation), not %d", 2*kk, d.Filters)
		}
	}
	c.w = &param{Name: d.Name + ".weight", Shape: []int{d.Filters, is.C, k, k}, N: d.Filters * kk, Group: wg,
		Init: d.Init, FanIn: kk, FanOut: d.Filters * k * k}
	if *d.Bias {
		c.bias = &param{Name: d.Name + ".bias", Shape: []int{d.Filters}, N: d.Filters, Group: groupBias,
			Init: biasInit(d.Init), FanIn: kk}
	}
	return c, nil
}

// biasInit is the bias initialisation that goes with a weight's.
func biasInit(w string) string {
	if w == "torch" {
		return "torch"
	}
	return "zero"
}

func (c *conv) desc() *LayerDesc { return c.d }
func (c *conv) in() Shape        { return c.is }
func (c *conv) out() Shape       { return c.os }
func (c *conv) params() []*param {
	if c.bias == nil {
		return []*param{c.w}
	}
	return []*param{c.w, c.bias}
}

func (c *conv) geom(n int) device.ConvGeom {
	return device.ConvGeom{C: c.is.C, N: n, H: c.is.H, W: c.is.W, KH: c.d.Kernel, KW: c.d.Kernel,
		SH: c.d.Stride, SW: c.d.Stride, PadH: c.padH, PadW: c.padW, OH: c.os.H, OW: c.os.W}
}

// pointwise says whether the conv is 1x1, stride 1, unpadded: its im2col
// matrix is its input (CNHW [C, N*H*W]), so it is one plain GEMM.
func (c *conv) pointwise() bool {
	return c.d.Kernel == 1 && c.d.Stride == 1 && c.padH == 0 && c.padW == 0
}

func (c *conv) floatsPerImage() int {
	g := c.geom(1)
	f := c.is.Size() + c.os.Size()
	if !c.pointwise() {
		f += 2 * g.ColRows() * g.ColCols()
	}
	if c.act == device.ActGELU {
		f += c.os.Size()
	}
	return f
}

func (c *conv) setup(b device.Backend, maxN int) error {
	var err error
	g := c.geom(maxN)
	name := c.d.Name
	if !c.pointwise() {
		c.col = alloc(b, name+" im2col", g.ColRows()*g.ColCols(), &err)
		c.dcol = alloc(b, name+" im2col gradient", g.ColRows()*g.ColCols(), &err)
	}
	c.y = alloc(b, name+" output", maxN*c.os.Size(), &err)
	c.dx = alloc(b, name+" input gradient", maxN*c.is.Size(), &err)
	c.z = c.y
	if c.act == device.ActGELU {
		c.z = alloc(b, name+" pre-activation", maxN*c.os.Size(), &err)
	}
	return err
}

func (c *conv) bind(b device.Backend, params, grads device.Buffer) {
	c.W, c.dW = b.View(params, c.w.Off, c.w.N), b.View(grads, c.w.Off, c.w.N)
	if c.bias != nil {
		c.B, c.dB = b.View(params, c.bias.Off, c.bias.N), b.View(grads, c.bias.Off, c.bias.N)
	}
}

func (c *conv) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	g := c.geom(n)
	k, np, oc := g.ColRows(), g.ColCols(), c.os.C
	if c.pointwise() {
		c.col = x
	} else {
		b.Im2Col(g, x, c.col)
	}
	b.Gemm(false, false, oc, np, k, 1, c.W, k, c.col, np, 0, c.z, np)
	relu := c.act == device.ActReLU
	switch {
	case c.bias != nil:
		b.AddBias(c.z, c.B, 1, oc, np, relu)
	case relu:
		b.ReLUForward(c.z, c.z, oc*np)
	}
	if c.act == device.ActGELU {
		b.GELUForward(c.z, c.y, oc*np)
	}
	return c.y
}

func (c *conv) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	g := c.geom(n)
	k, np, oc := g.ColRows(), g.ColCols(), c.os.C
	actBackward(b, c.act, c.z, c.y, dy, oc*np)
	if c.bias != nil {
		b.BiasGrad(dy, c.dB, 1, oc, np)
	}
	if c.w.Group != groupFrozen {
		b.Gemm(false, true, oc, k, np, 1, dy, np, c.col, np, 0, c.dW, k)
	}
	if !needDx {
		return nil
	}
	if c.pointwise() {
		b.Gemm(true, false, k, np, oc, 1, c.W, k, dy, np, 0, c.dx, np)
		return c.dx
	}
	b.Gemm(true, false, k, np, oc, 1, c.W, k, dy, np, 0, c.dcol, np)
	b.Col2Im(g, c.dcol, c.dx)
	return c.dx
}

func (c *conv) flops(needDx bool) float64 {
	f := 2 * float64(c.os.C*c.is.C*c.d.Kernel*c.d.Kernel*c.os.H*c.os.W)
	if needDx {
		return 3 * f
	}
	return 2 * f
}

// ---- pooling ----

type pool struct {
	d      *LayerDesc
	is, os Shape
	y, dx  device.Buffer
	argmax device.Buffer
	max    bool
}

func newPool(d *LayerDesc, is Shape) (*pool, error) {
	if is.Flat {
		return nil, fmt.Errorf("pooling needs image input, but its input is a flat vector of %d", is.C)
	}
	if d.Kernel > is.H || d.Kernel > is.W {
		return nil, fmt.Errorf("window %dx%d is larger than its %s input (remove a pooling layer or use a smaller window)", d.Kernel, d.Kernel, is)
	}
	return &pool{d: d, is: is, max: d.Type == "maxpool",
		os: Shape{C: is.C, H: (is.H-d.Kernel)/d.Stride + 1, W: (is.W-d.Kernel)/d.Stride + 1}}, nil
}

func (p *pool) desc() *LayerDesc                                   { return p.d }
func (p *pool) in() Shape                                          { return p.is }
func (p *pool) out() Shape                                         { return p.os }
func (p *pool) params() []*param                                   { return nil }
func (p *pool) bind(b device.Backend, params, grads device.Buffer) {}
func (p *pool) flops(bool) float64                                 { return 0 }
func (p *pool) floatsPerImage() int                                { return p.is.Size() + 2*p.os.Size() }

func (p *pool) geom(n int) device.PoolGeom {
	return device.PoolGeom{Planes: p.is.C * n, H: p.is.H, W: p.is.W, KH: p.d.Kernel, KW: p.d.Kernel,
		SH: p.d.Stride, SW: p.d.Stride, OH: p.os.H, OW: p.os.W}
}

func (p *pool) setup(b device.Backend, maxN int) error {
	var err error
	p.y = alloc(b, p.d.Name+" output", maxN*p.os.Size(), &err)
	p.dx = alloc(b, p.d.Name+" input gradient", maxN*p.is.Size(), &err)
	if err == nil && p.max {
		p.argmax, err = b.Alloc(p.d.Name+" argmax", device.I32, maxN*p.os.Size())
	}
	return err
}

func (p *pool) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	if p.max {
		b.MaxPoolForward(p.geom(n), x, p.y, p.argmax)
	} else {
		b.AvgPoolForward(p.geom(n), x, p.y)
	}
	return p.y
}

func (p *pool) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx {
		return nil
	}
	if p.max {
		b.MaxPoolBackward(p.geom(n), dy, p.argmax, p.dx)
	} else {
		b.AvgPoolBackward(p.geom(n), dy, p.dx)
	}
	return p.dx
}

// ---- global average pooling: CNHW [C, N, H, W] -> [N, C] ----

type gap struct {
	d        *LayerDesc
	is       Shape
	t, y, dt device.Buffer
	dx       device.Buffer
}

func newGAP(d *LayerDesc, is Shape) (*gap, error) {
	if is.Flat {
		return nil, fmt.Errorf("global average pooling needs image input, but its input is a flat vector of %d", is.C)
	}
	return &gap{d: d, is: is}, nil
}

func (g *gap) desc() *LayerDesc                                   { return g.d }
func (g *gap) in() Shape                                          { return g.is }
func (g *gap) out() Shape                                         { return Shape{C: g.is.C, H: 1, W: 1, Flat: true} }
func (g *gap) params() []*param                                   { return nil }
func (g *gap) bind(b device.Backend, params, grads device.Buffer) {}
func (g *gap) flops(bool) float64                                 { return 0 }
func (g *gap) floatsPerImage() int                                { return g.is.Size() + 3*g.is.C }

func (g *gap) geom(n int) device.PoolGeom {
	return device.PoolGeom{Planes: g.is.C * n, H: g.is.H, W: g.is.W, KH: g.is.H, KW: g.is.W,
		SH: g.is.H, SW: g.is.W, OH: 1, OW: 1}
}

func (g *gap) setup(b device.Backend, maxN int) error {
	var err error
	g.t = alloc(b, g.d.Name+" means", maxN*g.is.C, &err)
	g.y = alloc(b, g.d.Name+" output", maxN*g.is.C, &err)
	g.dt = alloc(b, g.d.Name+" mean gradient", maxN*g.is.C, &err)
	g.dx = alloc(b, g.d.Name+" input gradient", maxN*g.is.Size(), &err)
	return err
}

func (g *gap) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	b.AvgPoolForward(g.geom(n), x, g.t)
	b.SwapAxes01(g.t, g.y, g.is.C, n, 1)
	return g.y
}

func (g *gap) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx {
		return nil
	}
	b.SwapAxes01(dy, g.dt, n, g.is.C, 1)
	b.AvgPoolBackward(g.geom(n), g.dt, g.dx)
	return g.dx
}

// ---- ReLU and GELU on their own ----

type activation struct {
	d    *LayerDesc
	s    Shape
	act  device.Act
	x, y device.Buffer
}

func (r *activation) desc() *LayerDesc                                   { return r.d }
func (r *activation) in() Shape                                          { return r.s }
func (r *activation) out() Shape                                         { return r.s }
func (r *activation) params() []*param                                   { return nil }
func (r *activation) bind(b device.Backend, params, grads device.Buffer) {}
func (r *activation) flops(bool) float64                                 { return 0 }
func (r *activation) floatsPerImage() int                                { return r.s.Size() }

func (r *activation) setup(b device.Backend, maxN int) error {
	var err error
	r.y = alloc(b, r.d.Name+" output", maxN*r.s.Size(), &err)
	return err
}

func (r *activation) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	r.x = x
	if r.act == device.ActGELU {
		b.GELUForward(x, r.y, n*r.s.Size())
	} else {
		b.ReLUForward(x, r.y, n*r.s.Size())
	}
	return r.y
}

func (r *activation) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx {
		return nil
	}
	actBackward(b, r.act, r.x, r.y, dy, n*r.s.Size())
	return dy
}

// ---- Flatten ----

type flatten struct {
	d     *LayerDesc
	is    Shape
	y, dx device.Buffer
}

func (f *flatten) desc() *LayerDesc                                   { return f.d }
func (f *flatten) in() Shape                                          { return f.is }
func (f *flatten) out() Shape                                         { return Shape{C: f.is.Size(), H: 1, W: 1, Flat: true} }
func (f *flatten) params() []*param                                   { return nil }
func (f *flatten) bind(b device.Backend, params, grads device.Buffer) {}
func (f *flatten) flops(bool) float64                                 { return 0 }
func (f *flatten) floatsPerImage() int {
	if f.is.Flat {
		return 0
	}
	return 2 * f.is.Size()
}

func (f *flatten) setup(b device.Backend, maxN int) error {
	if f.is.Flat {
		return nil
	}
	var err error
	f.y = alloc(b, f.d.Name+" output", maxN*f.is.Size(), &err)
	f.dx = alloc(b, f.d.Name+" input gradient", maxN*f.is.Size(), &err)
	return err
}

// forward turns CNHW into [N, C*H*W] (PyTorch's flatten order).
func (f *flatten) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	if f.is.Flat {
		return x
	}
	b.SwapAxes01(x, f.y, f.is.C, n, f.is.H*f.is.W)
	return f.y
}

func (f *flatten) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx || f.is.Flat {
		return dy
	}
	b.SwapAxes01(dy, f.dx, n, f.is.C, f.is.H*f.is.W)
	return f.dx
}

// ---- Dense ----

type dense struct {
	d            *LayerDesc
	is           Shape
	act          device.Act
	w, bias      *param
	W, B, dW, dB device.Buffer
	x, z, y, dx  device.Buffer
}

func newDense(d *LayerDesc, is Shape) (*dense, error) {
	if !is.Flat {
		return nil, fmt.Errorf("dense needs a flat input but gets %s images (insert flatten or globalavgpool before it)", is)
	}
	l := &dense{d: d, is: is, act: actOf(d.Act)}
	l.w = &param{Name: d.Name + ".weight", Shape: []int{d.Units, is.C}, N: d.Units * is.C, Group: groupWeight,
		Init: d.Init, FanIn: is.C, FanOut: d.Units}
	if *d.Bias {
		l.bias = &param{Name: d.Name + ".bias", Shape: []int{d.Units}, N: d.Units, Group: groupBias,
			Init: biasInit(d.Init), FanIn: is.C}
	}
	return l, nil
}

func (d *dense) desc() *LayerDesc { return d.d }
func (d *dense) in() Shape        { return d.is }
func (d *dense) out() Shape       { return Shape{C: d.d.Units, H: 1, W: 1, Flat: true} }
func (d *dense) params() []*param {
	if d.bias == nil {
		return []*param{d.w}
	}
	return []*param{d.w, d.bias}
}
func (d *dense) floatsPerImage() int {
	f := d.d.Units + d.is.C
	if d.act == device.ActGELU {
		f += d.d.Units
	}
	return f
}

func (d *dense) setup(b device.Backend, maxN int) error {
	var err error
	d.y = alloc(b, d.d.Name+" output", maxN*d.d.Units, &err)
	d.dx = alloc(b, d.d.Name+" input gradient", maxN*d.is.C, &err)
	d.z = d.y
	if d.act == device.ActGELU {
		d.z = alloc(b, d.d.Name+" pre-activation", maxN*d.d.Units, &err)
	}
	return err
}

func (d *dense) bind(b device.Backend, params, grads device.Buffer) {
	d.W, d.dW = b.View(params, d.w.Off, d.w.N), b.View(grads, d.w.Off, d.w.N)
	if d.bias != nil {
		d.B, d.dB = b.View(params, d.bias.Off, d.bias.N), b.View(grads, d.bias.Off, d.bias.N)
	}
}

func (d *dense) forward(b device.Backend, x device.Buffer, n int, _ *pass) device.Buffer {
	in, out := d.is.C, d.d.Units
	d.x = x
	b.Gemm(false, true, n, out, in, float32(d.d.Scale), x, in, d.W, in, 0, d.z, out)
	relu := d.act == device.ActReLU
	switch {
	case d.bias != nil:
		b.AddBias(d.z, d.B, n, out, 1, relu)
	case relu:
		b.ReLUForward(d.z, d.z, n*out)
	}
	if d.act == device.ActGELU {
		b.GELUForward(d.z, d.y, n*out)
	}
	return d.y
}

func (d *dense) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	in, out := d.is.C, d.d.Units
	s := float32(d.d.Scale)
	actBackward(b, d.act, d.z, d.y, dy, n*out)
	if d.bias != nil {
		b.BiasGrad(dy, d.dB, n, out, 1)
	}
	b.Gemm(true, false, out, in, n, s, dy, out, d.x, in, 0, d.dW, in)
	if !needDx {
		return nil
	}
	b.Gemm(false, false, n, in, out, s, dy, out, d.W, in, 0, d.dx, in)
	return d.dx
}

func (d *dense) flops(needDx bool) float64 {
	f := 2 * float64(d.is.C*d.d.Units)
	if needDx {
		return 3 * f
	}
	return 2 * f
}
