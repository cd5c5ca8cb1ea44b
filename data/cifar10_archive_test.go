package data

import (
	"archive/tar"
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// archiveBatches is a small cifar-10-batches-bin folder's files (2 records
// per training file, 3 in the test file, class names a..j), written to a
// folder and returned.
func archiveBatches(t *testing.T) (dir string, files map[string][]byte) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), BatchesFolder)
	files = map[string][]byte{}
	for _, e := range validEntries() {
		if e.typeflag == tar.TypeReg {
			files[filepath.Base(e.name)] = e.body
			writeFile(t, filepath.Join(dir, filepath.Base(e.name)), e.body)
		}
	}
	return dir, files
}

// shuffledEntries is validEntries in a random order after the folder entry,
// with a readme among them, as the official archive (whose files are not
// in name order) has.
func shuffledEntries(seed uint64, prefix string) []tarEntry {
	es := validEntries(tarEntry{name: BatchesFolder + "/readme.html", typeflag: tar.TypeReg, body: []byte("<html>")})
	rng := rand.New(rand.NewPCG(seed, 3))
	rng.Shuffle(len(es)-1, func(i, j int) { es[i+1], es[j+1] = es[j+1], es[i+1] })
	for i := range es {
		es[i].name = prefix + es[i].name
	}
	return es
}

// sameData fails unless got equals want (pixels, labels, classes, shape).
func sameData(t *testing.T, what string, got, want *Dataset) {
	t.Helper()
	if got.N != want.N || got.C != want.C || got.H != want.H || got.W != want.W ||
		!bytes.Equal(got.Images, want.Images) || !slices.Equal(got.Labels, want.Labels) || !slices.Equal(got.Classes, want.Classes) {
		t.Fatalf("%s: N=%d %dx%dx%d classes %v differs from the folder's N=%d %dx%dx%d classes %v (or pixels/labels differ)",
			what, got.N, got.C, got.H, got.W, got.Classes, want.N, want.C, want.H, want.W, want.Classes)
	}
}

// TestLoadCIFAR10Archive reads archives of a small CIFAR-10 folder (gzip
// and plain tar, files in a shuffled order, with a leading "./") and
// checks them against reading the folder itself; the archive and its
// folder are left untouched.
func TestLoadCIFAR10Archive(t *testing.T) {
	dir, _ := archiveBatches(t)
	wantTrain, wantTest, err := LoadCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if wantTrain.N != 10 || wantTest.N != 3 || wantTrain.Classes[0] != "a" {
		t.Fatalf("reference folder: train %d test %d classes %v", wantTrain.N, wantTest.N, wantTrain.Classes)
	}
	for _, tc := range []struct {
		name    string
		archive []byte
	}{
		{"tar.gz", tarGz(t, validEntries()...)},
		{"tar.gz shuffled", tarGz(t, shuffledEntries(1, "")...)},
		{"tar.gz ./ prefix", tarGz(t, shuffledEntries(2, "./")...)},
		{"plain tar", fuzzTar(t, true, shuffledEntries(3, "")...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			folder := t.TempDir()
			p := filepath.Join(folder, ArchiveName)
			writeFile(t, p, tc.archive)
			train, test, err := LoadCIFAR10(p)
			if err != nil {
				t.Fatal(err)
			}
			sameData(t, "train", train, wantTrain)
			sameData(t, "test", test, wantTest)
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, tc.archive) {
				t.Errorf("the archive changed (%v)", err)
			}
			if names := listDir(t, folder); !slices.Equal(names, []string{ArchiveName}) {
				t.Errorf("the archive's folder now holds %v, want only the archive", names)
			}
		})
	}
	t.Run("no meta file", func(t *testing.T) {
		var es []tarEntry
		for _, e := range validEntries() {
			if filepath.Base(e.name) != MetaFile {
				es = append(es, e)
			}
		}
		p := filepath.Join(t.TempDir(), "x.tar.gz")
		writeFile(t, p, tarGz(t, es...))
		train, _, err := LoadCIFAR10(p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(train.Classes, ClassNames[:]) || !bytes.Equal(train.Images, wantTrain.Images) {
			t.Errorf("classes %v (want the standard names) or pixels differ", train.Classes)
		}
	})
}

// TestLoadCIFAR10ArchiveErrors: each bad archive is a one-line error that
// names the archive and says what is wrong.
func TestLoadCIFAR10ArchiveErrors(t *testing.T) {
	good := tarGz(t, validEntries()...)
	files := batchFiles(3, 2, 3)
	reg := func(name string, body []byte) tarEntry {
		return tarEntry{name: name, typeflag: tar.TypeReg, body: body}
	}
	without := func(base string, extra ...tarEntry) []tarEntry {
		var es []tarEntry
		for _, e := range validEntries() {
			if filepath.Base(e.name) != base {
				es = append(es, e)
			}
		}
		return append(es, extra...)
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0x55
	badLabel := slices.Clone(files[TestFile])
	badLabel[2*RecordSize] = 11
	cases := []struct {
		name    string
		archive []byte
		want    []string
	}{
		{"not an archive", []byte("hello, this is not an archive at all"), []string{"is neither a folder nor a .tar.gz or .tar archive", ArchiveName}},
		{"zip", append([]byte("PK\x03\x04"), make([]byte, 100)...), []string{"zip archive", "unzip it"}},
		{"truncated", good[:len(good)/2], []string{"archive ends early (truncated download?)", "download " + ArchiveName + " again"}},
		{"gzip trailer cut", good[:len(good)-4], []string{"archive ends early"}},
		{"corrupt", flipped, []string{"corrupt archive", "download " + ArchiveName + " again"}},
		{"path traversal", tarGz(t, validEntries(reg("../evil.txt", []byte("x")))...), []string{`entry "../evil.txt"`, `".." component`, "refusing"}},
		{"absolute path", tarGz(t, validEntries(reg("/etc/evil", []byte("x")))...), []string{`entry "/etc/evil"`, "absolute path", "refusing"}},
		{"symlink", tarGz(t, validEntries(tarEntry{name: "link", typeflag: tar.TypeSymlink, link: "/etc/passwd"})...), []string{`entry "link" is a link`, "only files and folders"}},
		{"python version", tarGz(t, tarEntry{name: "cifar-10-batches-py/", typeflag: tar.TypeDir}, reg("cifar-10-batches-py/data_batch_1", []byte("x"))),
			[]string{"the Python version of CIFAR-10", "binary version", ArchiveName}},
		{"not cifar", tarGz(t, reg("photos/cat.jpg", []byte("x"))), []string{"holds no CIFAR-10 .bin files", ArchiveName}},
		{"missing file", tarGz(t, without(TestFile)...), []string{"archive lacks test_batch.bin"}},
		{"duplicate", tarGz(t, validEntries(reg(BatchesFolder+"/"+TestFile, files[TestFile]))...), []string{"holds test_batch.bin twice"}},
		{"two folders", tarGz(t, without(TestFile, reg("other/"+TestFile, files[TestFile]))...), []string{"two folders", `"other"`}},
		{"partial record", tarGz(t, without(TestFile, reg(BatchesFolder+"/"+TestFile, files[TestFile][:RecordSize+5]))...),
			[]string{BatchesFolder + "/" + TestFile, "size 3078 bytes is not a whole number of 3073-byte"}},
		{"empty file", tarGz(t, without(TestFile, reg(BatchesFolder+"/"+TestFile, nil))...), []string{"file is empty"}},
		{"bad label", tarGz(t, without(TestFile, reg(BatchesFolder+"/"+TestFile, badLabel))...), []string{BatchesFolder + "/" + TestFile, "record 2", "label 11"}},
		{"bad meta", tarGz(t, without(MetaFile, reg(BatchesFolder+"/"+MetaFile, []byte("a\nb\n")))...), []string{MetaFile, "has 2 class names"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), ArchiveName)
			writeFile(t, p, c.archive)
			_, _, err := LoadCIFAR10(p)
			checkErr(t, err, append([]string{p + ": "}, c.want...)...)
		})
	}
	t.Run("single bin file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), TestFile)
		writeFile(t, p, files[TestFile])
		_, _, err := LoadCIFAR10(p)
		checkErr(t, err, p, "is a single .bin file", "should be the "+BatchesFolder+" folder holding all six .bin files")
	})
	t.Run("entry cap", func(t *testing.T) {
		defer func(n int) { maxExtractEntries = n }(maxExtractEntries)
		maxExtractEntries = 5
		p := filepath.Join(t.TempDir(), ArchiveName)
		writeFile(t, p, good)
		_, _, err := LoadCIFAR10(p)
		checkErr(t, err, p, "more than 5 entries")
	})
	t.Run("size cap", func(t *testing.T) {
		defer func(n int64) { maxExtractBytes = n }(maxExtractBytes)
		maxExtractBytes = 5 * RecordSize
		p := filepath.Join(t.TempDir(), ArchiveName)
		writeFile(t, p, good)
		_, _, err := LoadCIFAR10(p)
		checkErr(t, err, p, "more than 15365 bytes")
	})
	t.Run("folder holding the archive", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, ArchiveName), good)
		_, _, err := LoadCIFAR10(dir)
		checkErr(t, err, dir, "did you mean "+filepath.Join(dir, ArchiveName)+"?")
	})
}
