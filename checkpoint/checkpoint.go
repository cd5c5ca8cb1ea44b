// Package checkpoint reads and writes safetensors files: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range (plus a string map __metadata__), then the raw data.
// It knows nothing of networks or of the command line: it deals in named
// tensors and a metadata map. Files are written atomically (WriteFileAtomic)
// and carry a SHA-256 of their header and data in the metadata key
// MetaChecksum, checked on Read.
package checkpoint

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
	"slices"
	"sort"
)

// MetaChecksum is the metadata key of the SHA-256 of the header (without
// this key) and the data.
const MetaChecksum = "sha256"

// DTypeF32 is little-endian float32, the dtype of every trainer tensor
// but BatchNorm's num_batches_tracked, which is DTypeI64 (int64) as in
// PyTorch's state_dict.
const (
	DTypeF32 = "F32"
	DTypeI64 = "I64"
)

// maxHeader bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes.
const maxHeader = 16 << 20

// Tensor is one named tensor: its dtype, shape and raw little-endian bytes.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// F32 makes a float32 tensor.
func F32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return Tensor{Name: name, DType: DTypeF32, Shape: shape, Data: b}
}

// I64 makes an int64 tensor.
func I64(name string, shape []int, v []int64) Tensor {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return Tensor{Name: name, DType: DTypeI64, Shape: shape, Data: b}
}

// Int64s decodes an I64 tensor's data.
func (t Tensor) Int64s() []int64 {
	v := make([]int64, len(t.Data)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(t.Data[i*8:]))
	}
	return v
}

// Float32s decodes an F32 tensor's data.
func (t Tensor) Float32s() []float32 {
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[i*4:]))
	}
	return v
}

// File is a read checkpoint.
type File struct {
	Path    string
	Meta    map[string]string
	Tensors map[string]Tensor
}

// entry is a tensor's header entry. Its field order is the header's.
type entry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Encode lays out tensors (in the order given) and meta as a safetensors
// file, with the checksum added to the metadata. meta is not modified.
func Encode(ts []Tensor, meta map[string]string) ([]byte, error) {
	md := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		md[k] = v
	}
	header := map[string]any{}
	var off int64
	for _, t := range ts {
		n := int64(len(t.Data))
		header[t.Name] = entry{DType: t.DType, Shape: t.Shape, DataOffsets: [2]int64{off, off + n}}
		off += n
	}
	data := make([]byte, 0, off)
	for _, t := range ts {
		data = append(data, t.Data...)
	}
	sum, err := Checksum(header, md, data)
	if err != nil {
		return nil, err
	}
	md[MetaChecksum] = sum
	header["__metadata__"] = md
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	for len(hj)%8 != 0 { // align the data to 8 bytes, as the reference writer does
		hj = append(hj, ' ')
	}
	out := make([]byte, 0, 8+len(hj)+len(data))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(hj)))
	out = append(out, hj...)
	return append(out, data...), nil
}

// Write encodes tensors and meta (see Encode) and writes them to path
// atomically (see WriteFileAtomic).
func Write(path string, ts []Tensor, meta map[string]string) error {
	b, err := Encode(ts, meta)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b)
}

// Checksum is the SHA-256 of the canonical JSON of the tensor entries and
// metadata without MetaChecksum (Go sorts map keys, so writer and reader
// make the same bytes) followed by the data. entries maps each tensor name
// to its header entry (anything that marshals as {"dtype","shape",
// "data_offsets"}).
func Checksum(entries map[string]any, md map[string]string, data []byte) (string, error) {
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

// NotFoundError is returned by Read for a file that does not exist.
type NotFoundError struct{ Path string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("checkpoint %s: file not found", e.Path) }
func (e *NotFoundError) Unwrap() error { return fs.ErrNotExist }

// Read reads and validates a safetensors file: every tensor F32 with a byte
// range that matches its shape, ranges disjoint, and the checksum (when
// present) right. Errors are one line and name path.
func Read(path string) (*File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NotFoundError{Path: path}
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
	hj, data, err := readParts(f, st.Size())
	if err != nil {
		return nil, bad("%s", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hj, &raw); err != nil {
		return nil, bad("header is not valid JSON: %v", err)
	}
	ck := &File{Path: path, Meta: map[string]string{}, Tensors: map[string]Tensor{}}
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &ck.Meta); err != nil {
			return nil, bad("__metadata__ is not a string map: %v", err)
		}
	}
	entries, names, err := parseEntries(raw, int64(len(data)))
	if err != nil {
		return nil, bad("%s", err)
	}
	for _, name := range names {
		e := entries[name].(entry)
		ck.Tensors[name] = Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: data[e.DataOffsets[0]:e.DataOffsets[1]:e.DataOffsets[1]]}
	}
	if want := ck.Meta[MetaChecksum]; want != "" {
		got, err := Checksum(entries, ck.Meta, data)
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, bad("checksum mismatch: the file is corrupted")
		}
	}
	return ck, nil
}

// readParts reads the JSON header and the data of a file of size bytes.
func readParts(f io.Reader, size int64) (header, data []byte, err error) {
	var hl uint64
	if err := binary.Read(f, binary.LittleEndian, &hl); err != nil {
		return nil, nil, fmt.Errorf("file of %d bytes is too short for a header", size)
	}
	if hl > maxHeader || int64(hl) > size-8 {
		return nil, nil, fmt.Errorf("header length %d does not fit a file of %d bytes", hl, size)
	}
	header = make([]byte, hl)
	if _, err := io.ReadFull(f, header); err != nil {
		return nil, nil, fmt.Errorf("reading header: %v", err)
	}
	data = make([]byte, size-8-int64(hl))
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, fmt.Errorf("reading data: %v", err)
	}
	return header, data, nil
}

// parseEntries checks every tensor entry of the header before any is
// converted, and requires disjoint byte ranges, so the tensors never take
// more memory than the data: without that, many entries naming one range
// would each get a copy of it. It returns the entries by name and the
// tensor names, sorted.
func parseEntries(raw map[string]json.RawMessage, dataLen int64) (map[string]any, []string, error) {
	entries := map[string]any{}
	var names []string
	for k := range raw {
		if k != "__metadata__" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		var e entry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		if err := checkEntry(name, e, dataLen); err != nil {
			return nil, nil, err
		}
		entries[name] = e
	}
	byOffset := slices.Clone(names)
	sort.SliceStable(byOffset, func(i, j int) bool {
		return entries[byOffset[i]].(entry).DataOffsets[0] < entries[byOffset[j]].(entry).DataOffsets[0]
	})
	prev := -1
	for i, name := range byOffset {
		r := entries[name].(entry).DataOffsets
		if r[0] == r[1] {
			continue // empty tensor
		}
		if prev >= 0 && r[0] < entries[byOffset[prev]].(entry).DataOffsets[1] {
			return nil, nil, fmt.Errorf("tensors %q and %q overlap in the data", byOffset[prev], name)
		}
		prev = i
	}
	return entries, names, nil
}

// checkEntry checks one tensor's dtype, shape and byte range.
func checkEntry(name string, e entry, dataLen int64) error {
	size := int64(4)
	switch e.DType {
	case DTypeF32:
	case DTypeI64:
		size = 8
	default:
		return fmt.Errorf("tensor %q has dtype %q; trainer checkpoints are F32 (and I64 for num_batches_tracked)", name, e.DType)
	}
	count := int64(1)
	for _, d := range e.Shape {
		if d < 0 || d > 1<<30 {
			return fmt.Errorf("tensor %q has dimension %d", name, d)
		}
		count *= int64(d)
		if count > 1<<31 {
			return fmt.Errorf("tensor %q is too large", name)
		}
	}
	b, en := e.DataOffsets[0], e.DataOffsets[1]
	if b < 0 || en < b || en > dataLen || en-b != count*size {
		return fmt.Errorf("tensor %q: byte range [%d,%d) does not match shape %v in %d data bytes", name, b, en, e.Shape, dataLen)
	}
	return nil
}
