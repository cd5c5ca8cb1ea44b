package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/trainer-go/trainer/data/image"
)

// CIFAR-10 geometry and record layout.
const (
	NumClasses = 10                        // labels are 0..NumClasses-1
	Channels   = 3                         // R, G, B planes
	Height     = 32                        // image rows
	Width      = 32                        // image columns
	ImageBytes = Channels * Height * Width // 3072 pixel bytes per image
	RecordSize = 1 + ImageBytes            // 3073: label byte + pixels
)

// File names inside a cifar-10-batches-bin folder.
const (
	TestFile = "test_batch.bin"
	MetaFile = "batches.meta.txt"
)

// TrainFiles are the training files of a cifar-10-batches-bin folder, in order.
var TrainFiles = [5]string{
	"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
	"data_batch_4.bin", "data_batch_5.bin",
}

// ClassNames are the standard CIFAR-10 class names, indexed by label. They
// are used when a folder has no batches.meta.txt.
var ClassNames = [NumClasses]string{
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
}

// Dataset is a set of CIFAR-10 images and labels held in memory.
type Dataset struct {
	Images     []uint8  // N*C*H*W, each image channel-major (as in the file)
	Labels     []int32  // N, in [0, NumClasses)
	N, C, H, W int      // image count and geometry (C=3, H=W=32)
	Classes    []string // class names, indexed by label

	// Skipped lists, for a dataset LoadFolder read, the files under its
	// root that were not loaded, and why (nil otherwise; SplitValidation
	// does not carry it over).
	Skipped []SkippedFile
}

// ImageSize returns the number of bytes of one image, C*H*W.
func (d *Dataset) ImageSize() int { return d.C * d.H * d.W }

// Image returns the pixels of image i (a sub-slice of Images, not a copy).
func (d *Dataset) Image(i int) []uint8 {
	s := d.ImageSize()
	return d.Images[i*s : (i+1)*s : (i+1)*s]
}

// fileError is a one-line error about a file or folder, "path: message",
// the same type as data/image's errors. It unwraps to the underlying error,
// if any, so errors.Is(err, fs.ErrNotExist) works.
type fileError = image.Error

// fileErr is a *fileError.
func fileErr(path, msg string, err error) *fileError {
	return &fileError{Path: path, Msg: msg, Err: err}
}

const redownloadHint = "(truncated download? delete the folder and run again)"

// ReadCIFAR10File reads one CIFAR-10 binary file. Class names come from
// batches.meta.txt next to it when present.
func ReadCIFAR10File(path string) (*Dataset, error) {
	return ReadCIFAR10Files(path)
}

// ReadCIFAR10Files reads CIFAR-10 binary files and concatenates them in
// order. All files are checked (existence, size) before anything is
// allocated, and the result is allocated once and filled in place. Class
// names come from batches.meta.txt in the folder of the first file when
// present, else [ClassNames].
func ReadCIFAR10Files(paths ...string) (*Dataset, error) {
	if len(paths) == 0 {
		return nil, errors.New("data: ReadCIFAR10Files needs at least one file")
	}
	counts := make([]int, len(paths))
	total := 0
	for i, p := range paths {
		n, err := recordCount(p)
		if err != nil {
			return nil, err
		}
		counts[i] = n
		total += n
	}
	classes, err := readClassNames(filepath.Dir(paths[0]))
	if err != nil {
		return nil, err
	}
	d := &Dataset{
		Images:  make([]uint8, total*ImageBytes),
		Labels:  make([]int32, total),
		N:       total,
		C:       Channels,
		H:       Height,
		W:       Width,
		Classes: classes,
	}
	buf := make([]byte, chunkRecords*RecordSize)
	at := 0
	for i, p := range paths {
		if err := readRecords(p, counts[i], d.Images[at*ImageBytes:(at+counts[i])*ImageBytes], d.Labels[at:at+counts[i]], buf); err != nil {
			return nil, err
		}
		at += counts[i]
	}
	return d, nil
}

// chunkRecords is how many records are read per system call (about 770 KiB).
const chunkRecords = 256

// recordCount stats path and returns how many records it holds.
func recordCount(path string) (int, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, fileErr(path, "file not found (a cifar-10-batches-bin folder holds data_batch_1.bin..data_batch_5.bin and test_batch.bin)", err)
	case err != nil:
		return 0, fileErr(path, "cannot read: "+errText(err), err)
	case fi.IsDir():
		return 0, fileErr(path, "is a folder, expected a CIFAR-10 .bin file", nil)
	case fi.Size() == 0:
		return 0, fileErr(path, "file is empty, expected 3073-byte CIFAR-10 records "+redownloadHint, nil)
	case fi.Size()%RecordSize != 0:
		return 0, fileErr(path, fmt.Sprintf("size %d bytes is not a whole number of %d-byte CIFAR-10 records %s", fi.Size(), RecordSize, redownloadHint), nil)
	}
	return int(fi.Size() / RecordSize), nil
}

// readRecords reads exactly n records of path into images (n*ImageBytes) and
// labels (n), using buf as scratch space.
func readRecords(path string, n int, images []uint8, labels []int32, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fileErr(path, "cannot open: "+errText(err), err)
	}
	defer f.Close()
	if err := fillRecords(f, path, n, images, labels, buf); err != nil {
		var fe *fileError
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return fileErr(path, "file shrank while being read (is something still writing it?)", err)
		case errors.As(err, &fe):
			return err
		}
		return fileErr(path, "read failed: "+errText(err), err)
	}
	var one [1]byte
	if m, _ := f.Read(one[:]); m != 0 {
		return fileErr(path, "file grew while being read (is something still writing it?)", nil)
	}
	return nil
}

// fillRecords reads exactly n records from r into images (n*ImageBytes)
// and labels (n), using buf as scratch space. A label outside 0-9 is a
// *fileError about what (the file's name); read errors are returned as they
// are (io.ErrUnexpectedEOF or io.EOF for a short stream).
func fillRecords(r io.Reader, what string, n int, images []uint8, labels []int32, buf []byte) error {
	for done := 0; done < n; {
		k := min(n-done, len(buf)/RecordSize)
		chunk := buf[:k*RecordSize]
		if _, err := io.ReadFull(r, chunk); err != nil {
			return err
		}
		for j := range k {
			rec := chunk[j*RecordSize : (j+1)*RecordSize]
			if rec[0] >= NumClasses {
				i := done + j
				return fileErr(what, fmt.Sprintf("record %d (byte offset %d) has label %d, CIFAR-10 labels are 0-9 (not a CIFAR-10 binary file, or a corrupted one)", i, int64(i)*RecordSize, rec[0]), nil)
			}
			labels[done+j] = int32(rec[0])
			copy(images[(done+j)*ImageBytes:(done+j+1)*ImageBytes], rec[1:])
		}
		done += k
	}
	return nil
}

// readClassNames reads dir/batches.meta.txt (one name per line, blank lines
// skipped) or returns the standard names if it does not exist.
func readClassNames(dir string) ([]string, error) {
	path := filepath.Join(dir, MetaFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return append([]string(nil), ClassNames[:]...), nil
	}
	if err != nil {
		return nil, fileErr(path, "cannot read class names: "+errText(err), err)
	}
	return parseClassNames(b, path)
}

// parseClassNames parses the contents of a batches.meta.txt (one name per
// line, blank lines skipped); path names it in errors.
func parseClassNames(b []byte, path string) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fileErr(path, "cannot read class names: "+errText(err), err)
	}
	if len(names) != NumClasses {
		return nil, fileErr(path, fmt.Sprintf("has %d class names, CIFAR-10 needs %d (one per line; delete the file to use the standard names)", len(names), NumClasses), nil)
	}
	return names, nil
}

// LoadCIFAR10 reads a cifar-10-batches-bin folder: data_batch_1.bin ..
// data_batch_5.bin as the training set and test_batch.bin as the test set.
// Every file is checked to exist and have a valid size before any is read.
//
// dir may also be the archive the folder comes in, cifar-10-binary.tar.gz
// as downloaded (or the .tar a browser may have decompressed it to): it is
// read in one pass without extracting anything, and gives the same
// datasets as its unpacked folder. The archive's entries must be files and
// folders with relative names and no ".." component, the six .bin files
// must sit in one folder (any name, usually cifar-10-batches-bin) once
// each, and a truncated or corrupt archive (the gzip checksum is checked)
// is an error. Loading from the archive briefly needs twice the training
// set's memory.
func LoadCIFAR10(dir string) (train, test *Dataset, err error) {
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().IsRegular() {
		return loadCIFAR10Archive(dir)
	}
	if err != nil || !fi.IsDir() {
		return nil, nil, missingDir(dir, err, "a cifar-10-batches-bin folder or "+ArchiveName)
	}
	trainPaths := make([]string, len(TrainFiles))
	for i, name := range TrainFiles {
		trainPaths[i] = filepath.Join(dir, name)
	}
	testPath := filepath.Join(dir, TestFile)
	all := append(append([]string(nil), trainPaths...), testPath)

	var missing []string
	for _, p := range all {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, filepath.Base(p))
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("missing %s; a cifar-10-batches-bin folder holds data_batch_1.bin..data_batch_5.bin and test_batch.bin", strings.Join(missing, ", "))
		nested := filepath.Join(dir, "cifar-10-batches-bin")
		archive := filepath.Join(dir, ArchiveName)
		if fi, err := os.Stat(nested); err == nil && fi.IsDir() {
			msg += "; did you mean " + nested + "?"
		} else if fi, err := os.Stat(archive); err == nil && fi.Mode().IsRegular() {
			msg += "; did you mean " + archive + "? (it is read as it is, no need to unpack it)"
		} else {
			msg += " (incomplete copy? unpack the archive again)"
		}
		return nil, nil, fileErr(dir, msg, fs.ErrNotExist)
	}
	for _, p := range all {
		if _, err := recordCount(p); err != nil {
			return nil, nil, err
		}
	}
	train, err = ReadCIFAR10Files(trainPaths...)
	if err != nil {
		return nil, nil, err
	}
	test, err = ReadCIFAR10File(testPath)
	if err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// errText returns err's message without a leading "op path: " that would
// repeat the path already at the start of our own message.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
