package export

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// The ONNX exports are checked against an independent evaluator: ONNX
// Runtime (its WebAssembly build, npm onnxruntime-web) under Node.js runs
// each exported file on random images, and its logits must match the
// network's own CPU forward pass (Network.Logits) to onnxTol.

// onnxTol is the largest difference allowed between ONNX Runtime's logits
// and the CPU backend's: both compute in float32, in different orders (and
// ONNX Runtime's Erf is a float32 approximation where the backend's GELU
// is computed in float64), so the logits of these small networks agree to
// a few ulps of their magnitudes, far inside 1e-4.
const onnxTol = 1e-4

// testNet plans d on input in, builds it on the CPU for batches of n and
// sets random weights: InitParams, then every tensor InitParams leaves
// constant (biases, BatchNorm's weight, bias and running statistics, the
// whitening conv's zero weights) drawn at random, so each one shows in the
// logits, and the last layer's weights times 8.
func testNet(t *testing.T, d *model.Desc, in model.Shape, n int, seed uint64) (*model.Network, []float32) {
	t.Helper()
	net, err := model.PlanDesc(d.Name, d, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := net.Build(b, n, seed); err != nil {
		t.Fatal(err)
	}
	flat := net.InitParams(seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	ts := net.Tensors(flat)
	for _, t := range ts {
		perturb(rng, t)
	}
	// Logits of several units in size make a wrong layer show: scale the
	// last weights up.
	last := ts[len(ts)-1]
	for _, t := range ts {
		if strings.HasSuffix(t.Name, ".weight") {
			last = t
		}
	}
	for i := range last.Data {
		last.Data[i] *= 8
	}
	if err := net.SetParams(flat); err != nil {
		t.Fatal(err)
	}
	return net, flat
}

// perturb draws the tensors InitParams sets to constants.
func perturb(rng *rand.Rand, ts model.Tensor) {
	v := ts.Data
	switch {
	case strings.HasSuffix(ts.Name, ".running_var"):
		for i := range v {
			v[i] = float32(0.25 + 1.5*rng.Float64())
		}
	case strings.HasSuffix(ts.Name, ".running_mean"), strings.HasSuffix(ts.Name, ".bias"):
		for i := range v {
			v[i] = float32(0.2 * rng.NormFloat64())
		}
	case constant(v):
		// BatchNorm weights (one) and whitening weights (zero)
		for i := range v {
			v[i] += float32(0.3 * rng.NormFloat64())
		}
	}
}

func constant(v []float32) bool {
	for _, x := range v {
		if x != v[0] {
			return false
		}
	}
	return true
}

// randomImages are n images of in with values in [0, 1], as predict
// feeds them.
func randomImages(in model.Shape, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 9))
	x := make([]float32, n*in.Size())
	for i := range x {
		x[i] = float32(rng.IntN(256)) / 255
	}
	return x
}

func parse(t *testing.T, js string) *model.Desc {
	t.Helper()
	d, err := model.ParseDesc([]byte(js), "test model")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func preset(t *testing.T, name string) *model.Desc {
	t.Helper()
	d, ok := model.Preset(name)
	if !ok {
		t.Fatalf("no preset %s", name)
	}
	return d
}

// mixJSON has every other layer kind and option: normalize, gelu (fused and
// alone), "same" padding with stride 2 on an even size (pads 0 top, 1
// bottom) and with an even kernel (1 top, 2 bottom), convs and denses
// without bias, avgpool, maxpool with stride 1, add without act, dropout,
// BatchNorm over image channels and over flat features, dense scale, and a
// flatten of features already flat.
const mixJSON = `{"name": "mix", "layers": [
 {"name": "norm", "type": "normalize", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]},
 {"name": "c1", "type": "conv", "filters": 8, "kernel": 3, "stride": 2, "padding": "same", "bias": false, "act": "gelu"},
 {"name": "c2", "type": "conv", "filters": 8, "kernel": 4, "padding": "same", "act": "relu", "init": "kaiming_normal"},
 {"name": "bn1", "type": "batchnorm", "act": "gelu", "eps": 0.001, "momentum": 0.2},
 {"name": "add1", "type": "add", "inputs": ["bn1", "c1"]},
 {"name": "r1", "type": "relu"},
 {"name": "ap", "type": "avgpool", "kernel": 2},
 {"name": "mp", "type": "maxpool", "kernel": 3, "stride": 1},
 {"name": "c3", "type": "conv", "filters": 6, "kernel": 1, "bias": false, "init": "glorot"},
 {"name": "g1", "type": "gelu"},
 {"name": "fl", "type": "flatten"},
 {"name": "d1", "type": "dense", "units": 16, "act": "gelu", "scale": 0.5},
 {"name": "dbn", "type": "batchnorm", "act": "relu", "train_weight": false},
 {"name": "drop", "type": "dropout", "p": 0.3},
 {"name": "d2", "type": "dense", "units": 7, "bias": false, "scale": 2},
 {"name": "fl2", "type": "flatten"}
]}`

// gapJSON: grey input, symmetric and asymmetric "same" padding at stride
// 2 on odd sizes, global average pooling, explicit padding with stride 2,
// a layer named "logits" that is not the last, a layer nothing reads, and
// dropout last reading an earlier layer (the graph's output is then an
// Identity).
const gapJSON = `{"name": "gap", "layers": [
 {"name": "c1", "type": "conv", "filters": 4, "kernel": 3, "stride": 2, "padding": "same", "act": "relu"},
 {"name": "c2", "type": "conv", "filters": 5, "kernel": 2, "stride": 2, "padding": "same", "bias": false},
 {"name": "c3", "type": "conv", "filters": 5, "kernel": 3, "stride": 2, "padding": 1, "act": "gelu"},
 {"name": "bn", "type": "batchnorm"},
 {"name": "pool", "type": "globalavgpool"},
 {"name": "logits", "type": "dense", "units": 3, "act": "relu"},
 {"name": "bnf", "type": "batchnorm"},
 {"name": "unused", "type": "relu"},
 {"name": "drop", "type": "dropout", "input": "bnf"}
]}`

// onnxCase is one network the ONNX test exports.
type onnxCase struct {
	name string
	desc func(t *testing.T) *model.Desc
	in   model.Shape
	n    int // images
	pads map[string][4]int
	// identity: the last layer adds no node and reads an earlier layer,
	// so an Identity gives the graph's output.
	identity bool
}

var onnxCases = []onnxCase{
	{name: "seed", desc: func(t *testing.T) *model.Desc { return preset(t, "seed") }, in: model.Shape{C: 3, H: 32, W: 32}, n: 3},
	{name: "resnet20", desc: func(t *testing.T) *model.Desc { return preset(t, "resnet20") }, in: model.Shape{C: 3, H: 32, W: 32}, n: 3},
	{name: "airbench94", desc: func(t *testing.T) *model.Desc { return preset(t, "airbench94") }, in: model.Shape{C: 3, H: 32, W: 32}, n: 2},
	{name: "mix", desc: func(t *testing.T) *model.Desc { return parse(t, mixJSON) }, in: model.Shape{C: 3, H: 16, W: 16}, n: 5,
		pads: map[string][4]int{"c1": {0, 0, 1, 1}, "c2": {1, 1, 2, 2}, "c3": {0, 0, 0, 0}}},
	{name: "gap", desc: func(t *testing.T) *model.Desc { return parse(t, gapJSON) }, in: model.Shape{C: 1, H: 9, W: 9}, n: 4,
		pads: map[string][4]int{"c1": {1, 1, 1, 1}, "c2": {0, 0, 1, 1}, "c3": {1, 1, 1, 1}}, identity: true},
}

// TestONNXMatchesCPU exports each network and runs it with ONNX Runtime:
// the logits must match the CPU backend's within onnxTol.
func TestONNXMatchesCPU(t *testing.T) {
	ort := testkit.NeedONNXRuntime(t)
	for i, tc := range onnxCases {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(100 + i)
			net, flat := testNet(t, tc.desc(t), tc.in, tc.n, seed)
			checkPads(t, net, tc.pads)
			x := randomImages(tc.in, tc.n, seed)
			want, err := net.Logits(x, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ONNX(Source{Net: net, Flat: flat, Weights: "trained"})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), tc.name+".onnx")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			got, res := ort.Run(t, path, x, [4]int{tc.n, tc.in.C, tc.in.H, tc.in.W})
			if res.Input != InputName || res.Output != OutputName {
				t.Fatalf("the model's input and output are %q and %q, want %q and %q", res.Input, res.Output, InputName, OutputName)
			}
			if len(res.Dims) != 2 || res.Dims[0] != tc.n || res.Dims[1] != net.Classes {
				t.Fatalf("ONNX Runtime's logits have dims %v, want [%d %d]", res.Dims, tc.n, net.Classes)
			}
			diff, at := testkit.MaxDiff(got, want)
			t.Logf("%s: %d images, %d logits up to %.3g in size: max |ONNX Runtime - CPU| = %.3g", tc.name, tc.n, len(want), maxAbs(want), diff)
			if diff > onnxTol || math.IsNaN(diff) {
				t.Fatalf("logit %d: ONNX Runtime %g, CPU %g: differ by %.3g, more than %g", at, got[at], want[at], diff, onnxTol)
			}
		})
	}
}

// checkPads compares the convs' ONNX padding with the cases' hand-worked
// values (top, left, bottom, right).
func checkPads(t *testing.T, net *model.Network, want map[string][4]int) {
	t.Helper()
	seen := 0
	for _, e := range net.ExportNodes() {
		if w, ok := want[e.Desc.Name]; ok {
			seen++
			if e.Pads != w {
				t.Errorf("conv %s: pads %v, want %v", e.Desc.Name, e.Pads, w)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("%d of %d convs with expected pads found", seen, len(want))
	}
}

func maxAbs(v []float32) float64 {
	var m float64
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// checkerScript loads an ONNX file with the onnx package, runs its full
// checker (which includes strict shape inference) and prints what the
// test compares: versions, input and output types, metadata and the
// inferred shape of every node's output.
const checkerScript = `
import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
def dims(v):
    return [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]
inf = onnx.shape_inference.infer_shapes(m, strict_mode=True)
print(json.dumps({
    "ir_version": m.ir_version,
    "opset": [[o.domain, o.version] for o in m.opset_import],
    "inputs": [[v.name, v.type.tensor_type.elem_type, dims(v)] for v in m.graph.input],
    "outputs": [[v.name, v.type.tensor_type.elem_type, dims(v)] for v in m.graph.output],
    "initializers": sorted(t.name for t in m.graph.initializer),
    "meta": {p.key: p.value for p in m.metadata_props},
    "doc": m.doc_string,
    "inferred": len(inf.graph.value_info),
    "last_op": m.graph.node[-1].op_type,
}))
`

// TestONNXChecker runs the onnx package's full checker on the exports of
// every test network, when Python's onnx is installed (Debian's python3-onnx), and compares the
// model's interface and metadata as onnx reads them.
func TestONNXChecker(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		t.Skip("Python's onnx module is not installed (apt-get install python3-onnx): the ONNX checker is not run")
	}
	for i, tc := range onnxCases {
		t.Run(tc.name, func(t *testing.T) {
			net, flat := testNet(t, tc.desc(t), tc.in, 1, uint64(200+i))
			classes := make([]string, net.Classes)
			for j := range classes {
				classes[j] = fmt.Sprintf("class %c", 'a'+j)
			}
			b, err := ONNX(Source{Net: net, Flat: flat, Weights: "ema", Classes: classes, Dataset: "cifar10"})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), tc.name+".onnx")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, "-c", checkerScript, path).CombinedOutput()
			if err != nil {
				t.Fatalf("onnx checker on %s: %v\n%s", tc.name, err, out)
			}
			var got struct {
				IR              int `json:"ir_version"`
				Opset           [][2]any
				Inputs, Outputs [][3]any
				Initializers    []string
				Meta            map[string]string
				Doc             string
				Inferred        int
				LastOp          string `json:"last_op"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("checker printed %s: %v", out, err)
			}
			checkChecked(t, net, got.IR, got.Opset, got.Inputs, got.Outputs, got.Initializers)
			want := map[string]string{"classes": strings.Join(classes, ","), "model.json": net.Desc.JSON(),
				"input": fmt.Sprintf("%dx%dx%d", tc.in.C, tc.in.H, tc.in.W), "weights": "ema", "dataset": "cifar10"}
			for k, v := range want {
				if got.Meta[k] != v {
					t.Errorf("metadata %q = %q, want %q", k, got.Meta[k], v)
				}
			}
			if !strings.Contains(got.Doc, "divided by 255") {
				t.Errorf("doc_string %q does not say how the input is scaled", got.Doc)
			}
			if (got.LastOp == "Identity") != tc.identity {
				t.Errorf("the last node is %s; an Identity is wanted only when the last layer adds no node", got.LastOp)
			}
			if got.Inferred == 0 {
				t.Errorf("shape inference inferred no intermediate shapes")
			}
		})
	}
}

// checkChecked compares the model's versions, input, output and
// initializers as onnx read them with the network's.
func checkChecked(t *testing.T, net *model.Network, ir int, opsets [][2]any, ins, outs [][3]any, inits []string) {
	t.Helper()
	if ir != irVersion || len(opsets) != 1 || opsets[0][0] != "" || opsets[0][1] != float64(opset) {
		t.Errorf("IR version %d, opsets %v: want %d and [[\"\" %d]]", ir, opsets, irVersion, opset)
	}
	in := net.Input
	wantIn := fmt.Sprint([][3]any{{InputName, float64(1), []any{"N", float64(in.C), float64(in.H), float64(in.W)}}})
	if fmt.Sprint(ins) != wantIn {
		t.Errorf("inputs %v, want %v", ins, wantIn)
	}
	wantOut := fmt.Sprint([][3]any{{OutputName, float64(1), []any{"N", float64(net.Classes)}}})
	if fmt.Sprint(outs) != wantOut {
		t.Errorf("outputs %v, want %v", outs, wantOut)
	}
	have := map[string]bool{}
	for _, s := range inits {
		have[s] = true
	}
	for _, ts := range net.Tensors(make([]float32, net.FlatLen())) {
		if !have[ts.Name] {
			t.Errorf("initializer %s (the state_dict name) is missing", ts.Name)
		}
	}
}
