package export

import (
	"encoding/binary"
	"math"
)

// The ONNX messages an export writes, with the field numbers of onnx.proto
// (IR version 8). Only the fields used are modelled.

// IR version and operator set of the models written: ONNX 1.12's.
const (
	irVersion = 8
	opset     = 17
)

// TensorProto data types.
const (
	dtFloat = 1
	dtInt64 = 7
)

// AttributeProto types.
const (
	attrFloat = 1
	attrInt   = 2
	attrInts  = 7
)

// Model is an ONNX ModelProto: one graph and its metadata.
type Model struct {
	Producer, ProducerVersion string
	Doc                       string
	Meta                      [][2]string // metadata_props, in order
	Graph                     Graph
}

// Graph is a GraphProto.
type Graph struct {
	Name         string
	Nodes        []Node
	Initializers []Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	Doc          string
}

// Node is a NodeProto of the default domain.
type Node struct {
	Op, Name string
	In, Out  []string
	Attrs    []Attr
}

// Attr is an AttributeProto holding a float, an int or a list of ints.
type Attr struct {
	Name string
	Type int // attrFloat, attrInt or attrInts
	F    float32
	I    int64
	Ints []int64
}

// Tensor is a TensorProto of float32 (F32) or int64 (I64) values, stored
// as raw little-endian bytes.
type Tensor struct {
	Name string
	Dims []int64
	F32  []float32
	I64  []int64
}

// ValueInfo is a graph input or output: a float32 tensor whose dims are
// numbers, or names (Params[i] != "") for dynamic ones.
type ValueInfo struct {
	Name   string
	Dims   []int64
	Params []string
	Doc    string
}

func floatAttr(name string, v float32) Attr { return Attr{Name: name, Type: attrFloat, F: v} }
func intAttr(name string, v int64) Attr     { return Attr{Name: name, Type: attrInt, I: v} }
func intsAttr(name string, v ...int64) Attr { return Attr{Name: name, Type: attrInts, Ints: v} }

// Encode is the model's protobuf encoding (an .onnx file).
func (m *Model) Encode() []byte {
	var b pb
	b.varint(1, irVersion)
	b.strOpt(2, m.Producer)
	b.strOpt(3, m.ProducerVersion)
	b.strOpt(6, m.Doc)
	b.msg(7, m.Graph.encode())
	var op pb
	op.str(1, "")
	op.varint(2, opset)
	b.msg(8, op)
	for _, kv := range m.Meta {
		var e pb
		e.str(1, kv[0])
		e.str(2, kv[1])
		b.msg(14, e)
	}
	return b
}

func (g *Graph) encode() pb {
	var b pb
	for i := range g.Nodes {
		b.msg(1, g.Nodes[i].encode())
	}
	b.strOpt(2, g.Name)
	for i := range g.Initializers {
		b.msg(5, g.Initializers[i].encode())
	}
	b.strOpt(10, g.Doc)
	for _, v := range g.Inputs {
		b.msg(11, v.encode())
	}
	for _, v := range g.Outputs {
		b.msg(12, v.encode())
	}
	return b
}

func (n *Node) encode() pb {
	var b pb
	for _, s := range n.In {
		b.str(1, s)
	}
	for _, s := range n.Out {
		b.str(2, s)
	}
	b.strOpt(3, n.Name)
	b.str(4, n.Op)
	for _, a := range n.Attrs {
		b.msg(5, a.encode())
	}
	return b
}

func (a *Attr) encode() pb {
	var b pb
	b.str(1, a.Name)
	switch a.Type {
	case attrFloat:
		b.float(2, a.F)
	case attrInt:
		b.varint(3, a.I)
	case attrInts:
		for _, v := range a.Ints {
			b.varint(8, v)
		}
	}
	b.varint(20, int64(a.Type))
	return b
}

func (t *Tensor) encode() pb {
	var b pb
	for _, d := range t.Dims {
		b.varint(1, d)
	}
	var raw []byte
	if t.I64 != nil {
		b.varint(2, dtInt64)
		raw = make([]byte, 0, 8*len(t.I64))
		for _, v := range t.I64 {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	} else {
		b.varint(2, dtFloat)
		raw = make([]byte, 0, 4*len(t.F32))
		for _, v := range t.F32 {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
	}
	b.str(8, t.Name)
	b.bytes(9, raw)
	return b
}

func (v *ValueInfo) encode() pb {
	var shape pb
	for i, d := range v.Dims {
		var dim pb
		if i < len(v.Params) && v.Params[i] != "" {
			dim.str(2, v.Params[i])
		} else {
			dim.varint(1, d)
		}
		shape.msg(1, dim)
	}
	var tt pb
	tt.varint(1, dtFloat)
	tt.msg(2, shape)
	var typ pb
	typ.msg(1, tt)
	var b pb
	b.str(1, v.Name)
	b.msg(2, typ)
	b.strOpt(3, v.Doc)
	return b
}
