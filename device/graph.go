package device

import "fmt"

// CUDA graphs, as a capability. A backend whose Caps().Graphs is set
// implements Grapher: Capture records the ops f queues, without running
// them, as a Graph that Launch then queues again as one unit, as often as
// needed. Each recorded op keeps the arguments it was called with (shapes,
// buffers, and scalars such as a learning rate or a step number), so a
// caller replaying a graph keeps what changes from one launch to the next
// in buffers that the ops read when they run (the *At ops of StepOps), and
// between launches changes those buffers, not the arguments.
//
// Inside f no op may wait for the device, allocate, free or transfer host
// data (Sync, Alloc, Free, Upload*, Download*): the capture then fails
// with an error and nothing of it runs. A failed capture leaves the
// backend as it was, so the caller can run the same ops one by one.

// GraphMode is the --cuda-graphs setting, given to a backend when it is
// opened (Options.Graphs): a speed setting, never stored with a model.
type GraphMode int

// The graph modes.
const (
	GraphsAuto GraphMode = iota // graphs where the backend supports them
	GraphsOn                    // graphs, or an error when opening a backend that has none
	GraphsOff                   // never
)

// ParseGraphMode reads a --cuda-graphs value.
func ParseGraphMode(s string) (GraphMode, error) {
	switch s {
	case "", "auto":
		return GraphsAuto, nil
	case "on":
		return GraphsOn, nil
	case "off":
		return GraphsOff, nil
	}
	return 0, fmt.Errorf("--cuda-graphs %q: want auto, on or off", s)
}

func (m GraphMode) String() string {
	switch m {
	case GraphsAuto:
		return "auto"
	case GraphsOn:
		return "on"
	case GraphsOff:
		return "off"
	}
	return fmt.Sprintf("graphmode(%d)", int(m))
}

// Graph is a captured sequence of ops.
type Graph interface {
	// Launch queues the whole sequence again, reading the buffers as they
	// are when it runs. Like an op, it does not wait for the device.
	Launch() error
	// Close releases the graph (after the launches already queued).
	Close() error
}

// Grapher is implemented by a backend that can capture graphs; use it only
// where Caps().Graphs is set.
type Grapher interface {
	// Capture runs f, recording the ops it queues instead of running them.
	Capture(f func()) (Graph, error)
}

// Launches counts the work a backend has handed its device: kernel
// launches, GEMM calls (a GEMM library may launch more than one kernel for
// one) and graph launches. Ops recorded into a graph are not counted as
// queued; Capture's graph counts them as its nodes.
type Launches struct {
	Kernels int // kernel launches (cuLaunchKernel)
	Gemms   int // GEMM library calls (cublasSgemm)
	Graphs  int // graph launches (cuGraphLaunch)
}

// Sub is the launches between an earlier reading o and l.
func (l Launches) Sub(o Launches) Launches {
	return Launches{Kernels: l.Kernels - o.Kernels, Gemms: l.Gemms - o.Gemms, Graphs: l.Graphs - o.Graphs}
}

// Calls is the number of calls into the driver and the GEMM library that
// queued the work: what a host pays per launch.
func (l Launches) Calls() int { return l.Kernels + l.Gemms + l.Graphs }

// LaunchCounter is implemented by a backend that counts its launches.
type LaunchCounter interface {
	// Launches is what has been queued since the backend was opened.
	Launches() Launches
	// GraphNodes is the kernel launches and GEMM calls g holds (a graph
	// of this backend).
	GraphNodes(g Graph) Launches
}

// AsyncReader is implemented by an asynchronous backend that can copy a
// few float32 to the host without waiting for the queued work: the copy is
// queued like an op, and the values are collected later.
type AsyncReader interface {
	// ReadLater queues a copy of src[0:n] (n at most MaxReadLater).
	ReadLater(src Buffer, n int) (PendingRead, error)
}

// MaxReadLater is the most values one ReadLater copies.
const MaxReadLater = 16

// PendingRead is a copy queued by ReadLater.
type PendingRead interface {
	// Wait waits for the copy (and so for the work queued before it) and
	// puts the values in dst[0:n].
	Wait(dst []float32) error
}
