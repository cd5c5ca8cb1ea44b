package data

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Limits of ExtractTarGz, variables so tests can lower them.
var (
	maxExtractBytes   int64 = 1 << 30 // total bytes of regular files
	maxExtractEntries       = 10000   // archive entries
)

// ExtractTarGz safely unpacks the gzip-compressed tar archive archivePath
// into destDir, which must exist. Only regular files and directories are
// accepted; names must be relative with no ".." component. Absolute paths,
// symbolic and hard links, devices, FIFOs and anything that would resolve
// outside destDir are rejected, existing files are never overwritten, and
// the total unpacked size is capped at 1 GiB. Files are created 0644 and
// folders 0755. On error destDir may hold part of the archive; the caller
// should remove what it does not want.
func ExtractTarGz(archivePath, destDir string) error {
	return extractTarGz(context.Background(), archivePath, destDir)
}

func extractTarGz(ctx context.Context, archivePath, destDir string) error {
	f, err := os.Open(archivePath)
	if err != nil {
		return fileErr(archivePath, "cannot open archive: "+errText(err), err)
	}
	defer f.Close()
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return fileErr(destDir, "cannot open destination folder: "+errText(err), err)
	}
	defer root.Close()

	bad := func(format string, args ...any) error {
		return fileErr(archivePath, fmt.Sprintf(format, args...), nil)
	}
	gz, err := gzip.NewReader(&ctxReader{ctx, f})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return bad("not a gzip archive: %v", err)
	}
	defer gz.Close()
	// Cap the decompressed stream too, so skipped or header-only data cannot
	// inflate without bound.
	stream := &capReader{r: gz, left: maxExtractBytes + 64<<20}
	tr := tar.NewReader(stream)

	x := &extractor{ctx: ctx, root: root, tr: tr, destDir: destDir, bad: bad}
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errCapExceeded) {
				return bad("archive unpacks to more than %d bytes; refusing (archive bomb?)", maxExtractBytes)
			}
			return bad("corrupt archive: %v", err)
		}
		if entries >= maxExtractEntries {
			return bad("archive has more than %d entries; refusing (archive bomb?)", maxExtractEntries)
		}
		if err := x.entry(hdr); err != nil {
			return err
		}
	}
}

// extractor writes the entries of one archive.
type extractor struct {
	ctx     context.Context
	root    *os.Root
	tr      *tar.Reader
	destDir string
	bad     func(format string, args ...any) error
	written int64 // bytes of files written so far
}

// entry extracts the entry hdr describes.
func (x *extractor) entry(hdr *tar.Header) error {
	bad := x.bad
	name, err := safeName(hdr.Name)
	if err != nil {
		return bad("entry %q: %v; refusing to extract", hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if name == "." {
			return nil
		}
		if err := x.root.MkdirAll(name, 0o755); err != nil {
			return bad("entry %q: cannot create folder: %v", hdr.Name, errText(err))
		}
		return nil
	case tar.TypeReg, tar.TypeRegA:
		return x.file(hdr, name)
	case tar.TypeXGlobalHeader:
		return nil // PAX global metadata, nothing to write
	case tar.TypeSymlink:
		return bad("entry %q is a symbolic link (to %q); refusing to extract links", hdr.Name, hdr.Linkname)
	case tar.TypeLink:
		return bad("entry %q is a hard link (to %q); refusing to extract links", hdr.Name, hdr.Linkname)
	default:
		return bad("entry %q has type %q; only regular files and folders are extracted", hdr.Name, string(hdr.Typeflag))
	}
}

// file extracts a regular file entry to the cleaned name.
func (x *extractor) file(hdr *tar.Header, name string) error {
	bad := x.bad
	if name == "." {
		return bad("entry %q: a file cannot be named after the destination itself", hdr.Name)
	}
	if hdr.Size < 0 || hdr.Size > maxExtractBytes-x.written {
		return bad("archive unpacks to more than %d bytes; refusing (archive bomb?)", maxExtractBytes)
	}
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return bad("entry %q: cannot create folder: %v", hdr.Name, errText(err))
		}
	}
	out, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return bad("entry %q: file already exists in %s (duplicate entry, or destination not empty); refusing to overwrite", hdr.Name, x.destDir)
		}
		return bad("entry %q: cannot create file: %v", hdr.Name, errText(err))
	}
	n, err := io.Copy(out, x.tr)
	x.written += n
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if x.ctx.Err() != nil {
			return x.ctx.Err()
		}
		if errors.Is(err, errCapExceeded) {
			return bad("archive unpacks to more than %d bytes; refusing (archive bomb?)", maxExtractBytes)
		}
		return bad("entry %q: %v", hdr.Name, errText(err))
	}
	return nil
}

// safeName checks a tar entry name and returns it cleaned, slash-separated
// and relative ("." for the destination itself).
func safeName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(name, "/") || strings.ContainsAny(name, `\:`) || strings.ContainsRune(name, 0) {
		return "", errors.New("absolute path or unsafe characters")
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", errors.New(`path has a ".." component`)
		}
	}
	return path.Clean(name), nil
}

var errCapExceeded = errors.New("size cap exceeded")

// capReader returns errCapExceeded once more than left bytes were read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Allow a stream of exactly the cap; fail only on more data.
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, errCapExceeded
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
