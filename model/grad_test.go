package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

func newCPU(t testing.TB, threads int) device.Backend {
	t.Helper()
	b, err := cpu.New(device.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func randVec(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = (rng.Float64()*2 - 1) * scale
	}
	return v
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// toBackendLayout converts NCHW/flat host data of shape s to the backend layout.
func toBackendLayout(x []float64, n int, s Shape) []float32 {
	if s.Flat {
		return f32s(x)
	}
	return nchwToCNHW(x, n, s)
}

func fromBackendLayout(x []float32, n int, s Shape) []float64 {
	if s.Flat {
		return f64s(x)
	}
	return cnhwToNCHW(x, n, s)
}

// closeEnough: |got-want| <= atol + rtol*|want|. float32 forward/backward
// against float64: rtol 2e-3, atol 2e-4 allow for float32 rounding in sums of
// up to a few hundred terms of size ~1.
func closeEnough(got, want float64) bool {
	return math.Abs(got-want) <= 2e-5+2e-5*math.Abs(want)
}

// checkLayer compares one layer's forward with the float64 reference and its
// backward (dx, dW, dB) with central differences of L = sum(r*y) computed in
// float64 on the reference.
func checkLayer(t *testing.T, l layer, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	b := newCPU(t, 2)
	is, os := l.in(), l.out()
	nParam := 0
	for _, p := range l.params() {
		p.Off = nParam
		nParam += p.N
	}
	x := randVec(rng, n*is.Size(), 1)
	p := randVec(rng, nParam, 0.5)
	r := randVec(rng, n*os.Size(), 1)

	if err := l.setup(b, n+1); err != nil { // buffers larger than the batch on purpose
		t.Fatal(err)
	}
	params, _ := b.Alloc("p", device.F32, max(nParam, 1))
	grads, _ := b.Alloc("g", device.F32, max(nParam, 1))
	b.UploadF32(params, 0, f32s(p))
	l.bind(b, params, grads)
	xb, _ := b.Alloc("x", device.F32, (n+1)*is.Size())
	b.UploadF32(xb, 0, toBackendLayout(x, n, is))

	var x2 []float64
	if a, ok := l.(*add); ok {
		x2 = randVec(rng, n*is.Size(), 1)
		a.x2, _ = b.Alloc("x2", device.F32, (n+1)*is.Size())
		b.UploadF32(a.x2, 0, toBackendLayout(x2, n, is))
	}
	y := l.forward(b, xb, n, &pass{train: true})
	yh := make([]float32, n*os.Size())
	b.DownloadF32(y, 0, yh)
	got := fromBackendLayout(yh, n, os)
	ref := func(x, p []float64) []float64 {
		if x2 != nil {
			return refLayer(l, x, p, n, x2)
		}
		return refLayer(l, x, p, n)
	}
	want := ref(x, p)
	for i := range want {
		if !closeEnough(got[i], want[i]) {
			t.Fatalf("%s forward[%d] = %g, reference %g", l.desc().Name, i, got[i], want[i])
		}
	}

	dy, _ := b.Alloc("dy", device.F32, (n+1)*os.Size())
	b.UploadF32(dy, 0, toBackendLayout(r, n, os))
	dx := l.backward(b, dy, n, true)
	dxh := make([]float32, n*is.Size())
	b.DownloadF32(dx, 0, dxh)
	gotDx := fromBackendLayout(dxh, n, is)
	gotDp := make([]float32, nParam)
	b.DownloadF32(grads, 0, gotDp)

	loss := func(x, p []float64) float64 {
		var s float64
		for i, v := range ref(x, p) {
			s += v * r[i]
		}
		return s
	}
	const h = 1e-6
	fd := func(v []float64, i int, other func([]float64) float64) float64 {
		old := v[i]
		v[i] = old + h
		lp := other(v)
		v[i] = old - h
		lm := other(v)
		v[i] = old
		return (lp - lm) / (2 * h)
	}
	for i := range x {
		want := fd(x, i, func(xx []float64) float64 { return loss(xx, p) })
		if !closeEnough(gotDx[i], want) {
			t.Fatalf("%s dL/dx[%d] = %g, finite difference %g", l.desc().Name, i, gotDx[i], want)
		}
	}
	if a, ok := l.(*add); ok {
		d2 := make([]float32, n*is.Size())
		b.DownloadF32(a.secondGrad(b), 0, d2)
		got2 := fromBackendLayout(d2, n, is)
		for i := range x2 {
			want := fd(x2, i, func(xx []float64) float64 {
				var s float64
				for j, v := range refLayer(l, x, p, n, xx) {
					s += v * r[j]
				}
				return s
			})
			if !closeEnough(got2[i], want) {
				t.Fatalf("%s dL/dx2[%d] = %g, finite difference %g", l.desc().Name, i, got2[i], want)
			}
		}
	}
	for _, pr := range l.params() {
		if pr.Group == groupBuffer || pr.Group == groupFrozen {
			continue
		}
		for i := pr.Off; i < pr.Off+pr.N; i++ {
			want := fd(p, i, func(pp []float64) float64 { return loss(x, pp) })
			if !closeEnough(float64(gotDp[i]), want) {
				t.Fatalf("%s dL/d%s[%d] = %g, finite difference %g", l.desc().Name, pr.Name, i-pr.Off, gotDp[i], want)
			}
		}
	}
}

// layerFor builds one layer from its description (defaults filled in) on
// input in; a second input of an add has the same shape.
func layerFor(t *testing.T, d LayerDesc, in Shape) layer {
	t.Helper()
	if d.Name == "" {
		d.Name = "l"
	}
	if d.Type == "add" {
		d.Inputs = []string{"input", "input"}
	}
	desc := &Desc{Layers: []LayerDesc{d}}
	if err := desc.check("test"); err != nil {
		t.Fatal(err)
	}
	l, err := newLayer(&desc.Layers[0], 0, func(int) Shape { return in }, []int{-1, -1})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLayerGradients(t *testing.T) {
	img := func(c, h, w int) Shape { return Shape{C: c, H: h, W: w} }
	cases := []struct {
		tok string
		in  Shape
		n   int
	}{
		{"conv4k3", img(3, 7, 6), 2},
		{"conv4k3linear", img(2, 5, 5), 3},
		{"conv3k3same", img(2, 6, 5), 2},
		{"conv3k2same", img(2, 5, 6), 2}, // even kernel: asymmetric padding
		{"conv5k3s2", img(3, 9, 8), 2},
		{"conv4k3s2same", img(2, 7, 7), 2},
		{"conv2k1", img(3, 4, 3), 2},
		{"conv3k4s3", img(1, 11, 10), 1},
		{"maxpool2", img(3, 6, 6), 2},
		{"maxpool2", img(2, 7, 5), 3},   // odd sizes: last row/column dropped
		{"maxpool3s2", img(2, 7, 7), 2}, // overlapping windows
		{"avgpool2", img(3, 6, 5), 2},
		{"avgpool3s2", img(2, 9, 7), 2},
		{"avgpool3s1", img(1, 5, 5), 2},
		{"relu", img(3, 4, 5), 2},
		{"flatten", img(3, 4, 5), 3},
		{"dense7", Shape{C: 13, H: 1, W: 1, Flat: true}, 4},
		{"dense5linear", Shape{C: 6, H: 1, W: 1, Flat: true}, 3},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s_%s_n%d", c.tok, c.in, c.n), func(t *testing.T) {
			d, err := DescFromSpec(c.tok + ",dense2")
			if err != nil {
				t.Fatal(err)
			}
			checkLayer(t, layerFor(t, d.Layers[0], c.in), c.n, uint64(i+1))
		})
	}
}

// TestNewLayerGradients checks the layers only a model file can describe:
// BatchNorm (batch statistics, with each fused activation, image and flat
// input, a frozen scale), residual add, global average pooling, GELU,
// normalize, conv and dense without bias, with PyTorch padding, GELU and a
// scale.
func TestNewLayerGradients(t *testing.T) {
	img := func(c, h, w int) Shape { return Shape{C: c, H: h, W: w} }
	flat := func(f int) Shape { return Shape{C: f, H: 1, W: 1, Flat: true} }
	f, tr := false, true
	eps, drop := 1e-5, 0.3
	one := &Padding{N: 1}
	cases := []struct {
		name string
		d    LayerDesc
		in   Shape
		n    int
	}{
		{"bn", LayerDesc{Type: "batchnorm"}, img(3, 4, 5), 3},
		{"bn-relu", LayerDesc{Type: "batchnorm", Act: "relu"}, img(2, 3, 3), 2},
		{"bn-gelu", LayerDesc{Type: "batchnorm", Act: "gelu", Eps: &eps}, img(2, 5, 3), 2},
		{"bn-flat", LayerDesc{Type: "batchnorm"}, flat(5), 4},
		{"bn-flat-gelu", LayerDesc{Type: "batchnorm", Act: "gelu"}, flat(3), 5},
		{"bn-frozen-weight", LayerDesc{Type: "batchnorm", TrainWeight: &f}, img(2, 3, 4), 2},
		{"add", LayerDesc{Type: "add"}, img(2, 3, 3), 2},
		{"add-relu", LayerDesc{Type: "add", Act: "relu"}, flat(7), 3},
		{"gap", LayerDesc{Type: "globalavgpool"}, img(3, 4, 5), 2},
		{"gelu", LayerDesc{Type: "gelu"}, img(2, 3, 4), 2},
		{"normalize", LayerDesc{Type: "normalize", Mean: []float64{0.5, -0.25}, Std: []float64{0.3, 2}}, img(2, 3, 3), 2},
		{"conv-nobias-pad1", LayerDesc{Type: "conv", Filters: 3, Kernel: 3, Padding: one, Bias: &f}, img(2, 5, 6), 2},
		{"conv-s2-pad1", LayerDesc{Type: "conv", Filters: 2, Kernel: 3, Stride: 2, Padding: one, Act: "relu", Bias: &f}, img(3, 7, 6), 2},
		{"conv-1x1-s2", LayerDesc{Type: "conv", Filters: 4, Kernel: 1, Stride: 2, Bias: &f}, img(3, 5, 5), 2},
		{"conv-1x1-pointwise", LayerDesc{Type: "conv", Filters: 4, Kernel: 1, Act: "relu"}, img(3, 4, 5), 3},
		{"conv-gelu", LayerDesc{Type: "conv", Filters: 3, Kernel: 2, Act: "gelu", Bias: &tr}, img(2, 4, 4), 2},
		{"conv-dirac", LayerDesc{Type: "conv", Filters: 3, Kernel: 3, Padding: &Padding{Same: true}, Init: "dirac", Bias: &f}, img(2, 4, 4), 2},
		{"dense-nobias-scale", LayerDesc{Type: "dense", Units: 4, Bias: &f, Scale: 1.0 / 9}, flat(6), 3},
		{"dense-gelu", LayerDesc{Type: "dense", Units: 3, Act: "gelu"}, flat(5), 2},
		{"dropout", LayerDesc{Type: "dropout", P: &drop}, img(2, 3, 4), 3},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkLayer(t, layerFor(t, c.d, c.in), c.n, uint64(100+i))
		})
	}
}

// TestNetworkGradient checks the whole network: the gradient of the mean
// cross-entropy with respect to every parameter against central differences
// of the float64 reference network.
func TestNetworkGradient(t *testing.T) {
	for _, tc := range []struct {
		spec string
		in   Shape
	}{
		{"conv4k3same,maxpool2,conv5k2,avgpool2,flatten,dense6,dense3", Shape{C: 2, H: 9, W: 9}},
		{"conv3k3s2,relu,flatten,dense4linear,relu,dense5", Shape{C: 3, H: 7, W: 8}},
		{"testdata/tiny-resnet.json", Shape{C: 2, H: 6, W: 6}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			const n = 3
			net, err := Plan(tc.spec, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			b := newCPU(t, 2)
			if err := net.Build(b, n, 7); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 3))
			x := randVec(rng, n*tc.in.Size(), 1)
			p64 := f64s(net.InitParams(7))
			labels := make([]int32, n)
			for i := range labels {
				labels[i] = int32(rng.IntN(net.Classes))
			}
			b.UploadF32(net.input, 0, nchwToCNHW(x, n, tc.in))
			b.UploadI32(net.labels, 0, labels)
			stats, _ := b.Alloc("stats", device.F32, 2)
			const smooth = 0.1
			logits := net.Forward(n, true)
			net.Loss(logits, n, true, smooth, stats)
			net.Backward(n)
			got := make([]float32, net.FlatLen())
			b.DownloadF32(net.Grads, 0, got)
			st := make([]float32, 2)
			b.DownloadF32(stats, 0, st)

			lossAt := func(p []float64) float64 {
				return refXentSmooth(refNet(net, x, p, n), labels, n, net.Classes, smooth)
			}
			if l := lossAt(p64); math.Abs(float64(st[0])/n-l) > 1e-4*math.Max(1, l) {
				t.Fatalf("loss %g, reference %g", st[0]/n, l)
			}
			const h = 1e-6
			for i := range p64[:net.trainEnd()] {
				old := p64[i]
				p64[i] = old + h
				lp := lossAt(p64)
				p64[i] = old - h
				lm := lossAt(p64)
				p64[i] = old
				want := (lp - lm) / (2 * h)
				if !closeEnough(float64(got[i]), want) {
					t.Fatalf("dL/dparam[%d] = %g, finite difference %g", i, got[i], want)
				}
			}
		})
	}
}

// TestAdam checks three Adam steps against the update worked by hand in
// float64 from Keras's formula.
func TestAdam(t *testing.T) {
	b := newCPU(t, 2)
	net, err := Plan("flatten,dense3", Shape{C: 2, H: 1, W: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, 1, 1); err != nil {
		t.Fatal(err)
	}
	np := net.NumParams()
	rng := rand.New(rand.NewPCG(9, 9))
	p := randVec(rng, np, 1)
	net.SetParams(f32s(p))
	m, v := make([]float64, np), make([]float64, np)
	const lr, eps = 0.01, 1e-7
	o, err := NewOptimizer(net, DefaultAdam)
	if err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 3; step++ {
		g := randVec(rng, np, 2)
		b.UploadF32(net.Grads, 0, f32s(g))
		o.Step(net, lr)
		for i := range p {
			m[i] = 0.9*m[i] + 0.1*g[i]
			v[i] = 0.999*v[i] + 0.001*g[i]*g[i]
			mhat := m[i] / (1 - math.Pow(0.9, float64(step)))
			vhat := v[i] / (1 - math.Pow(0.999, float64(step)))
			// Keras applies epsilon to the uncorrected sqrt(v): the form
			// below is the same update written with the corrected moments.
			p[i] -= lr * mhat / (math.Sqrt(vhat) + eps*math.Sqrt(1/(1-math.Pow(0.999, float64(step)))))
		}
	}
	got, _ := net.GetParams()
	for i := range p {
		if math.Abs(float64(got[i])-p[i]) > 1e-6 {
			t.Fatalf("param %d = %.8f after 3 Adam steps, hand-computed %.8f", i, got[i], p[i])
		}
	}
}

// torchStep is one step of PyTorch's optimizer kind on one parameter
// group, in float64, from torch/optim's documented algorithms.
func torchStep(c OptimConfig, t int, lr, wd float64, p, g, m, v []float64) {
	for i := range p {
		gi := g[i]
		switch c.Kind {
		case "sgd":
			gi += wd * p[i]
			if c.Momentum != 0 {
				if t == 1 {
					m[i] = gi
				} else {
					m[i] = c.Momentum*m[i] + gi
				}
				if c.Nesterov {
					gi += c.Momentum * m[i]
				} else {
					gi = m[i]
				}
			}
			p[i] -= lr * gi
		case "adamw":
			p[i] *= 1 - lr*wd
			m[i] = c.Beta1*m[i] + (1-c.Beta1)*gi
			v[i] = c.Beta2*v[i] + (1-c.Beta2)*gi*gi
			bc1, bc2 := 1-math.Pow(c.Beta1, float64(t)), 1-math.Pow(c.Beta2, float64(t))
			p[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + c.Eps)
		case "rmsprop":
			gi += wd * p[i]
			v[i] = c.Alpha*v[i] + (1-c.Alpha)*gi*gi
			avg := math.Sqrt(v[i]) + c.Eps
			if c.Momentum > 0 {
				m[i] = c.Momentum*m[i] + gi/avg
				p[i] -= lr * m[i]
			} else {
				p[i] -= lr * gi / avg
			}
		}
	}
}

// TestOptimizersMatchPyTorch runs four steps of each optimiser on a network
// with conv and dense weights, biases and BatchNorm (own learning-rate
// factor and decays per group) against PyTorch's update rules in float64.
func TestOptimizersMatchPyTorch(t *testing.T) {
	bwd, nwd := 0.0, 0.02
	cases := []OptimConfig{
		{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
		{Kind: "sgd", Momentum: 0.85, WeightDecay: 1e-3, BiasWeightDecay: &bwd, NormWeightDecay: &nwd, NormLRFactor: 4},
		{Kind: "sgd"},
		{Kind: "adamw", Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, NormWeightDecay: &bwd},
		{Kind: "rmsprop", Alpha: 0.99, Eps: 1e-8, WeightDecay: 1e-4},
		{Kind: "rmsprop", Alpha: 0.9, Eps: 1e-6, Momentum: 0.5, NormLRFactor: 0.5},
	}
	for ci, c := range cases {
		t.Run(fmt.Sprintf("%s_%d", c.Kind, ci), func(t *testing.T) {
			b := newCPU(t, 2)
			net, err := Plan("testdata/tiny-resnet.json", Shape{C: 2, H: 6, W: 6})
			if err != nil {
				t.Fatal(err)
			}
			if err := net.Build(b, 2, 1); err != nil {
				t.Fatal(err)
			}
			o, err := NewOptimizer(net, c)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(ci), 4))
			np := net.FlatLen()
			p := randVec(rng, np, 1)
			net.SetParams(f32s(p))
			m, v := make([]float64, np), make([]float64, np)
			const lr = 0.05
			for step := 1; step <= 4; step++ {
				g := randVec(rng, np, 1)
				b.UploadF32(net.Grads, 0, f32s(g))
				o.Step(net, lr)
				for _, pr := range net.params {
					lrF, wd := 1.0, c.WeightDecay
					switch pr.Group {
					case groupFrozen, groupBuffer:
						continue
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
					r := pr.Off + pr.N
					torchStep(c, step, lr*lrF, wd, p[pr.Off:r], g[pr.Off:r], m[pr.Off:r], v[pr.Off:r])
				}
			}
			got, _ := net.GetParams()
			for i := range p {
				if math.Abs(float64(got[i])-p[i]) > 2e-5*math.Max(1, math.Abs(p[i])) {
					t.Fatalf("flat[%d] = %.8f after 4 steps, PyTorch's rule gives %.8f", i, got[i], p[i])
				}
			}
		})
	}
}

func TestDefaultModelParams(t *testing.T) {
	net, err := Plan(DefaultSpec, Shape{C: 3, H: 32, W: 32})
	if err != nil {
		t.Fatal(err)
	}
	if net.NumParams() != 122570 {
		t.Fatalf("default model has %d parameters, Keras says 122,570", net.NumParams())
	}
	want := []string{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
	ts := net.Tensors(make([]float32, net.NumParams()))
	for i, tt := range ts {
		if tt.Name != want[i] {
			t.Fatalf("tensor %d is %s, want %s", i, tt.Name, want[i])
		}
	}
	if fmt.Sprint(ts[6].Shape) != "[64 1024]" || fmt.Sprint(ts[0].Shape) != "[32 3 3 3]" {
		t.Fatalf("shapes %v %v", ts[0].Shape, ts[6].Shape)
	}
}

func TestSpecErrors(t *testing.T) {
	in := Shape{C: 3, H: 32, W: 32}
	for spec, want := range map[string]string{
		"conv32k3,bogus7,dense10":  "unknown layer",
		"conv32k3,dense10":         "insert flatten",
		"flatten,conv3k3,dense10":  "flat vector",
		"conv8k40,flatten,dense10": "larger than",
		"maxpool2,maxpool2,maxpool2,maxpool2,maxpool2,maxpool2,flatten,dense3": "larger than",
		"conv32k3,flatten":       "last layer",
		"conv0k3,flatten,dense2": "between",
		"":                       "empty",
	} {
		_, err := Plan(spec, in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("spec %q: error %v, want it to mention %q", spec, err, want)
		}
	}
}

// TestCPUStepAllocatesNothing: the steady-state CPU training step makes no
// allocation.
func TestCPUStepAllocatesNothing(t *testing.T) {
	b := newCPU(t, 2)
	net, err := Plan(DefaultSpec, Shape{C: 3, H: 32, W: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, 8, 1); err != nil {
		t.Fatal(err)
	}
	d := &Data{Images: make([]uint8, 64*3072), Labels: make([]int32, 64), N: 64}
	tr, err := NewTrainer(net, d, nil, TrainOptions{Batch: 8, Optim: DefaultAdam})
	if err != nil {
		t.Fatal(err)
	}
	tr.Step(0)
	s := 1
	if a := testing.AllocsPerRun(5, func() { tr.Step(s); s++ }); a != 0 {
		t.Fatalf("a CPU training step allocates %v times", a)
	}
	// The new layers, optimisers, the weight average, augmentation and TTA.
	sgd := OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, NormLRFactor: 2}
	for _, o := range []OptimConfig{sgd, DefaultOptim("adamw"), {Kind: "rmsprop", Alpha: 0.99, Eps: 1e-8, Momentum: 0.5}} {
		_, tr := tinyTrainer(t, TrainOptions{Batch: 4, Optim: o, LR: 0.01, Smoothing: 0.1, EMA: EMAOptions{Decay: 0.9},
			Augment: true, Augmentation: Augmentation{Pad: 2, Reflect: true}})
		step := func() {
			tr.net.LoadBatch(tr.train.images, tr.train.labels, tr.batchIdx[0], 4)
			tr.net.AugmentInput(tr.opt.Augmentation, 1, tr.net.Steps(), 4)
			tr.net.TrainStep(4, tr.opt2, 0.01, 0.1, tr.stats)
			tr.averageWeights()
			tr.net.forwardTTA(4, TTAFlipTranslate)
		}
		step()
		if a := testing.AllocsPerRun(5, step); a != 0 {
			t.Fatalf("%s: a training step of the residual network allocates %v times", o.Kind, a)
		}
	}
}

// TestBytesPerImage checks the memory estimate against what Build really
// allocates on the CPU for two batch sizes (the difference is per image).
func TestBytesPerImage(t *testing.T) {
	net, _ := Plan(DefaultSpec, Shape{C: 3, H: 32, W: 32})
	measure := func(bs int) int {
		b := newCPU(t, 1)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n2, _ := Plan(DefaultSpec, Shape{C: 3, H: 32, W: 32})
		if err := n2.Build(b, bs, 1); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(n2)
		return int(after.TotalAlloc - before.TotalAlloc)
	}
	got := float64(measure(64)-measure(32)) / 32
	want := float64(net.BytesPerImageOn(newCPU(t, 1)))
	if got < 0.9*want || got > 1.1*want {
		t.Fatalf("Build allocates %.0f bytes per image, BytesPerImage says %.0f", got, want)
	}
}
