package cli

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// nanCheckpoint saves a small model whose weights are all NaN, through the
// model's checkpoint API.
func nanCheckpoint(t *testing.T) string {
	t.Helper()
	net, p := tinyNet(t, model.Shape{C: 3, H: 32, W: 32})
	for i := range p {
		p[i] = float32(math.NaN())
	}
	if err := net.SetParams(p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nan.safetensors")
	if err := model.SaveCheckpoint(path, net, nil, map[string]string{"eval_batch": "16"}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEvalNonFinite: a checkpoint with NaN weights gives valid JSON with
// --json (the NaN loss as null and "nonfinite": true), and text that says
// the loss is not finite.
func TestEvalNonFinite(t *testing.T) {
	ck := nanCheckpoint(t)
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 8)
	code, out, e := run(t, "eval", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatalf("eval --json: exit %d\n%s", code, e)
	}
	var r struct {
		Loss, Accuracy *float64
		Samples        int
		NonFinite      *bool `json:"nonfinite"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("eval --json printed invalid JSON %q: %v", out, err)
	}
	if r.Loss != nil || r.NonFinite == nil || !*r.NonFinite || r.Samples != 8 {
		t.Fatalf("want loss null, nonfinite true, 8 samples; got %s", out)
	}
	code, out, e = run(t, "eval", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--data-dir", dir)
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, e)
	}
	if !strings.Contains(out, "not finite") {
		t.Fatalf("the text output does not say the loss is not finite:\n%s", out)
	}
}

// TestEvalFiniteJSON: a healthy checkpoint reports "nonfinite": false and
// numbers.
func TestEvalFiniteJSON(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 8)
	code, out, e := run(t, "eval", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatalf("eval --json: exit %d\n%s", code, e)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("eval --json printed invalid JSON %q: %v", out, err)
	}
	if _, ok := r["loss"].(float64); !ok || r["nonfinite"] != false {
		t.Fatalf("want a numeric loss and nonfinite false; got %s", out)
	}
}
