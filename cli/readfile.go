package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// fileKind names what a non-regular file is, for errors.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}

// pathErrText is err's message without the path an *fs.PathError repeats.
func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// mib formats a byte count as MiB.
func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

// readRegularFile reads the regular file at path whole, refusing anything
// else (a directory, a FIFO that would block, a device such as /dev/zero
// that never ends) and any file over limit bytes. The file is checked before
// it is opened, opened without blocking, checked again through the open
// descriptor (it must still be a regular file, the same one), and read
// through a limit, so a file swapped or grown meanwhile cannot make it block
// or read without bound. Errors are one line and start with path.
func readRegularFile(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: file not found", path)
		}
		return nil, fmt.Errorf("%s: %s", path, pathErrText(err))
	}
	if err := checkRegular(path, st, limit); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot open: %s", path, pathErrText(err))
	}
	defer f.Close()
	fst, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, pathErrText(err))
	}
	if err := checkRegular(path, fst, limit); err != nil {
		return nil, err
	}
	if !os.SameFile(st, fst) {
		return nil, fmt.Errorf("%s: the file changed while it was opened", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read: %s", path, pathErrText(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than the %s limit", path, mib(limit))
	}
	return b, nil
}

// checkRegular refuses what is not a regular file of at most limit bytes.
func checkRegular(path string, st fs.FileInfo, limit int64) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %s, not a regular file", path, fileKind(st.Mode()))
	}
	if st.Size() > limit {
		return fmt.Errorf("%s: %d bytes, over the %s limit", path, st.Size(), mib(limit))
	}
	return nil
}
