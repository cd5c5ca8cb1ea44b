package model

// ExportNode is one layer of a planned network as an exporter (ONNX) sees
// it: its description, where its inputs come from and the shapes and
// padding the model computed for it, so an exporter need not re-derive
// them.
type ExportNode struct {
	Desc   *LayerDesc
	Inputs []int // earlier nodes' indices; -1 is the network's input
	In     Shape // the (first) input's shape
	Out    Shape
	// Pads is a conv's zero padding as top, left, bottom, right (ONNX's
	// order): PyTorch's padding=p on every side, or Keras "same" padding
	// with the odd pixel at the bottom and right.
	Pads [4]int
}

// ExportNodes lists the network's layers in order.
func (n *Network) ExportNodes() []ExportNode {
	out := make([]ExportNode, len(n.nodes))
	for i, nd := range n.nodes {
		e := ExportNode{Desc: nd.l.desc(), Inputs: append([]int(nil), nd.inputs...), In: nd.l.in(), Out: nd.l.out()}
		if c, ok := nd.l.(*conv); ok {
			e.Pads = c.pads()
		}
		out[i] = e
	}
	return out
}

// pads is the conv's padding as top, left, bottom, right. For "same" the
// total is what the last window reads past the input, and newConv put its
// smaller half (padH, padW) at the top and left.
func (c *conv) pads() [4]int {
	if !c.d.Padding.Same {
		p := c.d.Padding.N
		return [4]int{p, p, p, p}
	}
	k, s := c.d.Kernel, c.d.Stride
	th := max((c.os.H-1)*s+k-c.is.H, 0)
	tw := max((c.os.W-1)*s+k-c.is.W, 0)
	return [4]int{c.padH, c.padW, th - c.padH, tw - c.padW}
}

// BatchNormNames lists the BatchNorm layers' names, whose
// num_batches_tracked a PyTorch state_dict holds.
func (n *Network) BatchNormNames() []string { return n.batchNorms() }
