package model

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// Desc is a model file: a named list of layers, each taking the output of
// the previous layer or of any earlier one (see the README's "Model files").
// JSON and YAML files have the same structure. Canonical() fills in every
// default; that form is stored in checkpoints under meta key "model.json".
type Desc struct {
	Name   string      `json:"name,omitempty"`
	Init   string      `json:"init,omitempty"`
	Layers []LayerDesc `json:"layers"`
}

// LayerDesc is one layer of a model file. Fields that do not apply to the
// layer's type must be left out.
type LayerDesc struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Input       string    `json:"input,omitempty"`
	Inputs      []string  `json:"inputs,omitempty"`
	Filters     int       `json:"filters,omitempty"`
	Units       int       `json:"units,omitempty"`
	Kernel      int       `json:"kernel,omitempty"`
	Stride      int       `json:"stride,omitempty"`
	Padding     *Padding  `json:"padding,omitempty"`
	Bias        *bool     `json:"bias,omitempty"`
	Act         string    `json:"act,omitempty"`
	Scale       float64   `json:"scale,omitempty"`
	Init        string    `json:"init,omitempty"`
	Momentum    *float64  `json:"momentum,omitempty"`
	Eps         *float64  `json:"eps,omitempty"`
	TrainWeight *bool     `json:"train_weight,omitempty"`
	P           *float64  `json:"p,omitempty"`
	Mean        []float64 `json:"mean,omitempty"`
	Std         []float64 `json:"std,omitempty"`
}

// Padding is a conv's padding: a number of pixels on every side
// (PyTorch's padding=p), or "same" (TensorFlow/Keras: out = ceil(in/stride),
// the odd pixel after), or "valid" (none).
type Padding struct {
	Same bool
	N    int
}

// MarshalJSON writes "same" or the number.
func (p Padding) MarshalJSON() ([]byte, error) {
	if p.Same {
		return []byte(`"same"`), nil
	}
	return []byte(strconv.Itoa(p.N)), nil
}

// UnmarshalJSON reads a number, "same" or "valid".
func (p *Padding) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch strings.ToLower(s) {
		case "same":
			*p = Padding{Same: true}
			return nil
		case "valid":
			*p = Padding{}
			return nil
		}
		return fmt.Errorf("padding %q: want a number of pixels, \"same\" or \"valid\"", s)
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil || n < 0 || n > 64 {
		return fmt.Errorf("padding %s: want a number of pixels (0 to 64), \"same\" or \"valid\"", b)
	}
	*p = Padding{N: n}
	return nil
}

// The layer types of a model file.
var layerTypes = []string{"conv", "dense", "batchnorm", "relu", "gelu", "maxpool", "avgpool",
	"globalavgpool", "flatten", "dropout", "add", "normalize"}

// The weight initialisations.
var initKinds = []string{"torch", "glorot", "kaiming_normal", "dirac", "whiten"}

var reName = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)

//go:embed presets/*.json
var presetFS embed.FS

// Presets lists the built-in model names.
func Presets() []string {
	ents, _ := presetFS.ReadDir("presets")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(out)
	return out
}

// Preset returns a built-in model by name.
func Preset(name string) (*Desc, bool) {
	b, err := presetFS.ReadFile("presets/" + name + ".json")
	if err != nil {
		return nil, false
	}
	d, err := ParseDesc(b, "preset "+name)
	if err != nil {
		panic(err) // the presets are tested
	}
	return d, true
}

// ResolveModelFor is ResolveModel for a dataset of classes classes: a
// preset whose head is a dense layer gets a head of that many units (a
// preset cannot be edited; a model file or layer spec says what it means
// and is taken as written). classes <= 0 changes nothing.
func ResolveModelFor(s string, classes int) (*Desc, error) {
	d, err := ResolveModel(s)
	if err != nil || classes <= 0 {
		return d, err
	}
	if _, ok := Preset(strings.TrimSpace(s)); ok {
		if last := &d.Layers[len(d.Layers)-1]; last.Type == "dense" {
			last.Units = classes
		}
	}
	return d, nil
}

// PlanFor is Plan for a dataset of classes classes (see ResolveModelFor).
func PlanFor(spec string, input Shape, classes int) (*Network, error) {
	d, err := ResolveModelFor(spec, classes)
	if err != nil {
		return nil, err
	}
	return PlanDesc(strings.TrimSpace(spec), d, input)
}

// maxModelFile bounds a model file's size.
const maxModelFile = 4 << 20

// IsModelFile says whether a --model value names a file rather than a
// preset or a comma spec: it ends in .json, .yaml or .yml, or contains a
// path separator.
func IsModelFile(s string) bool {
	ext := strings.ToLower(filepath.Ext(s))
	return ext == ".json" || ext == ".yaml" || ext == ".yml" || strings.ContainsRune(s, os.PathSeparator)
}

// showPath is path as an error prints it: quoted when it has characters
// that would break the one-line message.
func showPath(path string) string {
	for _, r := range path {
		if !unicode.IsGraphic(r) || r == utf8.RuneError {
			return strconv.Quote(path)
		}
	}
	return path
}

// LoadDesc reads a model file (JSON or YAML).
func LoadDesc(path string) (*Desc, error) {
	shown := showPath(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, &SpecError{Msg: fmt.Sprintf("model file %s: %v", shown, errors.Unwrap(err))}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, &SpecError{Msg: fmt.Sprintf("model file %s: not a regular file", shown)}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxModelFile+1))
	if err != nil {
		return nil, &SpecError{Msg: fmt.Sprintf("model file %s: %v", shown, err)}
	}
	if len(b) > maxModelFile {
		return nil, &SpecError{Msg: fmt.Sprintf("model file %s: larger than %d bytes; is it a model file?", shown, maxModelFile)}
	}
	return ParseDesc(b, "model file "+shown)
}

// ParseDesc parses a model description in JSON or YAML and checks it
// (names, types, fields, references; shapes are checked by Plan). where
// names the source in errors ("model file net.yaml").
func ParseDesc(b []byte, where string) (*Desc, error) {
	js := b
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		var err error
		if js, err = yaml.YAMLToJSON(b); err != nil {
			return nil, &SpecError{Msg: fmt.Sprintf("%s: not valid YAML or JSON: %v", where, err)}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var d Desc
	if err := dec.Decode(&d); err != nil {
		return nil, &SpecError{Msg: fmt.Sprintf("%s: %v", where, jsonErr(err))}
	}
	if dec.More() {
		return nil, &SpecError{Msg: fmt.Sprintf("%s: more than one JSON value", where)}
	}
	if err := d.check(where); err != nil {
		return nil, err
	}
	return &d, nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "not valid JSON: it ends early"
	}
	if errors.As(err, &se) {
		return fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: %s is not a valid %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// check validates everything but shapes, and fills in defaults.
func (d *Desc) check(where string) error {
	if len(d.Layers) == 0 {
		return &SpecError{Msg: fmt.Sprintf("%s: no layers (it needs \"layers\": [...])", where)}
	}
	if len(d.Layers) > 10000 {
		return &SpecError{Msg: fmt.Sprintf("%s: %d layers, at most 10000", where, len(d.Layers))}
	}
	if d.Init == "" {
		d.Init = "torch"
	}
	if !oneOf(d.Init, initKinds[:3]) {
		return &SpecError{Msg: fmt.Sprintf("%s: init %q: want one of %s", where, d.Init, strings.Join(initKinds[:3], ", "))}
	}
	seen := map[string]int{}
	for i := range d.Layers {
		l := &d.Layers[i]
		bad := func(format string, a ...any) error {
			return &SpecError{Layer: i + 1, Msg: fmt.Sprintf("%s: layer %d %q: ", where, i+1, l.Name) + fmt.Sprintf(format, a...)}
		}
		if !reName.MatchString(l.Name) || l.Name == "input" || len(l.Name) > 200 {
			return bad("the name must be a dotted path of letters, digits and _ (like layer1.0.conv1), not \"input\"")
		}
		if j, dup := seen[l.Name]; dup {
			return bad("the name is already used by layer %d", j+1)
		}
		if err := checkPrefixes(l.Name, seen); err != nil {
			return bad("%v", err)
		}
		if !oneOf(l.Type, layerTypes) {
			return bad("unknown type %q; known types: %s", l.Type, strings.Join(layerTypes, ", "))
		}
		if err := l.checkInputs(seen, i); err != nil {
			return bad("%v", err)
		}
		if err := l.fill(d.Init); err != nil {
			return bad("%v", err)
		}
		seen[l.Name] = i
	}
	return nil
}

// checkPrefixes refuses a name that is a module path prefix of another
// (conv1 and conv1.a): PyTorch cannot hold both as modules with tensors.
func checkPrefixes(name string, seen map[string]int) error {
	for o := range seen {
		if strings.HasPrefix(name, o+".") || strings.HasPrefix(o, name+".") {
			return fmt.Errorf("the name %q and layer %d's %q would nest one module inside another; rename one", name, seen[o]+1, o)
		}
	}
	return nil
}

func (l *LayerDesc) checkInputs(seen map[string]int, i int) error {
	ref := func(s string) error {
		if s == "input" {
			return nil
		}
		if _, ok := seen[s]; ok {
			return nil
		}
		return fmt.Errorf("input %q is not an earlier layer (a layer may take the network's \"input\" or any layer above it; a later layer would make a cycle)", s)
	}
	if l.Type == "add" {
		if l.Input != "" || len(l.Inputs) != 2 {
			return fmt.Errorf("add needs \"inputs\": [A, B], two earlier layers")
		}
		for _, s := range l.Inputs {
			if err := ref(s); err != nil {
				return err
			}
		}
		return nil
	}
	if len(l.Inputs) > 0 {
		return fmt.Errorf("only add takes \"inputs\"; use \"input\" for one")
	}
	if l.Input != "" {
		return ref(l.Input)
	}
	if i == 0 {
		l.Input = "input"
	}
	return nil
}

// fill checks the fields of the layer's type and fills in defaults.
func (l *LayerDesc) fill(init string) error {
	allowed := map[string][]string{
		"conv":      {"filters", "kernel", "stride", "padding", "bias", "act", "init"},
		"dense":     {"units", "bias", "act", "scale", "init"},
		"batchnorm": {"momentum", "eps", "act", "train_weight"},
		"maxpool":   {"kernel", "stride"}, "avgpool": {"kernel", "stride"},
		"dropout":   {"p"},
		"add":       {"act"},
		"normalize": {"mean", "std"},
	}
	if err := l.onlyFields(allowed[l.Type]); err != nil {
		return err
	}
	t := true
	if l.Act == "" && oneOf(l.Type, []string{"conv", "dense", "batchnorm", "add"}) {
		l.Act = "none"
	}
	if l.Act != "" && !oneOf(l.Act, []string{"none", "relu", "gelu"}) {
		return fmt.Errorf("act %q: want none, relu or gelu", l.Act)
	}
	switch l.Type {
	case "conv":
		if err := rangeInt("filters", l.Filters, 1, 1<<16); err != nil {
			return err
		}
		if err := l.kernelStride(); err != nil {
			return err
		}
		if l.Padding == nil {
			l.Padding = &Padding{}
		}
		if l.Bias == nil {
			l.Bias = &t
		}
		return l.fillInit(init, true)
	case "dense":
		return l.fillDense(init)
	case "batchnorm":
		return l.fillBatchNorm()
	case "maxpool", "avgpool":
		return l.kernelStride()
	case "dropout":
		p := 0.5
		if l.P == nil {
			l.P = &p
		}
		if !(*l.P >= 0 && *l.P < 1) {
			return fmt.Errorf("p %g: want 0 <= p < 1", *l.P)
		}
	case "normalize":
		return l.checkNormalize()
	}
	return nil
}

func (l *LayerDesc) fillDense(init string) error {
	if err := rangeInt("units", l.Units, 1, 1<<20); err != nil {
		return err
	}
	if l.Bias == nil {
		t := true
		l.Bias = &t
	}
	if l.Scale == 0 {
		l.Scale = 1
	}
	if !(l.Scale > 0 && l.Scale <= 1e6) {
		return fmt.Errorf("scale %g: want a positive number", l.Scale)
	}
	return l.fillInit(init, false)
}

func (l *LayerDesc) fillBatchNorm() error {
	m, e, t := 0.1, 1e-5, true
	if l.Momentum == nil {
		l.Momentum = &m
	}
	if l.Eps == nil {
		l.Eps = &e
	}
	if !(*l.Momentum >= 0 && *l.Momentum <= 1) {
		return fmt.Errorf("momentum %g: want 0 to 1 (PyTorch's convention: running = (1-m)*running + m*batch)", *l.Momentum)
	}
	if !(*l.Eps > 0 && *l.Eps < 1) {
		return fmt.Errorf("eps %g: want a small positive number", *l.Eps)
	}
	if l.TrainWeight == nil {
		l.TrainWeight = &t
	}
	return nil
}

func (l *LayerDesc) checkNormalize() error {
	if len(l.Mean) == 0 || len(l.Mean) != len(l.Std) || len(l.Mean) > 1<<16 {
		return fmt.Errorf("normalize needs \"mean\" and \"std\" with one value per channel")
	}
	for i, s := range l.Std {
		if !(s > 0 && s < 1e30) || math.IsNaN(l.Mean[i]) || math.IsInf(l.Mean[i], 0) {
			return fmt.Errorf("std %g, mean %g: want positive finite stds and finite means", s, l.Mean[i])
		}
	}
	return nil
}

func (l *LayerDesc) kernelStride() error {
	if err := rangeInt("kernel", l.Kernel, 1, 64); err != nil {
		return err
	}
	if l.Stride == 0 {
		l.Stride = 1
		if l.Type != "conv" {
			l.Stride = l.Kernel
		}
	}
	return rangeInt("stride", l.Stride, 1, 64)
}

func (l *LayerDesc) fillInit(init string, conv bool) error {
	if l.Init == "" {
		l.Init = init
	}
	if !oneOf(l.Init, initKinds) || (!conv && (l.Init == "dirac" || l.Init == "whiten")) {
		return fmt.Errorf("init %q: want one of %s (dirac and whiten: conv only)", l.Init, strings.Join(initKinds, ", "))
	}
	return nil
}

func rangeInt(what string, v, lo, hi int) error {
	if v < lo || v > hi {
		if v == 0 {
			return fmt.Errorf("%q is missing (%d to %d)", what, lo, hi)
		}
		return fmt.Errorf("%s %d: want %d to %d", what, v, lo, hi)
	}
	return nil
}

// onlyFields refuses fields set that the layer's type does not use.
func (l *LayerDesc) onlyFields(ok []string) error {
	set := map[string]bool{
		"filters": l.Filters != 0, "units": l.Units != 0, "kernel": l.Kernel != 0, "stride": l.Stride != 0,
		"padding": l.Padding != nil, "bias": l.Bias != nil, "act": l.Act != "", "scale": l.Scale != 0,
		"init": l.Init != "", "momentum": l.Momentum != nil, "eps": l.Eps != nil, "train_weight": l.TrainWeight != nil,
		"p": l.P != nil, "mean": l.Mean != nil, "std": l.Std != nil,
	}
	var extra []string
	for k, v := range set {
		if v && !oneOf(k, ok) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		want := "no fields besides name, type and input"
		if len(ok) > 0 {
			want = "only " + strings.Join(ok, ", ")
		}
		return fmt.Errorf("%s does not take %s (it takes %s)", l.Type, strings.Join(extra, ", "), want)
	}
	return nil
}

// JSON is the canonical JSON of a checked description (every default
// filled in), as stored in checkpoints.
func (d *Desc) JSON() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// DescFromSpec converts a comma spec into the equivalent model
// description: conv<i> and fc<i> names as before, Glorot init, ReLU fused
// into conv and dense, TensorFlow "same" padding.
func DescFromSpec(spec string) (*Desc, error) {
	specs, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	d := &Desc{Name: strings.TrimSpace(spec), Init: "glorot"}
	nConv, nDense, nOther := 0, 0, 0
	for _, ls := range specs {
		l := LayerDesc{Type: ls.Kind}
		act := "none"
		if ls.ReLU {
			act = "relu"
		}
		switch ls.Kind {
		case "conv":
			nConv++
			l.Name = fmt.Sprintf("conv%d", nConv)
			l.Filters, l.Kernel, l.Stride, l.Act = ls.Units, ls.K, ls.S, act
			l.Padding = &Padding{Same: ls.Same}
		case "dense":
			nDense++
			l.Name = fmt.Sprintf("fc%d", nDense)
			l.Units, l.Act = ls.Units, act
		case "maxpool", "avgpool":
			nOther++
			l.Name = fmt.Sprintf("%s%d", ls.Kind, nOther)
			l.Kernel, l.Stride = ls.K, ls.S
		default:
			nOther++
			l.Name = fmt.Sprintf("%s%d", ls.Kind, nOther)
		}
		d.Layers = append(d.Layers, l)
	}
	if err := d.check("model spec"); err != nil {
		return nil, err
	}
	return d, nil
}

// ResolveModel turns a --model value into a description: a preset name, a
// model file (IsModelFile), or a comma spec.
func ResolveModel(s string) (*Desc, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DescFromSpec(s)
	}
	if d, ok := Preset(s); ok {
		return d, nil
	}
	if IsModelFile(s) {
		return LoadDesc(s)
	}
	if !strings.Contains(s, ",") && !strings.ContainsAny(s, "0123456789") {
		if _, err := os.Stat(s); err == nil {
			return LoadDesc(s)
		}
		return nil, &SpecError{Msg: fmt.Sprintf("%q is not a preset (%s), a model file (.json, .yaml) or a layer spec", s, strings.Join(Presets(), ", "))}
	}
	d, err := DescFromSpec(s)
	if err != nil && !strings.Contains(s, ",") {
		return nil, &SpecError{Msg: fmt.Sprintf("%q is not a preset (%s), a model file (.json, .yaml) or a layer spec (%v)", s, strings.Join(Presets(), ", "), err)}
	}
	return d, err
}
