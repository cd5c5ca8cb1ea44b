package export

import (
	"fmt"
	"math"
	"strings"

	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// ONNX input and output names.
const (
	InputName  = "input"
	OutputName = "logits"
)

// ONNX encodes the network in evaluation mode as an ONNX model (IR 8,
// opset 17): input "input" float32 [N, C, H, W] with a dynamic batch N
// (see InputScale), output "logits" float32 [N, K], the raw scores before
// the softmax. Weights are initializers named as the PyTorch state_dict;
// BatchNorm uses its running statistics, dropout is left out, GELU is
// x*0.5*(1+Erf(x/sqrt(2))) (opset 17 has no Gelu). The class names are in
// metadata_props "classes" (comma-separated), the model description in
// "model.json".
func ONNX(s Source) ([]byte, error) {
	m, err := BuildONNX(s)
	if err != nil {
		return nil, err
	}
	return m.Encode(), nil
}

// BuildONNX is ONNX's model before encoding.
func BuildONNX(s Source) (*Model, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	b := &onnxBuilder{weights: map[string]model.Tensor{}, used: map[string]bool{}}
	for _, t := range s.Net.Tensors(s.Flat) {
		b.weights[t.Name] = t
	}
	nodes := s.Net.ExportNodes()
	outs := make([]string, len(nodes))
	for i, e := range nodes {
		ins := make([]string, len(e.Inputs))
		for j, k := range e.Inputs {
			ins[j] = InputName
			if k >= 0 {
				ins[j] = outs[k]
			}
		}
		out, err := b.layer(e, ins, i == len(nodes)-1)
		if err != nil {
			return nil, err
		}
		outs[i] = out
	}
	b.finish(outs[len(outs)-1])
	in := s.Net.Input
	name := s.Net.Desc.Name
	if name == "" {
		name = s.Net.Spec
	}
	g := &b.g
	g.Name = name
	g.Inputs = []ValueInfo{{Name: InputName, Dims: []int64{0, int64(in.C), int64(in.H), int64(in.W)}, Params: []string{"N"}, Doc: InputScale}}
	g.Outputs = []ValueInfo{{Name: OutputName, Dims: []int64{0, int64(s.Net.Classes)}, Params: []string{"N"},
		Doc: "raw class scores (apply a softmax for probabilities), in the order of metadata_props \"classes\""}}
	return &Model{
		Producer: "trainer",
		Doc: fmt.Sprintf("%s, exported by trainer export with its %s weights. Input %q: %s. Output %q: float32 [N, %d] logits; class names in metadata_props \"classes\".",
			name, s.Weights, InputName, InputScale, OutputName, s.Net.Classes),
		Meta:  s.onnxMeta(),
		Graph: *g,
	}, nil
}

// onnxMeta is the model's metadata_props.
func (s *Source) onnxMeta() [][2]string {
	m := [][2]string{
		{meta.Classes, strings.Join(s.classNames(), ",")},
		{meta.Input, s.inputShape()},
		{"input_scale", "pixel/255"},
		{meta.Model, s.Net.Spec},
		{meta.ModelJSON, s.Net.Desc.JSON()},
		{meta.Weights, s.Weights},
	}
	if s.Dataset != "" {
		m = append(m, [2]string{meta.Dataset, s.Dataset})
	}
	return m
}

// onnxBuilder adds a network's layers to a graph. Each layer's output is a
// tensor named after the layer; the tensors inside a layer are named
// layer/step, which no layer name can be (names are dotted identifiers).
type onnxBuilder struct {
	g       Graph
	weights map[string]model.Tensor
	used    map[string]bool // initializers added
}

// tensorName is the name of a layer's output tensor: the layer's, except
// that a layer called "logits" that is not the last must leave that name
// to the graph's output.
func tensorName(layer string, last bool) string {
	if layer == OutputName && !last {
		return layer + "/out"
	}
	return layer
}

// node adds a node whose one output (and name) is out, and returns out.
func (b *onnxBuilder) node(op string, in []string, out string, attrs ...Attr) string {
	b.g.Nodes = append(b.g.Nodes, Node{Op: op, Name: out, In: in, Out: []string{out}, Attrs: attrs})
	return out
}

// weight adds the state_dict tensor name as an initializer (once) and
// returns its name.
func (b *onnxBuilder) weight(name string) string {
	if !b.used[name] {
		t := b.weights[name]
		dims := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = int64(d)
		}
		b.g.Initializers = append(b.g.Initializers, Tensor{Name: name, Dims: dims, F32: t.Data})
		b.used[name] = true
	}
	return name
}

// constant adds a float32 initializer of the given dims (once per name).
func (b *onnxBuilder) constant(name string, dims []int64, v []float32) string {
	if !b.used[name] {
		b.g.Initializers = append(b.g.Initializers, Tensor{Name: name, Dims: dims, F32: v})
		b.used[name] = true
	}
	return name
}

// scalar is a shared float32 scalar constant.
func (b *onnxBuilder) scalar(name string, v float32) string {
	return b.constant("const/"+name, []int64{}, []float32{v})
}

// layer adds one layer reading ins and returns its output tensor.
func (b *onnxBuilder) layer(e model.ExportNode, ins []string, last bool) (string, error) {
	d := e.Desc
	x, out := ins[0], tensorName(d.Name, last)
	switch d.Type {
	case "conv":
		return b.conv(e, x, out), nil
	case "dense":
		return b.dense(d, x, out), nil
	case "batchnorm":
		return b.batchNorm(d, x, out), nil
	case "maxpool", "avgpool":
		op := map[string]string{"maxpool": "MaxPool", "avgpool": "AveragePool"}[d.Type]
		k, s := int64(d.Kernel), int64(d.Stride)
		return b.node(op, []string{x}, out, intsAttr("kernel_shape", k, k), intsAttr("strides", s, s)), nil
	case "globalavgpool":
		p := b.node("GlobalAveragePool", []string{x}, out+"/pool")
		return b.node("Flatten", []string{p}, out, intAttr("axis", 1)), nil
	case "relu", "gelu":
		return b.act(x, d.Type, out), nil
	case "flatten":
		if e.In.Flat {
			return x, nil // flat already: the layer copies nothing
		}
		return b.node("Flatten", []string{x}, out, intAttr("axis", 1)), nil
	case "add":
		return b.act(b.node("Add", ins, preAct(d.Act, out)), d.Act, out), nil
	case "dropout":
		return x, nil // the identity in evaluation mode
	case "normalize":
		return b.normalize(d, x, out), nil
	}
	return "", fmt.Errorf("layer %q: type %q has no ONNX export", d.Name, d.Type)
}

// preAct is the name of a layer's output before its fused activation act:
// out itself when there is none.
func preAct(act, out string) string {
	if act == "" || act == "none" {
		return out
	}
	return out + "/preact"
}

// act applies the activation act ("none", "relu" or "gelu") to x, naming
// the result out (x itself when there is none).
func (b *onnxBuilder) act(x, act, out string) string {
	switch act {
	case "relu":
		return b.node("Relu", []string{x}, out)
	case "gelu":
		return b.gelu(x, out)
	}
	return x
}

// gelu is the exact (erf) GELU the backends compute,
// (0.5*x) * (1 + erf(x/sqrt(2))).
func (b *onnxBuilder) gelu(x, out string) string {
	div := b.node("Div", []string{x, b.scalar("sqrt2", float32(math.Sqrt2))}, out+"/div")
	erf := b.node("Erf", []string{div}, out+"/erf")
	one := b.node("Add", []string{erf, b.scalar("one", 1)}, out+"/one_plus_erf")
	half := b.node("Mul", []string{x, b.scalar("half", 0.5)}, out+"/half_x")
	return b.node("Mul", []string{half, one}, out)
}

// conv is Conv with the layer's stride and padding (Keras "same" padding
// may put one more pixel at the bottom and right), then its activation.
func (b *onnxBuilder) conv(e model.ExportNode, x, out string) string {
	d := e.Desc
	in := []string{x, b.weight(d.Name + ".weight")}
	if *d.Bias {
		in = append(in, b.weight(d.Name+".bias"))
	}
	k, s, p := int64(d.Kernel), int64(d.Stride), e.Pads
	y := b.node("Conv", in, preAct(d.Act, out),
		intsAttr("kernel_shape", k, k), intsAttr("strides", s, s),
		intsAttr("pads", int64(p[0]), int64(p[1]), int64(p[2]), int64(p[3])),
		intsAttr("dilations", 1, 1), intAttr("group", 1))
	return b.act(y, d.Act, out)
}

// dense is Gemm: scale * x W^T + bias, then the activation.
func (b *onnxBuilder) dense(d *model.LayerDesc, x, out string) string {
	in := []string{x, b.weight(d.Name + ".weight")}
	if *d.Bias {
		in = append(in, b.weight(d.Name+".bias"))
	}
	y := b.node("Gemm", in, preAct(d.Act, out),
		floatAttr("alpha", float32(d.Scale)), floatAttr("beta", 1), intAttr("transA", 0), intAttr("transB", 1))
	return b.act(y, d.Act, out)
}

// batchNorm is BatchNormalization with the running statistics (inference
// mode), on [N, C, H, W] or flat [N, C] features, then the activation.
// ONNX's momentum weighs the running value, PyTorch's the batch's.
func (b *onnxBuilder) batchNorm(d *model.LayerDesc, x, out string) string {
	n := d.Name
	y := b.node("BatchNormalization",
		[]string{x, b.weight(n + ".weight"), b.weight(n + ".bias"), b.weight(n + ".running_mean"), b.weight(n + ".running_var")},
		preAct(d.Act, out),
		floatAttr("epsilon", float32(*d.Eps)), floatAttr("momentum", float32(1-*d.Momentum)))
	return b.act(y, d.Act, out)
}

// normalize is (x - mean) * (1/std) per channel, with 1/std rounded as the
// backends' BatchNorm kernel rounds 1/sqrt(std^2).
func (b *onnxBuilder) normalize(d *model.LayerDesc, x, out string) string {
	c := len(d.Mean)
	mean, inv := make([]float32, c), make([]float32, c)
	for i := range d.Mean {
		mean[i] = float32(d.Mean[i])
		inv[i] = float32(1 / math.Sqrt(float64(float32(d.Std[i]*d.Std[i]))))
	}
	dims := []int64{int64(c), 1, 1}
	sub := b.node("Sub", []string{x, b.constant(d.Name+"/mean", dims, mean)}, out+"/centred")
	return b.node("Mul", []string{sub, b.constant(d.Name+"/inv_std", dims, inv)}, out)
}

// finish makes the last layer's output the graph's output "logits": the
// last node's output is renamed, or, when the last layer added no node (a
// dropout), an Identity copies it.
func (b *onnxBuilder) finish(last string) {
	nodes := b.g.Nodes
	if k := len(nodes) - 1; k >= 0 && nodes[k].Out[0] == last && last != InputName {
		nodes[k].Out[0], nodes[k].Name = OutputName, OutputName
		return
	}
	b.node("Identity", []string{last}, OutputName)
}
