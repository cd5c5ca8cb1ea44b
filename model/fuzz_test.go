package model

// Fuzz targets for the checkpoint reader and the --model grammar. Run one
// with
//
//	go test -run='^$' -fuzz='^FuzzLoadCheckpoint$' -fuzztime=30s ./model
//
// or all of them with scripts/fuzz.sh. Without -fuzz, `go test` runs the
// seeds below and any crashers saved in testdata/fuzz as ordinary tests.
//
// Invariants: no panic, no hang (an input that runs longer than
// testkit.FuzzTimeLimit crashes the worker, so the fuzzer keeps it), allocations
// bounded by a small multiple of the input plus a fixed cap, and errors that
// are one line and name the checkpoint file.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/internal/testkit"
)

// withoutGrammar drops the grammar help that ParseSpec appends to the error
// about an empty spec (it is meant for the command line, several lines by
// design).
func withoutGrammar(msg string) string {
	return strings.Replace(msg, "\n"+SpecGrammar, "", 1)
}

// checkOneLine fails unless err's message is one line (after the grammar
// help, when grammar is set) and, when path is set, names path.
func checkOneLine(t testing.TB, err error, path string, grammar bool) {
	t.Helper()
	msg := err.Error()
	if grammar {
		msg = withoutGrammar(msg)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if path != "" && !strings.Contains(msg, path) {
		t.Errorf("error does not name the file %s: %q", path, msg)
	}
}

// ---- checkpoints ----

// fuzzCheckpoints returns valid checkpoint files of small models: weights
// only, and with a training state.
func fuzzCheckpoints(t testing.TB) [][]byte {
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	var out [][]byte
	for i, m := range []struct {
		spec  string
		in    Shape
		state bool
	}{
		{"conv4k3,flatten,dense3", Shape{C: 3, H: 6, W: 6}, false},
		{"conv4k3,flatten,dense3", Shape{C: 3, H: 6, W: 6}, true},
		{"conv2k3s2same,maxpool2,avgpool1,relu,flatten,dense4linear,dense2", Shape{C: 1, H: 8, W: 8}, true},
		{"flatten,dense2", Shape{C: 1, H: 2, W: 1}, false},
	} {
		net, err := Plan(m.spec, m.in)
		if err != nil {
			t.Fatal(err)
		}
		if err := net.Build(b, 1, uint64(i)); err != nil {
			t.Fatal(err)
		}
		var st *State
		if m.state {
			np := net.NumParams()
			st = &State{Epoch: 2, Pos: 3, AdamStep: 17, RNG: []byte("pcg:0123456789abcdef"), Stats: []float32{1.5, 4},
				Seconds: 0.25, Params: net.InitParams(uint64(i)), M: make([]float32, np), V: make([]float32, np)}
			for j := range st.M {
				st.M[j], st.V[j] = float32(j)/8, float32(j*j)/64
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("m%d.safetensors", i))
		if err := SaveCheckpoint(path, net, st, map[string]string{"epoch": "3"}); err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, file)
	}
	return out
}

// splitCheckpoint returns the JSON header and the data of a checkpoint file.
func splitCheckpoint(file []byte) (header, data []byte) {
	n := binary.LittleEndian.Uint64(file)
	return file[8 : 8+n], file[8+n:]
}

// joinCheckpoint makes a checkpoint file from a header and data.
func joinCheckpoint(header, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

// resign returns header with the checksum LoadCheckpoint would compute for
// it and data in its metadata, when header parses as LoadCheckpoint parses
// it (a JSON object of tensor entries and an optional string map
// __metadata__), so that mutations pass the checksum check and reach what
// lies behind it. Other headers are returned as they are, and
// LoadCheckpoint must reject them.
func resign(header, data []byte, drop bool) []byte {
	var raw map[string]json.RawMessage
	if json.Unmarshal(header, &raw) != nil || raw == nil {
		return header
	}
	md := map[string]string{}
	if m, ok := raw["__metadata__"]; ok {
		if json.Unmarshal(m, &md) != nil {
			return header
		}
	}
	entries := map[string]any{}
	for name, v := range raw {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType       string   `json:"dtype"`
			Shape       []int    `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		if json.Unmarshal(v, &e) != nil {
			return header
		}
		entries[name] = e
	}
	if md == nil {
		md = map[string]string{}
	}
	if drop {
		delete(md, MetaChecksum)
	} else {
		sum, err := checkpoint.Checksum(entries, md, data)
		if err != nil {
			return header
		}
		md[MetaChecksum] = sum
	}
	var err error
	if raw["__metadata__"], err = json.Marshal(md); err != nil {
		return header
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return header
	}
	return out
}

// checkCheckpoint loads the checkpoint file at path and, when it loads,
// plans its network and reads its parameters and training state, checking
// the invariants.
func checkCheckpoint(t *testing.T, path string, file []byte) {
	size := len(file)
	var ck *Checkpoint
	var net *Network
	var flat []float32
	var st *State
	var errLoad, errPlan, errFlat, errState error
	got := testkit.Allocated(t, func() {
		if ck, errLoad = LoadCheckpoint(path); errLoad != nil {
			return
		}
		if net, errPlan = ck.Plan(); errPlan != nil {
			return
		}
		flat, errFlat = ck.Flat(net)
		st, errState = ck.State(net)
	})
	// The file, its tensors as float32 (at most the data once more), the
	// parsed JSON and the checksum's re-encoding of it, and the parameters
	// and state the tensors fill (at most three copies of the data).
	if budget := uint64(64*size) + 1<<20; got > budget {
		t.Fatalf("loading a %d-byte checkpoint allocated %d bytes, more than its budget of %d (is a size trusted before it is checked?)", size, got, budget)
	}
	for _, err := range []error{errLoad, errPlan, errFlat, errState} {
		if err != nil {
			checkOneLine(t, err, path, false)
		}
	}
	if errLoad != nil {
		return
	}
	// Tensors are disjoint ranges of the data: their total size is bounded
	// by the data's, however many there are.
	total := 0
	for _, t := range ck.Tensors {
		total += 4 * len(t.Data)
	}
	if data := size - 8 - int(binary.LittleEndian.Uint64(file)); total > data {
		t.Fatalf("a checkpoint with %d bytes of data holds %d bytes of tensors (overlapping byte ranges?)", data, total)
	}
	if errPlan != nil {
		return
	}
	if net.NumParams() < 0 {
		t.Fatalf("planned network has %d parameters", net.NumParams())
	}
	if errFlat == nil && len(flat) != net.NumParams() {
		t.Fatalf("Flat returned %d values for %d parameters", len(flat), net.NumParams())
	}
	if (errFlat != nil) && errState == nil {
		t.Fatalf("State loads although Flat fails (%v)", errFlat)
	}
	if errState == nil {
		np := net.NumParams()
		if len(st.Params) != np || len(st.M) != np || len(st.V) != np || len(st.Stats) != 2 || len(st.RNG) == 0 {
			t.Fatalf("state with %d/%d/%d values for %d parameters, %d stats, %d RNG bytes", len(st.Params), len(st.M), len(st.V), np, len(st.Stats), len(st.RNG))
		}
		if st.Epoch < 0 || st.Pos < 0 || st.AdamStep < 0 {
			t.Fatalf("state at epoch %d, step %d, Adam step %d", st.Epoch, st.Pos, st.AdamStep)
		}
	}
}

// FuzzLoadCheckpoint loads the input as a checkpoint file, then plans its
// network and reads its parameters and training state. The seeds are valid
// checkpoints with and without training state, and the same without their
// checksum (which is optional, so mutations of those reach the checks
// behind it).
func FuzzLoadCheckpoint(f *testing.F) {
	for _, file := range fuzzCheckpoints(f) {
		f.Add(file)
		header, data := splitCheckpoint(file)
		f.Add(joinCheckpoint(resign(header, data, true), data))
	}
	f.Add([]byte{})
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Add(joinCheckpoint([]byte(`{"__metadata__":{"model":"flatten,dense2","input":"1x1x1"}}`), nil))

	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		checkCheckpoint(t, path, file)
	})
}

// FuzzCheckpointHeader builds a checkpoint from a JSON header and data and
// gives it a valid checksum (when the header parses far enough to compute
// one), so that mutations of the header — the model spec and input shape,
// the tensor names, shapes and byte ranges, the training state — are not
// all stopped by the checksum.
func FuzzCheckpointHeader(f *testing.F) {
	for _, file := range fuzzCheckpoints(f) {
		header, data := splitCheckpoint(file)
		f.Add(header, data)
	}
	for _, s := range []struct {
		header string
		data   int
	}{
		{`{"__metadata__":{"model":"flatten,dense2","input":"1x1x1"},"fc1.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"fc1.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, 16},
		// A spec and input shape that plan a network of 2^42 parameters.
		{`{"__metadata__":{"model":"flatten,dense1048576","input":"3x16384x16384"}}`, 0},
		// Overlapping tensors.
		{`{"__metadata__":{"model":"flatten,dense1","input":"1x1x2"},"fc1.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"fc1.bias":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8},
		// A tensor the model lacks, whose name is on two lines.
		{`{"__metadata__":{"model":"flatten,dense1","input":"1x1x1"},"fc1.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"fc1.bias":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a\nb":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12},
		// A dtype on two lines.
		{`{"__metadata__":{"model":"flatten,dense1","input":"1x1x1"},"a\nb":{"dtype":"F\n16","shape":[1],"data_offsets":[0,4]}}`, 4},
		// A blank spec.
		{`{"__metadata__":{"model":" ","input":"1x1x1"}}`, 0},
	} {
		f.Add([]byte(s.header), make([]byte, s.data))
	}

	f.Fuzz(func(t *testing.T, header, data []byte) {
		file := joinCheckpoint(resign(header, data, false), data)
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		checkCheckpoint(t, path, file)
	})
}

// ---- the --model grammar ----

// fuzzBuildLimit is the most floats (parameters with their gradients and
// Adam moments, activations, im2col matrices) a planned network may need
// for FuzzPlan to build and run it.
const fuzzBuildLimit = 1 << 20

// buildFloats estimates the floats Build allocates for net at batch 1, or
// returns math.MaxInt when they cannot be counted (or overflow).
func buildFloats(net *Network) int {
	total := 4*net.FlatLen() + 2*net.Input.Size() + net.Classes
	for _, nd := range net.nodes {
		in, out := nd.l.in(), nd.l.out()
		n := 2*in.Size() + 3*out.Size()
		if c, ok := nd.l.(*conv); ok {
			n += 2 * in.C * c.d.Kernel * c.d.Kernel * out.H * out.W
		}
		if n < 0 || total > math.MaxInt-n {
			return math.MaxInt
		}
		total += n
	}
	return total
}

// FuzzPlan parses a model spec and plans it for a small input shape. When it
// plans, its summary must agree with the network, and a small enough
// network must build on the CPU backend for batch 1 and run a prediction
// and a training step.
func FuzzPlan(f *testing.F) {
	for _, s := range []string{
		DefaultSpec,
		"flatten,dense10",
		"conv4k3,flatten,dense3",
		"conv8k5s2same,maxpool3s1,avgpool2,relu,conv3k1linear,flatten,dense7linear,relu,dense2",
		"conv2k7same,conv2k3valid,avgpool2s3,flatten,flatten,dense3",
		"CONV4K3 , MaxPool2 , Flatten , Dense10",
		"conv1k64,flatten,dense1",
		"",
		"dense10",
		"conv4k3,dense10",
		"flatten,conv4k3,dense10",
		"conv0k3,flatten,dense10",
		"conv4k3s65,flatten,dense10",
		"maxpool99,flatten,dense10",
		"flatten,dense99999999999999999999",
		"conv4k3,flatten,relu",
	} {
		f.Add(s, uint8(2), uint8(31), uint8(31)) // 3x32x32
		f.Add(s, uint8(0), uint8(4), uint8(8))   // 1x5x9
	}

	f.Fuzz(func(t *testing.T, spec string, c8, h8, w8 uint8) {
		in := Shape{C: int(c8)%4 + 1, H: int(h8)%48 + 1, W: int(w8)%48 + 1}
		var specs []LayerSpec
		var net *Network
		var errParse, errPlan error
		got := testkit.Allocated(t, func() {
			specs, errParse = ParseSpec(spec)
			net, errPlan = Plan(spec, in)
		})
		if budget := uint64(64*len(spec)) + 1<<20; got > budget {
			t.Fatalf("parsing and planning a %d-byte spec allocated %d bytes, more than its budget of %d", len(spec), got, budget)
		}
		if errParse != nil {
			checkOneLine(t, errParse, "", true)
			if errPlan == nil {
				t.Fatalf("Plan accepts a spec ParseSpec rejects (%v)", errParse)
			}
		}
		if errPlan != nil {
			checkOneLine(t, errPlan, "", true)
			return
		}
		checkSummary(t, net, specs)
		if buildFloats(net) > fuzzBuildLimit {
			return
		}

		err := buildAndRun(t, net)
		if err != nil {
			t.Fatalf("a planned %s network (%d parameters) fails to build and run on the CPU: %v", in, net.NumParams(), err)
		}
	})
}

// checkSummary checks that the summary of a planned network agrees with the
// network and with its parsed layers.
func checkSummary(t *testing.T, net *Network, specs []LayerSpec) {
	if net.NumParams() < 0 {
		t.Fatalf("%d parameters", net.NumParams())
	}
	rows := net.Summary()
	if len(rows) != len(specs) {
		t.Fatalf("summary has %d rows for %d layers", len(rows), len(specs))
	}
	sum := 0
	for i, r := range rows {
		sum += r.Params
		if r.Params < 0 || strings.Split(r.Type, "+")[0] != specs[i].Kind || r.Output.C < 1 || r.Output.H < 1 || r.Output.W < 1 {
			t.Fatalf("summary row %d %+v for layer %+v", i, r, specs[i])
		}
		if k := specs[i].Kind; k != "relu" && (k == "dense" || k == "flatten") != r.Output.Flat {
			t.Fatalf("summary row %d %+v: a %s layer whose output flatness is %v", i, r, specs[i].Kind, r.Output.Flat)
		}
	}
	if sum != net.NumParams() {
		t.Fatalf("summary rows hold %d parameters, the network %d", sum, net.NumParams())
	}
	last := specs[len(specs)-1]
	if last.Kind != "dense" || last.ReLU || net.Classes != last.Units || rows[len(rows)-1].Output.C != net.Classes {
		t.Fatalf("%d classes from a last layer %+v", net.Classes, last)
	}
	if f := net.FlopsPerImage(); f < 0 || math.IsNaN(f) {
		t.Fatalf("%v flops per image", f)
	}
}

// buildAndRun builds net on the CPU backend for batch 1 and runs a
// prediction and a training step.
func buildAndRun(t *testing.T, net *Network) (err error) {
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testkit.Allocated(t, func() {
		if err = net.Build(b, 1, 1); err != nil {
			return
		}
		x := make([]float32, net.Input.Size())
		for i := range x {
			x[i] = float32(i%7) / 7
		}
		var p []float32
		if p, err = net.Predict(x, 1); err != nil {
			return
		}
		if len(p) != net.Classes {
			err = fmt.Errorf("predict returned %d probabilities for %d classes", len(p), net.Classes)
			return
		}
		stats, aerr := b.Alloc("stats", device.F32, 2)
		if aerr != nil {
			err = aerr
			return
		}
		o, oerr := NewOptimizer(net, DefaultAdam)
		if oerr != nil {
			err = oerr
			return
		}
		net.TrainStep(1, o, 1e-3, 0, stats)
		err = b.Sync()
	})
	return err
}
