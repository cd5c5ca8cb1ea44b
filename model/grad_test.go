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

	y := l.forward(b, xb, n)
	yh := make([]float32, n*os.Size())
	b.DownloadF32(y, 0, yh)
	got := fromBackendLayout(yh, n, os)
	want := refLayer(l, x, p, n)
	for i := range want {
		if !closeEnough(got[i], want[i]) {
			t.Fatalf("%s forward[%d] = %g, reference %g", l.spec().Token, i, got[i], want[i])
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
		for i, v := range refLayer(l, x, p, n) {
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
			t.Fatalf("%s dL/dx[%d] = %g, finite difference %g", l.spec().Token, i, gotDx[i], want)
		}
	}
	for i := range p {
		want := fd(p, i, func(pp []float64) float64 { return loss(x, pp) })
		if !closeEnough(float64(gotDp[i]), want) {
			t.Fatalf("%s dL/dparam[%d] = %g, finite difference %g", l.spec().Token, i, gotDp[i], want)
		}
	}
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
			specs, err := ParseSpec(c.tok + ",dense2")
			if err != nil {
				t.Fatal(err)
			}
			ls := specs[0]
			var l layer
			switch ls.Kind {
			case "conv":
				l, err = newConv(ls, "conv1", c.in)
			case "maxpool", "avgpool":
				l, err = newPool(ls, c.in)
			case "relu":
				l = &relu{ls: ls, s: c.in}
			case "flatten":
				l = &flatten{ls: ls, is: c.in}
			case "dense":
				l, err = newDense(ls, "fc1", c.in)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLayer(t, l, c.n, uint64(i+1))
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
			logits := net.Forward(n)
			net.Loss(logits, n, true, stats)
			net.Backward(n)
			got := make([]float32, net.NumParams())
			b.DownloadF32(net.Grads, 0, got)
			st := make([]float32, 2)
			b.DownloadF32(stats, 0, st)

			lossAt := func(p []float64) float64 {
				return refXent(refForward(net.layers, x, p, n), labels, n, net.Classes)
			}
			if l := lossAt(p64); math.Abs(float64(st[0])/n-l) > 1e-4*math.Max(1, l) {
				t.Fatalf("loss %g, reference %g", st[0]/n, l)
			}
			const h = 1e-6
			for i := range p64 {
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
	c := Config{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7}
	for step := 1; step <= 3; step++ {
		g := randVec(rng, np, 2)
		b.UploadF32(net.Grads, 0, f32s(g))
		net.AdamStep(c)
		for i := range p {
			m[i] = 0.9*m[i] + 0.1*g[i]
			v[i] = 0.999*v[i] + 0.001*g[i]*g[i]
			mhat := m[i] / (1 - math.Pow(0.9, float64(step)))
			vhat := v[i] / (1 - math.Pow(0.999, float64(step)))
			// Keras applies epsilon to the uncorrected sqrt(v): the form
			// below is the same update written with the corrected moments.
			p[i] -= c.LR * mhat / (math.Sqrt(vhat) + c.Eps*math.Sqrt(1/(1-math.Pow(0.999, float64(step)))))
		}
	}
	got, _ := net.GetParams()
	for i := range p {
		if math.Abs(float64(got[i])-p[i]) > 1e-6 {
			t.Fatalf("param %d = %.8f after 3 Adam steps, hand-computed %.8f", i, got[i], p[i])
		}
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
	tr, err := NewTrainer(net, d, nil, TrainOptions{Batch: 8, Adam: DefaultAdam})
	if err != nil {
		t.Fatal(err)
	}
	tr.Step(0)
	s := 1
	if a := testing.AllocsPerRun(5, func() { tr.Step(s); s++ }); a != 0 {
		t.Fatalf("a CPU training step allocates %v times", a)
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
	want := float64(net.BytesPerImage())
	if got < 0.9*want || got > 1.1*want {
		t.Fatalf("Build allocates %.0f bytes per image, BytesPerImage says %.0f", got, want)
	}
}
