//go:build cgo

package gpu

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// graphOrSkip is p's GPU backend, which must offer graphs (on the emulator
// always; on a GPU where the driver has them, else skip or fail under
// TRAINER_REQUIRE_GPU=1).
func graphOrSkip(t *testing.T, p *pair) *Backend {
	t.Helper()
	g := p.g.(*Backend)
	if !g.Caps().Graphs {
		if p.emu || requireGPUSet() {
			t.Fatalf("no graphs: %v", g.graphs)
		}
		t.Skipf("no graphs on this GPU: %v", g.graphs)
	}
	return g
}

// download is x's float32 values, or the test fails.
func download(t *testing.T, b device.Backend, x device.Buffer) []float32 {
	t.Helper()
	out := make([]float32, x.Len())
	if err := b.DownloadF32(x, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameBits fails unless got and want hold the same float32 bits.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v, want %v (bit for bit)", what, i, got[i], want[i])
		}
	}
}

// TestGraphReplay: a GEMM and two kernels captured as a graph run only when
// it is launched; each launch reads the inputs as they are then and gives
// bit for bit what the same ops give queued one by one; the captured ops
// are the graph's nodes, not launches, and each launch counts once.
func TestGraphReplay(t *testing.T) {
	eachGPU(t, func(t *testing.T, p *pair) {
		g := graphOrSkip(t, p)
		const m, k, n = 7, 5, 9
		a, b, c, d := p.rand(m*k, 1), p.rand(k*n, 1), p.rand(m*n, 1), p.rand(m*n, 1)
		a2, b2, c2, d2 := p.rand(m*k, 1), p.rand(k*n, 1), p.rand(m*n, 1), p.rand(m*n, 1)
		ops := func(a, b, c, d device.Buffer) {
			g.Gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
			g.Add(c, d, c, m*n, true)
			g.Axpby(c, d, m*n, 0.5, 2)
		}
		d0 := download(t, g, d.g)
		before := g.Launches()
		gr, err := g.Capture(func() { ops(a.g, b.g, c.g, d.g) })
		if err != nil {
			t.Fatal(err)
		}
		defer gr.Close()
		if got := g.Launches(); got != before {
			t.Errorf("capturing queued %+v", got.Sub(before))
		}
		if got := g.GraphNodes(gr); got != (Launches{Kernels: 2, Gemms: 1}) {
			t.Errorf("graph nodes %+v, want 2 kernels and 1 GEMM", got)
		}
		sameBits(t, "d after the capture", download(t, g, d.g), d0)
		for round := range 3 {
			// New inputs, the same in both sets of buffers.
			for _, x := range [][2]bufs{{a, a2}, {b, b2}, {d, d2}} {
				v := download(t, g, p.rand(x[0].g.Len(), 2).g)
				g.UploadF32(x[0].g, 0, v)
				g.UploadF32(x[1].g, 0, v)
			}
			if err := gr.Launch(); err != nil {
				t.Fatal(err)
			}
			ops(a2.g, b2.g, c2.g, d2.g)
			sameBits(t, "graph's c", download(t, g, c.g), download(t, g, c2.g))
			sameBits(t, "graph's d", download(t, g, d.g), download(t, g, d2.g))
			t.Logf("launch %d: d[0] = %v", round, download(t, g, d.g)[0])
		}
		if got := g.Launches().Sub(before); got.Graphs != 3 {
			t.Errorf("3 graph launches counted as %+v", got)
		}
		if err := gr.Close(); err != nil {
			t.Fatal(err)
		}
		if err := gr.Launch(); err == nil {
			t.Error("a closed graph launched")
		}
	})
}

// TestCaptureRefusals: an op that would wait, allocate, free or transfer
// inside a capture fails the capture, naming what it was; nothing f queued
// runs, and the backend works as before.
func TestCaptureRefusals(t *testing.T) {
	eachGPU(t, func(t *testing.T, p *pair) {
		g := graphOrSkip(t, p)
		x, y := p.rand(64, 1), p.rand(64, 1)
		spare, _ := g.Alloc("spare", device.F32, 8)
		for _, c := range []struct {
			what string
			op   func() error
		}{
			{"waiting for the device", g.Sync},
			{"allocating extra", func() error { _, err := g.Alloc("extra", device.F32, 4); return err }},
			{"downloading", func() error { return g.DownloadF32(x.g, 0, make([]float32, 4)) }},
			{"uploading", func() error { return g.UploadF32(x.g, 0, make([]float32, 4)) }},
			{"freeing a buffer", func() error { g.Free(spare); return nil }},
			{"reading to the host", func() error { _, err := g.ReadLater(x.g, 2); return err }},
		} {
			y0 := download(t, g, y.g)
			gr, err := g.Capture(func() {
				g.Axpby(x.g, y.g, 64, 3, 1)
				c.op()
				g.Axpby(x.g, y.g, 64, 5, 1)
			})
			if gr != nil || err == nil || !errors.Is(err, errCapturing) || !strings.Contains(err.Error(), c.what) {
				t.Fatalf("%s inside a capture: graph %v, error %v", c.what, gr, err)
			}
			sameBits(t, c.what+": y", download(t, g, y.g), y0)
			g.Axpby(x.g, y.g, 64, 1, 0)
			sameBits(t, c.what+": then a copy", download(t, g, y.g), download(t, g, x.g))
		}
		g.Free(spare)
		if err := g.Sync(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEmuCaptureLikeTheDriver: the emulated device itself behaves as the
// driver does when a capture meets a synchronisation (what the backend's
// own refusals keep from happening): the call fails, the capture is
// invalidated, and the stream works after it ends.
func TestEmuCaptureLikeTheDriver(t *testing.T) {
	d := &emuDev{t: t}
	defer d.Close()
	if err := d.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	if err := d.BeginCapture(); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_STATE") {
		t.Errorf("a second BeginCapture: %v", err)
	}
	errSync := d.Synchronize()
	g, errEnd := d.EndCapture()
	if errSync == nil || !strings.Contains(errSync.Error(), "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED") || g != nil ||
		errEnd == nil || !strings.Contains(errEnd.Error(), "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED") {
		t.Fatalf("sync in a capture: %v; end: %v, %v", errSync, g, errEnd)
	}
	if err := d.Synchronize(); err != nil {
		t.Fatalf("after the capture: %v", err)
	}
}

// TestReadLater: each read returns the values the buffer held when it was
// queued, collected after later work; a read whose slot was reused by
// readSlots newer ones is an error, not wrong values.
func TestReadLater(t *testing.T) {
	eachGPU(t, func(t *testing.T, p *pair) {
		g := p.g.(*Backend)
		x := p.rand(4, 1)
		var reads []device.PendingRead
		for i := range readSlots + 1 {
			g.Fill(x.g, 4, float32(i+1))
			r, err := g.ReadLater(x.g, 3)
			if err != nil {
				t.Fatal(err)
			}
			reads = append(reads, r)
		}
		got := make([]float32, 3)
		if err := reads[0].Wait(got); err == nil {
			t.Errorf("a read whose slot was reused returned %v", got)
		}
		for i := 1; i <= readSlots; i++ {
			if err := reads[i].Wait(got); err != nil {
				t.Fatal(err)
			}
			if got[0] != float32(i+1) || got[2] != float32(i+1) {
				t.Fatalf("read %d: %v, want %v", i, got, i+1)
			}
		}
		if _, err := g.ReadLater(x.g, device.MaxReadLater+1); err == nil {
			t.Error("ReadLater of too many values")
		}
	})
}

// TestGraphModes: --cuda-graphs off turns capture off; on refuses a device
// that cannot capture, with the device's reason; auto takes what there is.
func TestGraphModes(t *testing.T) {
	open := func(noGraphs error, m device.GraphMode) (*Backend, error) {
		b := newBackend(&emuDev{t: t, noGraphs: noGraphs}, "emulator", emuMemory, device.PrecisionFP32, true)
		if err := b.setGraphs(m); err != nil {
			b.Close()
			return nil, err
		}
		t.Cleanup(func() { b.Close() })
		return b, nil
	}
	old := errors.New("the CUDA driver lacks cuGraphLaunch")
	for _, c := range []struct {
		noGraphs error
		mode     device.GraphMode
		caps     bool
		err      string
	}{
		{nil, device.GraphsAuto, true, ""},
		{nil, device.GraphsOn, true, ""},
		{nil, device.GraphsOff, false, ""},
		{old, device.GraphsAuto, false, ""},
		{old, device.GraphsOn, false, "--cuda-graphs on), but the CUDA driver lacks cuGraphLaunch"},
	} {
		b, err := open(c.noGraphs, c.mode)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v with %v: %v, want %q", c.mode, c.noGraphs, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.Caps().Graphs != c.caps {
			t.Errorf("%v with %v: Caps.Graphs %v", c.mode, c.noGraphs, b.Caps().Graphs)
		}
		if _, err := b.Capture(func() {}); (err == nil) != c.caps {
			t.Errorf("%v with %v: Capture: %v", c.mode, c.noGraphs, err)
		}
	}
}

// requireGPUSet reports whether TRAINER_REQUIRE_GPU=1 (scripts/gpu-check.sh).
func requireGPUSet() bool { return os.Getenv(envRequireGPU) == "1" }

// TestGraphKeepsOutgrownScratch: a graph whose reductions use the scratch
// still runs right after an eager op outgrew it (the old scratch is kept
// for the graph until Close, not freed under it).
func TestGraphKeepsOutgrownScratch(t *testing.T) {
	eachGPU(t, func(t *testing.T, p *pair) {
		g := graphOrSkip(t, p)
		const c, inner = 3, 700 // more than 256 per channel: a plan with scratch
		dy, db := p.rand(c*inner, 1), p.nan(c)
		g.BiasGrad(dy.g, db.g, 1, c, inner) // the plan and its scratch, made eagerly
		gr, err := g.Capture(func() { g.BiasGrad(dy.g, db.g, 1, c, inner) })
		if err != nil {
			t.Fatal(err)
		}
		big := p.rand(c*200000, 1)
		out := p.nan(c)
		g.BiasGrad(big.g, out.g, 1, c, 200000) // grows the scratch
		if p.emu && len(g.retired) != 1 {
			t.Errorf("%d scratch buffers kept for the graph, want 1", len(g.retired))
		}
		v := download(t, g, p.rand(c*inner, 1).g)
		g.UploadF32(dy.g, 0, v)
		p.c.UploadF32(dy.c, 0, v)
		if err := gr.Launch(); err != nil {
			t.Fatal(err)
		}
		p.c.BiasGrad(dy.c, db.c, 1, c, inner)
		p.check("bias gradient from the graph", db, 1e-5, 1e-4)
		gr.Close()
	})
}
