package model

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// bnPoolNet has a batch norm whose ReLU moves into a max-pool, a conv with
// a bias whose ReLU moves into an overlapping max-pool, and a conv whose
// ReLU stays (two layers read it).
const bnPoolNet = `{"layers": [
 {"name": "conv1", "type": "conv", "filters": 6, "kernel": 3, "padding": 1, "bias": false},
 {"name": "bn1", "type": "batchnorm", "act": "relu"},
 {"name": "pool1", "type": "maxpool", "kernel": 2},
 {"name": "conv2", "type": "conv", "filters": 6, "kernel": 3, "padding": 1, "act": "relu"},
 {"name": "pool2", "type": "maxpool", "kernel": 3, "stride": 2},
 {"name": "conv3", "type": "conv", "filters": 6, "kernel": 3, "padding": 1, "act": "relu"},
 {"name": "pool3", "type": "maxpool", "kernel": 1},
 {"name": "add", "type": "add", "inputs": ["pool3", "conv3"]},
 {"name": "flatten", "type": "flatten"},
 {"name": "head", "type": "dense", "units": 10}]}`

// TestFusionBitIdentical: training with the fused ops (SetFusion(true),
// the default) and without gives the same parameters, running statistics
// and validation loss bit for bit, on the CPU backend, for the seed CNN
// and for a network with a batch norm's ReLU and an overlapping pool.
func TestFusionBitIdentical(t *testing.T) {
	b := newCPU(t, 2)
	file := filepath.Join(t.TempDir(), "bnpool.json")
	os.WriteFile(file, []byte(bnPoolNet), 0o644)
	rng := rand.New(rand.NewPCG(2, 3))
	const n, bs, steps = 48, 8, 4
	for _, spec := range []string{DefaultSpec, file} {
		in := Shape{C: 3, H: 32, W: 32}
		if spec == file {
			in = Shape{C: 3, H: 12, W: 12}
		}
		d := &Data{Images: make([]uint8, n*in.Size()), Labels: make([]int32, n), N: n}
		for i := range d.Images {
			d.Images[i] = uint8(rng.IntN(256))
		}
		for i := range d.Labels {
			d.Labels[i] = int32(rng.IntN(10))
		}
		run := func(fuse bool) ([]float32, float64) {
			net, err := Plan(spec, in)
			if err != nil {
				t.Fatal(err)
			}
			net.SetFusion(fuse)
			if err := net.Build(b, bs, 5); err != nil {
				t.Fatal(err)
			}
			defer net.Close()
			tr, err := NewTrainer(net, d, d, TrainOptions{Batch: bs, LR: 0.01, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for s := range steps {
				tr.Step(s)
			}
			loss, _, err := tr.Validate()
			if err != nil {
				t.Fatal(err)
			}
			p, err := net.GetParams()
			if err != nil {
				t.Fatal(err)
			}
			return p, loss
		}
		fp, fl := run(true)
		up, ul := run(false)
		for i := range up {
			if math.Float32bits(fp[i]) != math.Float32bits(up[i]) {
				t.Fatalf("%s: flat[%d] fused %v, unfused %v", spec, i, fp[i], up[i])
			}
		}
		if fl != ul {
			t.Fatalf("%s: validation loss fused %v, unfused %v", spec, fl, ul)
		}
	}
}

// TestFusionPlanned: the ReLU moves into a max-pool only from a conv with
// a bias or a batch norm, and only when the pool alone reads the layer.
func TestFusionPlanned(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bnpool.json")
	os.WriteFile(file, []byte(bnPoolNet), 0o644)
	net, err := Plan(file, Shape{C: 3, H: 12, W: 12})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, nd := range net.nodes {
		switch l := nd.l.(type) {
		case *conv:
			got[l.d.Name] = l.relu.movable
		case *batchnorm:
			got[l.d.Name] = l.relu.movable
		case *pool:
			got[l.d.Name] = l.relu.movable
		}
	}
	want := map[string]bool{"conv1": false, "bn1": true, "pool1": true, "conv2": true, "pool2": true, "conv3": false, "pool3": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: fused %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
