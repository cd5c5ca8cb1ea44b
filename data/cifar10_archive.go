package data

// Reading CIFAR-10 straight from the archive users download: the tar is
// streamed once, the six .bin files are parsed as they go by, and nothing
// is written to disk, so there is no extracted copy to go stale, to fill a
// disk or to be left half-written by Ctrl-C. The archive itself is only
// read.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// ArchiveName is the file name of the official CIFAR-10 binary archive.
const ArchiveName = "cifar-10-binary.tar.gz"

// archiveSniffBytes is how much of a file is peeked at to tell its kind:
// enough for the tar magic at offset 257.
const archiveSniffBytes = 512

// cifarArchive reads one CIFAR-10 archive.
type cifarArchive struct {
	path   string
	files  map[string]*recordSet // by base name, once read
	dir    string                // the archive folder the .bin files are in
	dirSet bool
	names  []string // from batches.meta.txt, if present
	total  int64    // record bytes read so far
	most   int64    // the most data the file can hold, decompressed
	buf    []byte   // read buffer
}

// recordSet is the records of one .bin file.
type recordSet struct {
	images []uint8
	labels []int32
}

// bad is an error about the archive.
func (a *cifarArchive) bad(format string, args ...any) error {
	return fileErr(a.path, fmt.Sprintf(format, args...), nil)
}

// loadCIFAR10Archive reads the CIFAR-10 binary distribution from the
// archive at path (see [LoadCIFAR10]).
func loadCIFAR10Archive(p string) (train, test *Dataset, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fileErr(p, "cannot open archive: "+errText(err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fileErr(p, "cannot read archive: "+errText(err), err)
	}
	a := &cifarArchive{path: p, files: map[string]*recordSet{}, most: fi.Size(), buf: make([]byte, chunkRecords*RecordSize)}
	br := bufio.NewReaderSize(f, 64<<10)
	sig, _ := br.Peek(archiveSniffBytes)
	var stream io.Reader = br
	switch {
	case len(sig) >= 2 && sig[0] == 0x1f && sig[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, a.readErr(err)
		}
		defer gz.Close()
		stream = gz
		a.most *= maxDeflateRatio
	case !isTar(sig):
		return nil, nil, a.notArchive(sig)
	}
	// Cap the decompressed stream so a small archive cannot expand without
	// bound (entries the reader skips are decompressed too).
	capped := &capReader{r: stream, left: maxExtractBytes + 64<<20}
	if err := a.readAll(tar.NewReader(capped)); err != nil {
		return nil, nil, err
	}
	// Read to the end of the stream: the gzip trailer's checksum is only
	// verified there, so corruption after the last wanted file is caught.
	if _, err := io.Copy(io.Discard, capped); err != nil {
		return nil, nil, a.readErr(err)
	}
	return a.datasets()
}

// isTar says whether sig (the first bytes of a file) starts a tar archive:
// POSIX ustar or GNU tar, whose magic is at offset 257.
func isTar(sig []byte) bool {
	return len(sig) >= 263 && (string(sig[257:263]) == "ustar\x00" || string(sig[257:263]) == "ustar ")
}

// notArchive is the error for a file that is not a .tar.gz or .tar.
func (a *cifarArchive) notArchive(sig []byte) error {
	switch {
	case strings.HasSuffix(a.path, ".bin"):
		return &LocationError{Root: a.path, Path: a.path, Problem: "is a single .bin file", Want: "the " + BatchesFolder + " folder holding all six .bin files, or " + ArchiveName}
	case bytes.HasPrefix(sig, []byte("PK\x03\x04")):
		return &LocationError{Root: a.path, Path: a.path, Problem: "is a zip archive, which is not read directly; unzip it", Want: "the " + BatchesFolder + " folder inside, or " + ArchiveName}
	}
	return &LocationError{Root: a.path, Path: a.path, Problem: "is neither a folder nor a .tar.gz or .tar archive", Want: "a " + BatchesFolder + " folder or " + ArchiveName, Download: true}
}

// readErr words an error met while reading the archive's data.
func (a *cifarArchive) readErr(err error) error {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return a.bad("archive ends early (truncated download?); download %s again", ArchiveName)
	case errors.Is(err, errCapExceeded):
		return a.bad("archive unpacks to more than %d bytes, far more than CIFAR-10; refusing (not the CIFAR-10 archive?)", maxExtractBytes)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.As(err, &ce), errors.Is(err, tar.ErrHeader):
		return a.bad("corrupt archive (%v); download %s again", err, ArchiveName)
	}
	return a.bad("cannot read archive: %v", errText(err))
}

// readAll reads the tar stream's entries, keeping the CIFAR-10 files.
func (a *cifarArchive) readAll(tr *tar.Reader) error {
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return a.readErr(err)
		}
		if entries >= maxExtractEntries {
			return a.bad("archive has more than %d entries, far more than CIFAR-10's; refusing (not the CIFAR-10 archive?)", maxExtractEntries)
		}
		if err := a.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// otherVersions are the top folders of the other CIFAR archives, and what
// they are.
var otherVersions = map[string]string{
	"cifar-10-batches-py":  "the Python version of CIFAR-10 (pickled batches)",
	"cifar-10-batches-mat": "the MATLAB version of CIFAR-10",
	"cifar-100-binary":     "CIFAR-100",
	"cifar-100-python":     "CIFAR-100",
	"cifar-100-matlab":     "CIFAR-100",
}

// entry handles one archive entry.
func (a *cifarArchive) entry(hdr *tar.Header, tr *tar.Reader) error {
	name, err := safeName(hdr.Name)
	if err != nil {
		return a.bad("entry %q: %v; refusing to read this archive (the CIFAR-10 archive has none such)", hdr.Name, err)
	}
	if what, ok := otherVersions[strings.SplitN(name, "/", 2)[0]]; ok {
		return a.bad("is %s; trainer reads the binary version, %s from %s (or its %s folder)", what, ArchiveName, CIFAR10URL, BatchesFolder)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeRegA:
	case tar.TypeSymlink, tar.TypeLink:
		return a.bad("entry %q is a link (to %q); the CIFAR-10 archive holds only files and folders (not the CIFAR-10 archive?)", hdr.Name, hdr.Linkname)
	default:
		return a.bad("entry %q has type %q; the CIFAR-10 archive holds only files and folders (not the CIFAR-10 archive?)", hdr.Name, string(hdr.Typeflag))
	}
	base := path.Base(name)
	isBin := base == TestFile || slices.Contains(TrainFiles[:], base)
	if !isBin && base != MetaFile {
		return nil // readme.html and anything else: skipped by tr.Next
	}
	if err := a.sameFolder(hdr.Name, path.Dir(name)); err != nil {
		return err
	}
	if (base == MetaFile && a.names != nil) || a.files[base] != nil {
		return a.bad("holds %s twice (second: entry %q); not the CIFAR-10 archive?", base, hdr.Name)
	}
	if base == MetaFile {
		return a.meta(hdr, tr)
	}
	return a.records(hdr, tr, base)
}

// sameFolder checks that the CIFAR-10 files all come from one folder of
// the archive.
func (a *cifarArchive) sameFolder(entry, dir string) error {
	if !a.dirSet {
		a.dir, a.dirSet = dir, true
		return nil
	}
	if dir != a.dir {
		return a.bad("holds CIFAR-10 files in two folders, %q and %q (entry %q); not the CIFAR-10 archive?", a.dir, dir, entry)
	}
	return nil
}

// meta reads batches.meta.txt.
func (a *cifarArchive) meta(hdr *tar.Header, tr *tar.Reader) error {
	what := a.path + ": " + hdr.Name
	if hdr.Size > 64<<10 {
		return fileErr(what, fmt.Sprintf("is %d bytes, too big for ten class names", hdr.Size), nil)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return a.readErr(err)
	}
	a.names, err = parseClassNames(b, what)
	return err
}

// records reads the .bin file the entry hdr holds.
func (a *cifarArchive) records(hdr *tar.Header, tr *tar.Reader, base string) error {
	what := a.path + ": " + hdr.Name
	switch {
	case hdr.Size == 0:
		return fileErr(what, "file is empty, expected 3073-byte CIFAR-10 records "+archiveHint, nil)
	case hdr.Size%RecordSize != 0:
		return fileErr(what, fmt.Sprintf("size %d bytes is not a whole number of %d-byte CIFAR-10 records %s", hdr.Size, RecordSize, archiveHint), nil)
	case hdr.Size > maxExtractBytes-a.total:
		return a.bad("CIFAR-10 files of more than %d bytes in all; refusing (not the CIFAR-10 archive?)", maxExtractBytes)
	case hdr.Size > a.most:
		// More than the file can hold: refused before allocating for it.
		return a.readErr(io.ErrUnexpectedEOF)
	}
	a.total += hdr.Size
	n := int(hdr.Size / RecordSize)
	rs := &recordSet{images: make([]uint8, n*ImageBytes), labels: make([]int32, n)}
	if err := fillRecords(tr, what, n, rs.images, rs.labels, a.buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return a.readErr(io.ErrUnexpectedEOF)
		}
		var fe *fileError
		if errors.As(err, &fe) && fe.Err == nil {
			return err // a bad label, worded by fillRecords
		}
		return a.readErr(err)
	}
	a.files[base] = rs
	return nil
}

const archiveHint = "(not the CIFAR-10 archive, or a damaged one?)"

// datasets checks that every file was found and assembles the training set
// (data_batch_1..5, in that order, whatever the archive's order) and the
// test set.
func (a *cifarArchive) datasets() (train, test *Dataset, err error) {
	var missing []string
	for _, name := range append(TrainFiles[:], TestFile) {
		if a.files[name] == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == len(TrainFiles)+1 {
		return nil, nil, a.bad("holds no CIFAR-10 .bin files; expected %s from %s, holding %s/data_batch_1.bin..data_batch_5.bin and test_batch.bin", ArchiveName, CIFAR10URL, BatchesFolder)
	}
	if len(missing) > 0 {
		return nil, nil, a.bad("archive lacks %s; download %s again", strings.Join(missing, ", "), ArchiveName)
	}
	classes := a.names
	if classes == nil {
		classes = slices.Clone(ClassNames[:])
	}
	sets := make([]*recordSet, len(TrainFiles))
	for i, name := range TrainFiles {
		sets[i] = a.files[name]
	}
	train = concatRecords(sets, classes)
	test = concatRecords([]*recordSet{a.files[TestFile]}, slices.Clone(classes))
	return train, test, nil
}

// concatRecords makes one dataset of record sets, in order.
func concatRecords(sets []*recordSet, classes []string) *Dataset {
	if len(sets) == 1 {
		s := sets[0]
		return &Dataset{Images: s.images, Labels: s.labels, N: len(s.labels), C: Channels, H: Height, W: Width, Classes: classes}
	}
	d := &Dataset{C: Channels, H: Height, W: Width, Classes: classes}
	for _, s := range sets {
		d.N += len(s.labels)
	}
	d.Images = make([]uint8, 0, d.N*ImageBytes)
	d.Labels = make([]int32, 0, d.N)
	for _, s := range sets {
		d.Images = append(d.Images, s.images...)
		d.Labels = append(d.Labels, s.labels...)
		s.images, s.labels = nil, nil // let the collector have them
	}
	return d
}
