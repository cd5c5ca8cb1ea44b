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
	fuse   bool          // run the fused ops (Network.SetFusion)
}

// reluPool is the ReLU of a layer moved into the max-pool that alone reads
// it (Network.fuseReLUPools): when fused (the pass's fuse), the layer
// writes its output before the ReLU and skips the ReLU's backward, and the
// pool applies both (MaxPoolReLUForward, MaxPoolReLUBackward). The results
// are bit for bit the unfused ones.
type reluPool struct {
	movable bool // planned: the ReLU may move into the pool
	now     bool // this pass: it has moved
}

// set records the pass's choice.
func (r *reluPool) set(p *pass) { r.now = r.movable && p.fuse }

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

// halfGemms says whether the backend's GEMMs take bfloat16 operands
// (--precision bf16): the GEMM layers then read a bfloat16 copy of the
// weights (halfLayer) and convert their activations and gradients to
// bfloat16 where a GEMM reads them.
func halfGemms(b device.Backend) bool { return b.Caps().Precision == device.PrecisionBF16 }

// halfLayer is a layer with GEMMs: under --precision bf16 it binds its
// weights' view of the network's bfloat16 copy of the parameters.
type halfLayer interface {
	bindHalf(b device.Backend, half device.Buffer)
}

// allocHalf is alloc of a BF16 buffer.
func allocHalf(b device.Backend, what string, n int, err *error) device.Buffer {
	if *err != nil {
		return nil
	}
	buf, e := b.Alloc(what+" (bfloat16)", device.BF16, n)
	*err = e
	return buf
}

// toHalf is x, or, when h (a bfloat16 buffer) is set, x converted into h:
// the operand a GEMM reads.
func toHalf(b device.Backend, x, h device.Buffer, n int) device.Buffer {
	if h == nil {
		return x
	}
	b.Convert(x, h, n)
	return h
}

// biasAct is the epilogue of a GEMM layer's forward pass: z += bias (nil:
// none), y = act(z) (y is z but for the GELU); fuse does both in one op
// (BiasAct), as AddBias does for the ReLU anyway.
func biasAct(b device.Backend, a device.Act, z, y, bias device.Buffer, outer, c, inner int, fuse bool) {
	n := outer * c * inner
	switch {
	case bias != nil && a == device.ActGELU && fuse:
		b.BiasAct(z, y, bias, outer, c, inner, a)
		return
	case bias != nil:
		b.AddBias(z, bias, outer, c, inner, a == device.ActReLU)
	case a == device.ActReLU:
		b.ReLUForward(z, z, n)
	}
	if a == device.ActGELU {
		b.GELUForward(z, y, n)
	}
}

// actBiasBackward turns dL/dy into dL/dz in place for y = act(z), z = GEMM
// + bias, and writes the bias gradient (db nil: no bias) over [outer, c,
// inner]; fuse merges the activation's backward into the bias gradient
// (ActBiasGrad).
func actBiasBackward(b device.Backend, a device.Act, z, y, dy, db device.Buffer, outer, c, inner int, fuse bool) {
	switch {
	case fuse && a != device.ActNone && db != nil:
		in := y // the ReLU's mask is its output, the GELU's derivative reads its input
		if a == device.ActGELU {
			in = z
		}
		b.ActBiasGrad(a, in, dy, db, outer, c, inner)
		return
	default:
		actBackward(b, a, z, y, dy, outer*c*inner)
	}
	if db != nil {
		b.BiasGrad(dy, db, outer, c, inner)
	}
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
	half         bool            // bfloat16 GEMMs: col is BF16, W a view of the bfloat16 weights
	dyh          device.Buffer   // bfloat16 copy of the output gradient (half)
	relu         reluPool        // the ReLU moved into the next max-pool
	fuse         bool            // the last forward pass ran the fused ops
	plan         device.ConvPlan // the backend's own algorithm, if any (Winograd on the CPU)
	ws           device.Buffer   // plan's workspace
	x            device.Buffer   // input of the latest forward pass (for plan's backward)
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

// floatsPerImageOn is floatsPerImage where b has its own algorithm for the
// conv: its workspace's growth per image (measured between two batches)
// instead of the im2col buffers.
func (c *conv) floatsPerImageOn(b device.Backend) int {
	if c.pointwise() {
		return c.floatsPerImage()
	}
	const n1, n2 = 128, 256
	p1, p2 := b.PlanConv(c.geom(n1), c.os.C), b.PlanConv(c.geom(n2), c.os.C)
	if p1.Algo == "" || p2.Algo == "" {
		return c.floatsPerImage()
	}
	f := c.is.Size() + c.os.Size() + (p2.Workspace-p1.Workspace+n2-n1-1)/(n2-n1)
	if c.act == device.ActGELU {
		f += c.os.Size()
	}
	return f
}

func (c *conv) setup(b device.Backend, maxN int) error {
	var err error
	g := c.geom(maxN)
	name := c.d.Name
	c.half = halfGemms(b)
	if c.half {
		c.col = allocHalf(b, name+" im2col", g.ColRows()*g.ColCols(), &err)
		c.dyh = allocHalf(b, name+" output gradient", maxN*c.os.Size(), &err)
	}
	if !c.pointwise() {
		if c.plan = b.PlanConv(g, c.os.C); c.half || b.Caps().Precision != device.PrecisionFP32 {
			c.plan = device.ConvPlan{} // Winograd is float32 arithmetic: not for emulated TF32/BF16
		}
	}
	switch {
	case c.plan.Algo != "":
		c.ws = alloc(b, name+" "+c.plan.Algo+" workspace", c.plan.Workspace, &err)
	case !c.pointwise():
		if !c.half {
			c.col = alloc(b, name+" im2col", g.ColRows()*g.ColCols(), &err)
		}
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

func (c *conv) bindHalf(b device.Backend, half device.Buffer) {
	c.W = b.View(half, c.w.Off, c.w.N)
}

func (c *conv) forward(b device.Backend, x device.Buffer, n int, p *pass) device.Buffer {
	g := c.geom(n)
	k, np, oc := g.ColRows(), g.ColCols(), c.os.C
	switch {
	case c.plan.Algo != "":
		c.x = x
		b.ConvForward(c.plan, c.ws, x, c.W, c.z, n)
	case c.pointwise() && c.half:
		b.Convert(x, c.col, k*np)
		b.Gemm(false, false, oc, np, k, 1, c.W, k, c.col, np, 0, c.z, np)
	case c.pointwise():
		c.col = x
		b.Gemm(false, false, oc, np, k, 1, c.W, k, c.col, np, 0, c.z, np)
	default:
		b.Im2Col(g, x, c.col)
		b.Gemm(false, false, oc, np, k, 1, c.W, k, c.col, np, 0, c.z, np)
	}
	c.relu.set(p)
	c.fuse = p.fuse
	biasAct(b, c.actNow(), c.z, c.y, c.B, 1, oc, np, c.fuse)
	return c.y
}

// actNow is the activation the conv applies itself in this pass: none when
// its ReLU has moved into the max-pool after it.
func (c *conv) actNow() device.Act {
	if c.relu.now {
		return device.ActNone
	}
	return c.act
}

func (c *conv) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	g := c.geom(n)
	k, np, oc := g.ColRows(), g.ColCols(), c.os.C
	actBiasBackward(b, c.actNow(), c.z, c.y, dy, c.dB, 1, oc, np, c.fuse)
	if c.w.Group == groupFrozen && !needDx {
		return nil
	}
	if c.plan.Algo != "" {
		return c.planBackward(b, dy, n, needDx)
	}
	dy = toHalf(b, dy, c.dyh, oc*np)
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

// planBackward is backward through the backend's own algorithm: the
// gradients that are wanted, in one call.
func (c *conv) planBackward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	var dx, dw device.Buffer
	if needDx {
		dx = c.dx
	}
	if c.w.Group != groupFrozen {
		dw = c.dW
	}
	if dx != nil || dw != nil {
		b.ConvBackward(c.plan, c.ws, c.x, c.W, dy, dx, dw, n)
	}
	return dx
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
	relu   reluPool // the ReLU of the layer before, moved in
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

func (p *pool) forward(b device.Backend, x device.Buffer, n int, ps *pass) device.Buffer {
	p.relu.set(ps)
	switch {
	case p.relu.now:
		b.MaxPoolReLUForward(p.geom(n), x, p.y, p.argmax)
	case p.max:
		b.MaxPoolForward(p.geom(n), x, p.y, p.argmax)
	default:
		b.AvgPoolForward(p.geom(n), x, p.y)
	}
	return p.y
}

func (p *pool) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx {
		return nil
	}
	switch {
	case p.relu.now:
		b.MaxPoolReLUBackward(p.geom(n), dy, p.y, p.argmax, p.dx)
	case p.max:
		b.MaxPoolBackward(p.geom(n), dy, p.argmax, p.dx)
	default:
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
	xh, dyh      device.Buffer // bfloat16 copies of the input and output gradient (--precision bf16), else nil
	fuse         bool          // the last forward pass ran the fused ops
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
	if halfGemms(b) {
		d.xh = allocHalf(b, d.d.Name+" input", maxN*d.is.C, &err)
		d.dyh = allocHalf(b, d.d.Name+" output gradient", maxN*d.d.Units, &err)
	}
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

func (d *dense) bindHalf(b device.Backend, half device.Buffer) {
	d.W = b.View(half, d.w.Off, d.w.N)
}

func (d *dense) forward(b device.Backend, x device.Buffer, n int, p *pass) device.Buffer {
	in, out := d.is.C, d.d.Units
	d.fuse = p.fuse
	x = toHalf(b, x, d.xh, n*in)
	d.x = x
	b.Gemm(false, true, n, out, in, float32(d.d.Scale), x, in, d.W, in, 0, d.z, out)
	biasAct(b, d.act, d.z, d.y, d.B, n, out, 1, d.fuse)
	return d.y
}

func (d *dense) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	in, out := d.is.C, d.d.Units
	s := float32(d.d.Scale)
	actBiasBackward(b, d.act, d.z, d.y, dy, d.dB, n, out, 1, d.fuse)
	dy = toHalf(b, dy, d.dyh, n*out)
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
