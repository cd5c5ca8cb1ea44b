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

// param is one named tensor inside the flat parameter buffer, in PyTorch's
// state_dict naming and layout.
type param struct {
	Name   string
	Shape  []int
	Off, N int // position in the flat buffer
	FanIn  int // Glorot fan-in; 0 for biases (zero-initialised)
	FanOut int
}

// layer is one stage of the network. Buffers are sized for the maximum batch
// at setup; forward/backward take the actual batch n <= max.
type layer interface {
	spec() LayerSpec
	in() Shape
	out() Shape
	params() []*param
	// setup allocates the layer's buffers for batches of up to maxN.
	setup(b device.Backend, maxN int) error
	// bind points the layer at its slices of the flat parameter and
	// gradient buffers.
	bind(b device.Backend, params, grads device.Buffer)
	forward(b device.Backend, x device.Buffer, n int) device.Buffer
	// backward takes dL/dy (which it may overwrite) and returns dL/dx, or
	// nil when needDx is false.
	backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer
	// flops is the training cost (forward + backward GEMM work) per image.
	flops(needDx bool) float64
}

func alloc(b device.Backend, what string, n int, err *error) device.Buffer {
	if *err != nil {
		return nil
	}
	buf, e := b.Alloc(what, device.F32, n)
	*err = e
	return buf
}

// ---- Conv2D ----

type conv struct {
	ls           LayerSpec
	name         string
	is, os       Shape
	padH, padW   int
	w, bias      *param
	W, B, dW, dB device.Buffer
	y, col, dcol device.Buffer
	dx           device.Buffer
}

func newConv(ls LayerSpec, name string, is Shape) (*conv, error) {
	if is.Flat {
		return nil, fmt.Errorf("layer %q: a convolution needs image input, but its input is a flat vector of %d (put conv layers before flatten)", ls.Token, is.C)
	}
	c := &conv{ls: ls, name: name, is: is}
	k, s := ls.K, ls.S
	var oh, ow int
	if ls.Same {
		oh, ow = (is.H+s-1)/s, (is.W+s-1)/s
		c.padH = max((oh-1)*s+k-is.H, 0) / 2
		c.padW = max((ow-1)*s+k-is.W, 0) / 2
	} else {
		if k > is.H || k > is.W {
			return nil, fmt.Errorf("layer %q: kernel %dx%d is larger than its %s input (use fewer pooling layers, a smaller kernel, or \"same\" padding)", ls.Token, k, k, is)
		}
		oh, ow = (is.H-k)/s+1, (is.W-k)/s+1
	}
	c.os = Shape{C: ls.Units, H: oh, W: ow}
	kk := is.C * k * k
	c.w = &param{Name: name + ".weight", Shape: []int{ls.Units, is.C, k, k}, N: ls.Units * kk, FanIn: kk, FanOut: ls.Units * k * k}
	c.bias = &param{Name: name + ".bias", Shape: []int{ls.Units}, N: ls.Units}
	return c, nil
}

func (c *conv) spec() LayerSpec  { return c.ls }
func (c *conv) in() Shape        { return c.is }
func (c *conv) out() Shape       { return c.os }
func (c *conv) params() []*param { return []*param{c.w, c.bias} }

func (c *conv) geom(n int) device.ConvGeom {
	return device.ConvGeom{C: c.is.C, N: n, H: c.is.H, W: c.is.W, KH: c.ls.K, KW: c.ls.K,
		SH: c.ls.S, SW: c.ls.S, PadH: c.padH, PadW: c.padW, OH: c.os.H, OW: c.os.W}
}

func (c *conv) setup(b device.Backend, maxN int) error {
	var err error
	g := c.geom(maxN)
	c.col = alloc(b, c.name+" im2col", g.ColRows()*g.ColCols(), &err)
	c.dcol = alloc(b, c.name+" im2col gradient", g.ColRows()*g.ColCols(), &err)
	c.y = alloc(b, c.name+" output", maxN*c.os.Size(), &err)
	c.dx = alloc(b, c.name+" input gradient", maxN*c.is.Size(), &err)
	return err
}

func (c *conv) bind(b device.Backend, params, grads device.Buffer) {
	c.W, c.dW = b.View(params, c.w.Off, c.w.N), b.View(grads, c.w.Off, c.w.N)
	c.B, c.dB = b.View(params, c.bias.Off, c.bias.N), b.View(grads, c.bias.Off, c.bias.N)
}

func (c *conv) forward(b device.Backend, x device.Buffer, n int) device.Buffer {
	g := c.geom(n)
	k, np := g.ColRows(), g.ColCols()
	b.Im2Col(g, x, c.col)
	b.Gemm(false, false, c.os.C, np, k, 1, c.W, k, c.col, np, 0, c.y, np)
	b.AddBias(c.y, c.B, 1, c.os.C, np, c.ls.ReLU)
	return c.y
}

func (c *conv) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	g := c.geom(n)
	k, np, oc := g.ColRows(), g.ColCols(), c.os.C
	if c.ls.ReLU {
		b.ReLUBackward(c.y, dy, dy, oc*np)
	}
	b.BiasGrad(dy, c.dB, 1, oc, np)
	b.Gemm(false, true, oc, k, np, 1, dy, np, c.col, np, 0, c.dW, k)
	if !needDx {
		return nil
	}
	b.Gemm(true, false, k, np, oc, 1, c.W, k, dy, np, 0, c.dcol, np)
	b.Col2Im(g, c.dcol, c.dx)
	return c.dx
}

func (c *conv) flops(needDx bool) float64 {
	f := 2 * float64(c.os.C*c.is.C*c.ls.K*c.ls.K*c.os.H*c.os.W)
	if needDx {
		return 3 * f
	}
	return 2 * f
}

// ---- pooling ----

type pool struct {
	ls     LayerSpec
	is, os Shape
	y, dx  device.Buffer
	argmax device.Buffer
	max    bool
}

func newPool(ls LayerSpec, is Shape) (*pool, error) {
	if is.Flat {
		return nil, fmt.Errorf("layer %q: pooling needs image input, but its input is a flat vector of %d", ls.Token, is.C)
	}
	if ls.K > is.H || ls.K > is.W {
		return nil, fmt.Errorf("layer %q: window %dx%d is larger than its %s input (remove a pooling layer or use a smaller window)", ls.Token, ls.K, ls.K, is)
	}
	return &pool{ls: ls, is: is, max: ls.Kind == "maxpool",
		os: Shape{C: is.C, H: (is.H-ls.K)/ls.S + 1, W: (is.W-ls.K)/ls.S + 1}}, nil
}

func (p *pool) spec() LayerSpec                                    { return p.ls }
func (p *pool) in() Shape                                          { return p.is }
func (p *pool) out() Shape                                         { return p.os }
func (p *pool) params() []*param                                   { return nil }
func (p *pool) bind(b device.Backend, params, grads device.Buffer) {}
func (p *pool) flops(bool) float64                                 { return 0 }

func (p *pool) geom(n int) device.PoolGeom {
	return device.PoolGeom{Planes: p.is.C * n, H: p.is.H, W: p.is.W, KH: p.ls.K, KW: p.ls.K,
		SH: p.ls.S, SW: p.ls.S, OH: p.os.H, OW: p.os.W}
}

func (p *pool) setup(b device.Backend, maxN int) error {
	var err error
	p.y = alloc(b, p.ls.Token+" output", maxN*p.os.Size(), &err)
	p.dx = alloc(b, p.ls.Token+" input gradient", maxN*p.is.Size(), &err)
	if err == nil && p.max {
		p.argmax, err = b.Alloc(p.ls.Token+" argmax", device.I32, maxN*p.os.Size())
	}
	return err
}

func (p *pool) forward(b device.Backend, x device.Buffer, n int) device.Buffer {
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

// ---- ReLU ----

type relu struct {
	ls LayerSpec
	s  Shape
	y  device.Buffer
}

func (r *relu) spec() LayerSpec                                    { return r.ls }
func (r *relu) in() Shape                                          { return r.s }
func (r *relu) out() Shape                                         { return r.s }
func (r *relu) params() []*param                                   { return nil }
func (r *relu) bind(b device.Backend, params, grads device.Buffer) {}
func (r *relu) flops(bool) float64                                 { return 0 }

func (r *relu) setup(b device.Backend, maxN int) error {
	var err error
	r.y = alloc(b, "relu output", maxN*r.s.Size(), &err)
	return err
}

func (r *relu) forward(b device.Backend, x device.Buffer, n int) device.Buffer {
	b.ReLUForward(x, r.y, n*r.s.Size())
	return r.y
}

func (r *relu) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	if !needDx {
		return nil
	}
	b.ReLUBackward(r.y, dy, dy, n*r.s.Size())
	return dy
}

// ---- Flatten ----

type flatten struct {
	ls    LayerSpec
	is    Shape
	y, dx device.Buffer
}

func (f *flatten) spec() LayerSpec                                    { return f.ls }
func (f *flatten) in() Shape                                          { return f.is }
func (f *flatten) out() Shape                                         { return Shape{C: f.is.Size(), H: 1, W: 1, Flat: true} }
func (f *flatten) params() []*param                                   { return nil }
func (f *flatten) bind(b device.Backend, params, grads device.Buffer) {}
func (f *flatten) flops(bool) float64                                 { return 0 }

func (f *flatten) setup(b device.Backend, maxN int) error {
	if f.is.Flat {
		return nil
	}
	var err error
	f.y = alloc(b, "flatten output", maxN*f.is.Size(), &err)
	f.dx = alloc(b, "flatten input gradient", maxN*f.is.Size(), &err)
	return err
}

// forward turns CNHW into [N, C*H*W] (PyTorch's flatten order).
func (f *flatten) forward(b device.Backend, x device.Buffer, n int) device.Buffer {
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
	ls           LayerSpec
	name         string
	is           Shape
	w, bias      *param
	W, B, dW, dB device.Buffer
	x, y, dx     device.Buffer
}

func newDense(ls LayerSpec, name string, is Shape) (*dense, error) {
	if !is.Flat {
		return nil, fmt.Errorf("layer %q: dense needs a flat input but gets %s images (insert flatten before it)", ls.Token, is)
	}
	d := &dense{ls: ls, name: name, is: is}
	d.w = &param{Name: name + ".weight", Shape: []int{ls.Units, is.C}, N: ls.Units * is.C, FanIn: is.C, FanOut: ls.Units}
	d.bias = &param{Name: name + ".bias", Shape: []int{ls.Units}, N: ls.Units}
	return d, nil
}

func (d *dense) spec() LayerSpec  { return d.ls }
func (d *dense) in() Shape        { return d.is }
func (d *dense) out() Shape       { return Shape{C: d.ls.Units, H: 1, W: 1, Flat: true} }
func (d *dense) params() []*param { return []*param{d.w, d.bias} }

func (d *dense) setup(b device.Backend, maxN int) error {
	var err error
	d.y = alloc(b, d.name+" output", maxN*d.ls.Units, &err)
	d.dx = alloc(b, d.name+" input gradient", maxN*d.is.C, &err)
	return err
}

func (d *dense) bind(b device.Backend, params, grads device.Buffer) {
	d.W, d.dW = b.View(params, d.w.Off, d.w.N), b.View(grads, d.w.Off, d.w.N)
	d.B, d.dB = b.View(params, d.bias.Off, d.bias.N), b.View(grads, d.bias.Off, d.bias.N)
}

func (d *dense) forward(b device.Backend, x device.Buffer, n int) device.Buffer {
	in, out := d.is.C, d.ls.Units
	d.x = x
	b.Gemm(false, true, n, out, in, 1, x, in, d.W, in, 0, d.y, out)
	b.AddBias(d.y, d.B, n, out, 1, d.ls.ReLU)
	return d.y
}

func (d *dense) backward(b device.Backend, dy device.Buffer, n int, needDx bool) device.Buffer {
	in, out := d.is.C, d.ls.Units
	if d.ls.ReLU {
		b.ReLUBackward(d.y, dy, dy, n*out)
	}
	b.BiasGrad(dy, d.dB, n, out, 1)
	b.Gemm(true, false, out, in, n, 1, dy, out, d.x, in, 0, d.dW, in)
	if !needDx {
		return nil
	}
	b.Gemm(false, false, n, in, out, 1, dy, out, d.W, in, 0, d.dx, in)
	return d.dx
}

func (d *dense) flops(needDx bool) float64 {
	f := 2 * float64(d.is.C*d.ls.Units)
	if needDx {
		return 3 * f
	}
	return 2 * f
}
