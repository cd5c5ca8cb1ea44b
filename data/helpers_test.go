package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// records makes n random CIFAR-10 records and returns the file bytes plus the
// expected labels and pixels.
func records(rng *rand.Rand, n int) (file []byte, labels []int32, pixels []uint8) {
	file = make([]byte, 0, n*RecordSize)
	for range n {
		l := uint8(rng.IntN(NumClasses))
		labels = append(labels, int32(l))
		file = append(file, l)
		for range ImageBytes {
			p := uint8(rng.Uint32())
			file = append(file, p)
			pixels = append(pixels, p)
		}
	}
	return file, labels, pixels
}

// writeFile writes b to path, creating folders.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// batchFiles returns the contents of a small valid cifar-10-batches-bin
// folder: file name -> bytes (nTrain records per training file, nTest in
// the test file).
func batchFiles(seed uint64, nTrain, nTest int) map[string][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := map[string][]byte{}
	for _, name := range TrainFiles {
		m[name], _, _ = records(rng, nTrain)
	}
	m[TestFile], _, _ = records(rng, nTest)
	return m
}

// makeBatchesDir writes a small valid cifar-10-batches-bin folder in dir.
func makeBatchesDir(t *testing.T, dir string, nTrain, nTest int) map[string][]byte {
	t.Helper()
	files := batchFiles(7, nTrain, nTest)
	for name, b := range files {
		writeFile(t, filepath.Join(dir, name), b)
	}
	return files
}

type tarEntry struct {
	name     string
	typeflag byte
	body     []byte
	link     string
}

// tarGz builds a gzip-compressed tar archive in memory.
func tarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.link, Mode: 0o644, Format: tar.FormatPAX}
		if e.typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if len(e.body) > 0 {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validEntries is a complete small cifar-10-batches-bin/ folder as archive
// entries, with extra appended.
func validEntries(extra ...tarEntry) []tarEntry {
	files := batchFiles(3, 2, 3)
	es := []tarEntry{{name: BatchesFolder + "/", typeflag: tar.TypeDir}}
	for _, name := range append(TrainFiles[:], TestFile) {
		es = append(es, tarEntry{name: BatchesFolder + "/" + name, typeflag: tar.TypeReg, body: files[name]})
	}
	es = append(es, tarEntry{name: BatchesFolder + "/" + MetaFile, typeflag: tar.TypeReg, body: []byte("a\nb\nc\nd\ne\n\nf\ng\nh\ni\nj\n")})
	return append(es, extra...)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// listDir returns the names in dir (nil if it does not exist).
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
