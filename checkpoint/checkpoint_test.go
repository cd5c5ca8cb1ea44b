package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain: with CHECKPOINT_SAVE_LOOP set, the test binary becomes a child
// that writes checkpoints to that path in a loop until it is killed.
func TestMain(m *testing.M) {
	if path := os.Getenv("CHECKPOINT_SAVE_LOOP"); path != "" {
		saveLoop(path)
		return
	}
	os.Exit(m.Run())
}

// loopTensors are ~1.8M float32 values (7 MB files), different for each i.
func loopTensors(i int) []Tensor {
	w := make([]float32, 3072*512)
	for j := range w {
		w[j] = float32(i) + float32(j%1000)/1000
	}
	return []Tensor{F32("fc1.weight", []int{512, 3072}, w), F32("fc1.bias", []int{512}, w[:512])}
}

func saveLoop(path string) {
	for i := 0; ; i++ {
		if err := Write(path, loopTensors(i), map[string]string{"i": fmt.Sprint(i)}); err != nil {
			os.Exit(3)
		}
	}
}

// TestKillDuringSave kills (SIGKILL) a process that is writing checkpoints
// over and over, at varied moments, and checks every time that the file on
// disk is whole, passes its checksum and holds the tensors of one write.
func TestKillDuringSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	for i := 0; i < 8; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CHECKPOINT_SAVE_LOOP="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(path); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(10+17*i) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		f, err := Read(path)
		if err != nil {
			t.Fatalf("after kill %d the checkpoint does not load: %v", i+1, err)
		}
		var n int
		fmt.Sscan(f.Meta["i"], &n)
		want := loopTensors(n)
		for _, w := range want {
			if !bytes.Equal(f.Tensors[w.Name].Data, w.Data) {
				t.Fatalf("after kill %d: tensor %s is not the one written with i=%d", i+1, w.Name, n)
			}
		}
	}
}

// handBuilt lays out a safetensors file from the format's definition,
// independently of Encode: the header JSON written out by hand (keys in
// Go's sorted order), padded with spaces to a multiple of 8.
func handBuilt(sum string) []byte {
	// encoding/json sorts map keys: __metadata__ < a.weight < b.bias.
	header := `{"__metadata__":{"a":"1","sha256":"` + sum + `"},` +
		`"a.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]},` +
		`"b.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	for _, v := range []float32{1.5, -2, 0.25} {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

// TestEncodeLayout: Encode writes tensors in the order given, the header as
// the format defines it, and a checksum that Read accepts.
func TestEncodeLayout(t *testing.T) {
	ts := []Tensor{F32("b.bias", []int{2}, []float32{1.5, -2}), F32("a.weight", []int{1, 1}, []float32{0.25})}
	got, err := Encode(ts, map[string]string{"a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	// The checksum, from its definition: SHA-256 of the canonical JSON of
	// the entries and the metadata without the checksum, then the data.
	n := binary.LittleEndian.Uint64(got)
	hdr := string(got[8 : 8+n])
	i := strings.Index(hdr, `"sha256":"`)
	if i < 0 {
		t.Fatalf("no checksum in header %s", hdr)
	}
	sum := hdr[i+10 : i+10+64]
	if want := handBuilt(sum); !bytes.Equal(got, want) {
		t.Fatalf("Encode wrote\n%q\nwant\n%q", got, want)
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	os.WriteFile(path, got, 0o644)
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Tensors["b.bias"].Float32s(); len(v) != 2 || v[0] != 1.5 || v[1] != -2 {
		t.Fatalf("b.bias read back as %v", v)
	}
	if f.Meta["a"] != "1" {
		t.Fatalf("metadata read back as %v", f.Meta)
	}
	// A wrong checksum is refused.
	bad := handBuilt(strings.Repeat("0", 64))
	os.WriteFile(path, bad, 0o644)
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("a wrong checksum: %v", err)
	}
}

// TestCorrupt: a flipped byte anywhere in the data or a truncated file is
// refused with a clear message; a missing file is a *NotFoundError.
func TestCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	ts := []Tensor{F32("w", []int{3, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})}
	if err := Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	if _, err := Read(path); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(good) - 1, len(good) - 40, len(good) / 2} {
		bad := append([]byte(nil), good...)
		bad[at] ^= 0x10
		os.WriteFile(path, bad, 0o644)
		if _, err := Read(path); err == nil {
			t.Fatalf("a flipped bit at byte %d of %d went unnoticed", at, len(good))
		}
	}
	for _, n := range []int{0, 5, 12, len(good) - 1} {
		os.WriteFile(path, good[:n], 0o644)
		_, err := Read(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("a checkpoint truncated to %d bytes: %v", n, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "none.safetensors")
	_, err := Read(missing)
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, fs.ErrNotExist) || err.Error() != "checkpoint "+missing+": file not found" {
		t.Fatalf("missing file: %v", err)
	}
}

// TestStaleTempsRemoved: a temporary file left by a writer killed long ago is
// removed by the next save; a fresh one (a writer at work) is left alone.
func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	old := filepath.Join(dir, ".m.safetensors.tmp123")
	young := filepath.Join(dir, ".m.safetensors.tmp456")
	os.WriteFile(old, []byte("partial"), 0o644)
	os.WriteFile(young, []byte("partial"), 0o644)
	long := time.Now().Add(-time.Hour)
	os.Chtimes(old, long, long)
	if err := WriteFileAtomic(path, []byte("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("an hour-old temporary file was not removed")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("a fresh temporary file was removed")
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Errorf("file holds %q", b)
	}
}
