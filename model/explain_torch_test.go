package model

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// torchPython is a Python that imports torch, or "" with the reason.
func torchPython() (string, string) {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import torch").Run() == nil {
			return path, ""
		}
	}
	return "", "no python3 that imports torch (apt-get install python3-torch)"
}

type torchCase struct {
	X     []float32 `json:"x"`
	Class int       `json:"class"`
	Layer string    `json:"layer"`
}

// torchExplanation is what scripts/torch_explain.py prints per case.
type torchExplanation struct {
	Class                                     int
	Logits, Activations, Weights, Coarse, CAM []float64
	LayerGrad                                 []float64 `json:"layer_grad"`
	InputGrad                                 []float64 `json:"input_grad"`
	Saliency                                  []float64
}

// TestExplainMatchesPyTorch: Explain against scripts/torch_explain.py,
// the same network built by scripts/torch_model.py from a checkpoint
// (random weights, BatchNorm's statistics moved off the identity) and
// explained with autograd and F.interpolate in float64, on random images,
// for the default layer and others, the top class and chosen ones.
func TestExplainMatchesPyTorch(t *testing.T) {
	py, why := torchPython()
	if py == "" {
		t.Skip(why)
	}
	for ni, tc := range explainNets {
		t.Run(tc.name, func(t *testing.T) {
			net := planExplainNet(t, tc.json, tc.in)
			if err := net.Build(newCPU(t, 2), 1, 1); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(ni), 9))
			p := randomEvalParams(net, rng)
			if err := net.SetParams(f32s(p)); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			ck := filepath.Join(dir, "m.safetensors")
			if err := SaveCheckpoint(ck, net, nil, nil); err != nil {
				t.Fatal(err)
			}
			var cases []torchCase
			var ours []*Explanation
			for i, layer := range append([]string{""}, tc.layers...) {
				c := torchCase{X: f32s(drawUntied(t, net, p, rng)), Class: -1, Layer: layer}
				if i > 0 {
					c.Class = rng.IntN(net.Classes)
				}
				e, err := net.Explain(c.X, c.Class, c.Layer)
				if err != nil {
					t.Fatal(err)
				}
				c.Layer = e.Layer
				cases, ours = append(cases, c), append(ours, e)
			}
			for i, th := range runTorchExplain(t, py, ck, dir, cases) {
				checkAgainstTorch(t, ours[i], th)
			}
		})
	}
}

func runTorchExplain(t *testing.T, py, ck, dir string, cases []torchCase) []torchExplanation {
	t.Helper()
	js, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(cf, js, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("..", "scripts", "torch_explain.py"), "--checkpoint", ck, "--cases", cf)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("torch_explain.py: %v\n%s", err, stderr.String())
	}
	var res []torchExplanation
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("torch_explain.py printed %d results for %d cases (%v):\n%.500s", len(res), len(cases), err, out)
	}
	return res
}

func checkAgainstTorch(t *testing.T, e *Explanation, th torchExplanation) {
	t.Helper()
	if e.Class != th.Class {
		t.Fatalf("layer %q: explained class %d, PyTorch %d", e.Layer, e.Class, th.Class)
	}
	t.Logf("layer %q (%s), class %d", e.Layer, e.Shape, e.Class)
	for _, c := range []struct {
		what string
		got  []float32
		want []float64
		tol  float64
	}{
		{"logits", e.Logits, th.Logits, 1e-5},
		{"activations", e.Activations, th.Activations, 1e-5},
		{"dscore/dA", e.LayerGrad, th.LayerGrad, 1e-4},
		{"alpha", e.Weights, th.Weights, 1e-4},
		{"Grad-CAM map", e.Coarse, th.Coarse, 1e-4},
		{"upsampled Grad-CAM map", e.CAM, th.CAM, 1e-3},
		{"dscore/dx", e.InputGrad, th.InputGrad, 1e-4},
		{"saliency", e.Saliency, th.Saliency, 1e-3},
	} {
		checkVec(t, c.what+" (PyTorch)", c.got, c.want, c.tol)
	}
}
