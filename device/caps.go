package device

import "fmt"

// Caps says what a backend can do. Callers branch on capabilities, never on
// a backend's name or on type assertions, so a new backend only has to say
// what it offers.
type Caps struct {
	// HostMemory: buffers live in host memory. HostU8/HostI32 then wrap the
	// caller's slices without a copy, and reading a result costs nothing.
	HostMemory bool
	// Async: ops are queued and run later; Download and Sync wait for them.
	// On a synchronous backend a result can be read after every op for free.
	Async bool
	// LazyInit: the first use of each op pays one-time costs (module
	// loading, library set-up), so a warm-up pass before timing pays off.
	LazyInit bool
	// PinnedMemory: host transfers go through page-locked memory (DMA).
	PinnedMemory bool
	// Graphs: a step can be captured and replayed as a graph.
	Graphs bool
	// BF16: bfloat16 storage and arithmetic are available.
	BF16 bool
	// Precision is the precision the backend was opened with
	// (Options.Precision). Under PrecisionBF16 the model hands the GEMMs
	// bfloat16 operands (BF16 buffers).
	Precision Precision
	// DeviceMemory is the total memory of the device in bytes, 0 when the
	// backend uses host memory.
	DeviceMemory uint64
	// MaxElems is the most elements one op may index in a buffer or count
	// as work, 0 for no limit. The GPU kernels index with C ints
	// (kernels.MaxElems, just under 2^31); the im2col matrices are exempt
	// (the conv kernels address them in 64 bits). model.Network.Build
	// refuses a batch that would pass it.
	MaxElems int
}

// OutOfMemoryError is returned by Alloc (and what wraps it) when the
// backend has too little memory for a request. Check for it with errors.As.
// It speaks of bytes, not of flags: the caller that knows which setting
// sized the request turns it into advice.
type OutOfMemoryError struct {
	Device    string // "GPU" or "CPU"
	What      string // what was being allocated
	Requested uint64 // bytes asked for
	Free      uint64 // bytes free when it failed (0 if unknown)
	Total     uint64 // bytes of the device (0 if unknown)
	Err       error  // the underlying error, if any
}

func (e *OutOfMemoryError) Error() string {
	s := fmt.Sprintf("out of %s memory allocating %s (%.1f MiB)", e.Device, e.What, mib(e.Requested))
	if e.Total > 0 {
		s += fmt.Sprintf(": %.1f MiB free of %.1f MiB", mib(e.Free), mib(e.Total))
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap is the underlying error.
func (e *OutOfMemoryError) Unwrap() error { return e.Err }

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
