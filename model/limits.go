package model

import "fmt"

// BatchLimitError is a batch refused by Build because one of a layer's
// buffers (or an op's work count) would pass the number of elements the
// backend's ops can index (device.Caps.MaxElems): on the GPU, kernels index
// with C ints, and past the limit they would read and write the wrong
// memory.
type BatchLimitError struct {
	Layer    int    // 1-based layer number
	Name     string // the layer's name
	Type     string // its type
	What     string // the buffer or work count, e.g. "output"
	Batch    int    // the batch refused
	Elems    int    // elements at that batch
	Limit    int    // the backend's limit
	MaxBatch int    // the largest batch the whole network allows
	Backend  string // the backend's name
}

func (e *BatchLimitError) Error() string {
	return fmt.Sprintf("layer %d %q (%s) at batch %d: its %s holds %d elements, more than the %s backend's ops can index (%d); the largest batch this model can use there is %d",
		e.Layer, e.Name, e.Type, e.Batch, e.What, e.Elems, e.Backend, e.Limit, e.MaxBatch)
}

// indexed is one per-image element count an op indexes in one buffer (or
// runs as work items) for a layer.
type indexed struct {
	what string
	per  int
}

// indexedPerImage lists what the ops of node i index, per image of the
// batch: its input and output, and for a conv the im2col work (C*OH*OW,
// which padding can make larger than the input). The im2col matrix itself
// is addressed in 64 bits by the kernels and is not listed.
func (n *Network) indexedPerImage(i int) []indexed {
	l := n.nodes[i].l
	out := []indexed{{"input", l.in().Size()}, {"output", l.out().Size()}}
	if c, ok := l.(*conv); ok {
		out = append(out, indexed{"im2col work (channels x output positions)", c.is.C * c.os.H * c.os.W})
	}
	return out
}

// checkBatchLimit refuses maxN when a buffer an op indexes would hold more
// than limit elements (0: no limit).
func (n *Network) checkBatchLimit(maxN, limit int, backend string) error {
	if limit <= 0 {
		return nil
	}
	worst, at := 0, -1
	var what string
	for i := range n.nodes {
		for _, x := range n.indexedPerImage(i) {
			if x.per > worst {
				worst, at, what = x.per, i, x.what
			}
		}
	}
	if at < 0 || maxN <= limit/worst {
		return nil
	}
	d := n.nodes[at].l.desc()
	return &BatchLimitError{Layer: at + 1, Name: d.Name, Type: d.Type, What: what, Batch: maxN,
		Elems: maxN * worst, Limit: limit, MaxBatch: limit / worst, Backend: backend}
}
