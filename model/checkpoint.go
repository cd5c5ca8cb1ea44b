package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Checkpoints are safetensors files: an 8-byte little-endian header length,
// a JSON header naming each tensor's dtype, shape and byte range, then the
// raw little-endian data. Tensors are named and shaped like the PyTorch
// state_dict of the same network (conv1.weight [32,3,3,3], fc1.weight
// [64,1024] in PyTorch's flatten order, ...), so PyTorch's safetensors loader
// reads them directly. __metadata__ holds the model spec, input shape and
// training facts.

// Meta keys written to every checkpoint.
const (
	MetaFormat = "format" // "trainer/1"
	MetaSpec   = "model"  // the --model spec
	MetaInput  = "input"  // CxHxW
)

type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Optimizer tensors and training-state metadata keys of a resumable
// checkpoint. PyTorch loaders skip them (scripts/torch_eval.py does).
const (
	TensorAdamM  = "optimizer.exp_avg"    // Adam first moments, flat
	TensorAdamV  = "optimizer.exp_avg_sq" // Adam second moments, flat
	MetaChecksum = "sha256"               // of the header (without this key) and the data
	metaState    = "train."               // prefix of the training-state keys
)

// SaveCheckpoint writes the network's parameters with meta to path
// atomically (see WriteFileAtomic). With st, the checkpoint also holds the
// optimiser moments and the training position, and training can resume from
// it; the parameters then come from st. A SHA-256 of the header and data is
// stored in the metadata and checked on load.
func SaveCheckpoint(path string, net *Network, st *State, meta map[string]string) error {
	flat := (*State)(nil)
	if st != nil {
		flat = st
	} else {
		p, err := net.GetParams()
		if err != nil {
			return fmt.Errorf("saving %s: reading parameters from the device: %w", path, err)
		}
		flat = &State{Params: p}
	}
	md := map[string]string{MetaFormat: "trainer/1", MetaSpec: net.Spec,
		MetaInput: fmt.Sprintf("%dx%dx%d", net.Input.C, net.Input.H, net.Input.W)}
	for k, v := range meta {
		md[k] = v
	}
	ts := net.Tensors(flat.Params)
	if st != nil {
		md[metaState+"epoch"] = strconv.Itoa(st.Epoch)
		md[metaState+"pos"] = strconv.Itoa(st.Pos)
		md[metaState+"adam_step"] = strconv.Itoa(st.AdamStep)
		md[metaState+"rng"] = hex.EncodeToString(st.RNG)
		md[metaState+"stats"] = fmt.Sprintf("%08x%08x", math.Float32bits(st.Stats[0]), math.Float32bits(st.Stats[1]))
		md[metaState+"seconds"] = strconv.FormatFloat(st.Seconds, 'g', -1, 64)
		ts = append(ts, Tensor{Name: TensorAdamM, Shape: []int{len(st.M)}, Data: st.M},
			Tensor{Name: TensorAdamV, Shape: []int{len(st.V)}, Data: st.V})
	}
	header := map[string]any{}
	var off int64
	for _, t := range ts {
		n := int64(len(t.Data)) * 4
		header[t.Name] = stEntry{DType: "F32", Shape: t.Shape, DataOffsets: [2]int64{off, off + n}}
		off += n
	}
	data := make([]byte, 0, off)
	for _, t := range ts {
		for _, v := range t.Data {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
	}
	sum, err := checksum(header, md, data)
	if err != nil {
		return err
	}
	md[MetaChecksum] = sum
	header["__metadata__"] = md
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 { // align the data to 8 bytes, as the reference writer does
		hj = append(hj, ' ')
	}
	out := make([]byte, 0, 8+len(hj)+len(data))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(hj)))
	out = append(out, hj...)
	out = append(out, data...)
	return WriteFileAtomic(path, out)
}

// checksum is the SHA-256 of the canonical JSON of the tensor entries and
// metadata (Go sorts map keys, so writer and reader make the same bytes)
// followed by the data.
func checksum(entries map[string]any, md map[string]string, data []byte) (string, error) {
	m := map[string]string{}
	for k, v := range md {
		if k != MetaChecksum {
			m[k] = v
		}
	}
	j, err := json.Marshal(map[string]any{"entries": entries, "meta": m})
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(j)
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteFileAtomic writes data to a temporary file beside path, fsyncs it,
// renames it over path and fsyncs the folder.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	removeStaleTemps(path)
	return nil
}

// staleTemp is how old a leftover temporary file of a killed writer must be
// before a later save removes it (a younger one may belong to a writer still
// at work).
const staleTemp = 10 * time.Minute

// removeStaleTemps deletes temporary files of path that a process killed
// mid-save left behind. They are never read, only untidy.
func removeStaleTemps(path string) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp*"))
	for _, f := range old {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) > staleTemp {
			os.Remove(f)
		}
	}
}

// Checkpoint is a loaded safetensors file.
type Checkpoint struct {
	Path    string
	Meta    map[string]string
	Tensors map[string]Tensor
}

// maxHeader bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes.
const maxHeader = 16 << 20

// LoadCheckpoint reads and validates a safetensors checkpoint.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint %s: file not found (trainer train --out writes one)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("checkpoint %s: %s (not a trainer safetensors file, or truncated/corrupted)", path, fmt.Sprintf(format, a...))
	}
	var hl uint64
	if err := binary.Read(f, binary.LittleEndian, &hl); err != nil {
		return nil, bad("file of %d bytes is too short for a header", st.Size())
	}
	if hl > maxHeader || int64(hl) > st.Size()-8 {
		return nil, bad("header length %d does not fit a file of %d bytes", hl, st.Size())
	}
	hj := make([]byte, hl)
	if _, err := io.ReadFull(f, hj); err != nil {
		return nil, bad("reading header: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hj, &raw); err != nil {
		return nil, bad("header is not valid JSON: %v", err)
	}
	ck := &Checkpoint{Path: path, Meta: map[string]string{}, Tensors: map[string]Tensor{}}
	dataLen := st.Size() - 8 - int64(hl)
	data := make([]byte, dataLen)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, bad("reading data: %v", err)
	}
	entries := map[string]any{}
	var names []string
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	// Check every entry before converting any, and require disjoint byte
	// ranges, so the tensors never take more memory than the data: without
	// that, many entries naming one range would each get a copy of it.
	var tensors []string
	for _, name := range names {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw[name], &ck.Meta); err != nil {
				return nil, bad("__metadata__ is not a string map: %v", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, bad("tensor %q: %v", name, err)
		}
		if e.DType != "F32" {
			return nil, bad("tensor %q has dtype %q; trainer checkpoints are F32", name, e.DType)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || d > 1<<30 {
				return nil, bad("tensor %q has dimension %d", name, d)
			}
			count *= int64(d)
			if count > 1<<31 {
				return nil, bad("tensor %q is too large", name)
			}
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || en < b || en > dataLen || en-b != count*4 {
			return nil, bad("tensor %q: byte range [%d,%d) does not match shape %v in %d data bytes", name, b, en, e.Shape, dataLen)
		}
		entries[name] = e
		tensors = append(tensors, name)
	}
	byOffset := slices.Clone(tensors)
	sort.SliceStable(byOffset, func(i, j int) bool {
		return entries[byOffset[i]].(stEntry).DataOffsets[0] < entries[byOffset[j]].(stEntry).DataOffsets[0]
	})
	prev := -1
	for i, name := range byOffset {
		r := entries[name].(stEntry).DataOffsets
		if r[0] == r[1] {
			continue // empty tensor
		}
		if prev >= 0 && r[0] < entries[byOffset[prev]].(stEntry).DataOffsets[1] {
			return nil, bad("tensors %q and %q overlap in the data", byOffset[prev], name)
		}
		prev = i
	}
	for _, name := range tensors {
		e := entries[name].(stEntry)
		b := e.DataOffsets[0]
		v := make([]float32, (e.DataOffsets[1]-b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[b+int64(i)*4:]))
		}
		ck.Tensors[name] = Tensor{Name: name, Shape: e.Shape, Data: v}
	}
	if want := ck.Meta[MetaChecksum]; want != "" {
		got, err := checksum(entries, ck.Meta, data)
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, bad("checksum mismatch: the file is corrupted")
		}
	}
	if strings.TrimSpace(ck.Meta[MetaSpec]) == "" || ck.Meta[MetaInput] == "" {
		return nil, bad("metadata lacks %q or %q", MetaSpec, MetaInput)
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
func (c *Checkpoint) Resumable() bool {
	_, ok := c.Meta[metaState+"adam_step"]
	return ok
}

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
	st := &State{Params: flat}
	atoi := func(k string) (int, error) {
		v, err := strconv.Atoi(c.Meta[metaState+k])
		if err != nil || v < 0 {
			return 0, bad(k)
		}
		return v, nil
	}
	if st.Epoch, err = atoi("epoch"); err != nil {
		return nil, err
	}
	if st.Pos, err = atoi("pos"); err != nil {
		return nil, err
	}
	if st.AdamStep, err = atoi("adam_step"); err != nil {
		return nil, err
	}
	if st.RNG, err = hex.DecodeString(c.Meta[metaState+"rng"]); err != nil || len(st.RNG) == 0 {
		return nil, bad("rng")
	}
	var a, b uint32
	if _, err := fmt.Sscanf(c.Meta[metaState+"stats"], "%08x%08x", &a, &b); err != nil {
		return nil, bad("stats")
	}
	st.Stats = []float32{math.Float32frombits(a), math.Float32frombits(b)}
	st.Seconds, _ = strconv.ParseFloat(c.Meta[metaState+"seconds"], 64)
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
