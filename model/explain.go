package model

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/trainer-go/trainer/device"
)

// Explanations of one prediction, computed on the network's backend: one
// forward pass in evaluation mode, then one backward pass of a one-hot
// logit gradient (the score is the class's logit, before the softmax, as
// in the Grad-CAM paper and pytorch-grad-cam) through the same layers that
// train, in evaluation mode, down to the input. Only the last steps, on a
// few thousand floats, run on the host: Grad-CAM's weighted sum of the
// layer's activations, the upsampling and the normalisation.

// Explanation is why the network scores an image as it does.
type Explanation struct {
	Class  int       // the explained class
	Logits []float32 // the scores before the softmax
	Probs  []float32 // softmax(Logits), as Predict gives them

	Layer       string    // Grad-CAM's layer
	Shape       Shape     // its output shape (C x H x W)
	Activations []float32 // the layer's output A, C x H x W
	LayerGrad   []float32 // dscore/dA, C x H x W
	Weights     []float32 // Grad-CAM's alpha_k: the spatial mean of channel k of LayerGrad
	Coarse      []float32 // ReLU(sum_k alpha_k A_k), H x W, not normalised
	CAM         []float32 // Coarse upsampled bilinearly to the input's size, scaled to [0, 1] (min to max)

	InputGrad []float32 // dscore/dx of the network's input, C x H x W
	Saliency  []float32 // max over channels of |InputGrad|, input H x W, divided by its maximum
}

// ConvLayers names the network's conv layers, first to last.
func (n *Network) ConvLayers() []string {
	var out []string
	for _, nd := range n.nodes {
		if _, ok := nd.l.(*conv); ok {
			out = append(out, nd.l.desc().Name)
		}
	}
	return out
}

// CAMLayer resolves Explain's layer: "" is the last conv layer (the last
// layer with image output when there is no conv); a name must be a layer
// with C x H x W output, not a flat vector.
func (n *Network) CAMLayer(name string) (string, error) {
	i, err := n.camLayer(name)
	if err != nil {
		return "", err
	}
	return n.nodes[i].l.desc().Name, nil
}

func (n *Network) camLayer(name string) (int, error) {
	if name == "" {
		return n.defaultCAMLayer()
	}
	for i, nd := range n.nodes {
		if nd.l.desc().Name != name {
			continue
		}
		if s := nd.l.out(); s.Flat {
			return -1, fmt.Errorf("layer %q (%s) gives a flat vector of %d, not images; Grad-CAM needs a layer with CxHxW output: %s",
				name, nd.l.desc().Type, s.C, n.spatialHint())
		}
		return i, nil
	}
	return -1, fmt.Errorf("the model has no layer %q: %s", name, n.spatialHint())
}

func (n *Network) defaultCAMLayer() (int, error) {
	last := -1
	for i, nd := range n.nodes {
		if _, ok := nd.l.(*conv); ok {
			last = i
		}
	}
	if last >= 0 {
		return last, nil
	}
	for i := len(n.nodes) - 1; i >= 0; i-- {
		if !n.nodes[i].l.out().Flat {
			return i, nil
		}
	}
	return -1, errors.New("the model has no layer with image output (CxHxW) for Grad-CAM")
}

// spatialHint lists the layers Grad-CAM can use: the conv layers, or every
// layer with image output when there is no conv.
func (n *Network) spatialHint() string {
	if c := n.ConvLayers(); len(c) > 0 {
		return "its conv layers are " + strings.Join(c, ", ")
	}
	var s []string
	for _, nd := range n.nodes {
		if !nd.l.out().Flat {
			s = append(s, nd.l.desc().Name)
		}
	}
	if len(s) == 0 {
		return "it has no layer with image output"
	}
	return "its layers with image output are " + strings.Join(s, ", ")
}

// Explain explains the network's score of class (-1: the most likely one)
// for one image x (C x H x W floats, scaled as Predict takes them), with
// Grad-CAM over the output of layer ("": see CAMLayer) and the gradient of
// the score with respect to the input. The network must be built (any
// batch size); it runs in evaluation mode and leaves the parameters alone
// (the gradient buffers are overwritten).
func (n *Network) Explain(x []float32, class int, layer string) (*Explanation, error) {
	if n.b == nil {
		return nil, errors.New("explain: the network is not built on a backend")
	}
	if len(x) != n.Input.Size() {
		return nil, fmt.Errorf("explain: %d floats for one image of %s", len(x), n.Input)
	}
	if class < -1 || class >= n.Classes {
		return nil, fmt.Errorf("explain: class %d: the model has classes 0 to %d", class, n.Classes-1)
	}
	li, err := n.camLayer(layer)
	if err != nil {
		return nil, err
	}
	// Grad-CAM reads a layer's output and its gradient as the unfused
	// network has them (a conv's after its ReLU).
	defer n.SetFusion(!n.unfused)
	n.SetFusion(false)
	if n.dinput == nil {
		if n.dinput, err = n.b.Alloc("input gradient", device.F32, n.Input.Size()); err != nil {
			return nil, err
		}
		n.owned = append(n.owned, n.dinput) // freed by Close
	}
	e, err := n.explainForward(x, class, li)
	if err != nil {
		return nil, err
	}
	if err := n.explainBackward(e, li); err != nil {
		return nil, err
	}
	if err := e.finish(n.Input); err != nil {
		return nil, err
	}
	return e, nil
}

// explainForward runs x in evaluation mode and keeps the logits and layer
// li's output.
func (n *Network) explainForward(x []float32, class, li int) (*Explanation, error) {
	// One image: CHW is the backend's CNHW.
	if err := n.b.UploadF32(n.input, 0, x); err != nil {
		return nil, err
	}
	e := &Explanation{Logits: make([]float32, n.Classes), Layer: n.nodes[li].l.desc().Name, Shape: n.nodes[li].l.out()}
	if err := n.b.DownloadF32(n.Forward(1, false), 0, e.Logits); err != nil {
		return nil, err
	}
	for _, v := range e.Logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("explain: the model's scores are not finite (%v) for this image: its weights or running statistics hold NaN or Inf", v)
		}
	}
	e.Probs = append([]float32(nil), e.Logits...)
	softmaxRow(e.Probs)
	e.Class = class
	if class < 0 {
		e.Class = argmax(e.Logits)
	}
	e.Activations = make([]float32, e.Shape.Size())
	return e, n.b.DownloadF32(n.outs[li], 0, e.Activations)
}

// explainBackward runs the one-hot logit gradient of e.Class back to the
// input, keeping the gradient of layer li's output on the way.
func (n *Network) explainBackward(e *Explanation, li int) error {
	onehot := make([]float32, n.Classes)
	onehot[e.Class] = 1
	if err := n.b.UploadF32(n.dlogits, 0, onehot); err != nil {
		return err
	}
	e.LayerGrad = make([]float32, e.Shape.Size())
	var tapErr error
	n.backward(1, true, func(i int, dy device.Buffer) {
		if i == li {
			tapErr = n.b.DownloadF32(dy, 0, e.LayerGrad)
		}
	})
	if tapErr != nil {
		return tapErr
	}
	e.InputGrad = make([]float32, n.Input.Size())
	if !n.dinputSet { // no layer reads the input: nothing depends on it
		return nil
	}
	return n.b.DownloadF32(n.dinput, 0, e.InputGrad)
}

// finish computes Grad-CAM's map and the saliency map from the gradients.
func (e *Explanation) finish(in Shape) error {
	s := e.Shape
	hw := s.H * s.W
	e.Weights = make([]float32, s.C)
	sum := make([]float64, hw)
	for k := 0; k < s.C; k++ {
		var g float64
		for _, v := range e.LayerGrad[k*hw : (k+1)*hw] {
			g += float64(v)
		}
		alpha := g / float64(hw)
		e.Weights[k] = float32(alpha)
		for p, a := range e.Activations[k*hw : (k+1)*hw] {
			sum[p] += alpha * float64(a)
		}
	}
	e.Coarse = make([]float32, hw)
	for p, v := range sum {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("explain: the Grad-CAM map of layer %q is not finite: the gradients overflowed", e.Layer)
		}
		e.Coarse[p] = float32(max(v, 0))
	}
	e.CAM = normalizeMinMax(UpsampleBilinear(e.Coarse, s.H, s.W, in.H, in.W))
	e.Saliency = normalizeMax(channelMaxAbs(e.InputGrad, in.C, in.H*in.W))
	return nil
}

// UpsampleBilinear resizes an h x w map to oh x ow by bilinear
// interpolation with pixel centres aligned (PyTorch's
// F.interpolate(mode="bilinear", align_corners=False), OpenCV's
// INTER_LINEAR): output pixel (y, x) samples the input at ((y+0.5)*h/oh -
// 0.5, (x+0.5)*w/ow - 0.5), clamped to the image.
func UpsampleBilinear(src []float32, h, w, oh, ow int) []float32 {
	ys, xs := linearTaps(h, oh), linearTaps(w, ow)
	out := make([]float32, oh*ow)
	for y, ty := range ys {
		for x, tx := range xs {
			r0, r1 := src[ty.i0*w:], src[ty.i1*w:]
			top := (1-tx.f)*float64(r0[tx.i0]) + tx.f*float64(r0[tx.i1])
			bot := (1-tx.f)*float64(r1[tx.i0]) + tx.f*float64(r1[tx.i1])
			out[y*ow+x] = float32((1-ty.f)*top + ty.f*bot)
		}
	}
	return out
}

// tap is one output coordinate's two source indices and the weight of the
// second.
type tap struct {
	i0, i1 int
	f      float64
}

func linearTaps(n, on int) []tap {
	t := make([]tap, on)
	for o := range t {
		s := max((float64(o)+0.5)*float64(n)/float64(on)-0.5, 0)
		i0 := min(int(s), n-1)
		t[o] = tap{i0: i0, i1: min(i0+1, n-1), f: s - float64(i0)}
		if i0 == n-1 {
			t[o].f = 0
		}
	}
	return t
}

// channelMaxAbs is max over c channels of |x| per pixel (x is C x hw).
func channelMaxAbs(x []float32, c, hw int) []float32 {
	out := make([]float32, hw)
	for k := 0; k < c; k++ {
		for p, v := range x[k*hw : (k+1)*hw] {
			out[p] = max(out[p], float32(math.Abs(float64(v))))
		}
	}
	return out
}

// normalizeMinMax maps v linearly onto [0, 1] in place, its minimum to 0
// and its maximum to 1, as pytorch-grad-cam scales its maps; a constant
// map (no place stands out) becomes all zero.
func normalizeMinMax(v []float32) []float32 {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	for i, x := range v {
		if hi > lo {
			v[i] = (x - lo) / (hi - lo)
		} else {
			v[i] = 0
		}
	}
	return v
}

// normalizeMax divides v (non-negative) by its maximum in place; an
// all-zero map stays zero.
func normalizeMax(v []float32) []float32 {
	var m float32
	for _, x := range v {
		m = max(m, x)
	}
	if m > 0 {
		for i := range v {
			v[i] /= m
		}
	}
	return v
}

// argmax is the index of the first largest value.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
