package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tinyTrainer builds the tiny residual network on random data.
func tinyTrainer(t *testing.T, opt TrainOptions) (*Network, *Trainer) {
	t.Helper()
	b := newCPU(t, 2)
	net, err := Plan("testdata/tiny-resnet.json", Shape{C: 3, H: 6, W: 6})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, opt.Batch, 5); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 24
	d := &Data{Images: make([]uint8, n*net.Input.Size()), Labels: make([]int32, n), N: n}
	for i := range d.Images {
		d.Images[i] = uint8(rng.IntN(256))
	}
	for i := range d.Labels {
		d.Labels[i] = int32(rng.IntN(net.Classes))
	}
	tr, err := NewTrainer(net, d, d, opt)
	if err != nil {
		t.Fatal(err)
	}
	return net, tr
}

// TestEMA: the average follows ema = d*ema + (1-d)*weights after each
// step (every Every steps), over the weights and the running statistics;
// with Lookahead the weights are reset to it, and the last step copies it.
func TestEMA(t *testing.T) {
	for _, e := range []EMAOptions{{Decay: 0.7, Every: 1}, {Decay: 0.6, Every: 2}, {Decay: 0.8, Every: 2, Lookahead: true, TotalSteps: 6}} {
		net, tr := tinyTrainer(t, TrainOptions{Batch: 4, Optim: OptimConfig{Kind: "sgd", Momentum: 0.9}, LR: 0.05, EMA: e})
		ema, _ := net.GetParams()
		for s := 1; s <= 6; s++ {
			tr.Step(s - 1)
			p, _ := net.GetParams() // the weights before averaging
			tr.averageWeights()
			after, _ := net.GetParams()
			got := make([]float32, net.FlatLen())
			net.b.DownloadF32(net.EMA, 0, got)
			d := e.Decay
			if e.Lookahead {
				d = e.Decay * math.Pow(float64(s)/6, 3)
				if s == 6 {
					d = 1
				}
			}
			updated := s%e.Every == 0 || (e.Lookahead && s == 6)
			if updated && d < 1 {
				for i := range ema {
					ema[i] = float32(1-d)*p[i] + float32(d)*ema[i]
				}
			}
			for i := range ema {
				if math.Abs(float64(got[i]-ema[i])) > 1e-6*math.Max(1, math.Abs(float64(ema[i]))) {
					t.Fatalf("%+v step %d: ema[%d] = %v, want %v", e, s, i, got[i], ema[i])
				}
				want := p[i]
				if e.Lookahead && updated {
					want = got[i]
				}
				if after[i] != want {
					t.Fatalf("%+v step %d: weight %d is %v after averaging, want %v", e, s, i, after[i], want)
				}
			}
		}
	}
}

// TestTTA: flip TTA is the mean of the logits of the batch and of its
// mirror, computed here from two plain forward passes.
func TestTTA(t *testing.T) {
	net, tr := tinyTrainer(t, TrainOptions{Batch: 8, LR: 1e-3})
	tr.Step(0)
	b := net.b
	cnt := 8
	net.LoadBatch(tr.val.images, tr.val.labels, b.View(tr.iotaBuf, 0, cnt), cnt)
	k := cnt * net.Classes
	plain := make([]float32, k)
	b.DownloadF32(net.Forward(cnt, false), 0, plain)
	tta := make([]float32, k)
	b.DownloadF32(net.forwardTTA(cnt, TTAFlip), 0, tta)
	mirror := make([]float32, k)
	net.TranslateInput(cnt, 0, 0, true)
	b.DownloadF32(net.Forward(cnt, false), 0, mirror)
	for i := range tta {
		want := 0.5*plain[i] + 0.5*mirror[i]
		if math.Abs(float64(tta[i]-want)) > 1e-6 {
			t.Fatalf("flip TTA logit %d = %v, mean of the two views %v", i, tta[i], want)
		}
	}
}

// TestBatchNormRunningStats: a training-mode forward pass updates the
// running statistics as PyTorch does (momentum m, unbiased variance), for
// image and flat input; evaluation then normalises with them.
func TestBatchNormRunningStats(t *testing.T) {
	mom, eps := 0.4, 1e-5
	for _, in := range []Shape{{C: 3, H: 4, W: 5}, {C: 4, H: 1, W: 1, Flat: true}} {
		l := layerFor(t, LayerDesc{Type: "batchnorm", Momentum: &mom, Eps: &eps}, in).(*batchnorm)
		b := newCPU(t, 2)
		const n = 6
		if err := l.setup(b, n); err != nil {
			t.Fatal(err)
		}
		np := 0
		for _, p := range l.params() {
			p.Off = np
			np += p.N
		}
		rng := rand.New(rand.NewPCG(3, 9))
		p := randVec(rng, np, 1)
		for i := range l.runVar.N {
			p[l.runVar.Off+i] = 0.5 + rng.Float64() // positive
		}
		params, _ := b.Alloc("p", 0, np)
		grads, _ := b.Alloc("g", 0, np)
		b.UploadF32(params, 0, f32s(p))
		l.bind(b, params, grads)
		x := randVec(rng, n*in.Size(), 2)
		xb, _ := b.Alloc("x", 0, n*in.Size())
		b.UploadF32(xb, 0, toBackendLayout(x, n, in))
		l.forward(b, xb, n, &pass{train: true, update: true})
		got := make([]float32, np)
		b.DownloadF32(params, 0, got)
		hw := in.H * in.W
		for c := 0; c < in.C; c++ {
			var s, ss float64
			for i := 0; i < n; i++ {
				for q := 0; q < hw; q++ {
					s += x[(i*in.C+c)*hw+q]
				}
			}
			m := float64(n * hw)
			mean := s / m
			for i := 0; i < n; i++ {
				for q := 0; q < hw; q++ {
					d := x[(i*in.C+c)*hw+q] - mean
					ss += d * d
				}
			}
			wantM := (1-mom)*p[l.runMean.Off+c] + mom*mean
			wantV := (1-mom)*p[l.runVar.Off+c] + mom*ss/(m-1)
			if math.Abs(float64(got[l.runMean.Off+c])-wantM) > 1e-5 || math.Abs(float64(got[l.runVar.Off+c])-wantV) > 1e-5*math.Max(1, wantV) {
				t.Fatalf("%s channel %d: running mean/var %v/%v, PyTorch's %v/%v", in, c, got[l.runMean.Off+c], got[l.runVar.Off+c], wantM, wantV)
			}
		}
	}
}
