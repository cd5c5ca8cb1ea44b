package data

// Fuzz targets for the dataset readers. Run one with
//
//	go test -run='^$' -fuzz='^FuzzReadCIFAR10$' -fuzztime=30s ./data
//
// or all of them with scripts/fuzz.sh. Without -fuzz, `go test` runs the
// seeds below and any crashers saved in testdata/fuzz as ordinary tests.
//
// Every target checks the same invariants: no panic, no hang (an input that
// runs longer than testkit.FuzzTimeLimit crashes the worker, so the fuzzer keeps it),
// allocations bounded by a small multiple of the input plus a fixed cap (the
// readers must check sizes before they allocate), and errors that are one
// line and name the file they are about.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// fuzzGzip returns b gzip-compressed.
func fuzzGzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ---- CIFAR-10 ----

// FuzzReadCIFAR10 reads the input as a CIFAR-10 .bin file, alone and twice
// in a row, with meta (when not empty) as the batches.meta.txt beside it.
func FuzzReadCIFAR10(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	one, _, _ := records(rng, 1)
	two, _, _ := records(rng, 2)
	names := strings.Join(ClassNames[:], "\n") + "\n"
	f.Add(one, "")
	f.Add(two, "")
	f.Add(two, names)
	f.Add(one, "a\nb\n\nc\nd\ne\nf\ng\nh\ni\nj\n")
	f.Add(one[:RecordSize-1], "")                         // short record
	f.Add(append([]byte{10}, one[1:]...), "")             // bad label
	f.Add(append(append([]byte(nil), one...), 0), "")     // one byte too many
	f.Add([]byte{}, "")                                   // empty
	f.Add(one, "just one class\n")                        // bad meta
	f.Add(one, strings.Repeat("x", 70000)+"\n"+names[2:]) // line longer than bufio.Scanner's limit

	f.Fuzz(func(t *testing.T, file []byte, meta string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "data_batch_1.bin")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		if meta != "" {
			if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte(meta), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var d, d2 *Dataset
		var err, err2 error
		got := testkit.Allocated(t, func() {
			d, err = ReadCIFAR10File(path)
			d2, err2 = ReadCIFAR10Files(path, path)
		})
		// Output: 3 copies of the pixels (1 + 2), labels as int32 (x12),
		// one 770 KiB read buffer per call, class names.
		testkit.CheckAlloc(t, got, uint64(16*(len(file)+len(meta))+4<<20), "ReadCIFAR10File+ReadCIFAR10Files")
		if (err == nil) != (err2 == nil) {
			t.Fatalf("one file reads (%v) but the same file twice does not (%v), or the reverse", err, err2)
		}
		if err != nil {
			testkit.CheckFileErr(t, err, dir)
			testkit.CheckFileErr(t, err2, dir)
			return
		}
		n := len(file) / RecordSize
		if len(file)%RecordSize != 0 || n == 0 {
			t.Fatalf("read a %d-byte file, which is not a positive number of %d-byte records", len(file), RecordSize)
		}
		if d.N != n || len(d.Labels) != n || len(d.Images) != n*ImageBytes || d.C != Channels || d.H != Height || d.W != Width {
			t.Fatalf("dataset N=%d %dx%dx%d with %d labels and %d pixel bytes from %d records", d.N, d.C, d.H, d.W, len(d.Labels), len(d.Images), n)
		}
		if len(d.Classes) != NumClasses {
			t.Fatalf("%d class names", len(d.Classes))
		}
		for i := range n {
			rec := file[i*RecordSize : (i+1)*RecordSize]
			if d.Labels[i] != int32(rec[0]) || d.Labels[i] >= NumClasses || !bytes.Equal(d.Image(i), rec[1:]) {
				t.Fatalf("record %d read back wrong (label %d, file has %d)", i, d.Labels[i], rec[0])
			}
		}
		if d2.N != 2*n || !bytes.Equal(d2.Images[:n*ImageBytes], d.Images) || !bytes.Equal(d2.Images[n*ImageBytes:], d.Images) {
			t.Fatalf("the file twice reads as N=%d, not twice the %d records of the file once", d2.N, n)
		}
	})
}

// ---- MNIST IDX ----

// FuzzReadIDX reads the input (gzip-compressed by the test first when
// compress is set, so that header mutations survive the compression) as an
// IDX images file and as an IDX labels file.
func FuzzReadIDX(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	images, labels, _, _ := mnistSet(rng, 3, 4, 5)
	f.Add(images, false)
	f.Add(labels, false)
	f.Add(images, true)
	f.Add(labels, true)
	f.Add(fuzzGzip(f, images), false) // already gzip: read as is
	f.Add(fuzzGzip(f, labels), false)
	f.Add(append(fuzzGzip(f, labels[:6]), fuzzGzip(f, labels[6:])...), false) // two gzip members
	f.Add(append(fuzzGzip(f, labels), 0, 0), false)                           // trailing garbage
	f.Add(idx(idxImagesMagic, []uint32{1 << 30, 1 << 30, 1}, nil), true)      // huge header
	f.Add(idx(idxLabelsMagic, []uint32{1000000}, nil), true)                  // header larger than the data
	f.Add(idx(idxLabelsMagic, []uint32{2}, []byte{3, 10}), false)             // bad label
	f.Add([]byte{0x1f, 0x8b}, false)

	f.Fuzz(func(t *testing.T, file []byte, compress bool) {
		if compress {
			file = fuzzGzip(t, file)
		}
		isGz := len(file) >= 2 && file[0] == 0x1f && file[1] == 0x8b
		path := testkit.WriteTemp(t, "train-images-idx3-ubyte", file)
		var pix []uint8
		var n, h, w int
		var lab []int32
		var errI, errL error
		got := testkit.Allocated(t, func() {
			pix, n, h, w, errI = ReadIDXImages(path)
			lab, errL = ReadIDXLabels(path)
		})
		// Data bytes (and int32 labels, 4x) plus 64 KiB of buffering; a
		// gzip file may declare up to maxDeflateRatio times its size.
		budget := uint64(len(file))
		if isGz {
			budget = budget*uint64(maxDeflateRatio) + 1024
		}
		testkit.CheckAlloc(t, got, 6*budget+1<<20, "ReadIDXImages+ReadIDXLabels")
		if errI != nil {
			testkit.CheckFileErr(t, errI, path)
		} else {
			if n <= 0 || h <= 0 || w <= 0 || len(pix) != n*h*w {
				t.Fatalf("images %dx%dx%d with %d pixel bytes", n, h, w, len(pix))
			}
			if !isGz && len(file) != 16+len(pix) {
				t.Fatalf("a raw %d-byte file read as %d pixel bytes", len(file), len(pix))
			}
		}
		if errL != nil {
			testkit.CheckFileErr(t, errL, path)
		} else {
			if len(lab) == 0 {
				t.Fatal("no labels and no error")
			}
			if !isGz && len(file) != 8+len(lab) {
				t.Fatalf("a raw %d-byte file read as %d labels", len(file), len(lab))
			}
			for i, l := range lab {
				if l < 0 || l > 9 {
					t.Fatalf("label %d is %d", i, l)
				}
			}
		}
		if errI == nil && errL == nil {
			t.Fatal("one file read both as images and as labels")
		}
	})
}

// ---- archives ----

// fuzzTar returns entries as a tar stream, gzip-compressed unless raw.
func fuzzTar(t testing.TB, raw bool, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.link, Mode: 0o644}
		if e.typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if raw {
		return buf.Bytes()
	}
	return fuzzGzip(t, buf.Bytes())
}

// fuzzSnapshot maps every path under dir (relative, slash-separated) to its
// type and, for regular files, content; symlinks to their target.
func fuzzSnapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "link " + target
		case d.IsDir():
			m[rel] = "dir"
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = "file " + string(b)
		default:
			m[rel] = "other " + d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzExtractTarGz unpacks the input (a .tar.gz, or a tar stream that the
// test gzip-compresses first when compress is set, so that tar header
// mutations survive) into dest, inside a parent folder that also holds a
// file and a folder of its own; dest holds a file and a symbolic link to
// that outside folder. Nothing outside dest may change, the file inside
// must not be overwritten, and only regular files and folders may appear.
func FuzzExtractTarGz(f *testing.F) {
	defer func(b int64, e int) { maxExtractBytes, maxExtractEntries = b, e }(maxExtractBytes, maxExtractEntries)
	maxExtractBytes, maxExtractEntries = 64<<10, 64

	files := batchFiles(9, 1, 1)
	dirEntry := tarEntry{name: BatchesFolder + "/", typeflag: tar.TypeDir}
	valid := []tarEntry{dirEntry}
	for _, name := range append(TrainFiles[:], TestFile) {
		valid = append(valid, tarEntry{name: BatchesFolder + "/" + name, typeflag: tar.TypeReg, body: files[name][:64]})
	}
	valid = append(valid, tarEntry{name: BatchesFolder + "/" + MetaFile, typeflag: tar.TypeReg, body: []byte("a\nb\n")})
	reg := func(name, body string) tarEntry {
		return tarEntry{name: name, typeflag: tar.TypeReg, body: []byte(body)}
	}
	link := func(name, target string, typ byte) tarEntry { return tarEntry{name: name, typeflag: typ, link: target} }
	variants := [][]tarEntry{
		valid,
		{dirEntry, reg(BatchesFolder+"/data_batch_1.bin", "x")},
		{reg("../escape", "pwned")},
		{reg(BatchesFolder+"/../../escape", "pwned")},
		{reg("/abs/escape", "pwned")},
		{link(BatchesFolder, "..", tar.TypeSymlink), reg(BatchesFolder+"/escape", "pwned")},
		{link("up", "../outside", tar.TypeSymlink)},
		{link("hard", "../outside/file", tar.TypeLink)},
		{reg("outlink/escape", "pwned")}, // through the symlink already in dest
		{reg("keep.txt", "overwritten")}, // over the file already in dest
		{reg("a", "1"), reg("a", "2")},   // duplicate
		{reg("c:/x", "y")},
		{{name: "fifo", typeflag: tar.TypeFifo}},
		{reg(".", "x")},
		{reg("big", strings.Repeat("z", 64<<10+1))}, // over the (lowered) size cap
	}
	for _, v := range variants {
		f.Add(fuzzTar(f, true, v...), true)
		f.Add(fuzzTar(f, false, v...), false)
	}
	f.Add([]byte("not gzip"), false)
	f.Add(fuzzGzip(f, []byte("not tar")), false)

	f.Fuzz(func(t *testing.T, archive []byte, compress bool) {
		if compress {
			archive = fuzzGzip(t, archive)
		}
		archivePath := testkit.WriteTemp(t, "a.tar.gz", archive)
		parent := t.TempDir()
		dest := filepath.Join(parent, "dest")
		outside := filepath.Join(parent, "outside")
		for _, d := range []string{dest, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{filepath.Join(parent, "file"), filepath.Join(outside, "file"), filepath.Join(dest, "keep.txt")} {
			if err := os.WriteFile(p, []byte("original"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(outside, filepath.Join(dest, "outlink")); err != nil {
			t.Skip("cannot create symbolic links here:", err)
		}
		before := fuzzSnapshot(t, parent)

		var err error
		got := testkit.Allocated(t, func() { err = ExtractTarGz(archivePath, dest) })
		// Streams: buffers only, whatever the archive holds (tar headers
		// may be up to 1 MiB of PAX records).
		testkit.CheckAlloc(t, got, uint64(8*len(archive))+8<<20, "ExtractTarGz")
		if err != nil {
			testkit.CheckFileErr(t, err, archivePath)
		}

		after := fuzzSnapshot(t, parent)
		var total int64
		for p, v := range after {
			if p == "dest" || !strings.HasPrefix(p, "dest/") {
				if before[p] != v {
					t.Errorf("%s outside the destination changed: %.40q -> %.40q", p, before[p], v)
				}
				continue
			}
			if old, ok := before[p]; ok {
				if old != v {
					t.Errorf("%s, already in the destination, changed: %.40q -> %.40q", p, old, v)
				}
				continue
			}
			switch {
			case strings.HasPrefix(v, "file "):
				total += int64(len(v) - len("file "))
			case v != "dir":
				t.Errorf("extraction made %s, which is %.40q; only files and folders may be extracted", p, v)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("%s disappeared", p)
			}
		}
		if total > maxExtractBytes {
			t.Errorf("extracted %d bytes, over the %d-byte cap", total, maxExtractBytes)
		}
	})
}

// FuzzLoadCIFAR10Archive reads the input (a .tar.gz or .tar, or a tar
// stream that the test gzip-compresses first when compress is set) as the
// CIFAR-10 archive. Besides the common invariants, a success must hold
// labels 0-9 and consistent shapes, and where ExtractTarGz also unpacks
// the archive, reading the unpacked folder must give the same datasets.
func FuzzLoadCIFAR10Archive(f *testing.F) {
	defer func(b int64, e int) { maxExtractBytes, maxExtractEntries = b, e }(maxExtractBytes, maxExtractEntries)
	maxExtractBytes, maxExtractEntries = 64<<10, 64

	files := batchFiles(5, 1, 2)
	valid := []tarEntry{{name: BatchesFolder + "/", typeflag: tar.TypeDir}}
	for _, name := range append(TrainFiles[:], TestFile) {
		valid = append(valid, tarEntry{name: BatchesFolder + "/" + name, typeflag: tar.TypeReg, body: files[name]})
	}
	meta := tarEntry{name: BatchesFolder + "/" + MetaFile, typeflag: tar.TypeReg, body: []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")}
	for _, v := range [][]tarEntry{
		valid,
		append(append([]tarEntry(nil), valid...), meta),
		append([]tarEntry{meta}, valid[1:]...), // no folder entry, meta first
		valid[:3],                              // files missing
		append(append([]tarEntry(nil), valid...), tarEntry{name: "../x", typeflag: tar.TypeReg, body: []byte("x")}),
		append(append([]tarEntry(nil), valid...), valid[1]), // a duplicate
	} {
		f.Add(fuzzTar(f, true, v...), true)
		f.Add(fuzzTar(f, false, v...), false)
	}
	f.Add([]byte("not an archive"), false)

	f.Fuzz(func(t *testing.T, archive []byte, compress bool) {
		if compress {
			archive = fuzzGzip(t, archive)
		}
		path := testkit.WriteTemp(t, ArchiveName, archive)
		var train, test *Dataset
		var err error
		got := testkit.Allocated(t, func() { train, test, err = LoadCIFAR10(path) })
		// Records are refused past the (lowered) cap before they are
		// allocated; the training set is copied once; buffers and tar
		// headers (up to 1 MiB of PAX records) are bounded.
		testkit.CheckAlloc(t, got, uint64(3*maxExtractBytes)+8<<20, "LoadCIFAR10 of an archive")
		if err != nil {
			testkit.CheckFileErr(t, err, path)
			return
		}
		for _, d := range []*Dataset{train, test} {
			if d.N <= 0 || len(d.Labels) != d.N || len(d.Images) != d.N*ImageBytes || len(d.Classes) != NumClasses {
				t.Fatalf("dataset N=%d with %d labels, %d pixel bytes and %d classes", d.N, len(d.Labels), len(d.Images), len(d.Classes))
			}
			for i, l := range d.Labels {
				if l < 0 || l >= NumClasses {
					t.Fatalf("label %d is %d", i, l)
				}
			}
		}
		dest := t.TempDir()
		if ExtractTarGz(path, dest) != nil {
			return // e.g. duplicate entries the reader skips
		}
		var dir string
		filepath.WalkDir(dest, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Name() == TrainFiles[0] && !e.IsDir() {
				dir = filepath.Dir(p)
			}
			return nil
		})
		ftrain, ftest, err := LoadCIFAR10(dir)
		if err != nil {
			t.Fatalf("the archive reads, but its unpacked folder %s does not: %v", dir, err)
		}
		sameData(t, "train", train, ftrain)
		sameData(t, "test", test, ftest)
	})
}
