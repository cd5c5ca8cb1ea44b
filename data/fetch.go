package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The official CIFAR-10 binary archive (170,052,171 bytes) and its SHA-256. The
// MD5 published on the CIFAR-10 page is [CIFAR10MD5].
const (
	CIFAR10URL    = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
	CIFAR10SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
	CIFAR10MD5    = "c32a1d4ab5d03f1284b67883e8d87530"
)

// BatchesFolder is the folder the CIFAR-10 binary archive unpacks to.
const BatchesFolder = "cifar-10-batches-bin"

// FetchOptions configures EnsureCIFAR10. The zero value fetches the official
// archive into the user cache folder.
type FetchOptions struct {
	URL, SHA256 string // archive location and its hex SHA-256; default CIFAR10URL, CIFAR10SHA256
	CacheDir    string // default: os.UserCacheDir()/trainer

	// Client defaults to a client like http.DefaultClient (proxy settings
	// from the environment) with connect, TLS and response-header timeouts
	// and a 30-minute overall limit. Whatever the client, a download that
	// receives no data for 2 minutes is abandoned.
	Client *http.Client

	// Progress, if not nil, is called with the bytes received so far and
	// the total (-1 when the server does not say): once when the download
	// starts, at most four times a second during it, and once at the end.
	// It is not called when the cached folder is used.
	Progress func(done, total int64)
}

// Tunables, variables so tests can lower them.
var (
	stallTimeout      = 2 * time.Minute        // abandon a download idle this long
	progressEvery     = 250 * time.Millisecond // min interval between Progress calls
	maxDownloadBytes  = int64(1 << 30)         // refuse bigger downloads
	staleTempAge      = 24 * time.Hour         // leftover *.partial older than this are removed
	errDownloadStalls = errors.New("stalled")
)

var defaultClient = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t, Timeout: 30 * time.Minute}
})

// EnsureCIFAR10 returns the path of a ready cifar-10-batches-bin folder in the
// cache, downloading, verifying and extracting it first if needed.
//
// A folder counts as ready when it holds all six .bin files, each a whole
// number of records. Otherwise the archive is downloaded to a temporary
// "*.partial" file in the cache folder while being hashed, checked against
// the expected SHA-256, unpacked with the same rules as [ExtractTarGz] into a
// temporary folder in the cache folder, and its cifar-10-batches-bin folder is
// renamed into place. If a complete folder appeared meanwhile (another
// process), that one is kept; an incomplete folder in the way (not one of
// ours, which appear atomically) is moved aside and deleted. Temporary files are removed on every exit,
// including cancellation of ctx; leftovers of killed runs older than a day
// are removed on the next run.
func EnsureCIFAR10(ctx context.Context, o FetchOptions) (string, error) {
	src := o.URL
	if src == "" {
		src = CIFAR10URL
	}
	want := strings.ToLower(o.SHA256)
	if want == "" {
		want = CIFAR10SHA256
	}
	if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("data: FetchOptions.SHA256 %q is not a hex SHA-256 (64 hex digits)", o.SHA256)
	}
	cache := o.CacheDir
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", &LocationError{Problem: fmt.Sprintf("no cache folder to download CIFAR-10 into (%v)", err), Want: "a cifar-10-batches-bin folder", Err: err}
		}
		cache = filepath.Join(base, "trainer")
	}
	target := filepath.Join(cache, BatchesFolder)
	if incompleteReason(target) == "" {
		return target, nil
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("download of %s cancelled: %w", src, err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", byHandError(fileErr(cache, "cannot create cache folder: "+errText(err)+"; "+byHand(src, false), err), cifarFolder)
	}
	removeStale(cache)

	archive, err := download(ctx, o, fetchSpec{src: src, want: want, dir: cache, pattern: "cifar-10-binary-*.tar.gz.partial",
		hashName: "SHA-256", newHash: sha256.New, byHand: byHand(src, false), mismatchHint: byHand(src, want == CIFAR10SHA256), folder: cifarFolder})
	if err != nil {
		return "", err
	}
	defer os.Remove(archive)

	tmp, err := os.MkdirTemp(cache, "cifar-10-extract-*.partial")
	if err != nil {
		return "", fileErr(cache, "cannot create a temporary folder: "+errText(err), err)
	}
	defer os.RemoveAll(tmp)
	if err := extractTarGz(ctx, archive, tmp); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("unpacking %s cancelled: %w", src, ctx.Err())
		}
		return "", byHandError(fmt.Errorf("unpacking archive from %s: %w; %s", src, err, byHand(src, false)), cifarFolder)
	}
	extracted := filepath.Join(tmp, BatchesFolder)
	if why := incompleteReason(extracted); why != "" {
		return "", byHandError(fmt.Errorf("archive from %s has no complete %s folder (%s); %s", src, BatchesFolder, why, byHand(src, false)), cifarFolder)
	}
	return install(extracted, target, cache)
}

// incompleteReason returns "" if dir holds all six .bin files with valid
// sizes, else what is wrong.
func incompleteReason(dir string) string {
	for _, name := range append(TrainFiles[:], TestFile) {
		fi, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err != nil:
			return name + " missing"
		case !fi.Mode().IsRegular() || fi.Size() == 0 || fi.Size()%RecordSize != 0:
			return name + " has a bad size"
		}
	}
	return ""
}

// install renames the verified folder src to target. If target exists and is
// complete (another process won the race) it is kept; if it exists and is
// incomplete it is moved aside and removed.
func install(src, target, cache string) (string, error) {
	var lastErr error
	for range 3 {
		err := os.Rename(src, target)
		if err == nil {
			return target, nil
		}
		lastErr = err
		if incompleteReason(target) == "" {
			return target, nil // someone else installed a complete copy; keep it
		}
		if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// An incomplete folder (not made by us: ours appear atomically) is in
		// the way. Move it aside in one step, then retry.
		aside, err := os.MkdirTemp(cache, BatchesFolder+".old-*.partial")
		if err != nil {
			return "", fileErr(cache, "cannot create a temporary folder: "+errText(err), err)
		}
		defer os.RemoveAll(aside)
		if err := os.Rename(target, filepath.Join(aside, "old")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fileErr(target, "incomplete folder in the way and cannot move it ("+errText(err)+"); delete it and run again", err)
		}
	}
	return "", fileErr(target, "cannot move the extracted folder into place: "+errText(lastErr), lastErr)
}

// fetchSpec is one verified download: where from, where to, and what the
// file's checksum must be.
type fetchSpec struct {
	src, want    string           // URL and expected hex digest
	dir, pattern string           // temporary file: os.CreateTemp(dir, pattern)
	hashName     string           // "SHA-256", "MD5"
	newHash      func() hash.Hash // the digest to compute while downloading
	byHand       string           // how to get the file by hand, appended to errors
	mismatchHint string           // the same, for a checksum mismatch
	folder       string           // the folder to use after getting the data by hand
}

// download fetches s.src into a temporary file in s.dir, hashing as it
// goes, and returns the file's path only when its digest is s.want. On any
// failure (HTTP error, stall, cancel, size cap, checksum) the temporary file
// is removed and the error says how to get the data by hand.
func download(parent context.Context, o FetchOptions, s fetchSpec) (_ string, err error) {
	src, want := s.src, s.want
	client := o.Client
	if client == nil {
		client = defaultClient()
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return "", fmt.Errorf("bad download URL %q: %v", src, err)
	}
	f, err := os.CreateTemp(s.dir, s.pattern)
	if err != nil {
		return "", byHandError(fileErr(s.dir, "cannot create a temporary file: "+errText(err)+"; "+s.byHand, err), s.folder)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	fail := func(what error) error {
		if parent.Err() != nil {
			return fmt.Errorf("download of %s cancelled: %w", src, parent.Err())
		}
		if errors.Is(context.Cause(ctx), errDownloadStalls) {
			return byHandError(fmt.Errorf("download %s: no data received for %v; %s", src, stallTimeout, s.byHand), s.folder)
		}
		var ue *url.Error
		if errors.As(what, &ue) {
			what = ue.Err
		}
		return byHandError(fmt.Errorf("download %s: %w; %s", src, what, s.byHand), s.folder)
	}

	stall := time.AfterFunc(stallTimeout, func() { cancel(errDownloadStalls) })
	defer stall.Stop()
	resp, err := client.Do(req)
	if err != nil {
		return "", fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fail(fmt.Errorf("server answered HTTP %s", resp.Status))
	}
	if resp.ContentLength > maxDownloadBytes {
		return "", fail(fmt.Errorf("server announces %d bytes, more than the %d allowed", resp.ContentLength, maxDownloadBytes))
	}

	h := s.newHash()
	pw := &progressWriter{fn: o.Progress, total: resp.ContentLength, stall: stall, last: time.Now()}
	if pw.fn != nil {
		pw.fn(0, pw.total)
	}
	n, err := io.Copy(io.MultiWriter(f, h, pw), io.LimitReader(resp.Body, maxDownloadBytes+1))
	if err == nil && n > maxDownloadBytes {
		err = fmt.Errorf("more than the %d bytes allowed", maxDownloadBytes)
	}
	if err != nil {
		return "", fail(err)
	}
	if pw.fn != nil {
		pw.fn(n, pw.total)
	}
	if err := f.Close(); err != nil {
		return "", fileErr(f.Name(), "cannot write download: "+errText(err), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", byHandError(fmt.Errorf("downloaded %s (%d bytes) but its %s is %s, expected %s (corrupted or changed download; deleted it); %s", src, n, s.hashName, got, want, s.mismatchHint), s.folder)
	}
	return f.Name(), nil
}

// cifarFolder is the folder the data got by hand is in.
const cifarFolder = "path/to/" + BatchesFolder

// byHand says how to get the data without EnsureCIFAR10.
func byHand(src string, withMD5 bool) string {
	check := ""
	if withMD5 {
		check = " (MD5 " + CIFAR10MD5 + ")"
	}
	name := "the archive"
	if u, err := url.Parse(src); err == nil && u.Path != "" && !strings.HasSuffix(u.Path, "/") {
		name = path.Base(u.Path)
	}
	return fmt.Sprintf("to get the data by hand, download %s%s, run `tar xzf %s`", src, check, name)
}

// progressWriter counts bytes, pushes back the stall timer and calls fn at
// most every progressEvery.
type progressWriter struct {
	fn    func(done, total int64)
	total int64
	done  int64
	last  time.Time
	stall *time.Timer
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.stall.Reset(stallTimeout)
	if p.fn != nil {
		if now := time.Now(); now.Sub(p.last) >= progressEvery {
			p.fn(p.done, p.total)
			p.last = now
		}
	}
	return len(b), nil
}

// removeStale deletes leftovers of killed runs ("*.partial" in cache) that
// are older than staleTempAge; younger ones may belong to a running process.
func removeStale(cache string) {
	matches, _ := filepath.Glob(filepath.Join(cache, "*.partial"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			os.RemoveAll(m)
		}
	}
}
