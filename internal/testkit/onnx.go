package testkit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ONNX Runtime for the tests: scripts/onnx/run.mjs runs a model file with
// the WebAssembly build of ONNX Runtime (npm onnxruntime-web) under
// Node.js, an ONNX evaluator independent of trainer.

// ONNXRuntime is the runner: node and the repository's scripts/onnx.
type ONNXRuntime struct {
	node, dir string
}

// NeedONNXRuntime returns the runner, or skips the test (saying how to
// install what is missing) when node or the onnxruntime-web module is not
// installed.
func NeedONNXRuntime(t testing.TB) *ONNXRuntime {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node (Node.js 20 or later) is not installed, so ONNX Runtime cannot check the ONNX exports: install Node.js, then run npm ci --prefix scripts/onnx")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "scripts", "onnx")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-web", "package.json")); err != nil {
		t.Skip("the npm module onnxruntime-web is not installed, so ONNX Runtime cannot check the ONNX exports: run npm ci --prefix scripts/onnx in the repository")
	}
	return &ONNXRuntime{node: node, dir: dir}
}

// repoRoot is the folder above the working directory that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the test's folder")
		}
		dir = up
	}
}

// ONNXResult is what the runner reports besides the output values.
type ONNXResult struct {
	Input, Output string // the model's input and output names
	Dims          []int  // the output's dims
}

// Run runs modelPath on x, of dims [N, C, H, W], and returns the first
// output's values.
func (r *ONNXRuntime) Run(t testing.TB, modelPath string, x []float32, dims [4]int) ([]float32, ONNXResult) {
	t.Helper()
	tmp := t.TempDir()
	in, out := filepath.Join(tmp, "x.f32"), filepath.Join(tmp, "y.f32")
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	shape := fmt.Sprintf("%d,%d,%d,%d", dims[0], dims[1], dims[2], dims[3])
	res, err := exec.Command(r.node, filepath.Join(r.dir, "run.mjs"), modelPath, in, shape, out).Output()
	if err != nil {
		var ee *exec.ExitError
		msg := ""
		if errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		t.Fatalf("ONNX Runtime on %s: %v\n%s", modelPath, err, msg)
	}
	var info ONNXResult
	if err := json.Unmarshal(res, &info); err != nil {
		t.Fatalf("scripts/onnx/run.mjs printed %q: %v", res, err)
	}
	if b, err = os.ReadFile(out); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(b)/4)
	for i := range y {
		y[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return y, info
}

// MaxDiff is the largest |a[i]-b[i]| and its index; NaN when the lengths
// differ or a difference is NaN.
func MaxDiff(a, b []float32) (float64, int) {
	if len(a) != len(b) {
		return math.NaN(), 0
	}
	var d float64
	at := 0
	for i := range a {
		e := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(e) {
			return e, i
		}
		if e > d {
			d, at = e, i
		}
	}
	return d, at
}
