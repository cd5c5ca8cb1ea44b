//go:build unix

package run

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockOut takes an exclusive flock on <out>.lock, writes this process's PID
// into it and returns the function that releases it (and removes the
// file). A lock that another process holds is an error naming its PID and
// the lock file. The kernel releases a flock when its holder dies, so a
// lock file left by a killed run does not block.
func lockOut(out string) (release func(), err error) {
	path := out + ".lock"
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			return nil, fmt.Errorf("--out %s: cannot create the lock file: %w", out, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			b, _ := io.ReadAll(io.LimitReader(f, 32))
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &LockedError{Out: out, Lock: path, PID: holderPID(b)}
			}
			return nil, fmt.Errorf("--out %s: locking %s: %w", out, path, err)
		}
		// The previous holder removes the file as it releases it: a lock on
		// a file no longer at path locks nothing, so take it again.
		fst, ferr := f.Stat()
		pst, perr := os.Stat(path)
		if ferr != nil || perr != nil || !os.SameFile(fst, pst) {
			f.Close()
			continue
		}
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		return func() {
			os.Remove(path) // while still holding the lock
			f.Close()
		}, nil
	}
}

// holderPID is the PID written in a lock file, or 0.
func holderPID(b []byte) int {
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid < 1 {
		return 0
	}
	return pid
}
