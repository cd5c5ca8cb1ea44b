package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// Explain and evaluation-mode backward are checked against central
// differences of a float64 evaluation-mode reference network (refEval):
// the input gradient by perturbing each input value, the Grad-CAM layer's
// gradient by perturbing each of its activations and running the rest of
// the reference network from there.

// refBatchNormEval is BatchNorm with the running statistics.
func refBatchNormEval(l *batchnorm, x, p []float64, n int) []float64 {
	c, hw := l.s.C, l.s.H*l.s.W
	if l.s.Flat {
		hw = 1
	}
	y := make([]float64, len(x))
	for i := range y {
		ch := i / hw % c
		inv := 1 / math.Sqrt(p[l.runVar.Off+ch]+float64(l.eps))
		y[i] = refAct(l.act, (x[i]-p[l.runMean.Off+ch])*inv*p[l.weight.Off+ch]+p[l.bias.Off+ch])
	}
	return y
}

// refEval runs the network in float64 in evaluation mode on n images and
// returns every node's output; a node in override outputs that instead.
func refEval(net *Network, x, p []float64, n int, override map[int][]float64) [][]float64 {
	outs := make([][]float64, len(net.nodes))
	in := func(j int) []float64 {
		if j < 0 {
			return x
		}
		return outs[j]
	}
	for i, nd := range net.nodes {
		switch l := nd.l.(type) {
		case *batchnorm:
			outs[i] = refBatchNormEval(l, in(nd.inputs[0]), p, n)
		case *dropout:
			outs[i] = in(nd.inputs[0])
		case *add:
			outs[i] = refLayer(l, in(nd.inputs[0]), p, n, in(nd.inputs[1]))
		default:
			outs[i] = refLayer(l, in(nd.inputs[0]), p, n)
		}
		if o, ok := override[i]; ok {
			outs[i] = o
		}
	}
	return outs
}

// randomEvalParams draws the network's parameters (its own initialisation)
// and moves every BatchNorm away from the identity (perturbBN).
func randomEvalParams(net *Network, rng *rand.Rand) []float64 {
	p := f64s(net.InitParams(rng.Uint64()))
	for _, nd := range net.nodes {
		if l, ok := nd.l.(*batchnorm); ok {
			perturbBN(l, p, rng)
		}
	}
	return p
}

// perturbBN draws BatchNorm's running means in [-0.5, 0.5], variances in
// [0.3, 2], weights in [0.5, 1.5] and biases in [-0.2, 0.4] (mostly
// positive, so that ReLUs after them keep some values).
func perturbBN(l *batchnorm, p []float64, rng *rand.Rand) {
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
	for c := 0; c < l.s.C; c++ {
		p[l.runMean.Off+c] = u(-0.5, 0.5)
		p[l.runVar.Off+c] = u(0.3, 2)
		p[l.weight.Off+c] = u(0.5, 1.5)
		p[l.bias.Off+c] = u(-0.3, 0.3)
	}
}

// centralDiff is d f/d v[i] by central differences of step h.
func centralDiff(v []float64, i int, f func() float64) float64 {
	const h = 1e-6
	old := v[i]
	v[i] = old + h
	lp := f()
	v[i] = old - h
	lm := f()
	v[i] = old
	return (lp - lm) / (2 * h)
}

// checkVec fails when got and want differ by more than tol times want's
// largest magnitude (plus 1e-7): float32 passes of a few layers against
// float64.
func checkVec(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var scale float64
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*scale+1e-7 || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %g, reference %g (largest reference magnitude %g)", what, i, got[i], want[i], scale)
		}
	}
}

// TestBatchNormEvalGradient: BatchNorm's backward after an evaluation-mode
// forward is that of the fixed affine map of the running statistics: dx,
// dgamma and dbeta against central differences of L = sum(r*y).
func TestBatchNormEvalGradient(t *testing.T) {
	img := func(c, h, w int) Shape { return Shape{C: c, H: h, W: w} }
	f := false
	cases := []struct {
		name string
		d    LayerDesc
		in   Shape
		n    int
	}{
		{"image", LayerDesc{Type: "batchnorm"}, img(3, 4, 5), 3},
		{"image-relu", LayerDesc{Type: "batchnorm", Act: "relu"}, img(2, 3, 3), 2},
		{"image-gelu", LayerDesc{Type: "batchnorm", Act: "gelu"}, img(2, 5, 3), 1},
		{"flat", LayerDesc{Type: "batchnorm"}, Shape{C: 5, H: 1, W: 1, Flat: true}, 4},
		{"frozen-weight", LayerDesc{Type: "batchnorm", TrainWeight: &f}, img(2, 3, 4), 2},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 77))
			l := layerFor(t, c.d, c.in).(*batchnorm)
			b := newCPU(t, 2)
			np := 0
			for _, pr := range l.params() {
				pr.Off, np = np, np+pr.N
			}
			p := make([]float64, np)
			perturbBN(l, p, rng)
			x := randVec(rng, c.n*c.in.Size(), 2)
			r := randVec(rng, c.n*c.in.Size(), 1)
			if err := l.setup(b, c.n+1); err != nil {
				t.Fatal(err)
			}
			params, _ := b.Alloc("p", device.F32, np)
			grads, _ := b.Alloc("g", device.F32, np)
			b.UploadF32(params, 0, f32s(p))
			l.bind(b, params, grads)
			xb, _ := b.Alloc("x", device.F32, (c.n+1)*c.in.Size())
			b.UploadF32(xb, 0, toBackendLayout(x, c.n, c.in))
			// A training pass first, so that stale batch statistics would show.
			l.forward(b, xb, c.n, &pass{train: true})
			y := l.forward(b, xb, c.n, &pass{})
			yh := make([]float32, c.n*c.in.Size())
			b.DownloadF32(y, 0, yh)
			checkVec(t, "y", f32s(fromBackendLayout(yh, c.n, c.in)), refBatchNormEval(l, x, p, c.n), 1e-6)

			dy, _ := b.Alloc("dy", device.F32, (c.n+1)*c.in.Size())
			b.UploadF32(dy, 0, toBackendLayout(r, c.n, c.in))
			dxh := make([]float32, c.n*c.in.Size())
			b.DownloadF32(l.backward(b, dy, c.n, true), 0, dxh)
			dp := make([]float32, np)
			b.DownloadF32(grads, 0, dp)

			loss := func() float64 {
				var s float64
				for i, v := range refBatchNormEval(l, x, p, c.n) {
					s += v * r[i]
				}
				return s
			}
			want := make([]float64, len(x))
			for i := range x {
				want[i] = centralDiff(x, i, loss)
			}
			checkVec(t, "dL/dx", f32s(fromBackendLayout(dxh, c.n, c.in)), want, 1e-5)
			for _, pr := range []*param{l.weight, l.bias} {
				want := make([]float64, pr.N)
				for i := range want {
					want[i] = centralDiff(p, pr.Off+i, loss)
				}
				checkVec(t, "dL/d"+pr.Name, dp[pr.Off:pr.Off+pr.N], want, 1e-5)
			}
		})
	}
}

// explainNets are small networks with every kind of layer Grad-CAM meets:
// conv (3x3, 1x1, strided, GELU), BatchNorm (image and flat, fused
// activations), relu, maxpool, residual adds (one of them reading the
// network's input, which also feeds two other layers), dropout, global
// average pooling, flatten and dense.
var explainNets = []struct {
	name, json string
	in         Shape
	layers     []string // Grad-CAM layers to check besides the default
}{
	{"resnet-like", "testdata/tiny-resnet.json", Shape{C: 2, H: 6, W: 6}, []string{"block.add", "bn1"}},
	{"input-fanout", `{"layers": [
		{"name": "stem", "type": "conv", "filters": 2, "kernel": 3, "padding": 1},
		{"name": "stem_bn", "type": "batchnorm", "act": "relu"},
		{"name": "res", "type": "add", "inputs": ["stem_bn", "input"], "act": "relu"},
		{"name": "skip", "type": "conv", "input": "input", "filters": 2, "kernel": 1, "bias": false},
		{"name": "merge", "type": "add", "inputs": ["res", "skip"]},
		{"name": "pool", "type": "maxpool", "kernel": 2},
		{"name": "conv2", "type": "conv", "filters": 4, "kernel": 3, "padding": 1, "act": "gelu"},
		{"name": "bn2", "type": "batchnorm"},
		{"name": "relu", "type": "relu"},
		{"name": "drop", "type": "dropout", "p": 0.3},
		{"name": "flatten", "type": "flatten"},
		{"name": "bnf", "type": "batchnorm", "act": "relu"},
		{"name": "fc", "type": "dense", "units": 4}
	]}`, Shape{C: 2, H: 7, W: 6}, []string{"merge", "relu"}},
}

func planExplainNet(t *testing.T, spec string, in Shape) *Network {
	t.Helper()
	if spec[0] != '{' {
		net, err := Plan(spec, in)
		if err != nil {
			t.Fatal(err)
		}
		return net
	}
	d, err := ParseDesc([]byte(spec), "test model")
	if err != nil {
		t.Fatal(err)
	}
	net, err := PlanDesc("test", d, in)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// TestExplainMatchesFiniteDifferences checks every part of an Explanation
// on random parameters and images: the logits, the layer's activations,
// dscore/dA (differences through the rest of the reference network), the
// input gradient, Grad-CAM's weights and map, their upsampling (against
// a triangle-filter formulation of bilinear interpolation) and the
// saliency map.
func TestExplainMatchesFiniteDifferences(t *testing.T) {
	for ni, tc := range explainNets {
		t.Run(tc.name, func(t *testing.T) {
			net := planExplainNet(t, tc.json, tc.in)
			b := newCPU(t, 2)
			if err := net.Build(b, 3, 1); err != nil { // larger than the one image on purpose
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(ni), 5))
			for trial, layer := range append([]string{""}, tc.layers...) {
				// A training pass (and backward) first, as a stale state would
				// show; it updates the running statistics, so the parameters
				// are set after it.
				b.UploadF32(net.input, 0, f32s(randVec(rng, 3*tc.in.Size(), 1)))
				net.Forward(3, true)
				net.Backward(3)
				p := randomEvalParams(net, rng)
				if err := net.SetParams(f32s(p)); err != nil {
					t.Fatal(err)
				}
				x := drawUntied(t, net, p, rng)
				class := -1
				if trial%2 == 1 {
					class = rng.IntN(net.Classes)
				}
				e, err := net.Explain(f32s(x), class, layer)
				if err != nil {
					t.Fatal(err)
				}
				checkExplanation(t, net, e, x, p, class, layer)
			}
		})
	}
}

// drawUntied draws an image whose max-pool windows all have a clear
// maximum: with a tie (dead ReLUs feeding a conv make constant patches)
// the score is not differentiable and central differences see half the
// gradient.
func drawUntied(t *testing.T, net *Network, p []float64, rng *rand.Rand) []float64 {
	t.Helper()
	for range 50 {
		x := randVec(rng, net.Input.Size(), 2)
		if !maxPoolTie(net, x, refEval(net, x, p, 1, nil)) {
			return x
		}
	}
	t.Fatal("every image drawn has a max-pool tie")
	return nil
}

// maxPoolTie says whether any max-pool window of the reference pass has
// its two largest values within 1e-4.
func maxPoolTie(net *Network, x []float64, outs [][]float64) bool {
	for _, nd := range net.nodes {
		l, ok := nd.l.(*pool)
		if !ok || !l.max {
			continue
		}
		in := x
		if j := nd.inputs[0]; j >= 0 {
			in = outs[j]
		}
		g := l.geom(1)
		for pl := 0; pl < g.Planes; pl++ {
			for oy := 0; oy < g.OH; oy++ {
				for ox := 0; ox < g.OW; ox++ {
					var w []float64
					for ky := 0; ky < g.KH; ky++ {
						for kx := 0; kx < g.KW; kx++ {
							w = append(w, in[(pl*g.H+oy*g.SH+ky)*g.W+ox*g.SW+kx])
						}
					}
					slices.Sort(w)
					if w[len(w)-1]-w[len(w)-2] < 1e-4 {
						return true
					}
				}
			}
		}
	}
	return false
}

func checkExplanation(t *testing.T, net *Network, e *Explanation, x, p []float64, class int, layer string) {
	t.Helper()
	li, _ := net.camLayer(layer)
	t.Logf("layer %q (%s), class %d: explained class %d", e.Layer, e.Shape, class, e.Class)
	outs := refEval(net, x, p, 1, nil)
	logits := outs[len(outs)-1]
	checkVec(t, "logits", e.Logits, logits, 1e-5)
	want := class
	if class < 0 {
		want = 0
		for j, v := range logits {
			if v > logits[want] {
				want = j
			}
		}
	}
	if e.Class != want || e.Layer != net.nodes[li].l.desc().Name {
		t.Fatalf("explained class %d of layer %q; want %d of %q", e.Class, e.Layer, want, net.nodes[li].l.desc().Name)
	}
	score := func(o map[int][]float64) func() float64 {
		return func() float64 { r := refEval(net, x, p, 1, o); return r[len(r)-1][want] }
	}
	a := append([]float64(nil), outs[li]...)
	checkVec(t, "activations", e.Activations, a, 1e-5)
	dA := make([]float64, len(a))
	for i := range a {
		dA[i] = centralDiff(a, i, score(map[int][]float64{li: a}))
	}
	if maxAbs(a) == 0 || maxAbs(dA) == 0 {
		t.Fatalf("layer %q: activations or their gradient all zero: the check would be vacuous", e.Layer)
	}
	checkVec(t, "dscore/dA", e.LayerGrad, dA, 1e-4)
	dx := make([]float64, len(x))
	for i := range x {
		dx[i] = centralDiff(x, i, score(nil))
	}
	checkVec(t, "dscore/dx", e.InputGrad, dx, 1e-4)

	s, in := e.Shape, net.Input
	hw := s.H * s.W
	alpha := make([]float64, s.C)
	coarse := make([]float64, hw)
	for k := range alpha {
		for _, g := range dA[k*hw : (k+1)*hw] {
			alpha[k] += g / float64(hw)
		}
	}
	for q := range coarse {
		for k := range alpha {
			coarse[q] += alpha[k] * a[k*hw+q]
		}
		coarse[q] = max(coarse[q], 0)
	}
	checkVec(t, "alpha", e.Weights, alpha, 1e-4)
	checkVec(t, "Grad-CAM map", e.Coarse, coarse, 1e-4)
	checkVec(t, "upsampled Grad-CAM map", e.CAM, minMax(triangleResize(coarse, s.H, s.W, in.H, in.W)), 1e-3)
	sal := make([]float64, in.H*in.W)
	for i, g := range dx {
		sal[i%len(sal)] = max(sal[i%len(sal)], math.Abs(g))
	}
	checkVec(t, "saliency", e.Saliency, normalized(sal), 1e-3)
}

// triangleResize is bilinear resizing written as a filter: output (y, x)
// is sum over input pixels of tri(sy - i)*tri(sx - j)*v[i, j], tri(d) =
// max(0, 1-|d|), at the source position s = (o+0.5)*n/on - 0.5 clamped to
// [0, n-1].
func triangleResize(v []float64, h, w, oh, ow int) []float64 {
	pos := func(o, n, on int) float64 {
		return math.Min(math.Max((float64(o)+0.5)*float64(n)/float64(on)-0.5, 0), float64(n-1))
	}
	tri := func(d float64) float64 { return math.Max(0, 1-math.Abs(d)) }
	out := make([]float64, oh*ow)
	for y := range oh {
		for x := range ow {
			sy, sx := pos(y, h, oh), pos(x, w, ow)
			for i := range h {
				for j := range w {
					out[y*ow+x] += tri(sy-float64(i)) * tri(sx-float64(j)) * v[i*w+j]
				}
			}
		}
	}
	return out
}

func minMax(v []float64) []float64 {
	lo, hi := slices.Min(v), slices.Max(v)
	out := make([]float64, len(v))
	for i, x := range v {
		if hi > lo {
			out[i] = (x - lo) / (hi - lo)
		}
	}
	return out
}

func normalized(v []float64) []float64 {
	var m float64
	for _, x := range v {
		m = max(m, x)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		if m > 0 {
			out[i] = x / m
		}
	}
	return out
}

// TestExplainZeroMap: a class whose score does not depend on the layer
// (all weights of its dense row zero) gives an all-zero Grad-CAM map and
// saliency map, not NaN.
func TestExplainZeroMap(t *testing.T) {
	net := planExplainNet(t, "conv3k3,maxpool2,flatten,dense4", Shape{C: 2, H: 6, W: 6})
	b := newCPU(t, 1)
	if err := net.Build(b, 1, 3); err != nil {
		t.Fatal(err)
	}
	p := net.InitParams(3)
	fc := net.nodes[len(net.nodes)-1].l.(*dense)
	row := p[fc.w.Off+2*fc.is.C : fc.w.Off+3*fc.is.C]
	clear(row)
	if err := net.SetParams(p); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	e, err := net.Explain(f32s(randVec(rng, net.Input.Size(), 1)), 2, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append(append(append([]float32(nil), e.CAM...), e.Saliency...), e.Coarse...) {
		if v != 0 {
			t.Fatalf("class 2 ignores the image, but a map holds %v", v)
		}
	}
	// A class that does depend on it gives a map whose maximum is 1.
	e, err = net.Explain(f32s(randVec(rng, net.Input.Size(), 1)), 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if m := maxOf(e.Saliency); m != 1 {
		t.Fatalf("saliency map of class 1 peaks at %v, want 1", m)
	}
}

func maxOf(v []float32) float32 {
	var m float32
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// TestExplainErrors: a flat layer, an unknown layer and a class out of
// range are refused with the layers or the range named.
func TestExplainErrors(t *testing.T) {
	net := planExplainNet(t, "testdata/tiny-resnet.json", Shape{C: 2, H: 6, W: 6})
	if err := net.Build(newCPU(t, 1), 1, 1); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, net.Input.Size())
	for _, c := range []struct {
		layer string
		class int
		want  string
	}{
		{"nope", -1, "no layer \"nope\": its conv layers are conv1, block.conv1, block.conv2, down.conv, down.short"},
		{"gap", -1, "flat vector of 4"},
		{"", 3, "classes 0 to 2"},
		{"", -2, "classes 0 to 2"},
	} {
		_, err := net.Explain(x, c.class, c.layer)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("layer %q class %d: error %v, want it to say %q", c.layer, c.class, err, c.want)
		}
	}
	if _, err := net.Explain(x[:3], -1, ""); err == nil {
		t.Error("a short image was accepted")
	}
	if got, _ := net.CAMLayer(""); got != "down.short" {
		t.Errorf("default layer %q, want the last conv layer down.short", got)
	}
}

func maxAbs(v []float64) float64 {
	var m float64
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}
