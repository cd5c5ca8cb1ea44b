package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/run/meta"
)

// Checkpoints are safetensors files (see package checkpoint). Tensors are
// named and shaped like the PyTorch state_dict of the same network
// (conv1.weight [32,3,3,3], fc1.weight [64,1024] in PyTorch's flatten order,
// ...), so PyTorch's safetensors loader reads them directly. The metadata
// holds the model spec, input shape and training facts; its keys are
// defined in package run/meta.

// Meta keys written to every checkpoint (aliases of run/meta's).
const (
	MetaFormat = meta.Format
	MetaSpec   = meta.Model
	MetaInput  = meta.Input
)

// Optimizer tensors and the checksum key of a resumable checkpoint. PyTorch
// loaders skip them (scripts/torch_eval.py does).
const (
	TensorAdamM  = "optimizer.exp_avg"    // Adam first moments, flat
	TensorAdamV  = "optimizer.exp_avg_sq" // Adam second moments, flat
	MetaChecksum = checkpoint.MetaChecksum
)

// StateTensors returns the named tensors of a checkpoint of net: the
// parameters flat (state_dict names and shapes), and with st the Adam
// moments after them.
func (n *Network) StateTensors(flat []float32, st *State) []checkpoint.Tensor {
	var ts []checkpoint.Tensor
	for _, t := range n.Tensors(flat) {
		ts = append(ts, checkpoint.F32(t.Name, t.Shape, t.Data))
	}
	if st != nil {
		ts = append(ts, checkpoint.F32(TensorAdamM, []int{len(st.M)}, st.M), checkpoint.F32(TensorAdamV, []int{len(st.V)}, st.V))
	}
	return ts
}

// SaveCheckpoint writes the network's parameters with meta to path
// atomically (see checkpoint.WriteFileAtomic). With st, the checkpoint also
// holds the optimiser moments and the training position, and training can
// resume from it; the parameters then come from st. A SHA-256 of the header
// and data is stored in the metadata and checked on load.
func SaveCheckpoint(path string, net *Network, st *State, m map[string]string) error {
	var flat []float32
	if st != nil {
		flat = st.Params
	} else {
		p, err := net.GetParams()
		if err != nil {
			return fmt.Errorf("saving %s: reading parameters from the device: %w", path, err)
		}
		flat = p
	}
	md := map[string]string{meta.Format: meta.FormatV1, meta.Model: net.Spec,
		meta.Input: fmt.Sprintf("%dx%dx%d", net.Input.C, net.Input.H, net.Input.W)}
	for k, v := range m {
		md[k] = v
	}
	if st != nil {
		ts := meta.TrainState{Epoch: st.Epoch, Pos: st.Pos, AdamStep: st.AdamStep, RNG: st.RNG, Seconds: st.Seconds}
		copy(ts.Stats[:], st.Stats)
		ts.Encode(md)
	}
	return checkpoint.Write(path, net.StateTensors(flat, st), md)
}

// Checkpoint is a loaded checkpoint: its metadata and float32 tensors.
type Checkpoint struct {
	Path    string
	Meta    map[string]string
	Tensors map[string]Tensor
}

// LoadCheckpoint reads and validates a checkpoint (see checkpoint.Read);
// its metadata must name a model spec and input shape.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := checkpoint.Read(path)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(f.Meta[meta.Model]) == "" || f.Meta[meta.Input] == "" {
		return nil, fmt.Errorf("checkpoint %s: metadata lacks %q or %q (not a trainer safetensors file, or truncated/corrupted)", path, meta.Model, meta.Input)
	}
	ck := &Checkpoint{Path: path, Meta: f.Meta, Tensors: make(map[string]Tensor, len(f.Tensors))}
	for name, t := range f.Tensors {
		ck.Tensors[name] = Tensor{Name: name, Shape: t.Shape, Data: t.Float32s()}
	}
	return ck, nil
}

// InputShape parses the checkpoint's CxHxW input metadata.
func (c *Checkpoint) InputShape() (Shape, error) {
	parts := strings.Split(c.Meta[MetaInput], "x")
	if len(parts) != 3 {
		return Shape{}, fmt.Errorf("checkpoint %s: input %q is not CxHxW", c.Path, c.Meta[MetaInput])
	}
	var d [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 || v > 1<<14 {
			return Shape{}, fmt.Errorf("checkpoint %s: input %q is not CxHxW", c.Path, c.Meta[MetaInput])
		}
		d[i] = v
	}
	return Shape{C: d[0], H: d[1], W: d[2]}, nil
}

// Plan builds the network the checkpoint describes (no backend yet).
func (c *Checkpoint) Plan() (*Network, error) {
	in, err := c.InputShape()
	if err != nil {
		return nil, err
	}
	net, err := Plan(c.Meta[MetaSpec], in)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", c.Path, err)
	}
	return net, nil
}

// Flat assembles the flat parameter vector of net from the checkpoint,
// checking that every tensor is present with the right shape.
func (c *Checkpoint) Flat(net *Network) ([]float32, error) {
	// Check first, allocate after: the metadata's spec and input shape may
	// plan a network far larger than the tensors the file holds.
	for _, p := range net.params {
		t, ok := c.Tensors[p.Name]
		if !ok {
			return nil, fmt.Errorf("checkpoint %s does not match the model: tensor %s is missing", c.Path, p.Name)
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(p.Shape) {
			return nil, fmt.Errorf("checkpoint %s does not match the model: %s has shape %v, the model needs %v", c.Path, p.Name, t.Shape, p.Shape)
		}
	}
	for name := range c.Tensors {
		if name != TensorAdamM && name != TensorAdamV && !net.hasParam(name) {
			return nil, fmt.Errorf("checkpoint %s does not match the model: it has a tensor %q the model does not", c.Path, name)
		}
	}
	flat := make([]float32, net.NumParams())
	for _, p := range net.params {
		copy(flat[p.Off:], c.Tensors[p.Name].Data)
	}
	return flat, nil
}

func (n *Network) hasParam(name string) bool {
	for _, p := range n.params {
		if p.Name == name {
			return true
		}
	}
	return false
}

// Resumable says whether the checkpoint holds a training state.
func (c *Checkpoint) Resumable() bool { return meta.HasTrainState(c.Meta) }

// State rebuilds the training state saved with the checkpoint.
func (c *Checkpoint) State(net *Network) (*State, error) {
	if !c.Resumable() {
		return nil, fmt.Errorf("checkpoint %s holds weights only, no training state (was it written by an older trainer or an export?); train from scratch, or evaluate it", c.Path)
	}
	flat, err := c.Flat(net)
	if err != nil {
		return nil, err
	}
	bad := func(what string) error {
		return fmt.Errorf("checkpoint %s: training state %s is malformed (corrupted file?)", c.Path, what)
	}
	ts, key, ok := meta.DecodeTrainState(c.Meta)
	if !ok {
		return nil, bad(key)
	}
	st := &State{Params: flat, Epoch: ts.Epoch, Pos: ts.Pos, AdamStep: ts.AdamStep, RNG: ts.RNG,
		Stats: []float32{ts.Stats[0], ts.Stats[1]}, Seconds: ts.Seconds}
	for _, x := range []struct {
		name string
		dst  *[]float32
	}{{TensorAdamM, &st.M}, {TensorAdamV, &st.V}} {
		t, ok := c.Tensors[x.name]
		if !ok || len(t.Data) != net.NumParams() {
			return nil, bad(x.name)
		}
		*x.dst = t.Data
	}
	return st, nil
}

// Open loads a checkpoint and plans its network, with the flat parameters
// checked against it: what eval and predict need before choosing a device.
func Open(path string) (*Checkpoint, *Network, []float32, error) {
	ck, err := LoadCheckpoint(path)
	if err != nil {
		return nil, nil, nil, err
	}
	net, err := ck.Plan()
	if err != nil {
		return nil, nil, nil, err
	}
	flat, err := ck.Flat(net)
	if err != nil {
		return nil, nil, nil, err
	}
	return ck, net, flat, nil
}
