//go:build cgo

package gpu

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/trainer-go/trainer/device"
)

// Graphs (device.Grapher): a capture is the driver's stream capture of
// everything the ops queue while f runs (kernels and cuBLAS's GEMMs on the
// one stream, cuBLAS on the workspace set at open), instantiated once. The
// ops that would wait, allocate or transfer refuse to run while a capture
// is under way (notCapturing), which fails the capture with their reason
// instead of invalidating it in the driver.

// errCapturing wraps what an op refused to do inside a capture.
var errCapturing = errors.New("not allowed while a graph is being captured")

// notCapturing is nil outside a capture, else an error naming what, which
// is also kept to fail the capture (whether or not the caller checks it).
func (b *Backend) notCapturing(what string) error {
	if !b.capturing {
		return nil
	}
	err := fmt.Errorf("gpu: %s: %w (a captured step must not wait, allocate or transfer)", what, errCapturing)
	b.keep(err)
	return err
}

// Capture records the ops f queues as a graph, or returns why it could not
// (nothing of f then runs, and the backend is as before).
func (b *Backend) Capture(f func()) (device.Graph, error) {
	if b.graphs != nil {
		return nil, b.graphs
	}
	if b.capturing {
		return nil, errors.New("gpu: Capture inside a capture")
	}
	if err := b.Sync(); err != nil {
		return nil, err
	}
	runtime.LockOSThread() // the driver wants the capture ended on the thread that began it
	defer runtime.UnlockOSThread()
	if err := b.d.BeginCapture(); err != nil {
		return nil, fmt.Errorf("capturing a graph: %w", err)
	}
	b.capturing, b.nodes = true, device.Launches{}
	defer func() { // when f panics
		if g, err := b.endCapture(); err == nil && g != nil {
			g.Destroy()
		}
	}()
	f()
	g, err := b.endCapture()
	if kept := b.err; kept != nil { // an op failed or refused inside the capture
		b.err = nil
		if g != nil {
			g.Destroy()
		}
		return nil, fmt.Errorf("capturing a graph: %w", kept)
	}
	if err != nil {
		return nil, fmt.Errorf("capturing a graph: %w", err)
	}
	b.liveGraphs++
	return &graph{b: b, g: g, nodes: b.nodes}, nil
}

// endCapture ends the capture under way, if any.
func (b *Backend) endCapture() (devGraph, error) {
	if !b.capturing {
		return nil, nil
	}
	b.capturing = false
	return b.d.EndCapture()
}

// graph is a captured graph of the backend.
type graph struct {
	b     *Backend
	g     devGraph
	nodes device.Launches
}

// Launch queues the graph on the stream.
func (g *graph) Launch() error {
	if g.g == nil || g.b.d == nil {
		return errors.New("gpu: launch of a closed graph")
	}
	if err := g.b.notCapturing("launching a graph"); err != nil {
		return err
	}
	g.b.count.Graphs++
	return g.g.Launch()
}

// Close destroys the graph; launches already queued still run. After the
// backend's Close it does nothing (the context went with it).
func (g *graph) Close() error {
	if g.g == nil {
		return nil
	}
	g.b.liveGraphs--
	if g.b.d == nil {
		g.g = nil
		return nil
	}
	err := g.g.Destroy()
	g.g = nil
	return err
}

// GraphNodes is what a graph of this backend holds: the kernel launches and
// GEMM calls recorded into it.
func (b *Backend) GraphNodes(g device.Graph) Launches {
	if gg, ok := g.(*graph); ok {
		return gg.nodes
	}
	return Launches{}
}

// ReadLater queues a copy of src[0:n] into one of a few pinned host slots
// (device.AsyncReader); the oldest slot is reused, so collect a read before
// queuing readSlots more.
func (b *Backend) ReadLater(src device.Buffer, n int) (device.PendingRead, error) {
	if n < 0 || n > device.MaxReadLater || 4*n > readSlotBytes {
		return nil, fmt.Errorf("gpu: ReadLater of %d values (at most %d)", n, device.MaxReadLater)
	}
	if err := b.notCapturing("reading to the host"); err != nil {
		return nil, err
	}
	s, err := b.span(src, device.F32, 0, n)
	if err != nil {
		return nil, err
	}
	i := b.reads % readSlots
	b.reads++
	b.slotGen[i] = b.reads
	if err := b.d.ReadAsync(i, s, 4*n); err != nil {
		return nil, err
	}
	return &pendingRead{b: b, slot: i, gen: b.reads, n: n}, nil
}

// pendingRead is a ReadLater copy.
type pendingRead struct {
	b         *Backend
	slot, gen int
	n         int
}

// Wait waits for the copy and returns the first error the device reported
// since the last wait or Sync.
func (p *pendingRead) Wait(dst []float32) error {
	b := p.b
	if b.slotGen[p.slot] != p.gen {
		return fmt.Errorf("gpu: a read was collected after %d newer ones reused its slot", readSlots)
	}
	raw, err := b.d.ReadWait(p.slot)
	b.keep(err)
	if err := b.err; err != nil {
		b.err = nil
		return err
	}
	for i := range p.n {
		dst[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
	}
	return nil
}
