// Package model builds networks from a layer spec and trains them on any
// device.Backend. It never sees host memory of a buffer and cannot tell which
// backend runs it.
//
// Parameters, gradients and both Adam moments each live in one flat buffer
// (llm.c style) viewed per layer, so one Adam launch updates everything and a
// checkpoint is one tensor per parameter cut from one download.
package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/trainer-go/trainer/device"
)

// Network is a built model on a backend.
type Network struct {
	Spec    string
	Input   Shape
	Classes int

	b      device.Backend
	layers []layer
	params []*param
	nParam int
	maxN   int

	Params, Grads, M, V device.Buffer // flat, nParam each

	input, labels device.Buffer // gathered batch: CNHW images, int32 labels
	augmented     device.Buffer // AugmentInput's output; swapped with input
	dlogits       device.Buffer
	step          int // Adam steps taken
}

// Config is what Adam needs (Keras defaults: 1e-3, 0.9, 0.999, 1e-7).
type Config struct {
	LR, Beta1, Beta2, Eps float64
}

// DefaultAdam is Keras's Adam.
var DefaultAdam = Config{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7}

// maxParams bounds parameter counts and per-image activation sizes, so
// buffer sizes stay well inside int32 element counts for the GPU kernels.
const maxParams = 1 << 28

// Plan parses spec and infers every shape from input, without a backend.
func Plan(spec string, input Shape) (*Network, error) {
	specs, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	n := &Network{Spec: spec, Input: input}
	s := input
	nConv, nDense := 0, 0
	for _, ls := range specs {
		var l layer
		switch ls.Kind {
		case "conv":
			nConv++
			l, err = newConv(ls, fmt.Sprintf("conv%d", nConv), s)
		case "maxpool", "avgpool":
			l, err = newPool(ls, s)
		case "relu":
			l = &relu{ls: ls, s: s}
		case "flatten":
			l = &flatten{ls: ls, is: s}
		case "dense":
			nDense++
			l, err = newDense(ls, fmt.Sprintf("fc%d", nDense), s)
		}
		if err != nil {
			return nil, &SpecError{Msg: fmt.Sprintf("input %s: %v", input, err), Err: err}
		}
		n.layers = append(n.layers, l)
		for _, p := range l.params() {
			p.Off = n.nParam
			n.nParam += p.N
			n.params = append(n.params, p)
		}
		s = l.out()
		if n.nParam > maxParams || s.Size() > maxParams {
			return nil, &SpecError{Msg: fmt.Sprintf("layer %q makes the model too large (%d parameters, %d values per image; at most %d each)", l.spec().Token, n.nParam, s.Size(), maxParams)}
		}
	}
	n.Classes = s.C
	return n, nil
}

// NumParams is the number of trainable parameters.
func (n *Network) NumParams() int { return n.nParam }

// Backend is the backend the network was built on (nil before Build).
func (n *Network) Backend() device.Backend { return n.b }

// MaxBatch is the largest batch the buffers hold.
func (n *Network) MaxBatch() int { return n.maxN }

// Steps is the number of optimiser steps taken.
func (n *Network) Steps() int { return n.step }

// FlopsPerImage is the GEMM work of one training step per image.
func (n *Network) FlopsPerImage() float64 {
	var f float64
	for i, l := range n.layers {
		f += l.flops(i > 0)
	}
	return f
}

// LayerRow is one row of a summary table.
type LayerRow struct {
	Name   string
	Output Shape
	Params int
}

// Summary lists the layers with output shapes and parameter counts.
func (n *Network) Summary() []LayerRow {
	var rows []LayerRow
	for _, l := range n.layers {
		r := LayerRow{Name: l.spec().Token, Output: l.out()}
		for _, p := range l.params() {
			r.Params += p.N
		}
		rows = append(rows, r)
	}
	return rows
}

// Build allocates every buffer on b for batches of up to maxN and
// initialises the weights (Glorot uniform, zero biases) from seed.
func (n *Network) Build(b device.Backend, maxN int, seed uint64) error {
	if maxN < 1 {
		return fmt.Errorf("batch size %d: must be at least 1", maxN)
	}
	n.b, n.maxN = b, maxN
	var err error
	n.Params = alloc(b, "parameters", n.nParam, &err)
	n.Grads = alloc(b, "gradients", n.nParam, &err)
	n.M = alloc(b, "Adam first moments", n.nParam, &err)
	n.V = alloc(b, "Adam second moments", n.nParam, &err)
	n.input = alloc(b, "input batch", maxN*n.Input.Size(), &err)
	n.augmented = alloc(b, "augmented input batch", maxN*n.Input.Size(), &err)
	n.dlogits = alloc(b, "logit gradients", maxN*n.Classes, &err)
	if err != nil {
		return err
	}
	if n.labels, err = b.Alloc("label batch", device.I32, maxN); err != nil {
		return err
	}
	for _, l := range n.layers {
		if err := l.setup(b, maxN); err != nil {
			return err
		}
		l.bind(b, n.Params, n.Grads)
	}
	return n.SetParams(n.InitParams(seed))
}

// InitParams draws Keras-style initial weights: Glorot uniform in
// [-sqrt(6/(fanIn+fanOut)), +...] for weights, zero for biases, in layer order
// from a PCG generator seeded with seed.
func (n *Network) InitParams(seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]float32, n.nParam)
	for _, p := range n.params {
		if p.FanIn == 0 {
			continue
		}
		lim := math.Sqrt(6 / float64(p.FanIn+p.FanOut))
		for i := range p.N {
			out[p.Off+i] = float32((rng.Float64()*2 - 1) * lim)
		}
	}
	return out
}

// SetParams uploads a full flat parameter vector and resets Adam.
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
	return nil
}

// GetParams downloads the flat parameter vector.
func (n *Network) GetParams() ([]float32, error) {
	out := make([]float32, n.nParam)
	return out, n.b.DownloadF32(n.Params, 0, out)
}

// Tensor is one named parameter in PyTorch layout.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Tensors cuts a flat parameter vector into named tensors.
func (n *Network) Tensors(flat []float32) []Tensor {
	var out []Tensor
	for _, p := range n.params {
		out = append(out, Tensor{Name: p.Name, Shape: p.Shape, Data: flat[p.Off : p.Off+p.N]})
	}
	return out
}

// LoadBatch gathers images idx (a view of n int32 indices) of the dataset
// (uint8 images and int32 labels on the backend) into the input buffers.
func (n *Network) LoadBatch(images, labels, idx device.Buffer, cnt int) {
	n.b.GatherImages(images, idx, cnt, n.Input.C, n.Input.H*n.Input.W, 1.0/255, n.input, labels, n.labels)
}

// AugmentPad is the zero padding of AugmentInput's random crops.
const AugmentPad = 4

// AugmentInput replaces the loaded batch of cnt images with a random crop
// (AugmentPad pixels of zero padding) and horizontal flip of each image, by
// Backend.Augment: the draw of image j depends only on (seed, step, j), so a
// resumed run augments exactly as an uninterrupted one. Nothing is
// allocated or uploaded: the result goes to a second input buffer made by
// Build, which then becomes the input.
func (n *Network) AugmentInput(seed uint64, step, cnt int) {
	n.b.Augment(n.input, n.augmented, n.Input.C, cnt, n.Input.H, n.Input.W, AugmentPad, false, false, seed, step)
	n.input, n.augmented = n.augmented, n.input
}

// Forward runs the loaded batch of cnt images through the network and
// returns the logits [cnt, Classes].
func (n *Network) Forward(cnt int) device.Buffer {
	x := n.input
	for _, l := range n.layers {
		x = l.forward(n.b, x, cnt)
	}
	return x
}

// Loss adds the batch's loss sum and correct count to stats (F32 [2]) and,
// when grad is set, writes the logit gradient of the mean loss.
func (n *Network) Loss(logits device.Buffer, cnt int, grad bool, stats device.Buffer) {
	var dl device.Buffer
	if grad {
		dl = n.dlogits
	}
	n.b.SoftmaxXent(logits, n.labels, cnt, n.Classes, 1/float32(cnt), 0, dl, stats)
}

// Backward fills Grads from the logit gradient written by Loss.
func (n *Network) Backward(cnt int) {
	d := n.dlogits
	for i := len(n.layers) - 1; i >= 0; i-- {
		d = n.layers[i].backward(n.b, d, cnt, i > 0)
	}
}

// AdamStep applies one Adam update from Grads.
func (n *Network) AdamStep(c Config) {
	n.step++
	t := float64(n.step)
	lrT := c.LR * math.Sqrt(1-math.Pow(c.Beta2, t)) / (1 - math.Pow(c.Beta1, t))
	n.b.Adam(n.Params, n.Grads, n.M, n.V, n.nParam, float32(lrT), float32(c.Beta1), float32(c.Beta2), float32(c.Eps), 0, 0)
}

// TrainStep is one full step on the loaded batch: forward, loss, backward, Adam.
func (n *Network) TrainStep(cnt int, c Config, stats device.Buffer) {
	logits := n.Forward(cnt)
	n.Loss(logits, cnt, true, stats)
	n.Backward(cnt)
	n.AdamStep(c)
}

// Predict runs cnt images (NCHW floats, already scaled, cnt <= MaxBatch)
// through the network and returns the softmax probabilities [cnt, Classes].
func (n *Network) Predict(x []float32, cnt int) ([]float32, error) {
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
	if err := n.b.DownloadF32(n.Forward(cnt), 0, logits); err != nil {
		return nil, err
	}
	for i := 0; i < cnt; i++ {
		row := logits[i*n.Classes : (i+1)*n.Classes]
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
	return logits, nil
}

// FixedBytes is the memory Build allocates whatever the batch: the
// parameters, their gradients and both Adam moments.
func (n *Network) FixedBytes() int { return 16 * n.nParam }

// BytesPerImage estimates the device memory one image of a batch needs:
// every activation, gradient, im2col and index buffer Build allocates per
// image. Parameters and the dataset come on top.
func (n *Network) BytesPerImage() int {
	floats := 2*n.Input.Size() + n.Classes // input (and its augmented twin), logit gradient
	for _, l := range n.layers {
		in, out := l.in().Size(), l.out().Size()
		switch l := l.(type) {
		case *conv:
			g := l.geom(1)
			floats += 2*g.ColRows()*g.ColCols() + in + out
		case *pool:
			floats += in + 2*out
		default:
			floats += in + out
		}
	}
	return 4 * floats
}
