//go:build cgo

package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// testGraphs (a gpuCase: the real GPU and the fake driver): two vadd
// launches captured into a graph run only when the instance is launched,
// in order, on the memory as it is then, with the argument values they
// were captured with; relaunching repeats them on new inputs; waiting for
// the stream inside a capture invalidates it and leaves the stream usable.
func testGraphs(t *testing.T, ctx *Context) {
	if err := GraphSupport(); err != nil {
		requireGPU(t, "CUDA graphs unsupported here: %v", err)
	}
	s := gpuStream(t, ctx)
	mod, err := ctx.LoadModule([]byte(vaddPTX))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Unload()
	fn, err := mod.Function("vadd")
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	r := rand.New(rand.NewPCG(9, 9))
	x, y := randFloats(r, n), randFloats(r, n)
	a, b := upload(t, ctx, s, x), upload(t, ctx, s, y)
	c := devAlloc(t, ctx, 4*n)
	if err := s.MemsetD32(c, math.Float32bits(42), n); err != nil {
		t.Fatal(err)
	}
	args := NewArgs()
	defer args.Free()
	grid, block := [3]uint32{(n + 127) / 128, 1, 1}, [3]uint32{128, 1, 1}

	runtime.LockOSThread() // EndCapture on the thread of BeginCapture
	if err := s.BeginCapture(); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	// c = (a+b)*0.5, then c = (c+b)*2: the second reads the first's output.
	err1 := fn.Launch(s, grid, block, 0, args.Reset().Ptr(a).Ptr(b).Ptr(c).U32(n).F32(0.5))
	err2 := fn.Launch(s, grid, block, 0, args.Reset().Ptr(c).Ptr(b).Ptr(c).U32(n).F32(2))
	g, err := s.EndCapture()
	runtime.UnlockOSThread()
	if err := errors.Join(err1, err2, err); err != nil {
		t.Fatal(err)
	}
	args.Reset().Ptr(b).Ptr(b).Ptr(b).U32(n).F32(100) // the captured values stay
	if got := download(t, s, c, n); got[0] != 42 || got[n-1] != 42 {
		t.Fatalf("captured work ran before the graph was launched: c = %v ... %v", got[0], got[n-1])
	}
	ex, err := g.Instantiate()
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Destroy()
	if err := g.Destroy(); err != nil { // the instance does not need it
		t.Fatal(err)
	}
	for round := range 2 {
		x = randFloats(r, n) // new input, written after the capture
		a2 := upload(t, ctx, s, x)
		if err := s.MemcpyDtoD(a, a2, 4*n); err != nil {
			t.Fatal(err)
		}
		if err := ex.Launch(s); err != nil {
			t.Fatal(err)
		}
		got := download(t, s, c, n)
		for i := range n {
			if want := ((x[i]+y[i])*0.5 + y[i]) * 2; got[i] != want {
				t.Fatalf("launch %d: c[%d] = %v, want %v", round, i, got[i], want)
			}
		}
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if err := ex.Launch(s); err != nil {
			panic(err)
		}
	}); allocs != 0 {
		t.Errorf("GraphExec.Launch allocates %v times per call", allocs)
	}

	testInvalidatedCapture(t, s, func() error {
		return fn.Launch(s, grid, block, 0, args.Reset().Ptr(a).Ptr(b).Ptr(c).U32(n).F32(1))
	})
	if got := download(t, s, c, n); got[3] != x[3]+y[3] {
		t.Fatalf("after an invalidated capture: c[3] = %v, want %v", got[3], x[3]+y[3])
	}
	if err := ex.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := ex.Launch(s); err == nil {
		t.Error("a destroyed graph launched")
	}
}

// testInvalidatedCapture: a wait inside a capture fails and invalidates the
// capture, and the stream works again after EndCapture (launch then runs).
func testInvalidatedCapture(t *testing.T, s *Stream, launch func() error) {
	t.Helper()
	runtime.LockOSThread()
	if err := s.BeginCapture(); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	errSync := s.Synchronize()
	g2, errEnd := s.EndCapture()
	runtime.UnlockOSThread()
	if !errorNamed(errSync, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED") || g2 != nil || !errorNamed(errEnd, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED") {
		t.Fatalf("synchronising inside a capture: %v; EndCapture: %v, %v", errSync, g2, errEnd)
	}
	if err := launch(); err != nil {
		t.Fatal(err)
	}
}

// errorNamed reports whether err is a CUDA *Error named name.
func errorNamed(err error, name string) bool {
	var e *Error
	return errors.As(err, &e) && e.Name == name
}

// testBlasWorkspace (a gpuCase): cuBLAS runs a GEMM on a workspace it was
// given, and a misaligned one is refused with cuBLAS's status.
func testBlasWorkspace(t *testing.T, ctx *Context) {
	if err := GraphSupport(); err != nil {
		requireGPU(t, "cublasSetWorkspace unavailable here: %v", err)
	}
	s := gpuStream(t, ctx)
	bl, err := NewBlas(s)
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Destroy()
	ws := devAlloc(t, ctx, 4<<20)
	if err := bl.SetWorkspace(ws.Add(4), 1<<20); err == nil || !strings.Contains(err.Error(), "cublasSetWorkspace") {
		t.Errorf("a misaligned workspace: %v", err)
	}
	if err := bl.SetWorkspace(ws, 4<<20); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 4))
	const m = 33
	x, y := randFloats(r, m*m), randFloats(r, m*m)
	a, b := upload(t, ctx, s, x), upload(t, ctx, s, y)
	c := devAlloc(t, ctx, 4*m*m)
	if err := bl.Sgemm(false, false, m, m, m, 1, a, m, b, m, 0, c, m); err != nil {
		t.Fatal(err)
	}
	got := download(t, s, c, m*m)
	want := gemmRef(false, false, m, m, m, 1, x, m, y, m, 0, make([]float32, m*m), m)
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-4 {
			t.Fatalf("c[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}
