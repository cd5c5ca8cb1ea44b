package data

import (
	"archive/tar"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts a server answering every request with body (or status, if
// not 200) and counts requests.
func serve(t *testing.T, status int, body []byte) (url string, requests *atomic.Int32) {
	t.Helper()
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if status != http.StatusOK {
			http.Error(w, "nope", status)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/cifar-10-binary.tar.gz", requests
}

// checkOnly fails unless dir holds exactly the given names.
func checkOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	if got := listDir(t, dir); !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// byHandParts are what every download error must say.
func byHandParts(url string) []string {
	return []string{url, "to get the data by hand", "tar xzf cifar-10-binary.tar.gz", "the dataset folder should be path/to/cifar-10-batches-bin"}
}

func TestEnsureCIFAR10Downloads(t *testing.T) {
	archive := tarGz(t, validEntries()...)
	url, requests := serve(t, http.StatusOK, archive)
	cache := filepath.Join(t.TempDir(), "cache")
	var calls []int64
	var lastTotal int64
	o := FetchOptions{URL: url, SHA256: strings.ToUpper(sha(archive)), CacheDir: cache,
		Progress: func(done, total int64) { calls = append(calls, done); lastTotal = total }}

	dir, err := EnsureCIFAR10(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, BatchesFolder) {
		t.Errorf("dir = %s", dir)
	}
	train, test, err := LoadCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 10 || test.N != 3 || train.Classes[0] != "a" {
		t.Errorf("train %d test %d classes %v", train.N, test.N, train.Classes)
	}
	if len(calls) < 2 || calls[0] != 0 || calls[len(calls)-1] != int64(len(archive)) || lastTotal != int64(len(archive)) {
		t.Errorf("progress calls %v total %d, want 0 ... %d", calls, lastTotal, len(archive))
	}
	checkOnly(t, cache, BatchesFolder) // no temp files left

	dir2, err := EnsureCIFAR10(context.Background(), o)
	if err != nil || dir2 != dir {
		t.Fatalf("second call: %s, %v", dir2, err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (second call must use the cache)", n)
	}
}

func TestEnsureCIFAR10ChecksumMismatch(t *testing.T) {
	archive := tarGz(t, validEntries()...)
	url, _ := serve(t, http.StatusOK, archive)
	cache := t.TempDir()
	want := strings.Repeat("ab", 32)
	_, err := EnsureCIFAR10(context.Background(), FetchOptions{URL: url, SHA256: want, CacheDir: cache})
	checkErr(t, err, append(byHandParts(url), "SHA-256 is "+sha(archive), "expected "+want)...)
	checkOnly(t, cache)

	_, err = EnsureCIFAR10(context.Background(), FetchOptions{URL: url, SHA256: "xyz", CacheDir: cache})
	checkErr(t, err, "not a hex SHA-256")
}

func TestEnsureCIFAR10DefaultChecksum(t *testing.T) {
	// Without SHA256 the official checksum applies, which our archive fails;
	// the error then also gives the published MD5.
	archive := tarGz(t, validEntries()...)
	url, _ := serve(t, http.StatusOK, archive)
	_, err := EnsureCIFAR10(context.Background(), FetchOptions{URL: url, CacheDir: t.TempDir()})
	checkErr(t, err, "expected "+CIFAR10SHA256, "MD5 "+CIFAR10MD5)
}

func TestEnsureCIFAR10HTTPErrors(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			url, _ := serve(t, status, nil)
			cache := t.TempDir()
			_, err := EnsureCIFAR10(context.Background(), FetchOptions{URL: url, SHA256: CIFAR10SHA256, CacheDir: cache})
			checkErr(t, err, append(byHandParts(url), "HTTP "+strconv.Itoa(status))...)
			checkOnly(t, cache)
		})
	}
}

func TestEnsureCIFAR10ConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/cifar-10-binary.tar.gz"
	l.Close()
	cache := t.TempDir()
	_, err = EnsureCIFAR10(context.Background(), FetchOptions{URL: url, CacheDir: cache})
	checkErr(t, err, append(byHandParts(url), "refused")...)
	checkOnly(t, cache)
}

// ensureBadArchive serves entries and expects EnsureCIFAR10 to fail with an
// error containing parts, leaving nothing in the cache nor beside it.
func ensureBadArchive(t *testing.T, entries []tarEntry, parts ...string) {
	t.Helper()
	archive := tarGz(t, entries...)
	url, _ := serve(t, http.StatusOK, archive)
	top := t.TempDir()
	cache := filepath.Join(top, "cache")
	_, err := EnsureCIFAR10(context.Background(), FetchOptions{URL: url, SHA256: sha(archive), CacheDir: cache})
	checkErr(t, err, append(byHandParts(url), parts...)...)
	checkOnly(t, cache)
	checkOnly(t, top, "cache")
}

func TestEnsureCIFAR10RejectsTraversal(t *testing.T) {
	ensureBadArchive(t, validEntries(tarEntry{name: "../evil", typeflag: tar.TypeReg, body: []byte("pwned")}), `"../evil"`, `".."`)
}

func TestEnsureCIFAR10RejectsSymlink(t *testing.T) {
	ensureBadArchive(t, validEntries(tarEntry{name: BatchesFolder + "/link", typeflag: tar.TypeSymlink, link: "../../.."}), "symbolic link")
}

func TestEnsureCIFAR10ArchiveWithoutFolder(t *testing.T) {
	ensureBadArchive(t, []tarEntry{{name: "other/x.bin", typeflag: tar.TypeReg, body: []byte("x")}}, "no complete cifar-10-batches-bin folder", "data_batch_1.bin missing")
}

// blockingServer sends half of a large body, reports that on sent, then
// stalls until the client goes away.
func blockingServer(t *testing.T) (url string, sent chan struct{}) {
	t.Helper()
	sent = make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(2<<20))
		w.Write(make([]byte, 1<<20))
		w.(http.Flusher).Flush()
		sent <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/cifar-10-binary.tar.gz", sent
}

func TestEnsureCIFAR10CancelMidDownload(t *testing.T) {
	url, sent := blockingServer(t)
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sawBytes atomic.Bool
	go func() {
		<-sent
		time.Sleep(50 * time.Millisecond) // let the client receive some of it
		cancel()
	}()
	_, err := EnsureCIFAR10(ctx, FetchOptions{URL: url, CacheDir: cache,
		Progress: func(done, total int64) { sawBytes.Store(true) }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	checkErr(t, err, url, "cancelled")
	checkOnly(t, cache)
	if !sawBytes.Load() {
		t.Errorf("download never started")
	}

	// An already cancelled context does nothing.
	_, err = EnsureCIFAR10(ctx, FetchOptions{URL: url, CacheDir: cache})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
	checkOnly(t, cache)
}

func TestEnsureCIFAR10Stall(t *testing.T) {
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = 300 * time.Millisecond
	url, _ := blockingServer(t)
	cache := t.TempDir()
	_, err := EnsureCIFAR10(context.Background(), FetchOptions{URL: url, CacheDir: cache})
	checkErr(t, err, append(byHandParts(url), "no data received for 300ms")...)
	checkOnly(t, cache)
}

func TestEnsureCIFAR10ReplacesIncomplete(t *testing.T) {
	archive := tarGz(t, validEntries()...)
	url, requests := serve(t, http.StatusOK, archive)
	cache := t.TempDir()
	target := filepath.Join(cache, BatchesFolder)
	files := makeBatchesDir(t, target, 1, 1)
	// Looks almost complete, but one file is truncated.
	writeFile(t, filepath.Join(target, TestFile), files[TestFile][:100])
	writeFile(t, filepath.Join(target, "stray.txt"), []byte("x"))
	dir, err := EnsureCIFAR10(context.Background(), FetchOptions{URL: url, SHA256: sha(archive), CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 1 {
		t.Errorf("incomplete folder was not replaced by a download")
	}
	if _, _, err := LoadCIFAR10(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stray.txt")); err == nil {
		t.Errorf("old folder still in place")
	}
	checkOnly(t, cache, BatchesFolder)
}

func TestEnsureCIFAR10Concurrent(t *testing.T) {
	archive := tarGz(t, validEntries()...)
	url, _ := serve(t, http.StatusOK, archive)
	cache := t.TempDir()
	o := FetchOptions{URL: url, SHA256: sha(archive), CacheDir: cache}
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Go(func() { dirs[i], errs[i] = EnsureCIFAR10(context.Background(), o) })
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != filepath.Join(cache, BatchesFolder) {
			t.Errorf("caller %d: %s, %v", i, dirs[i], errs[i])
		}
	}
	if _, _, err := LoadCIFAR10(dirs[0]); err != nil {
		t.Fatal(err)
	}
	checkOnly(t, cache, BatchesFolder)
}

func TestEnsureCIFAR10RemovesStaleTemps(t *testing.T) {
	archive := tarGz(t, validEntries()...)
	url, _ := serve(t, http.StatusOK, archive)
	cache := t.TempDir()
	old := filepath.Join(cache, "cifar-10-binary-1.tar.gz.partial")
	young := filepath.Join(cache, "cifar-10-extract-2.partial")
	writeFile(t, old, []byte("x"))
	writeFile(t, filepath.Join(young, "f"), []byte("x"))
	long := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCIFAR10(context.Background(), FetchOptions{URL: url, SHA256: sha(archive), CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	// The young one may belong to a running process and must stay.
	checkOnly(t, cache, BatchesFolder, "cifar-10-extract-2.partial")
}

func TestInstallKeepsExistingComplete(t *testing.T) {
	// Another process renamed a complete folder into place between our check
	// and our rename: theirs stays, ours is left for the caller to delete.
	cache := t.TempDir()
	target := filepath.Join(cache, BatchesFolder)
	makeBatchesDir(t, target, 1, 1)
	writeFile(t, filepath.Join(target, "theirs"), nil)
	src := filepath.Join(cache, "tmp", BatchesFolder)
	makeBatchesDir(t, src, 2, 2)
	dir, err := install(src, target, cache)
	if err != nil || dir != target {
		t.Fatalf("install = %s, %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(target, "theirs")); err != nil {
		t.Errorf("existing complete folder was replaced")
	}
	checkOnly(t, cache, BatchesFolder, "tmp")
}
