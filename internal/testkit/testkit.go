// Package testkit holds helpers shared by the tests of several packages:
// bounded fuzz runs, allocation budgets, one-line file errors, small
// synthetic images and a random CIFAR-10 folder. Only _test.go files import
// it. It imports no package of this module, so any package's tests can use
// it without an import cycle.
package testkit

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// FuzzTimeLimit is how long one fuzz input may take. It is generous (other
// fuzz workers may load the machine); a reader that loops forever still
// trips it.
const FuzzTimeLimit = 10 * time.Second

// Bounded runs fn and crashes the process, with every goroutine's stack, if
// it has not returned after FuzzTimeLimit: a hang becomes a crasher that the
// fuzzer saves instead of a stuck worker.
func Bounded(t testing.TB, fn func()) {
	t.Helper()
	timer := time.AfterFunc(FuzzTimeLimit, func() {
		debug.SetTraceback("all")
		panic(fmt.Sprintf("%s: one input ran for more than %v (hang?)", t.Name(), FuzzTimeLimit))
	})
	defer timer.Stop()
	fn()
}

// Allocated runs fn (bounded in time, see Bounded) and returns how many
// bytes the process allocated meanwhile.
func Allocated(t testing.TB, fn func()) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	Bounded(t, fn)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// CheckAlloc fails if got bytes exceed the budget.
func CheckAlloc(t testing.TB, got, budget uint64, what string) {
	t.Helper()
	if got > budget {
		t.Fatalf("%s allocated %d bytes, more than its budget of %d (does a reader trust a size before checking it?)", what, got, budget)
	}
}

// CheckFileErr fails unless err is a one-line message naming path.
func CheckFileErr(t testing.TB, err error, path string) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !strings.Contains(msg, path) {
		t.Errorf("error does not name the file %s: %q", path, msg)
	}
}

// WriteTemp writes b to a file called name in a fresh temporary folder and
// returns its path.
func WriteTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// SolidGray returns a w x h grey image of one level.
func SolidGray(w, h int, v uint8) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = v
	}
	return m
}

// Noise returns a w x h opaque image of random colours.
func Noise(rng *rand.Rand, w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(rng.Uint32())
		if i%4 == 3 {
			m.Pix[i] = 255
		}
	}
	return m
}

// The CIFAR-10 binary layout, as package data reads it (its tests check
// that the files written here load).
var cifarFiles = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}

const cifarRecord = 1 + 3*32*32 // label byte, then 3 planes of 32x32

// WriteRandomCIFAR writes a CIFAR-10 folder with perFile records of random
// pixels and labels in each of the six files (seeded: always the same).
func WriteRandomCIFAR(t testing.TB, dir string, perFile int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, f := range cifarFiles {
		rec := make([]byte, perFile*cifarRecord)
		for i := range rec {
			rec[i] = byte(rng.IntN(256))
		}
		for i := 0; i < perFile; i++ {
			rec[i*cifarRecord] = byte(rng.IntN(10))
		}
		if err := os.WriteFile(filepath.Join(dir, f), rec, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// PNGHeader returns a PNG signature and IHDR chunk for a w x h RGB image
// (with a valid CRC) followed by nothing: enough for DecodeConfig, not for
// Decode.
func PNGHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	b = binary.BigEndian.AppendUint32(b, w)
	b = binary.BigEndian.AppendUint32(b, h)
	b = append(b, 8, 2, 0, 0, 0)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[12:]))
}
