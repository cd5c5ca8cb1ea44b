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
	MetaFormat    = meta.Format
	MetaSpec      = meta.Model
	MetaInput     = meta.Input
	MetaModelJSON = meta.ModelJSON
	MetaOptimizer = meta.Optimizer
)

// EMAPrefix starts the names of the weight average's tensors
// ("ema.conv1.weight"): PyTorch loaders skip them, eval uses them.
const EMAPrefix = "ema."

// Optimizer tensors and the checksum key of a resumable checkpoint. PyTorch
// loaders skip them (scripts/torch_eval.py does).
const (
	TensorAdamM  = "optimizer.exp_avg"    // Adam first moments, flat
	TensorAdamV  = "optimizer.exp_avg_sq" // Adam second moments, flat
	MetaChecksum = checkpoint.MetaChecksum
)

// StateTensors returns the named tensors of a checkpoint of net: the
// parameters and buffers (state_dict names and shapes, num_batches_tracked
// = steps), and with st the optimiser's state (named for optimizer kind)
// and the weight average after them.
func (n *Network) StateTensors(flat []float32, steps int, st *State, optimizer string) []checkpoint.Tensor {
	var ts []checkpoint.Tensor
	for _, t := range n.Tensors(flat) {
		ts = append(ts, checkpoint.F32(t.Name, t.Shape, t.Data))
	}
	for _, name := range n.batchNorms() {
		ts = append(ts, checkpoint.I64(name+".num_batches_tracked", []int{}, []int64{int64(steps)}))
	}
	if st == nil {
		return ts
	}
	mName, vName := DefaultOptim(optimizer).StateNames()
	ts = append(ts, checkpoint.F32(mName, []int{len(st.M)}, st.M))
	if vName != "" {
		ts = append(ts, checkpoint.F32(vName, []int{len(st.V)}, st.V))
	}
	if st.EMA != nil {
		for _, t := range n.Tensors(st.EMA) {
			ts = append(ts, checkpoint.F32(EMAPrefix+t.Name, t.Shape, t.Data))
		}
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
	md := map[string]string{meta.Format: meta.FormatV1, meta.Model: net.Spec, meta.ModelJSON: net.Desc.JSON(),
		meta.Input: fmt.Sprintf("%dx%dx%d", net.Input.C, net.Input.H, net.Input.W)}
	for k, v := range m {
		md[k] = v
	}
	steps := net.Steps()
	if st != nil {
		steps = st.AdamStep
	}
	if st != nil {
		ts := meta.TrainState{Epoch: st.Epoch, Pos: st.Pos, AdamStep: st.AdamStep, RNG: st.RNG, Seconds: st.Seconds}
		copy(ts.Stats[:], st.Stats)
		ts.Encode(md)
	}
	return checkpoint.Write(path, net.StateTensors(flat, steps, st, md[meta.Optimizer]), md)
}

// Checkpoint is a loaded checkpoint: its metadata and float32 tensors.
type Checkpoint struct {
	Path    string
	Meta    map[string]string
	Tensors map[string]Tensor
	Int64s  map[string][]int64 // num_batches_tracked
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
	ck := &Checkpoint{Path: path, Meta: f.Meta, Tensors: make(map[string]Tensor, len(f.Tensors)), Int64s: map[string][]int64{}}
	for name, t := range f.Tensors {
		if t.DType == checkpoint.DTypeI64 {
			ck.Int64s[name] = t.Int64s()
			continue
		}
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
	var net *Network
	if js := c.Meta[MetaModelJSON]; js != "" {
		d, err := ParseDesc([]byte(js), "model description")
		if err == nil {
			net, err = PlanDesc(c.Meta[MetaSpec], d, in)
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", c.Path, err)
		}
		return net, nil
	}
	d, err := DescFromSpec(c.Meta[MetaSpec])
	if err == nil {
		net, err = PlanDesc(c.Meta[MetaSpec], d, in)
	}
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
		if !isStateTensor(name) && !net.hasParam(strings.TrimPrefix(name, EMAPrefix)) {
			return nil, fmt.Errorf("checkpoint %s does not match the model: it has a tensor %q the model does not", c.Path, name)
		}
	}
	return c.flat(net, ""), nil
}

// flat assembles the flat vector from the tensors named prefix+name.
func (c *Checkpoint) flat(net *Network, prefix string) []float32 {
	flat := make([]float32, net.FlatLen())
	for _, p := range net.params {
		copy(flat[p.Off:], c.Tensors[prefix+p.Name].Data)
	}
	return flat
}

// HasEMA says whether the checkpoint holds a weight average (--ema).
func (c *Checkpoint) HasEMA(net *Network) bool {
	for _, p := range net.params {
		if t, ok := c.Tensors[EMAPrefix+p.Name]; !ok || len(t.Data) != p.N {
			return false
		}
	}
	return len(net.params) > 0
}

// FlatEMA is the weight average's flat vector (HasEMA must hold).
func (c *Checkpoint) FlatEMA(net *Network) []float32 { return c.flat(net, EMAPrefix) }

func isStateTensor(name string) bool {
	switch name {
	case TensorAdamM, TensorAdamV, "optimizer.momentum_buffer", "optimizer.square_avg":
		return true
	}
	return false
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
	mName, vName := DefaultOptim(c.Meta[MetaOptimizer]).StateNames()
	st.V = make([]float32, net.FlatLen())
	for _, x := range []struct {
		name string
		dst  *[]float32
	}{{mName, &st.M}, {vName, &st.V}} {
		if x.name == "" {
			continue
		}
		t, ok := c.Tensors[x.name]
		if !ok || len(t.Data) != net.FlatLen() {
			return nil, bad(x.name)
		}
		*x.dst = t.Data
	}
	if c.HasEMA(net) {
		st.EMA = c.FlatEMA(net)
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
