package data

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadCIFAR10FilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var wantLabels []int32
	var wantPixels []uint8
	var paths []string
	// Odd sizes, including more records than one read chunk.
	for i, n := range []int{3, chunkRecords + 5, 1} {
		b, l, p := records(rng, n)
		path := filepath.Join(dir, "f"+string(rune('a'+i))+".bin")
		writeFile(t, path, b)
		paths = append(paths, path)
		wantLabels = append(wantLabels, l...)
		wantPixels = append(wantPixels, p...)
	}
	d, err := ReadCIFAR10Files(paths...)
	if err != nil {
		t.Fatal(err)
	}
	if d.N != len(wantLabels) || d.C != 3 || d.H != 32 || d.W != 32 || d.ImageSize() != 3072 {
		t.Fatalf("N,C,H,W = %d,%d,%d,%d, want %d,3,32,32", d.N, d.C, d.H, d.W, len(wantLabels))
	}
	if !slices.Equal(d.Labels, wantLabels) {
		t.Errorf("labels differ")
	}
	if !bytes.Equal(d.Images, wantPixels) {
		t.Errorf("pixels differ")
	}
	if cap(d.Images) != len(wantPixels) {
		t.Errorf("Images cap %d, want exactly %d (one allocation, no growth)", cap(d.Images), len(wantPixels))
	}
	last := d.N - 1
	if !bytes.Equal(d.Image(last), wantPixels[last*ImageBytes:]) {
		t.Errorf("Image(%d) differs", last)
	}
	if !slices.Equal(d.Classes, ClassNames[:]) {
		t.Errorf("classes = %v, want standard names", d.Classes)
	}

	one, err := ReadCIFAR10File(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if one.N != 3 || !bytes.Equal(one.Images, wantPixels[:3*ImageBytes]) || !slices.Equal(one.Labels, wantLabels[:3]) {
		t.Errorf("ReadCIFAR10File: wrong content")
	}
}

func TestLoadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	files := makeBatchesDir(t, dir, 4, 6)
	train, test, err := LoadCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 20 || test.N != 6 {
		t.Fatalf("train %d test %d, want 20 and 6", train.N, test.N)
	}
	var wantTrain []byte
	for _, name := range TrainFiles {
		wantTrain = append(wantTrain, files[name]...)
	}
	for i := range train.N {
		rec := wantTrain[i*RecordSize : (i+1)*RecordSize]
		if train.Labels[i] != int32(rec[0]) || !bytes.Equal(train.Image(i), rec[1:]) {
			t.Fatalf("train record %d differs", i)
		}
	}
	if test.Labels[5] != int32(files[TestFile][5*RecordSize]) {
		t.Errorf("test label differs")
	}
	if !slices.Equal(train.Classes, ClassNames[:]) {
		t.Errorf("classes = %v", train.Classes)
	}

	// Class names from batches.meta.txt, blank lines and CRLF ignored.
	writeFile(t, filepath.Join(dir, MetaFile), []byte("a\r\nb\nc\n\nd\ne\nf\ng\nh\ni\nj\n\n"))
	train, test, err = LoadCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split("a b c d e f g h i j", " ")
	if !slices.Equal(train.Classes, want) || !slices.Equal(test.Classes, want) {
		t.Errorf("classes = %q / %q, want %q", train.Classes, test.Classes, want)
	}
}

// checkErr fails unless err is a one-line error containing every part.
func checkErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not contain %q", msg, p)
		}
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 5))
	good, _, _ := records(rng, 20)

	truncated := filepath.Join(dir, "truncated.bin")
	writeFile(t, truncated, append(append([]byte(nil), good...), 0)) // 20 records + 1 byte
	badLabel := filepath.Join(dir, "label.bin")
	b := append([]byte(nil), good...)
	b[17*RecordSize] = 11
	writeFile(t, badLabel, b)
	empty := filepath.Join(dir, "empty.bin")
	writeFile(t, empty, nil)
	okPath := filepath.Join(dir, "ok.bin")
	writeFile(t, okPath, good)
	missing := filepath.Join(dir, "missing.bin")

	for _, tc := range []struct {
		name  string
		paths []string
		parts []string
	}{
		{"truncated", []string{truncated}, []string{truncated, "size 61461 bytes is not a whole number of 3073-byte CIFAR-10 records", "delete the folder and run again"}},
		{"label 11", []string{badLabel}, []string{badLabel, "record 17", "has label 11, CIFAR-10 labels are 0-9"}},
		{"empty", []string{empty}, []string{empty, "empty"}},
		{"missing", []string{missing}, []string{missing, "not found"}},
		{"folder", []string{dir}, []string{dir, "is a folder"}},
		{"second file bad", []string{okPath, badLabel}, []string{badLabel, "label 11"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ReadCIFAR10Files(tc.paths...)
			if d != nil {
				t.Errorf("got a dataset with an error")
			}
			checkErr(t, err, tc.parts...)
		})
	}
	if _, err := ReadCIFAR10File(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: errors.Is(err, fs.ErrNotExist) is false for %v", err)
	}
	if _, err := ReadCIFAR10Files(); err == nil {
		t.Errorf("no paths: no error")
	}
}

func TestLoadCIFAR10Errors(t *testing.T) {
	t.Run("missing folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		_, _, err := LoadCIFAR10(dir)
		checkErr(t, err, dir, "folder not found; the dataset folder should be a cifar-10-batches-bin folder or cifar-10-binary.tar.gz, or left unset to download")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(err, fs.ErrNotExist) is false")
		}
	})
	t.Run("file instead of folder", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		writeFile(t, p, []byte("x"))
		_, _, err := LoadCIFAR10(p)
		checkErr(t, err, p, "is neither a folder nor a .tar.gz or .tar archive", "the dataset folder should be")
	})
	t.Run("missing files", func(t *testing.T) {
		dir := t.TempDir()
		makeBatchesDir(t, dir, 1, 1)
		os.Remove(filepath.Join(dir, "data_batch_3.bin"))
		os.Remove(filepath.Join(dir, TestFile))
		_, _, err := LoadCIFAR10(dir)
		checkErr(t, err, dir, "missing data_batch_3.bin, test_batch.bin")
	})
	t.Run("parent folder given", func(t *testing.T) {
		parent := t.TempDir()
		makeBatchesDir(t, filepath.Join(parent, BatchesFolder), 1, 1)
		_, _, err := LoadCIFAR10(parent)
		checkErr(t, err, "did you mean "+filepath.Join(parent, BatchesFolder))
	})
	t.Run("truncated test file", func(t *testing.T) {
		dir := t.TempDir()
		files := makeBatchesDir(t, dir, 1, 2)
		p := filepath.Join(dir, TestFile)
		writeFile(t, p, files[TestFile][:RecordSize+100])
		_, _, err := LoadCIFAR10(dir)
		checkErr(t, err, p, "size 3173 bytes is not a whole number")
	})
	t.Run("empty train file", func(t *testing.T) {
		dir := t.TempDir()
		makeBatchesDir(t, dir, 1, 1)
		p := filepath.Join(dir, "data_batch_5.bin")
		writeFile(t, p, nil)
		_, _, err := LoadCIFAR10(dir)
		checkErr(t, err, p, "empty")
	})
	t.Run("bad meta", func(t *testing.T) {
		dir := t.TempDir()
		makeBatchesDir(t, dir, 1, 1)
		p := filepath.Join(dir, MetaFile)
		writeFile(t, p, []byte("cat\ndog\n"))
		_, _, err := LoadCIFAR10(dir)
		checkErr(t, err, p, "has 2 class names, CIFAR-10 needs 10")
	})
}

func TestPermutation(t *testing.T) {
	perm := func(seed uint64, n int) []int32 {
		p := make([]int32, n)
		for i := range p {
			p[i] = -7 // must be overwritten
		}
		Permutation(rand.New(rand.NewPCG(seed, 0)), p)
		return p
	}
	for _, n := range []int{0, 1, 2, 10, 1000} {
		p := perm(1, n)
		s := slices.Clone(p)
		slices.Sort(s)
		for i, v := range s {
			if v != int32(i) {
				t.Fatalf("n=%d: not a permutation: %v", n, p)
			}
		}
	}
	a, b, c := perm(42, 1000), perm(42, 1000), perm(43, 1000)
	if !slices.Equal(a, b) {
		t.Errorf("same seed gave different permutations")
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds gave the same permutation")
	}
	ident := perm(0, 1000)
	slices.Sort(ident)
	if slices.Equal(a, ident) {
		t.Errorf("permutation is the identity")
	}
	// Every element should be able to land anywhere: position 0 takes many
	// values over seeds (a bias check that would catch i-only or off-by-one
	// swaps such as IntN(i)).
	seen := map[int32]bool{}
	for seed := range uint64(200) {
		seen[perm(seed, 5)[4]] = true
	}
	if len(seen) != 5 {
		t.Errorf("last position took values %v over 200 seeds, want all of 0..4", seen)
	}
}

func TestSampleDirUnset(t *testing.T) {
	t.Setenv(SampleEnv, "")
	dir, skip, err := SampleDir(t.TempDir())
	if dir != "" || err != nil || !strings.Contains(skip, SampleEnv) {
		t.Errorf("SampleDir with %s unset = %q, %q, %v", SampleEnv, dir, skip, err)
	}
}

func TestSampleDirMissingArchive(t *testing.T) {
	t.Setenv(SampleEnv, filepath.Join(t.TempDir(), "none.tar.gz"))
	if _, skip, err := SampleDir(t.TempDir()); err == nil || skip != "" {
		t.Errorf("SampleDir with a missing archive: skip %q err %v, want an error", skip, err)
	}
}

func TestSampleDirSynthetic(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "sample.tar.gz")
	writeFile(t, archive, tarGz(t, validEntries()...))
	t.Setenv(SampleEnv, archive)
	dir, skip, err := SampleDir(t.TempDir())
	if err != nil || skip != "" {
		t.Fatal(skip, err)
	}
	train, test, err := LoadCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 10 || test.N != 3 || train.Classes[9] != "j" {
		t.Errorf("train %d test %d classes %v", train.N, test.N, train.Classes)
	}
}

// TestSampleArchive loads the real sample named by $TRAINER_CIFAR_SAMPLE.
func TestSampleArchive(t *testing.T) {
	dir, skip, err := SampleDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	train, test, err := LoadCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 2500 || test.N != 1000 {
		t.Errorf("sample has %d train and %d test images, want 2500 and 1000", train.N, test.N)
	}
	var counts [NumClasses]int
	for _, l := range train.Labels {
		counts[l]++
	}
	for c, n := range counts {
		if n == 0 {
			t.Errorf("class %d (%s) has no training images", c, train.Classes[c])
		}
	}
	if !slices.Equal(train.Classes, ClassNames[:]) {
		t.Errorf("classes = %v, want the standard names", train.Classes)
	}
	// The archive itself, read without unpacking, holds the same data.
	atrain, atest, err := LoadCIFAR10(os.Getenv(SampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	sameData(t, "archive train", atrain, train)
	sameData(t, "archive test", atest, test)
}
