package checkpoint

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRead reads the input as a safetensors file. Invariants: no panic,
// errors are one line and name the file, and a file that reads has
// tensors whose total size is at most its data (disjoint byte ranges) and
// whose data matches dtype and shape. Run it with
//
//	go test -run='^$' -fuzz='^FuzzRead$' -fuzztime=30s ./checkpoint
//
// or with scripts/fuzz.sh. (model's FuzzLoadCheckpoint and
// FuzzCheckpointHeader go further: they plan the network and read the
// training state.)
func FuzzRead(f *testing.F) {
	good, err := Encode([]Tensor{F32("w", []int{2, 2}, []float32{1, 2, 3, 4}), F32("b", []int{2}, []float32{5, 6})},
		map[string]string{"model": "flatten,dense2", "input": "1x2x2"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Add(append(binary.LittleEndian.AppendUint64(nil, 20), `{"a":{"dtype":"F16"}}`...))
	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		ck, err := Read(path)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") && !strings.Contains(path, "\n") {
				t.Errorf("error is not one line: %q", msg)
			} else if !strings.Contains(msg, path) {
				t.Errorf("error does not name the file: %q", msg)
			}
			return
		}
		total := 0
		for _, tn := range ck.Tensors {
			n := 1
			for _, d := range tn.Shape {
				n *= d
			}
			if tn.DType != DTypeF32 || len(tn.Data) != 4*n {
				t.Fatalf("tensor %q: dtype %s, %d bytes for shape %v", tn.Name, tn.DType, len(tn.Data), tn.Shape)
			}
			total += len(tn.Data)
		}
		if data := len(file) - 8 - int(binary.LittleEndian.Uint64(file)); total > data {
			t.Fatalf("%d bytes of data hold %d bytes of tensors", data, total)
		}
	})
}
