package dist

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trainer-go/trainer/device"
)

// EnvLibMPI names the MPI library to load instead of the default list.
const EnvLibMPI = "TRAINER_LIBMPI"

// EnvTimeout overrides how long a collective may wait for the other ranks
// (seconds) before the process gives up with an error.
const EnvTimeout = "TRAINER_DIST_TIMEOUT"

// DefaultTimeout is how long a collective waits for the other ranks: long
// enough for rank 0 to save a checkpoint while the others wait, short
// enough that a dead rank does not leave the job hanging for good.
const DefaultTimeout = 5 * time.Minute

// defaultMPINames are Open MPI's library names (4.x and 5.x share the soname).
var defaultMPINames = []string{"libmpi.so.40", "libmpi.so"}

// ErrNoCgo: MPI needs a cgo build.
var ErrNoCgo = errors.New("this binary was built without cgo (CGO_ENABLED=0), which MPI needs: rebuild with CGO_ENABLED=1")

// libNames is $TRAINER_LIBMPI alone when set, else the default names.
func libNames() []string {
	if p := os.Getenv(EnvLibMPI); p != "" {
		return []string{p}
	}
	return defaultMPINames
}

// LoadError says why the MPI library could not be loaded.
type LoadError struct {
	Tried   []string // the names given to dlopen
	Reasons []string // dlopen's message for each
	FromEnv bool     // the name came from TRAINER_LIBMPI
	Path    string   // the library opened, when a symbol was missing
	Symbol  string   // the missing symbol
}

func (e *LoadError) Error() string {
	if e.Symbol != "" {
		return fmt.Sprintf("%s is not Open MPI's library: it lacks %s (MPICH and other MPIs are not supported yet): install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) or point %s at its libmpi.so.40",
			e.Path, e.Symbol, EnvLibMPI)
	}
	if e.FromEnv {
		return fmt.Sprintf("%s=%s names no loadable library (%s): point it at Open MPI's libmpi.so.40 or unset it",
			EnvLibMPI, strings.Join(e.Tried, ""), strings.Join(e.Reasons, "; "))
	}
	return fmt.Sprintf("Open MPI's library was not found (tried %s): install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev; Fedora: dnf install openmpi; or load your cluster's openmpi module) or set %s to the path of libmpi.so.40",
		strings.Join(e.Tried, ", "), EnvLibMPI)
}

// Comm is this process's place in an MPI world. Every MPI call runs on one
// OS thread of its own (MPI is initialised for MPI_THREAD_FUNNELED, and
// goroutines move between threads), and every collective waits at most
// the timeout: a rank that died or hangs makes the others fail with an
// error instead of waiting for ever.
type Comm struct {
	Launch  Launch
	Path    string // the MPI library loaded
	Version string // its version line
	rank    int
	size    int
	timeout time.Duration
	calls   chan func()
	broken  atomic.Bool // a call timed out: the MPI thread is stuck in it
	closed  bool
}

// OpenMPI loads Open MPI, initialises it and checks that its world is the
// launcher's. timeout 0 means $TRAINER_DIST_TIMEOUT or DefaultTimeout.
func OpenMPI(l Launch, timeout time.Duration) (*Comm, error) {
	if !haveCgo {
		return nil, fmt.Errorf("data-parallel training on %d processes: %w", l.Size, ErrNoCgo)
	}
	path, version, err := LoadMPI()
	if err != nil {
		return nil, err
	}
	if timeout == 0 {
		if timeout, err = TimeoutFromEnv(); err != nil {
			return nil, err
		}
	}
	// Open MPI would install its own handlers for SIGSEGV, SIGBUS, SIGFPE
	// and SIGABRT (a backtrace printer), replacing the Go runtime's, which
	// turn a nil dereference into a panic. Keep Go's unless asked.
	if _, set := os.LookupEnv("OMPI_MCA_opal_signal"); !set {
		os.Setenv("OMPI_MCA_opal_signal", "")
	}
	c := &Comm{Launch: l, Path: path, Version: version, timeout: timeout, calls: make(chan func())}
	go c.serve()
	err = c.do("MPI_Init_thread", time.Hour, func() error {
		var err error
		c.rank, c.size, err = mpiInit()
		return err
	})
	if err != nil {
		return nil, err
	}
	if c.rank != l.Rank || c.size != l.Size {
		return nil, fmt.Errorf("MPI says this is rank %d of %d, the launcher's environment (%s) says rank %d of %d: start trainer with Open MPI's own mpirun (%s)",
			c.rank, c.size, l.Vars, l.Rank, l.Size, path)
	}
	return c, nil
}

// TimeoutFromEnv is $TRAINER_DIST_TIMEOUT, or DefaultTimeout when unset.
func TimeoutFromEnv() (time.Duration, error) {
	v, ok := os.LookupEnv(EnvTimeout)
	if !ok || v == "" {
		return DefaultTimeout, nil
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || !(s > 0) {
		return 0, fmt.Errorf("%s=%q: want a number of seconds above 0", EnvTimeout, v)
	}
	return time.Duration(s * float64(time.Second)), nil
}

// serve runs the MPI calls on one locked OS thread.
func (c *Comm) serve() {
	runtime.LockOSThread()
	for f := range c.calls {
		f()
	}
}

// TimeoutError is a collective that did not finish in time.
type TimeoutError struct {
	Call    string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s did not complete within %s: another rank has died or stopped answering (its log says why); giving up (%s sets the limit in seconds)",
		e.Call, e.Timeout, EnvTimeout)
}

// do runs f on the MPI thread and waits for it, at most timeout.
func (c *Comm) do(what string, timeout time.Duration, f func() error) error {
	if c.broken.Load() {
		return fmt.Errorf("%s: an earlier MPI call never returned", what)
	}
	done := make(chan error, 1)
	c.calls <- func() { done <- f() }
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		c.broken.Store(true)
		return &TimeoutError{Call: what, Timeout: timeout}
	}
}

// Rank is this process's rank.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of ranks.
func (c *Comm) Size() int { return c.size }

// Describe is one line about the communicator for the log.
func (c *Comm) Describe() string {
	return fmt.Sprintf("MPI rank %d of %d (%s, %s)", c.rank, c.size, c.Version, c.Path)
}

// maxCount is the most elements one MPI call moves: its count is a C int.
// A variable so that a test can make it small.
var maxCount = 1 << 30

// chunks calls f on consecutive pieces of n elements, at most maxCount each.
func chunks(n int, f func(off, cnt int) error) error {
	for off := 0; off < n; off += maxCount {
		if err := f(off, min(maxCount, n-off)); err != nil {
			return err
		}
	}
	return nil
}

// AllReduceF32 replaces x on every rank by the element-wise sum (or max)
// over the ranks.
func (c *Comm) AllReduceF32(x []float32, max bool) error {
	return c.do("MPI_Allreduce", c.timeout, func() error {
		return chunks(len(x), func(off, cnt int) error { return mpiAllreduceF32(x[off:off+cnt], max) })
	})
}

// AllReduceF64 is AllReduceF32 for float64.
func (c *Comm) AllReduceF64(x []float64, max bool) error {
	return c.do("MPI_Allreduce", c.timeout, func() error {
		return chunks(len(x), func(off, cnt int) error { return mpiAllreduceF64(x[off:off+cnt], max) })
	})
}

// BroadcastF32 replaces x on every rank by rank 0's.
func (c *Comm) BroadcastF32(x []float32) error {
	return c.do("MPI_Bcast", c.timeout, func() error {
		return chunks(len(x), func(off, cnt int) error { return mpiBcastF32(x[off:off+cnt], 0) })
	})
}

// BroadcastBytes replaces x on every rank by rank 0's (a small message: NCCL's unique id).
func (c *Comm) BroadcastBytes(x []byte) error {
	return c.do("MPI_Bcast", c.timeout, func() error { return mpiBcastBytes(x, 0) })
}

// Abort ends every rank of the job with code (MPI_Abort): a rank that
// failed on its own takes the others down with it instead of leaving them
// waiting in the next collective. Where the MPI thread is stuck (a
// timeout) it exits this process only.
func (c *Comm) Abort(code int) {
	if !c.broken.Load() {
		c.do("MPI_Abort", 10*time.Second, func() error { mpiAbort(code); return nil })
	}
	os.Exit(code)
}

// Close finalises MPI (every rank must call it, after its last collective).
func (c *Comm) Close() error {
	if c.closed || c.broken.Load() {
		return nil
	}
	c.closed = true
	return c.do("MPI_Finalize", c.timeout, mpiFinalize)
}

// Reducer is the communicator's collectives on buffers of b, staged through
// host memory (MPI reads and writes host memory; on the CPU backend the two
// copies are a small part of a step).
func (c *Comm) Reducer(b device.Backend) *HostReducer {
	return &HostReducer{c: c, b: b}
}

// HostReducer runs a Comm's collectives on a backend's buffers through a
// host copy. It implements model.Reducer.
type HostReducer struct {
	c    *Comm
	b    device.Backend
	host []float32
}

func (r *HostReducer) scratch(n int) []float32 {
	if cap(r.host) < n {
		r.host = make([]float32, n)
	}
	return r.host[:n]
}

// Rank is this process's rank.
func (r *HostReducer) Rank() int { return r.c.rank }

// Size is the number of ranks.
func (r *HostReducer) Size() int { return r.c.size }

// AllReduce replaces buf[:n] on every rank by the sum over the ranks, or
// with avg by the sum divided by the number of ranks.
func (r *HostReducer) AllReduce(buf device.Buffer, n int, avg bool) error {
	h := r.scratch(n)
	if err := r.b.DownloadF32(buf, 0, h); err != nil {
		return err
	}
	if err := r.c.AllReduceF32(h, false); err != nil {
		return err
	}
	if avg {
		w := float32(r.c.size)
		for i := range h {
			h[i] /= w
		}
	}
	return r.b.UploadF32(buf, 0, h)
}

// Broadcast replaces buf[:n] on every rank by rank 0's.
func (r *HostReducer) Broadcast(buf device.Buffer, n int) error {
	h := r.scratch(n)
	if err := r.b.DownloadF32(buf, 0, h); err != nil {
		return err
	}
	if err := r.c.BroadcastF32(h); err != nil {
		return err
	}
	return r.b.UploadF32(buf, 0, h)
}

// MaxHost replaces x on every rank by the element-wise maximum over the ranks.
func (r *HostReducer) MaxHost(x []float64) error { return r.c.AllReduceF64(x, true) }
