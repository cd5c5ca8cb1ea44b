package data

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MNIST files and their source. The four files of a folder are read either
// raw ("train-images-idx3-ubyte") or gzip-compressed (with ".gz"), as
// distributed.
const (
	MNISTURL    = "https://storage.googleapis.com/cvdf-datasets/mnist/" // base URL of the four .gz files
	MNISTFolder = "mnist"                                               // folder EnsureMNIST fills in the cache folder

	MNISTTrainImages = "train-images-idx3-ubyte"
	MNISTTrainLabels = "train-labels-idx1-ubyte"
	MNISTTestImages  = "t10k-images-idx3-ubyte"
	MNISTTestLabels  = "t10k-labels-idx1-ubyte"
)

// mnistFiles are the four MNIST files (without .gz), in download order.
var mnistFiles = [4]string{MNISTTrainImages, MNISTTrainLabels, MNISTTestImages, MNISTTestLabels}

// mnistMD5 are the published MD5s of the official .gz files.
var mnistMD5 = map[string]string{
	MNISTTrainImages + ".gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
	MNISTTrainLabels + ".gz": "d53e105ee54ea40749a09fcbcd1e9432",
	MNISTTestImages + ".gz":  "9fb629c4189551a2d022fa330f9573f3",
	MNISTTestLabels + ".gz":  "ec29112dd5afa0611ce80d1b7f02629c",
}

// IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), dimension
// count.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// Limits of the IDX reader, variables so tests can lower them.
var (
	maxIDXBytes int64 = 1 << 30 // refuse files declaring more pixel/label bytes
	// maxDeflateRatio bounds how much a gzip file can expand (deflate's
	// limit is about 1032:1), so a tiny .gz cannot make us allocate a
	// header's worth of memory.
	maxDeflateRatio int64 = 1032
)

// ReadIDXImages reads an IDX file of unsigned-byte images (magic 0x00000803,
// dimensions n, h, w), raw or gzip-compressed (detected from its first two
// bytes). It returns the n*h*w pixels, row-major, image after image.
//
// The header is checked before anything is allocated: zero dimensions, a
// data size over 1 GiB, a raw file whose size is not exactly header + data,
// or a .gz file too small to hold that much data are refused. A .gz file
// must decompress to exactly header + data (a shorter stream is truncated,
// a longer one has trailing garbage).
func ReadIDXImages(path string) (images []uint8, n, h, w int, err error) {
	dims, body, err := readIDX(path, idxImagesMagic, "images", MNISTTrainImages)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	return body, dims[0], dims[1], dims[2], nil
}

// ReadIDXLabels reads an IDX file of unsigned-byte labels (magic
// 0x00000801, one dimension), raw or gzip-compressed, with the checks of
// [ReadIDXImages]. Labels must be 0-9 (MNIST's digits; Fashion-MNIST uses
// the same range).
func ReadIDXLabels(path string) ([]int32, error) {
	_, body, err := readIDX(path, idxLabelsMagic, "labels", MNISTTrainLabels)
	if err != nil {
		return nil, err
	}
	labels := make([]int32, len(body))
	for i, b := range body {
		if b > 9 {
			return nil, fileErr(path, fmt.Sprintf("label %d is %d, MNIST labels are 0-9 (not an MNIST label file, or a corrupted one)", i, b), nil)
		}
		labels[i] = int32(b)
	}
	return labels, nil
}

// readIDX reads an IDX file with the given magic (whose low byte is the
// number of dimensions) and returns its dimensions and data. what and
// example name the kind of file in error messages.
func readIDX(path string, magic uint32, what, example string) (dims []int, body []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fileErr(path, "file not found", err)
		}
		return nil, nil, fileErr(path, "cannot open: "+errText(err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fileErr(path, "cannot read: "+errText(err), err)
	}
	if fi.IsDir() {
		return nil, nil, fileErr(path, "is a folder, expected an IDX "+what+" file such as "+example, nil)
	}
	x := &idxReader{path: path, what: what, example: example, size: fi.Size(), kind: "file"}

	br := bufio.NewReaderSize(f, 64<<10)
	x.r = br
	if sig, _ := br.Peek(2); len(sig) == 2 && sig[0] == 0x1f && sig[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, x.bad("corrupt gzip file: %v %s", err, redownloadHint)
		}
		defer zr.Close()
		zr.Multistream(false)
		x.r, x.gz, x.kind = &gzipMembers{zr, br}, true, "decompressed data"
	}
	hdr, total, err := x.header(magic)
	if err != nil {
		return nil, nil, err
	}
	body, err = x.body(total)
	if err != nil {
		return nil, nil, err
	}
	dims = make([]int, len(hdr)/4)
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(hdr[4*i:]))
	}
	return dims, body, nil
}

// idxReader reads one IDX file, plain or gzipped.
type idxReader struct {
	path, what, example string
	size                int64     // of the file
	r                   io.Reader // the (decompressed) data
	gz                  bool
	kind                string // what r reads, in messages
	hdrLen              int
}

// bad is an error about the file.
func (x *idxReader) bad(format string, args ...any) error {
	return fileErr(x.path, fmt.Sprintf(format, args...), nil)
}

// short is the error for a header read that failed after m bytes.
func (x *idxReader) short(m int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return x.bad("%s is %d bytes, too short for the %d-byte header of an IDX %s file %s", x.kind, m, x.hdrLen, x.what, redownloadHint)
	}
	return x.bad("cannot read the IDX header: %v %s", errText(err), redownloadHint)
}

// header reads and checks the header; it returns the dimensions as read
// (4 big-endian bytes each) and the number of data bytes they declare.
func (x *idxReader) header(magic uint32) ([]byte, uint64, error) {
	ndims := int(magic & 0xff)
	x.hdrLen = 4 + 4*ndims
	hdr := make([]byte, x.hdrLen)
	if m, err := io.ReadFull(x.r, hdr[:4]); err != nil {
		return nil, 0, x.short(m, err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		msg := fmt.Sprintf("bad magic number 0x%08x, an IDX %s file (such as %s) starts with 0x%08x", got, x.what, x.example, magic)
		switch {
		case got == idxImagesMagic || got == idxLabelsMagic:
			msg += " (images and labels files mixed up?)"
		case got>>16 == 0x1f8b:
			msg += " (compressed twice? gunzip it)"
		}
		return nil, 0, x.bad("%s", msg)
	}
	if m, err := io.ReadFull(x.r, hdr[4:]); err != nil {
		return nil, 0, x.short(4+m, err)
	}
	total := uint64(1)
	for i := range ndims {
		d := uint64(binary.BigEndian.Uint32(hdr[4+4*i:]))
		if d == 0 {
			return nil, 0, x.bad("header has dimension %d equal to 0 %s", i, redownloadHint)
		}
		if total > uint64(maxIDXBytes)/d {
			return nil, 0, x.bad("header declares %s %s, more than the %d bytes allowed (not an MNIST file, or a corrupted one)", dimString(hdr[4:]), x.what, maxIDXBytes)
		}
		total *= d
	}
	switch {
	case !x.gz && x.size != int64(x.hdrLen)+int64(total):
		return nil, 0, x.bad("header declares %s (%d bytes of data) but the file holds %d bytes after the %d-byte header %s", dimString(hdr[4:]), total, x.size-int64(x.hdrLen), x.hdrLen, redownloadHint)
	case x.gz && int64(total)+int64(x.hdrLen) > x.size*maxDeflateRatio+1024:
		return nil, 0, x.bad("header declares %s (%d bytes of data), more than a %d-byte gzip file can hold %s", dimString(hdr[4:]), total, x.size, redownloadHint)
	}
	return hdr[4:], total, nil
}

// body reads the total bytes of data and checks that nothing follows.
func (x *idxReader) body(total uint64) ([]byte, error) {
	body := make([]byte, total)
	if m, err := io.ReadFull(x.r, body); err != nil {
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		switch {
		case eof && x.gz:
			return nil, x.bad("truncated: header declares %d bytes of data, the file decompresses to only %d %s", total, m, redownloadHint)
		case eof:
			return nil, x.bad("file shrank while being read (is something still writing it?)")
		case x.gz:
			return nil, x.bad("corrupt gzip data after %d bytes: %v %s", m, err, redownloadHint)
		default:
			return nil, x.bad("read failed: %s", errText(err))
		}
	}
	return body, x.end(total)
}

// end reads one byte more: it detects trailing data and, for gzip, makes
// the reader reach the end of the stream and check its CRC.
func (x *idxReader) end(total uint64) error {
	var one [1]byte
	switch m, err := x.r.Read(one[:]); {
	case m > 0 && x.gz:
		return x.bad("decompresses to more than the %d bytes its header declares (trailing garbage; not an IDX file, or a corrupted one)", int64(x.hdrLen)+int64(total))
	case m > 0:
		return x.bad("file grew while being read (is something still writing it?)")
	case errors.Is(err, io.ErrUnexpectedEOF) && x.gz:
		return x.bad("truncated: the gzip stream stops before its end %s", redownloadHint)
	case errors.Is(err, errGzipTrailer):
		return x.bad("has data after its gzip stream (trailing garbage; not an IDX file, or a corrupted one)")
	case err != nil && err != io.EOF && x.gz:
		return x.bad("corrupt gzip data at its end: %v %s", err, redownloadHint)
	case err != nil && err != io.EOF:
		return x.bad("read failed: %s", errText(err))
	}
	return nil
}

var errGzipTrailer = errors.New("data after the gzip stream")

// gzipMembers reads the members of a gzip stream one after the other, as
// gzip.Reader's multistream mode does, but fails with errGzipTrailer on
// data after a member that is not another member.
type gzipMembers struct {
	zr *gzip.Reader // in single-stream mode
	br *bufio.Reader
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if err != io.EOF || n > 0 {
			if err == io.EOF {
				err = nil // reported by the next call
			}
			return n, err
		}
		sig, _ := g.br.Peek(2)
		switch {
		case len(sig) == 0:
			return 0, io.EOF
		case len(sig) < 2 || sig[0] != 0x1f || sig[1] != 0x8b:
			return 0, errGzipTrailer
		}
		if err := g.zr.Reset(g.br); err != nil {
			return 0, err
		}
		g.zr.Multistream(false)
	}
}

// dimString formats IDX dimensions ("60000x28x28").
func dimString(b []byte) string {
	var parts []string
	for i := 0; i+4 <= len(b); i += 4 {
		parts = append(parts, strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[i:])), 10))
	}
	return strings.Join(parts, "x")
}

// mnistLayout says what an MNIST folder holds.
const mnistLayout = "an MNIST folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or with .gz"

// findMNISTFile returns the path of MNIST file name in dir, or "": the
// first of name, name.gz, and the same with a dot before "idx" (as some
// mirrors, Kaggle's among them, name them: "train-images.idx3-ubyte") that
// exists.
func findMNISTFile(dir, name string) string {
	for _, n := range mnistNames(name) {
		if p := filepath.Join(dir, n); fileExists(p) {
			return p
		}
	}
	return ""
}

// mnistNames are the names MNIST file name is accepted under, in order of
// preference.
func mnistNames(name string) []string {
	dotted := strings.Replace(name, "-idx", ".idx", 1)
	return []string{name, name + ".gz", dotted, dotted + ".gz"}
}

// fileExists says whether path names something (following links).
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// isMNISTFile says whether base is the name of one of the four MNIST files.
func isMNISTFile(base string) bool {
	for _, name := range mnistFiles {
		if slices.Contains(mnistNames(name), base) {
			return true
		}
	}
	return false
}

// LoadMNIST reads an MNIST folder: train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte,
// each either raw or gzip-compressed with a ".gz" suffix as downloaded (raw
// is used when both exist; the names with ".idx" instead of "-idx" of some
// mirrors are accepted too). dir may also be the path of one of the four
// files, for the folder it is in. It returns the 60,000 training and 10,000
// test images of the official files as datasets with C=1, H=W=28 (the size
// the files declare; train and test must agree) and classes "0".."9".
// Every file is checked to exist before any is read, and each images file
// must hold as many images as its labels file holds labels.
func LoadMNIST(dir string) (train, test *Dataset, err error) {
	fi, err := os.Stat(dir)
	if err == nil && !fi.IsDir() && isMNISTFile(filepath.Base(dir)) {
		dir = filepath.Dir(dir)
		fi, err = os.Stat(dir)
	}
	if err != nil || !fi.IsDir() {
		return nil, nil, missingDir(dir, err, "an MNIST folder (or one of its files)")
	}
	var paths [4]string
	var missing []string
	for i, name := range mnistFiles {
		if paths[i] = findMNISTFile(dir, name); paths[i] == "" {
			missing = append(missing, name+"[.gz]")
		}
	}
	if len(missing) > 0 {
		return nil, nil, fileErr(dir, fmt.Sprintf("missing %s; %s", strings.Join(missing, ", "), mnistLayout), fs.ErrNotExist)
	}
	train, err = readMNISTPair(paths[0], paths[1])
	if err != nil {
		return nil, nil, err
	}
	test, err = readMNISTPair(paths[2], paths[3])
	if err != nil {
		return nil, nil, err
	}
	if train.H != test.H || train.W != test.W {
		return nil, nil, fileErr(paths[2], fmt.Sprintf("images are %dx%d but %s holds %dx%d images; train and test must share one size", test.H, test.W, filepath.Base(paths[0]), train.H, train.W), nil)
	}
	return train, test, nil
}

// readMNISTPair reads an images file and its labels file into a Dataset.
func readMNISTPair(imagesPath, labelsPath string) (*Dataset, error) {
	// Labels first: small, and a mismatch is then found before the large
	// images file is decompressed.
	labels, err := ReadIDXLabels(labelsPath)
	if err != nil {
		return nil, err
	}
	images, n, h, w, err := ReadIDXImages(imagesPath)
	if err != nil {
		return nil, err
	}
	if n != len(labels) {
		return nil, fileErr(imagesPath, fmt.Sprintf("holds %d images but %s holds %d labels; the two must match (mixed-up or truncated files?)", n, filepath.Base(labelsPath), len(labels)), nil)
	}
	classes := make([]string, 10)
	for i := range classes {
		classes[i] = strconv.Itoa(i)
	}
	return &Dataset{Images: images, Labels: labels, N: n, C: 1, H: h, W: w, Classes: classes}, nil
}

// EnsureMNIST returns the path of a folder in the cache (by default
// os.UserCacheDir()/trainer/mnist) holding the four official MNIST .gz files,
// downloading those that are missing or damaged. It returns without network
// access when all four are present with the published MD5s.
//
// o.URL, if set, is the base URL the four file names are appended to
// (default [MNISTURL]; a missing trailing slash is added). o.SHA256 does not
// apply: MNIST is four files, each checked against its published MD5, and
// SHA256 is ignored. o.Progress is called for each file downloaded, from 0 to
// that file's size. o.CacheDir and o.Client work as for [EnsureCIFAR10].
//
// Each file is downloaded to a temporary "*.partial" file in the cache folder
// while being hashed and renamed into the mnist folder only once its MD5
// matches, so the folder never holds a partial or unverified file, and
// concurrent callers at worst download a file twice. On a mismatch, an HTTP
// error or cancellation of ctx the temporary file is deleted; files already
// verified stay. Errors name the URL and say how to get the files by hand.
func EnsureMNIST(ctx context.Context, o FetchOptions) (dir string, err error) {
	return ensureMNIST(ctx, o, mnistMD5)
}

// ensureMNIST is EnsureMNIST with the expected MD5 of each .gz file, so
// tests can serve their own files.
func ensureMNIST(ctx context.Context, o FetchOptions, sums map[string]string) (string, error) {
	base := o.URL
	if base == "" {
		base = MNISTURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if u, err := url.Parse(base); err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("data: bad MNIST base URL %q (want something like %s)", base, MNISTURL)
	}
	cache := o.CacheDir
	if cache == "" {
		b, err := os.UserCacheDir()
		if err != nil {
			return "", byHandError(fmt.Errorf("no cache folder to download MNIST into (%v); %s", err, mnistByHand(base, "")), mnistFolder)
		}
		cache = filepath.Join(b, "trainer")
	}
	target := filepath.Join(cache, MNISTFolder)

	var todo []string
	for _, name := range mnistFiles {
		gzName := name + ".gz"
		if md5File(filepath.Join(target, gzName)) != sums[gzName] {
			todo = append(todo, gzName)
		}
	}
	if len(todo) == 0 {
		return target, nil
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("download of MNIST from %s cancelled: %w", base, err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", byHandError(fileErr(cache, "cannot create cache folder: "+errText(err)+"; "+mnistByHand(base, target), err), mnistFolder)
	}
	removeStale(cache)
	for _, gzName := range todo {
		src := base + gzName
		hint := mnistByHand(base, target)
		tmp, err := download(ctx, o, fetchSpec{src: src, want: sums[gzName], dir: cache, pattern: "mnist-*.gz.partial",
			hashName: "MD5", newHash: md5.New, byHand: hint, mismatchHint: hint, folder: mnistFolder})
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			os.Remove(tmp)
			return "", fileErr(target, "cannot create folder: "+errText(err), err)
		}
		if err := os.Rename(tmp, filepath.Join(target, gzName)); err != nil {
			os.Remove(tmp)
			return "", fileErr(filepath.Join(target, gzName), "cannot move the download into place: "+errText(err), err)
		}
	}
	return target, nil
}

// md5File returns the hex MD5 of path, or "" if it cannot be read.
func md5File(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mnistFolder is the folder the data got by hand is in.
const mnistFolder = "that folder"

// mnistByHand says how to get the MNIST files without EnsureMNIST.
func mnistByHand(base, target string) string {
	where := "put them in one folder"
	if target != "" {
		where = "put them in " + target + " (or any folder)"
	}
	return fmt.Sprintf("to get the data by hand, download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from %s (or a mirror; MD5s %s, %s, %s, %s), %s",
		base, mnistMD5[MNISTTrainImages+".gz"], mnistMD5[MNISTTrainLabels+".gz"], mnistMD5[MNISTTestImages+".gz"], mnistMD5[MNISTTestLabels+".gz"], where)
}
