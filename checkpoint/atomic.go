package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// WriteFileAtomic writes data to a temporary file beside path, fsyncs it,
// renames it over path and fsyncs the folder: a reader (or a process killed
// meanwhile) sees the old file or the new one, never a part. Temporary files
// that writers killed long ago left behind are removed.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	f, tmp, err := createTemp(path)
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	removeStaleTemps(path)
	return nil
}

// createTemp creates a new temporary file beside path, named
// .<name>.tmp<random>. Unlike os.CreateTemp (mode 0600) it asks for 0666,
// so the kernel applies the umask and the file renamed into place gets the
// mode os.WriteFile would give it (0644 under the usual umask 022). Reading
// the umask with syscall.Umask would have to set it, which races with other
// threads creating files.
func createTemp(path string) (*os.File, string, error) {
	prefix := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	for range 100 {
		tmp := prefix + strconv.FormatUint(rand.Uint64()%1e10, 10)
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, tmp, err
	}
	return nil, "", fmt.Errorf("no free temporary file name beside it")
}

// staleTemp is how old a leftover temporary file of a killed writer must be
// before a later save removes it (a younger one may belong to a writer still
// at work).
const staleTemp = 10 * time.Minute

// removeStaleTemps deletes temporary files of path that a process killed
// mid-save left behind. They are never read, only untidy.
func removeStaleTemps(path string) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp*"))
	for _, f := range old {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) > staleTemp {
			os.Remove(f)
		}
	}
}
