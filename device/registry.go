package device

import (
	"fmt"
	"github.com/trainer-go/trainer/internal/pool"
	"sync"
)

// Options configure a backend when it is opened.
type Options struct {
	Threads int        // CPU worker goroutines; 0 means one per core (ignored when Pool is set)
	Pool    *pool.Pool // the process's worker pool to run CPU ops on (nil: the backend makes its own of Threads)
	// Precision is the GEMMs' arithmetic (see Precision; the zero value
	// is float32). The CPU backend emulates TF32 by rounding the operands
	// of every GEMM; bfloat16 needs no emulation there, the model's BF16
	// buffers hold bfloat16 values.
	Precision Precision
	// Index is the GPU to use, among those visible (CUDA_VISIBLE_DEVICES):
	// a data-parallel rank's local rank. 0: the first.
	Index int
	// Graphs says whether the backend offers graph capture (Caps.Graphs):
	// with GraphsOn a backend that cannot refuses to open, saying why.
	Graphs GraphMode
}

// Native is what a GPU backend offers a collective library (NCCL) that
// works on its memory in its stream: the device, the stream's handle, a
// buffer's address, and a way to run a call with the backend's CUDA context
// current on the calling OS thread.
type Native interface {
	DeviceIndex() int
	StreamHandle() uintptr
	Pointer(b Buffer) uintptr
	WithContext(f func() error) error
}

// Factory opens a backend, or says in words a user can act on why it cannot.
type Factory func(Options) (Backend, error)

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes a backend available under name. Backends register in init.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[name] = f
}

// Open opens the named backend. "auto" tries "gpu" and falls back to "cpu";
// then fallback holds the reason the GPU was not used (nil when it was).
func Open(name string, o Options) (b Backend, fallback error, err error) {
	if name == "auto" {
		b, err := Open1("gpu", o)
		if err == nil {
			return b, nil, nil
		}
		cpu, cerr := Open1("cpu", o)
		return cpu, err, cerr
	}
	b, err = Open1(name, o)
	return b, nil, err
}

// Open1 opens exactly the named backend, with no fallback.
func Open1(name string, o Options) (Backend, error) {
	regMu.Lock()
	f, ok := registry[name]
	regMu.Unlock()
	if !ok {
		if name == "gpu" {
			return nil, fmt.Errorf("this build has no GPU backend")
		}
		return nil, fmt.Errorf("unknown device %q (choose auto, cpu or gpu)", name)
	}
	return f(o)
}
