package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var cifarShape = Shape{C: 3, H: 32, W: 32}

// TestPresets: the presets plan on CIFAR-10 with the parameter counts of
// their PyTorch modules, and the seed preset is the default comma spec,
// tensor for tensor and draw for draw.
func TestPresets(t *testing.T) {
	for name, want := range map[string]int{"seed": 122570, "resnet20": 272474} {
		net, err := Plan(name, cifarShape)
		if err != nil {
			t.Fatal(err)
		}
		if net.NumParams() != want {
			t.Errorf("%s has %d parameters, its PyTorch module %d", name, net.NumParams(), want)
		}
	}
	ab, err := Plan("airbench94", cifarShape)
	if err != nil {
		t.Fatal(err)
	}
	// airbench94's make_net(): whiten 3*2*2*24+24, three groups of two
	// bias-free convs and two BatchNorms (weight and bias), a bias-free head.
	want := 24*12 + 24
	in := 24
	for _, w := range []int{64, 256, 256} {
		want += w*in*9 + w*w*9 + 4*w
		in = w
	}
	want += 256 * 10
	if ab.NumParams() != want {
		t.Errorf("airbench94 has %d parameters, its PyTorch module %d", ab.NumParams(), want)
	}
	seed, _ := Plan("seed", cifarShape)
	spec, _ := Plan(DefaultSpec, cifarShape)
	a, b := seed.Tensors(seed.InitParams(3)), spec.Tensors(spec.InitParams(3))
	if len(a) != len(b) {
		t.Fatalf("seed preset: %d tensors, the default spec %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || fmt.Sprint(a[i].Shape) != fmt.Sprint(b[i].Shape) || fmt.Sprint(a[i].Data) != fmt.Sprint(b[i].Data) {
			t.Fatalf("seed preset tensor %d (%s) differs from the default spec's (%s)", i, a[i].Name, b[i].Name)
		}
	}
	for _, p := range Presets() {
		d, _ := Preset(p)
		again, err := ParseDesc([]byte(d.JSON()), "canonical")
		if err != nil || again.JSON() != d.JSON() {
			t.Errorf("preset %s: its canonical JSON does not read back to itself: %v", p, err)
		}
	}
}

// TestResNet20Names: resnet20's tensors are named as the state_dict of the
// CIFAR ResNet modules (conv1, bn1, layerS.B.convK, shortcut.0/1, linear).
func TestResNet20Names(t *testing.T) {
	net, err := Plan("resnet20", cifarShape)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]int{}
	for _, tt := range net.Tensors(make([]float32, net.FlatLen())) {
		names[tt.Name] = tt.Shape
	}
	for name, shape := range map[string][]int{
		"conv1.weight": {16, 3, 3, 3}, "bn1.running_var": {16}, "layer1.0.conv1.weight": {16, 16, 3, 3},
		"layer2.0.shortcut.0.weight": {32, 16, 1, 1}, "layer2.0.shortcut.1.running_mean": {32},
		"layer3.2.bn2.bias": {64}, "linear.weight": {10, 64}, "linear.bias": {10},
	} {
		if fmt.Sprint(names[name]) != fmt.Sprint(shape) {
			t.Errorf("tensor %s: shape %v, want %v", name, names[name], shape)
		}
	}
	if _, ok := names["layer1.0.shortcut.0.weight"]; ok {
		t.Error("layer1.0 has a projection shortcut; its shapes match")
	}
	if len(net.batchNorms()) != 21 {
		t.Errorf("%d BatchNorm layers, want 19 + 2 shortcuts = 21", len(net.batchNorms()))
	}
}

// TestModelFileErrors: bad model files name the file, the layer and what
// is wrong, never panic.
func TestModelFileErrors(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct{ body, want string }{
		{`{"layers":[{"name":"a","type":"convv","filters":3,"kernel":3}]}`, `layer 1 "a": unknown type "convv"`},
		{`{"layers":[{"name":"a","type":"conv","filters":3,"kernel":3},{"name":"b","type":"add","inputs":["a","zz"]}]}`, `layer 2 "b": input "zz" is not an earlier layer`},
		{`{"layers":[{"name":"a","type":"conv","filters":3,"kernel":3,"input":"b"},{"name":"b","type":"relu"}]}`, `cycle`},
		{`{"layers":[{"name":"a","type":"conv","filters":3,"kernel":3},{"name":"b","type":"conv","filters":4,"kernel":3,"padding":1},{"name":"c","type":"add","inputs":["a","b"]},{"name":"f","type":"flatten"},{"name":"d","type":"dense","units":2}]}`, `layer 3 "c" (add)`},
		{`{"layers":[{"name":"a","type":"conv","filters":3,"kernel":3},{"name":"a","type":"relu"}]}`, `already used by layer 1`},
		{`{"layers":[{"name":"a","type":"conv","kernel":3}]}`, `"filters" is missing`},
		{`{"layers":[{"name":"a","type":"relu","units":3}]}`, `relu does not take units`},
		{`{"layers":[{"name":"a","type":"conv","filters":3,"kernel":3,"padding":"full"}]}`, `padding "full"`},
		{`{"layers":[{"name":"a","type":"conv","filters":3,"kernel":3,"colour":1}]}`, `unknown field "colour"`},
		{`{"layers":[{"name":"a","type":"conv","filters":3,"kernel":3}]}`, `the logits must be flat`},
		{`{"layers":[{"name":"a b","type":"relu"}]}`, `dotted path`},
		{`{"layers":[{"name":"a","type":"relu"},{"name":"a.b","type":"relu"}]}`, `nest`},
		{`{"layers":[]}`, `no layers`},
		{`{"layers":[{"name":"a","type":"batchnorm","momentum":2}]}`, `momentum 2`},
		{"layers:\n  - name: a\n    type: dense\n    units: x\n", `units`},
		{"{\"layers\": [", `not valid JSON`},
		{"layers: [\n", `not valid YAML`},
	} {
		ext := ".json"
		if !strings.HasPrefix(c.body, "{") {
			ext = ".yaml"
		}
		path := filepath.Join(dir, fmt.Sprintf("m%d%s", i, ext))
		os.WriteFile(path, []byte(c.body), 0o644)
		_, err := Plan(path, Shape{C: 2, H: 8, W: 8})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("model file %s: error %v, want it to mention %q", c.body, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), "m"+fmt.Sprint(i)) && !strings.Contains(c.want, "logits") && !strings.Contains(c.want, "(add)") {
			t.Errorf("error %q does not name the file", err)
		}
	}
	if _, err := Plan(filepath.Join(dir, "missing.yaml"), cifarShape); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := Plan("resnet21", cifarShape); err == nil || !strings.Contains(err.Error(), "resnet20") {
		t.Errorf("an unknown preset: %v, want the presets listed", err)
	}
}

// TestYAMLModelFile: a YAML file plans the same network as its JSON twin.
func TestYAMLModelFile(t *testing.T) {
	y := `name: tiny
layers:
  - {name: conv1, type: conv, filters: 3, kernel: 3, padding: same, bias: false}
  - {name: bn1, type: batchnorm, act: relu}
  - {name: skip, type: add, inputs: [bn1, conv1]}
  - {name: pool, type: globalavgpool}
  - {name: drop, type: dropout, p: 0.25}
  - {name: fc, type: dense, units: 4}
`
	path := filepath.Join(t.TempDir(), "tiny.yml")
	os.WriteFile(path, []byte(y), 0o644)
	net, err := Plan(path, Shape{C: 2, H: 5, W: 5})
	if err != nil {
		t.Fatal(err)
	}
	again, err := PlanDesc("x", mustParse(t, net.Desc.JSON()), Shape{C: 2, H: 5, W: 5})
	if err != nil || again.NumParams() != net.NumParams() || net.NumParams() != 2*9*3+6+3*4+4 {
		t.Fatalf("YAML plans %d parameters, its JSON %v (%v)", net.NumParams(), again, err)
	}
}

func mustParse(t *testing.T, s string) *Desc {
	d, err := ParseDesc([]byte(s), "test")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEigenSym: the eigen decomposition reproduces random symmetric
// matrices, V diag(vals) V^T, with orthonormal V and sorted values.
func TestEigenSym(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, d := range []int{1, 2, 5, 12} {
		m := make([][]float64, d)
		for i := range m {
			m[i] = make([]float64, d)
		}
		for i := 0; i < d; i++ {
			for j := i; j < d; j++ {
				m[i][j] = rng.NormFloat64()
				m[j][i] = m[i][j]
			}
		}
		vals, v := eigenSym(m)
		for i := 0; i < d; i++ {
			if i > 0 && vals[i] > vals[i-1] {
				t.Fatalf("eigenvalues not decreasing: %v", vals)
			}
			for j := 0; j < d; j++ {
				var r, o float64
				for k := 0; k < d; k++ {
					r += v[i][k] * vals[k] * v[j][k]
					o += v[k][i] * v[k][j]
				}
				if math.Abs(r-m[i][j]) > 1e-9 {
					t.Fatalf("d=%d: (V L V^T)[%d][%d] = %g, matrix %g", d, i, j, r, m[i][j])
				}
				if id := map[bool]float64{true: 1, false: 0}[i == j]; math.Abs(o-id) > 1e-9 {
					t.Fatalf("d=%d: V is not orthonormal", d)
				}
			}
		}
	}
}

// TestWhitening: after InitFromData the whitening conv's first half of
// filters turn the images' patches into decorrelated values: their
// covariance is diag(l/(l+eps)), close to the identity.
func TestWhitening(t *testing.T) {
	net, err := Plan("airbench94", cifarShape)
	if err != nil {
		t.Fatal(err)
	}
	b := newCPU(t, 2)
	if err := net.Build(b, 2, 1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	const n = 40
	imgs := make([]uint8, n*3072)
	for i := range imgs { // correlated channels, smooth in space
		imgs[i] = uint8(128 + 60*math.Sin(float64(i%1024)/50) + 40*rng.Float64())
	}
	if err := net.InitFromData(imgs, n); err != nil {
		t.Fatal(err)
	}
	c := net.nodes[1].l.(*conv)
	norm, _ := net.inputChain(1)
	cov := net.patchCovariance(imgs, n, c, norm)
	flat, _ := net.GetParams()
	w := flat[c.w.Off : c.w.Off+c.w.N]
	vals, _ := eigenSym(cov)
	for f := 0; f < 12; f++ {
		for g := 0; g < 12; g++ {
			var s float64
			for a := 0; a < 12; a++ {
				for bb := 0; bb < 12; bb++ {
					s += float64(w[f*12+a]) * cov[a][bb] * float64(w[g*12+bb])
				}
			}
			want := 0.0
			if f == g {
				want = vals[f] / (vals[f] + whitenEps)
			}
			if math.Abs(s-want) > 1e-3 {
				t.Fatalf("whitened covariance [%d][%d] = %g, want %g", f, g, s, want)
			}
			if w[(f+12)*12+g] != -w[f*12+g] {
				t.Fatal("the second half of the filters is not the negation of the first")
			}
		}
	}
}

// FuzzModelFile: any bytes as a model file give a network or an error,
// never a panic; a network plans again from its canonical JSON.
func FuzzModelFile(f *testing.F) {
	for _, p := range Presets() {
		d, _ := Preset(p)
		f.Add([]byte(d.JSON()))
	}
	f.Add([]byte("layers:\n  - {name: a, type: conv, filters: 2, kernel: 3}\n  - {name: f, type: flatten}\n  - {name: d, type: dense, units: 2}\n"))
	f.Add([]byte(`{"layers":[{"name":"a","type":"add","inputs":["input","input"]},{"name":"g","type":"globalavgpool"},{"name":"d","type":"dense","units":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDesc(b, "fuzz")
		if err != nil {
			return
		}
		net, err := PlanDesc("fuzz", d, Shape{C: 3, H: 8, W: 8})
		if err != nil {
			return
		}
		again, err := ParseDesc([]byte(d.JSON()), "canonical")
		if err != nil {
			t.Fatalf("canonical JSON does not parse: %v", err)
		}
		net2, err := PlanDesc("fuzz", again, Shape{C: 3, H: 8, W: 8})
		if err != nil || net2.FlatLen() != net.FlatLen() {
			t.Fatalf("canonical JSON plans differently: %v", err)
		}
	})
}
