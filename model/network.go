// Package model builds networks from a model description (a model file, a
// preset or a comma spec) and trains them on any device.Backend. It never
// sees host memory of a buffer and cannot tell which backend runs it.
//
// Parameters, gradients and the optimiser's state each live in one flat
// buffer (llm.c style) viewed per layer, so one kernel updates a whole group
// of parameters and a checkpoint is one tensor per parameter cut from one
// download. The flat buffer also holds BatchNorm's running statistics, after
// the trained tensors, so an EMA of the weights covers them with one call.
package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/trainer-go/trainer/device"
)

// node is one layer and where its inputs come from: indices of earlier
// nodes, -1 for the network's input.
type node struct {
	l      layer
	inputs []int
}

// Network is a built model on a backend.
type Network struct {
	Spec    string // what --model said: a preset name, a file or a comma spec
	Desc    *Desc  // the canonical description
	Input   Shape
	Classes int

	b       device.Backend
	nodes   []node
	params  []*param
	nParam  int    // flat length: every tensor, buffers included
	regions [6]int // start offsets of the groups' regions (paramGroup.region order), then the end
	maxN    int
	seed    uint64
	salt    uint64 // added to seed for dropout: keys a rank's masks apart (0 on rank 0)

	Params, Grads, M, V device.Buffer // flat, nParam each
	EMA                 device.Buffer // flat EMA of Params when enabled, else nil
	// half is the bfloat16 copy of the bound parameters that the GEMMs
	// read under --precision bf16 (nil otherwise), remade from the float32
	// master weights at the start of every forward pass.
	half device.Buffer

	input, labels device.Buffer // gathered batch: CNHW images, int32 labels
	augmented     device.Buffer // AugmentInput's output; swapped with input
	dlogits       device.Buffer
	step          int // optimiser steps taken

	outs, grads []device.Buffer // per node, reused every pass
	acc         []device.Buffer // gradient accumulators of nodes with fan-out > 1
	fanout      []int
	started     []bool
	noUpdate    bool          // forward passes in training mode leave running statistics alone
	unfused     bool          // SetFusion(false): every op on its own
	dinput      device.Buffer // the input's gradient, allocated by the first Explain
	dinputSet   bool          // this backward pass has written dinput
	pass        pass          // the current forward pass's settings (a field: no allocation per pass)
	stepAt      device.Buffer // set while a step is captured: the step number in device memory (pass.stepAt)
	bound       device.Buffer
	owned       []device.Buffer // every buffer Build and enableEMA allocated, for Close
}

// maxParams bounds parameter counts and per-image activation sizes, so
// buffer sizes stay well inside int32 element counts for the GPU kernels.
const maxParams = 1 << 28

// SetFusion turns the fused ops on (the default) or off for the passes
// that follow; off, every op runs on its own. The results are the same
// bit for bit either way (the tests check), only the number of kernel
// launches differs: what the switch is for, besides Explain, which reads
// a layer's output as the unfused network writes it.
func (n *Network) SetFusion(on bool) { n.unfused = !on }

// fuseReLUPools plans the ReLU fusions into max-pools: a conv with a bias
// and a ReLU (AddBias's ReLU), or a batch norm with a ReLU, whose output
// only a max-pool reads, gives its ReLU to the pool (see reluPool).
func (n *Network) fuseReLUPools() {
	for _, nd := range n.nodes {
		p, ok := nd.l.(*pool)
		j := nd.inputs[0]
		if !ok || !p.max || j < 0 || n.fanout[j] != 1 {
			continue
		}
		switch prev := n.nodes[j].l.(type) {
		case *conv:
			prev.relu.movable = prev.act == device.ActReLU && prev.bias != nil
			p.relu.movable = prev.relu.movable
		case *batchnorm:
			prev.relu.movable = prev.act == device.ActReLU
			p.relu.movable = prev.relu.movable
		}
	}
}

// Plan resolves a --model value (preset, model file or comma spec) and
// infers every shape from input, without a backend.
func Plan(spec string, input Shape) (*Network, error) {
	d, err := ResolveModel(spec)
	if err != nil {
		return nil, err
	}
	return PlanDesc(strings.TrimSpace(spec), d, input)
}

// PlanDesc plans a checked description.
func PlanDesc(spec string, d *Desc, input Shape) (*Network, error) {
	n := &Network{Spec: spec, Desc: d, Input: input}
	index := map[string]int{"input": -1}
	shapeOf := func(i int) Shape {
		if i < 0 {
			return input
		}
		return n.nodes[i].l.out()
	}
	for i := range d.Layers {
		ld := &d.Layers[i]
		var ins []int
		switch {
		case ld.Type == "add":
			ins = []int{index[ld.Inputs[0]], index[ld.Inputs[1]]}
		case ld.Input != "":
			ins = []int{index[ld.Input]}
		default:
			ins = []int{i - 1}
		}
		l, err := newLayer(ld, i, shapeOf, ins)
		if err != nil {
			return nil, &SpecError{Layer: i + 1, Msg: fmt.Sprintf("layer %d %q (%s) on input %s: %v", i+1, ld.Name, ld.Type, shapeOf(ins[0]), err), Err: err}
		}
		n.nodes = append(n.nodes, node{l: l, inputs: ins})
		index[ld.Name] = i
		n.params = append(n.params, l.params()...)
		s := l.out()
		if s.Size() > maxParams || s.Size() < 1 {
			return nil, &SpecError{Msg: fmt.Sprintf("layer %q makes %d values per image (at most %d)", ld.Name, s.Size(), maxParams)}
		}
		if np := n.countParams(); np > maxParams {
			return nil, &SpecError{Msg: fmt.Sprintf("layer %q makes the model too large (%d parameters; at most %d)", ld.Name, np, maxParams)}
		}
	}
	out := n.nodes[len(n.nodes)-1].l.out()
	if !out.Flat {
		return nil, &SpecError{Msg: fmt.Sprintf("the last layer %q gives %s images; the logits must be flat (end with dense<classes>)", d.Layers[len(d.Layers)-1].Name, out)}
	}
	n.Classes = out.C
	n.layout()
	n.fanout = make([]int, len(n.nodes))
	for _, nd := range n.nodes {
		for _, j := range nd.inputs {
			if j >= 0 {
				n.fanout[j]++
			}
		}
	}
	n.fuseReLUPools()
	return n, nil
}

func (n *Network) countParams() int {
	s := 0
	for _, p := range n.params {
		s += p.N
	}
	return s
}

func newLayer(ld *LayerDesc, i int, shapeOf func(int) Shape, ins []int) (layer, error) {
	s := shapeOf(ins[0])
	switch ld.Type {
	case "conv":
		return newConv(ld, s)
	case "dense":
		return newDense(ld, s)
	case "maxpool", "avgpool":
		return newPool(ld, s)
	case "globalavgpool":
		return newGAP(ld, s)
	case "relu", "gelu":
		return &activation{d: ld, s: s, act: actOf(ld.Type)}, nil
	case "flatten":
		return &flatten{d: ld, is: s}, nil
	case "batchnorm":
		return newBatchNorm(ld, s), nil
	case "add":
		return newAdd(ld, s, shapeOf(ins[1]))
	case "dropout":
		return &dropout{d: ld, s: s, p: float32(*ld.P), salt: uint64(i+1) * 0xD1B54A32D192ED03}, nil
	case "normalize":
		return newNormalize(ld, s)
	}
	return nil, fmt.Errorf("unknown layer type %q", ld.Type)
}

// layout assigns flat offsets: the groups' regions in order, each in layer
// order.
func (n *Network) layout() {
	off := 0
	for r := 0; r < 5; r++ {
		if r == int(groupBias) {
			n.regions[r] = off
			continue
		}
		n.regions[r] = off
		for _, p := range n.params {
			if p.Group.region() == r {
				p.Off = off
				off += p.N
			}
		}
	}
	n.regions[5] = off
	n.nParam = off
}

// NumParams is the number of parameters (trained or frozen), as PyTorch's
// sum(p.numel() for p in module.parameters()) counts them: BatchNorm's
// running statistics are buffers, not parameters.
func (n *Network) NumParams() int { return n.regions[groupBuffer] }

// FlatLen is the length of the flat parameter vector: parameters and
// buffers.
func (n *Network) FlatLen() int { return n.nParam }

// trainEnd is the end of the trained region of the flat buffers.
func (n *Network) trainEnd() int { return n.regions[groupFrozen] }

// Backend is the backend the network was built on (nil before Build).
func (n *Network) Backend() device.Backend { return n.b }

// MaxBatch is the largest batch the buffers hold.
func (n *Network) MaxBatch() int { return n.maxN }

// Steps is the number of optimiser steps taken.
func (n *Network) Steps() int { return n.step }

// FlopsPerImage is the GEMM work of one training step per image.
func (n *Network) FlopsPerImage() float64 {
	var f float64
	for _, nd := range n.nodes {
		f += nd.l.flops(n.needDx(nd))
	}
	return f
}

func (n *Network) needDx(nd node) bool {
	for _, j := range nd.inputs {
		if j >= 0 {
			return true
		}
	}
	return false
}

// LayerRow is one row of a summary table.
type LayerRow struct {
	Name   string
	Type   string
	Input  string // the layers it reads, when not simply the previous one
	Output Shape
	Params int
	Algo   string // after Build: the backend's own algorithm for a conv ("" im2col and GEMM)
}

// Summary lists the layers with output shapes and parameter counts
// (running statistics not counted).
func (n *Network) Summary() []LayerRow {
	var rows []LayerRow
	for i, nd := range n.nodes {
		d := nd.l.desc()
		r := LayerRow{Name: d.Name, Type: d.Type, Output: nd.l.out()}
		if c, ok := nd.l.(*conv); ok {
			r.Algo = c.plan.Algo
		}
		if d.Act != "" && d.Act != "none" {
			r.Type += "+" + d.Act
		}
		if len(nd.inputs) > 1 || nd.inputs[0] != i-1 {
			var ins []string
			for _, j := range nd.inputs {
				if j < 0 {
					ins = append(ins, "input")
				} else {
					ins = append(ins, n.nodes[j].l.desc().Name)
				}
			}
			r.Input = strings.Join(ins, " + ")
		}
		for _, p := range nd.l.params() {
			if p.Group != groupBuffer {
				r.Params += p.N
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// Build allocates every buffer on b for batches of up to maxN and
// initialises the weights from seed (see InitParams). On failure every
// buffer allocated so far is freed. Close frees them after use; a network
// is built once.
func (n *Network) Build(b device.Backend, maxN int, seed uint64) (err error) {
	if maxN < 1 {
		return fmt.Errorf("batch size %d: must be at least 1", maxN)
	}
	if n.b != nil {
		return fmt.Errorf("the network is already built (on %s)", n.b.Name())
	}
	if err := n.checkBatchLimit(maxN, b.Caps().MaxElems, b.Name()); err != nil {
		return err
	}
	n.b, n.maxN, n.seed = b, maxN, seed
	tb := &trackingBackend{Backend: b}
	defer func() {
		if err != nil {
			tb.freeAll()
			n.b = nil
		} else {
			n.owned = tb.bufs
		}
	}()
	n.Params = alloc(tb, "parameters", n.nParam, &err)
	if halfGemms(b) {
		n.half = allocHalf(tb, "parameters", n.nParam, &err)
	}
	n.Grads = alloc(tb, "gradients", n.nParam, &err)
	n.M = alloc(tb, "optimizer first moments", n.nParam, &err)
	n.V = alloc(tb, "optimizer second moments", n.nParam, &err)
	n.input = alloc(tb, "input batch", maxN*n.Input.Size(), &err)
	n.augmented = alloc(tb, "augmented input batch", maxN*n.Input.Size(), &err)
	n.dlogits = alloc(tb, "logit gradients", maxN*n.Classes, &err)
	if err != nil {
		return err
	}
	if n.labels, err = tb.Alloc("label batch", device.I32, maxN); err != nil {
		return err
	}
	n.outs = make([]device.Buffer, len(n.nodes))
	n.grads = make([]device.Buffer, len(n.nodes))
	n.acc = make([]device.Buffer, len(n.nodes))
	n.started = make([]bool, len(n.nodes))
	for i, nd := range n.nodes {
		if err := nd.l.setup(tb, maxN); err != nil {
			return err
		}
		if n.fanout[i] > 1 {
			n.acc[i] = alloc(tb, nd.l.desc().Name+" gradient sum", maxN*nd.l.out().Size(), &err)
			if err != nil {
				return err
			}
		}
	}
	n.bindTo(n.Params)
	return n.SetParams(n.InitParams(seed))
}

// bindTo points every layer at buf (the parameters, or their EMA).
func (n *Network) bindTo(buf device.Buffer) {
	if n.bound == buf {
		return
	}
	for _, nd := range n.nodes {
		nd.l.bind(n.b, buf, n.Grads)
		if h, ok := nd.l.(halfLayer); ok && n.half != nil {
			h.bindHalf(n.b, n.half) // the GEMMs read the bfloat16 copy of buf (Forward makes it)
		}
	}
	n.bound = buf
}

// Close frees every buffer Build allocated (and the weight average, when a
// Trainer made one), so a process can build and drop networks on one
// backend without running out of device memory. The network cannot be used
// afterwards, and the backend stays open; a second Close does nothing.
// Close a Trainer on the network first.
func (n *Network) Close() {
	if n.b == nil {
		return
	}
	for _, buf := range n.owned {
		n.b.Free(buf)
	}
	n.owned = nil
	n.Params, n.Grads, n.M, n.V, n.EMA, n.half = nil, nil, nil, nil, nil, nil
	n.input, n.labels, n.augmented, n.dlogits, n.bound, n.dinput = nil, nil, nil, nil, nil, nil
	n.outs, n.grads, n.acc = nil, nil, nil
}

// trackingBackend remembers what Build allocates, to free it on failure.
type trackingBackend struct {
	device.Backend
	bufs []device.Buffer
}

func (t *trackingBackend) Alloc(what string, dt device.DType, n int) (device.Buffer, error) {
	buf, err := t.Backend.Alloc(what, dt, n)
	if err == nil {
		t.bufs = append(t.bufs, buf)
	}
	return buf, err
}

func (t *trackingBackend) freeAll() {
	for _, b := range t.bufs {
		t.Backend.Free(b)
	}
}

// InitParams draws initial parameters from a PCG generator seeded with
// seed, tensor by tensor in layer order: "glorot" is Keras's Glorot
// uniform, "torch" PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// for weights and biases, "kaiming_normal" N(0, 2/fan_in), "dirac" the
// torch draw with the first min(filters, channels) filters set to the
// identity (airbench), "whiten" zero until InitFromData. BatchNorm starts
// at weight 1, bias 0, running mean 0, running variance 1.
func (n *Network) InitParams(seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]float32, n.nParam)
	for _, p := range n.params {
		v := out[p.Off : p.Off+p.N]
		switch p.Init {
		case "glorot":
			lim := math.Sqrt(6 / float64(p.FanIn+p.FanOut))
			for i := range v {
				v[i] = float32((rng.Float64()*2 - 1) * lim)
			}
		case "torch", "dirac":
			lim := 1 / math.Sqrt(float64(p.FanIn))
			for i := range v {
				v[i] = float32((rng.Float64()*2 - 1) * lim)
			}
			if p.Init == "dirac" {
				dirac(v, p.Shape)
			}
		case "kaiming_normal":
			sd := math.Sqrt(2 / float64(p.FanIn))
			for i := range v {
				v[i] = float32(rng.NormFloat64() * sd)
			}
		case "one":
			for i := range v {
				v[i] = 1
			}
		}
	}
	return out
}

// dirac sets the first min(F, C) filters of a [F, C, K, K] weight to the
// identity (PyTorch's nn.init.dirac_ on w[:C]).
func dirac(v []float32, shape []int) {
	f, c, kh, kw := shape[0], shape[1], shape[2], shape[3]
	for i := 0; i < min(f, c); i++ {
		blk := v[i*c*kh*kw : (i+1)*c*kh*kw]
		clear(blk)
		blk[(i*kh+kh/2)*kw+kw/2] = 1
	}
}

// SetParams uploads a full flat vector (parameters and buffers) and resets
// the optimiser's state and the step count.
func (n *Network) SetParams(p []float32) error {
	if len(p) != n.nParam {
		return fmt.Errorf("parameter vector has %d values, model needs %d", len(p), n.nParam)
	}
	if err := n.b.UploadF32(n.Params, 0, p); err != nil {
		return err
	}
	n.b.Fill(n.M, n.nParam, 0)
	n.b.Fill(n.V, n.nParam, 0)
	n.step = 0
	if n.EMA != nil {
		n.b.Axpby(n.Params, n.EMA, n.nParam, 1, 0)
	}
	return nil
}

// GetParams downloads the flat vector (parameters and buffers).
func (n *Network) GetParams() ([]float32, error) {
	out := make([]float32, n.nParam)
	return out, n.b.DownloadF32(n.Params, 0, out)
}

// Tensor is one named parameter or buffer in PyTorch layout.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Tensors cuts a flat vector into named tensors, in layer order.
func (n *Network) Tensors(flat []float32) []Tensor {
	var out []Tensor
	for _, p := range n.params {
		out = append(out, Tensor{Name: p.Name, Shape: p.Shape, Data: flat[p.Off : p.Off+p.N]})
	}
	return out
}

// batchNorms lists the names of the BatchNorm layers (for their
// num_batches_tracked).
func (n *Network) batchNorms() []string {
	var out []string
	for _, nd := range n.nodes {
		if bn, ok := nd.l.(*batchnorm); ok {
			out = append(out, bn.d.Name)
		}
	}
	return out
}

// LoadBatch gathers images idx (a view of n int32 indices) of the dataset
// (uint8 images and int32 labels on the backend) into the input buffers.
func (n *Network) LoadBatch(images, labels, idx device.Buffer, cnt int) {
	n.b.GatherImages(images, idx, cnt, n.Input.C, n.Input.H*n.Input.W, 1.0/255, n.input, labels, n.labels)
}

// AugmentPad is the default padding of AugmentInput's random crops.
const AugmentPad = 4

// Augmentation says how AugmentInput changes a training batch: a random
// crop of the image padded by Pad pixels (zeros, or a mirror of the image
// with Reflect), and a random horizontal flip unless NoFlip.
type Augmentation struct {
	Pad     int
	Reflect bool
	NoFlip  bool
}

// AugmentInput replaces the loaded batch of cnt images with a random crop
// and flip of each image, by Backend.Augment: the draw of image j depends
// only on (seed, step, j), so a resumed run augments exactly as an
// uninterrupted one. Nothing is allocated or uploaded: the result goes to a
// second input buffer made by Build, which then becomes the input.
func (n *Network) AugmentInput(a Augmentation, seed uint64, step, cnt int) {
	n.b.Augment(n.input, n.augmented, n.Input.C, cnt, n.Input.H, n.Input.W, a.Pad, a.Reflect, a.NoFlip, seed, step)
	n.input, n.augmented = n.augmented, n.input
}

// augmentInputAt is AugmentInput with the step number read from device
// memory (step, I32 [1]) when the op runs: for a captured step.
func (n *Network) augmentInputAt(a Augmentation, seed uint64, step device.Buffer, cnt int) {
	n.b.AugmentAt(n.input, n.augmented, n.Input.C, cnt, n.Input.H, n.Input.W, a.Pad, a.Reflect, a.NoFlip, seed, step)
	n.input, n.augmented = n.augmented, n.input
}

// TranslateInput replaces the loaded batch with one fixed view of every
// image (Backend.Translate): test-time augmentation.
func (n *Network) TranslateInput(cnt, dy, dx int, flip bool) {
	n.b.Translate(n.input, n.augmented, n.Input.C, cnt, n.Input.H, n.Input.W, dy, dx, flip)
	n.input, n.augmented = n.augmented, n.input
}

// Forward runs the loaded batch of cnt images through the network and
// returns the logits [cnt, Classes]. In training mode BatchNorm uses the
// batch's statistics (and updates the running ones) and dropout drops.
func (n *Network) Forward(cnt int, train bool) device.Buffer {
	n.pass = pass{train: train, update: train && !n.noUpdate, seed: n.seed + n.salt, step: n.step, stepAt: n.stepAt, fuse: !n.unfused}
	p := &n.pass
	if n.half != nil {
		n.b.Convert(n.bound, n.half, n.nParam) // the master weights as the GEMMs read them
	}
	for i, nd := range n.nodes {
		x := n.input
		if j := nd.inputs[0]; j >= 0 {
			x = n.outs[j]
		}
		if a, ok := nd.l.(*add); ok {
			a.x2 = n.input
			if j := nd.inputs[1]; j >= 0 {
				a.x2 = n.outs[j]
			}
		}
		n.outs[i] = nd.l.forward(n.b, x, cnt, p)
	}
	return n.outs[len(n.nodes)-1]
}

// Loss adds the batch's loss sum and correct count to stats (F32 [2]) and,
// when grad is set, writes the logit gradient of the mean loss, with label
// smoothing as PyTorch's CrossEntropyLoss(label_smoothing=smoothing).
func (n *Network) Loss(logits device.Buffer, cnt int, grad bool, smoothing float32, stats device.Buffer) {
	var dl device.Buffer
	if grad {
		dl = n.dlogits
	}
	n.b.SoftmaxXent(logits, n.labels, cnt, n.Classes, 1/float32(cnt), smoothing, dl, stats)
}

// Backward fills Grads from the logit gradient written by Loss, walking
// the nodes backwards; a node read by several layers gets the sum of
// their gradients. Each layer's backward follows the mode of its last
// forward pass (an evaluation-mode BatchNorm is a fixed per-channel affine
// map).
func (n *Network) Backward(cnt int) { n.backward(cnt, false, nil) }

// backward is Backward. With inputGrad the layers that read the network's
// input compute their input gradient too (they skip it in training), and
// the sum lands in dinput. tap, when set, sees each node's output gradient
// as soon as it is complete: before the node's own backward, which may
// overwrite it.
func (n *Network) backward(cnt int, inputGrad bool, tap func(i int, dy device.Buffer)) {
	for i := range n.grads {
		n.grads[i], n.started[i] = nil, false
	}
	n.dinputSet = false
	last := len(n.nodes) - 1
	n.grads[last] = n.dlogits
	for i := last; i >= 0; i-- {
		dy := n.grads[i]
		if dy == nil {
			continue // nothing downstream reads this layer
		}
		if tap != nil {
			tap(i, dy)
		}
		nd := n.nodes[i]
		dx := nd.l.backward(n.b, dy, cnt, inputGrad || n.needDx(nd))
		n.contribute(nd.inputs[0], dx, cnt)
		if a, ok := nd.l.(*add); ok && (inputGrad || nd.inputs[1] >= 0) {
			n.contribute(nd.inputs[1], a.secondGrad(n.b), cnt)
		}
	}
}

func (n *Network) contribute(j int, g device.Buffer, cnt int) {
	if g == nil {
		return
	}
	if j < 0 {
		n.contributeInput(g, cnt)
		return
	}
	if n.fanout[j] == 1 {
		n.grads[j] = g
		return
	}
	size := cnt * n.nodes[j].l.out().Size()
	if !n.started[j] {
		n.b.Axpby(g, n.acc[j], size, 1, 0)
		n.started[j], n.grads[j] = true, n.acc[j]
		return
	}
	n.b.Add(n.acc[j], g, n.acc[j], size, false)
}

// contributeInput adds a gradient of the network's input to dinput (a
// copy even for one reader: the layer may reuse its buffer).
func (n *Network) contributeInput(g device.Buffer, cnt int) {
	if n.dinput == nil {
		return
	}
	size := cnt * n.Input.Size()
	if !n.dinputSet {
		n.b.Axpby(g, n.dinput, size, 1, 0)
		n.dinputSet = true
		return
	}
	n.b.Add(n.dinput, g, n.dinput, size, false)
}

// TrainStep is one full step on the loaded batch: forward, loss, backward,
// and the optimiser's update at learning rate lr.
func (n *Network) TrainStep(cnt int, o *Optimizer, lr float64, smoothing float32, stats device.Buffer) {
	logits := n.Forward(cnt, true)
	n.Loss(logits, cnt, true, smoothing, stats)
	n.Backward(cnt)
	o.Step(n, lr)
}

// Predict runs cnt images (NCHW floats, already scaled, cnt <= MaxBatch)
// through the network in evaluation mode and returns the softmax
// probabilities [cnt, Classes].
func (n *Network) Predict(x []float32, cnt int) ([]float32, error) {
	logits, err := n.Logits(x, cnt)
	if err != nil {
		return nil, err
	}
	for i := 0; i < cnt; i++ {
		softmaxRow(logits[i*n.Classes : (i+1)*n.Classes])
	}
	return logits, nil
}

// Logits is Predict without the softmax: the network's outputs [cnt,
// Classes] in evaluation mode.
func (n *Network) Logits(x []float32, cnt int) ([]float32, error) {
	if cnt < 1 || cnt > n.maxN {
		return nil, fmt.Errorf("predict: %d images, the network takes 1 to %d at a time", cnt, n.maxN)
	}
	size := n.Input.Size()
	if len(x) != cnt*size {
		return nil, fmt.Errorf("predict: %d floats for %d images of %s", len(x), cnt, n.Input)
	}
	hw := n.Input.H * n.Input.W
	cnhw := make([]float32, len(x))
	for i := 0; i < cnt; i++ {
		for c := 0; c < n.Input.C; c++ {
			copy(cnhw[(c*cnt+i)*hw:(c*cnt+i+1)*hw], x[(i*n.Input.C+c)*hw:])
		}
	}
	if err := n.b.UploadF32(n.input, 0, cnhw); err != nil {
		return nil, err
	}
	logits := make([]float32, cnt*n.Classes)
	if err := n.b.DownloadF32(n.Forward(cnt, false), 0, logits); err != nil {
		return nil, err
	}
	return logits, nil
}

func softmaxRow(row []float32) {
	mx := row[0]
	for _, v := range row {
		mx = max(mx, v)
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v - mx))
	}
	for j, v := range row {
		row[j] = float32(math.Exp(float64(v-mx)) / s)
	}
}

// FixedBytes is the memory Build allocates whatever the batch: the flat
// parameters, their gradients and two optimiser moments (an EMA adds one
// more).
func (n *Network) FixedBytes() int { return 16 * n.nParam }

// BytesPerImage estimates the device memory one image of a batch needs:
// every activation, gradient, im2col and index buffer Build allocates per
// image, with every convolution run as im2col and GEMM. Parameters and the
// dataset come on top.
func (n *Network) BytesPerImage() int { return n.BytesPerImageOn(nil) }

// BytesPerImageOn is BytesPerImage on backend b, which may run some
// convolutions its own way (PlanConv) with a workspace of another size.
func (n *Network) BytesPerImageOn(b device.Backend) int {
	floats := 2*n.Input.Size() + n.Classes // input (and its augmented twin), logit gradient
	for i, nd := range n.nodes {
		if c, ok := nd.l.(*conv); ok && b != nil {
			floats += c.floatsPerImageOn(b)
		} else {
			floats += nd.l.floatsPerImage()
		}
		if n.fanout[i] > 1 {
			floats += nd.l.out().Size()
		}
	}
	return 4 * floats
}
