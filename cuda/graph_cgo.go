//go:build cgo

package cuda

/*
#include <stdlib.h>
#include "api.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// GraphSupport loads the driver and cuBLAS if needed and says whether they
// can capture and launch CUDA graphs: nil, or an error naming what is
// missing and what to do.
func GraphSupport() error {
	lib, err := Load()
	if err != nil {
		return err
	}
	return graphSupport(lib.DriverPath, drv.missing, lib.BlasPath, blas.missing)
}

// GraphInstantiate names the driver function graphs are instantiated with:
// cuGraphInstantiateWithFlags, or cuGraphInstantiate_v2 on a driver older
// than CUDA 11.4 ("" when the driver is not loaded).
func GraphInstantiate() string {
	if _, err := LoadDriver(); err != nil {
		return ""
	}
	return instantiateEntry(drv.missing)
}

// errNoGraphs is returned by the graph calls when the entry points are missing.
func errNoGraphs() error {
	if err := GraphSupport(); err != nil {
		return err
	}
	return errors.New("cuda: the graph entry points are not loaded")
}

// captureModeGlobal is CU_STREAM_CAPTURE_MODE_GLOBAL.
const captureModeGlobal = 0

// Graph is a captured graph of stream work (a CUgraph).
type Graph struct {
	ctx *Context
	h   C.CUgraph
}

// GraphExec is an instantiated graph (a CUgraphExec), launched as one unit.
type GraphExec struct {
	ctx *Context
	h   C.CUgraphExec
}

// BeginCapture starts recording the work queued on s into a graph instead
// of running it, in CU_STREAM_CAPTURE_MODE_GLOBAL: while the capture lasts,
// a call that could wait for the device or allocate (a synchronisation, a
// copy from pageable memory) fails and invalidates the capture. EndCapture
// must be called from the same OS thread: lock the goroutine to its thread
// (runtime.LockOSThread) around both.
func (s *Stream) BeginCapture() error {
	if C.tr_cug.cuStreamBeginCapture_v2 == nil {
		return errNoGraphs()
	}
	return cuErr(C.tr_cuStreamBeginCapture(s.ctx.h, s.h, captureModeGlobal), "cuStreamBeginCapture")
}

// EndCapture ends the capture BeginCapture started and returns the graph:
// an error when something invalidated the capture (the work queued since
// BeginCapture then never runs).
func (s *Stream) EndCapture() (*Graph, error) {
	if C.tr_cug.cuStreamEndCapture == nil {
		return nil, errNoGraphs()
	}
	var h C.CUgraph
	if err := cuErr(C.tr_cuStreamEndCapture(s.ctx.h, s.h, &h), "cuStreamEndCapture"); err != nil {
		if h != nil {
			C.tr_cuGraphDestroy(s.ctx.h, h)
		}
		return nil, err
	}
	return &Graph{ctx: s.ctx, h: h}, nil
}

// graphLogSize is the size of cuGraphInstantiate_v2's log buffer.
const graphLogSize = 2048

// Instantiate makes the graph launchable. The graph itself may be
// destroyed afterwards; the instance does not depend on it.
func (g *Graph) Instantiate() (*GraphExec, error) {
	if C.tr_cug.cuGraphLaunch == nil || C.tr_cug.cuGraphInstantiateWithFlags == nil && C.tr_cug.cuGraphInstantiate_v2 == nil {
		return nil, errNoGraphs()
	}
	log := (*C.char)(C.malloc(graphLogSize))
	defer C.free(unsafe.Pointer(log))
	var h C.CUgraphExec
	if r := C.tr_cuGraphInstantiate(g.ctx.h, &h, g.h, log, graphLogSize); r != 0 {
		e := newCUDAError(int(r), GraphInstantiate())
		*(*byte)(unsafe.Add(unsafe.Pointer(log), graphLogSize-1)) = 0
		e.Log = strings.TrimSpace(C.GoString(log))
		return nil, e
	}
	return &GraphExec{ctx: g.ctx, h: h}, nil
}

// Destroy destroys the graph; the second call does nothing.
func (g *Graph) Destroy() error {
	if g.h == nil {
		return nil
	}
	h := g.h
	g.h = nil
	return cuErr(C.tr_cuGraphDestroy(g.ctx.h, h), "cuGraphDestroy")
}

// Launch queues the whole graph on s. It allocates nothing; errors in its
// kernels show up at the next synchronising call.
func (e *GraphExec) Launch(s *Stream) error {
	if e.h == nil {
		return errors.New("cuda: launch of a destroyed graph")
	}
	if r := C.tr_cuGraphLaunch(e.ctx.h, e.h, s.h); r != 0 {
		return cuErr(r, "cuGraphLaunch")
	}
	return nil
}

// Destroy destroys the instance (after the launches already queued); the
// second call does nothing.
func (e *GraphExec) Destroy() error {
	if e.h == nil {
		return nil
	}
	h := e.h
	e.h = nil
	return cuErr(C.tr_cuGraphExecDestroy(e.ctx.h, h), "cuGraphExecDestroy")
}

// SetWorkspace makes the handle use bytes of device memory at p as its
// workspace (cublasSetWorkspace), instead of memory it would allocate
// itself, possibly inside a graph capture. The memory must outlive the
// handle's use of it.
func (bl *Blas) SetWorkspace(p DevicePtr, bytes int) error {
	if C.tr_blaso.cublasSetWorkspace_v2 == nil {
		return errNoGraphs()
	}
	if bytes < 0 {
		return sizeErr("cublasSetWorkspace", bytes)
	}
	return blasErr(C.tr_cublasSetWorkspace(bl.ctx.h, bl.h, C.CUdeviceptr(p), C.size_t(bytes)), fmt.Sprintf("cublasSetWorkspace(%s)", formatBytes(uint64(bytes))))
}
