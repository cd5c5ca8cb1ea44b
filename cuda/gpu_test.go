//go:build cgo

package cuda

// GPU tests. They skip, saying why, where no GPU is usable; set
// TRAINER_REQUIRE_GPU=1 to make that a failure. To run them elsewhere:
//
//	go test -c -o cuda.test ./cuda
//	TRAINER_REQUIRE_GPU=1 ./cuda.test -test.v -test.run 'GPU|Fake'

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// gpuCases run on device 0 of the real driver (TestGPU) and, on any machine
// with gcc, on the fake driver of fake_test.go (TestFakeDriver): the same
// code, so the plumbing and the tests themselves are exercised without a GPU.
var gpuCases = []struct {
	name string
	fn   func(t *testing.T, ctx *Context)
}{
	{"DeviceAndMemInfo", testDeviceAndMemInfo},
	{"RoundTrip", testRoundTrip},
	{"Memset", testMemset},
	{"KernelLaunch", testKernelLaunch},
	{"ModuleErrors", testModuleErrors},
	{"Sgemm", testSgemm},
	{"GemmBF16", testGemmBF16},
	{"Events", testEvents},
	{"OutOfMemory", testOutOfMemory},
	{"AnyThread", testAnyThread},
	{"Graphs", testGraphs},
	{"BlasWorkspace", testBlasWorkspace},
}

// runGPUCases runs every case as a subtest on ctx.
func runGPUCases(t *testing.T, ctx *Context) {
	for _, c := range gpuCases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, ctx) })
	}
}

// TestGPU runs the cases on the first real GPU, or skips saying why.
func TestGPU(t *testing.T) {
	if os.Getenv(EnvLibCUDA) != "" {
		t.Logf("driver library from %s=%s", EnvLibCUDA, os.Getenv(EnvLibCUDA))
	}
	n, err := DeviceCount()
	if err == nil && n == 0 {
		err = errors.New("the driver reports 0 devices")
	}
	if err != nil {
		requireGPU(t, "no usable GPU, GPU tests skipped: %v", err)
	}
	d, err := GetDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := d.RetainPrimaryContext()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ctx.Release(); err != nil {
			t.Error(err)
		}
	}()
	runGPUCases(t, ctx)
}

// gpuStream is a new stream on ctx, destroyed after the test.
func gpuStream(t *testing.T, ctx *Context) *Stream {
	t.Helper()
	s, err := ctx.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Destroy(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// devAlloc allocates device memory freed after the test.
func devAlloc(t *testing.T, ctx *Context, bytes int) DevicePtr {
	t.Helper()
	p, err := ctx.MemAlloc(bytes, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ctx.MemFree(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

// upload copies a float32 slice to new device memory.
func upload(t *testing.T, ctx *Context, s *Stream, v []float32) DevicePtr {
	t.Helper()
	p := devAlloc(t, ctx, 4*len(v))
	if err := s.MemcpyHtoD(p, unsafe.Pointer(&v[0]), 4*len(v)); err != nil {
		t.Fatal(err)
	}
	return p
}

// download copies n float32s from the device and waits for them.
func download(t *testing.T, s *Stream, p DevicePtr, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := s.MemcpyDtoH(unsafe.Pointer(&out[0]), p, 4*n); err != nil {
		t.Fatal(err)
	}
	if err := s.Synchronize(); err != nil {
		t.Fatal(err)
	}
	return out
}

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

func testDeviceAndMemInfo(t *testing.T, ctx *Context) {
	d := ctx.Device()
	name, err := d.Name()
	if err != nil || name == "" {
		t.Fatalf("Name = %q, %v", name, err)
	}
	major, minor, err := d.ComputeCapability()
	if err != nil || major < 3 {
		t.Fatalf("ComputeCapability = %d.%d, %v", major, minor, err)
	}
	sms, err := d.MultiprocessorCount()
	if err != nil || sms < 1 {
		t.Fatalf("MultiprocessorCount = %d, %v", sms, err)
	}
	total, err := d.TotalMem()
	if err != nil || total < 1<<28 {
		t.Fatalf("TotalMem = %d, %v", total, err)
	}
	free, total2, err := ctx.MemInfo()
	if err != nil || free == 0 || free > total2 || total2 > total {
		t.Fatalf("MemInfo = %d free of %d (TotalMem %d), %v", free, total2, total, err)
	}
	v, err := DriverVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GPU 0: %s, sm_%d%d, %d SMs, %s of %s free, driver CUDA %s", name, major, minor, sms,
		formatBytes(free), formatBytes(total), VersionString(v))
	if err := ctx.SetCurrent(); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Synchronize(); err != nil {
		t.Fatal(err)
	}
	r := Probe()
	if len(r.Devices) == 0 || r.Devices[0].Name != name {
		t.Errorf("Probe disagrees: %+v", r)
	}
	t.Logf("\n%s", r)
}

func testRoundTrip(t *testing.T, ctx *Context) {
	s := gpuStream(t, ctx)
	const n = 1<<20 + 3
	in := randFloats(rand.New(rand.NewPCG(1, 2)), n)
	a := upload(t, ctx, s, in)
	b := devAlloc(t, ctx, 4*n)
	if err := s.MemcpyDtoD(b, a, 4*n); err != nil {
		t.Fatal(err)
	}
	out := download(t, s, b, n)
	for i := range in {
		if out[i] != in[i] {
			t.Fatalf("element %d: got %v, want %v", i, out[i], in[i])
		}
	}
	// The same through pinned memory, where copies are truly asynchronous.
	src, err := ctx.MemHostAlloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Free()
	dst, err := ctx.MemHostAlloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Free()
	if src.Len() != 4*n || len(src.Float32s()) != n || len(src.Bytes()) != 4*n || len(src.Int32s()) != n {
		t.Fatalf("HostMem views: Len %d", src.Len())
	}
	copy(src.Float32s(), in)
	if err := s.MemcpyHtoD(b, src.Ptr(), 4*n); err != nil {
		t.Fatal(err)
	}
	if err := s.MemcpyDtoH(dst.Ptr(), b, 4*n); err != nil {
		t.Fatal(err)
	}
	if err := s.Synchronize(); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst.Float32s() {
		if v != in[i] {
			t.Fatalf("pinned element %d: got %v, want %v", i, v, in[i])
		}
	}
	if err := src.Free(); err != nil {
		t.Fatal(err)
	}
	if err := src.Free(); err != nil {
		t.Fatalf("second Free: %v", err)
	}
}

func testMemset(t *testing.T, ctx *Context) {
	s := gpuStream(t, ctx)
	const n = 1000
	p := devAlloc(t, ctx, 4*n)
	if err := s.MemsetD32(p, math.Float32bits(2.5), n); err != nil {
		t.Fatal(err)
	}
	if err := s.MemsetD32(p.Add(4*10), math.Float32bits(-1), 5); err != nil {
		t.Fatal(err)
	}
	out := download(t, s, p, n)
	for i, v := range out {
		want := float32(2.5)
		if i >= 10 && i < 15 {
			want = -1
		}
		if v != want {
			t.Fatalf("MemsetD32 element %d = %v, want %v", i, v, want)
		}
	}
	if err := s.MemsetD8(p, 0xab, 4*n); err != nil {
		t.Fatal(err)
	}
	bytes := make([]byte, 4*n)
	if err := s.MemcpyDtoH(unsafe.Pointer(&bytes[0]), p, len(bytes)); err != nil {
		t.Fatal(err)
	}
	if err := s.Synchronize(); err != nil {
		t.Fatal(err)
	}
	for i, v := range bytes {
		if v != 0xab {
			t.Fatalf("MemsetD8 byte %d = %#x", i, v)
		}
	}
}

func testKernelLaunch(t *testing.T, ctx *Context) {
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
	const n = 1000 // not a multiple of the block size: the bounds check matters
	r := rand.New(rand.NewPCG(3, 4))
	x, y := randFloats(r, n), randFloats(r, n)
	a, b := upload(t, ctx, s, x), upload(t, ctx, s, y)
	c := devAlloc(t, ctx, 4*(n+1))
	if err := s.MemsetD32(c, math.Float32bits(42), n+1); err != nil { // a sentinel after the end
		t.Fatal(err)
	}
	args := NewArgs()
	defer args.Free()
	grid, block := [3]uint32{(n + 255) / 256, 1, 1}, [3]uint32{256, 1, 1}
	args.Reset().Ptr(a).Ptr(b).Ptr(c).U32(n).F32(0.5)
	if err := fn.Launch(s, grid, block, 0, args); err != nil {
		t.Fatal(err)
	}
	out := download(t, s, c, n+1)
	for i := range n {
		if want := (x[i] + y[i]) * 0.5; out[i] != want {
			t.Fatalf("c[%d] = %v, want %v", i, out[i], want)
		}
	}
	if out[n] != 42 {
		t.Fatalf("the kernel wrote past n: %v", out[n])
	}

	// 10,000 launches allocate nothing on the Go heap.
	allocs := testing.AllocsPerRun(10000, func() {
		args.Reset().Ptr(a).Ptr(b).Ptr(c).U32(n).F32(2)
		if err := fn.Launch(s, grid, block, 0, args); err != nil {
			panic(err)
		}
	})
	if err := s.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("Launch allocates %v times per call", allocs)
	}
	out = download(t, s, c, n)
	if want := (x[7] + y[7]) * 2; out[7] != want {
		t.Errorf("after the loop c[7] = %v, want %v", out[7], want)
	}

	// Too many arguments is reported by Launch, not sent to the driver.
	args.Reset()
	for range MaxArgs + 1 {
		args.I32(0)
	}
	if err := fn.Launch(s, grid, block, 0, args); !errors.Is(err, errTooManyArgs) {
		t.Errorf("overflowing Args: %v", err)
	}
	// A bad launch configuration is a named error with the kernel's name.
	args.Reset().Ptr(a).Ptr(b).Ptr(c).U32(n).F32(1)
	err = fn.Launch(s, grid, [3]uint32{4096, 1, 1}, 0, args)
	if err == nil || !strings.Contains(err.Error(), "cuLaunchKernel(vadd") {
		t.Errorf("block of 4096 threads: %v", err)
	}
	if err := s.Synchronize(); err != nil {
		t.Errorf("stream broken after a rejected launch: %v", err)
	}
}

func testModuleErrors(t *testing.T, ctx *Context) {
	_, err := ctx.LoadModule([]byte(badPTX))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("bad PTX: %v", err)
	}
	if e.Name != "CUDA_ERROR_INVALID_PTX" || !strings.Contains(e.Log, "this_is_not_an_instruction") {
		t.Errorf("bad PTX error lacks the JIT log: %v", err)
	}
	t.Logf("bad PTX: %v", err)
	mod, err := ctx.LoadModule([]byte(vaddPTX))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Unload()
	_, err = mod.Function("no_such_kernel")
	if !errors.As(err, &e) || e.Name != "CUDA_ERROR_NOT_FOUND" || !strings.Contains(err.Error(), `"no_such_kernel"`) {
		t.Errorf("missing kernel: %v", err)
	}
}

// gemmRef is the column-major reference C = alpha*op(A)*op(B) + beta*C in float64.
func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) []float32 {
	at := func(i, l int) float64 { // op(A)[i, l]
		if transA {
			return float64(a[l+i*lda])
		}
		return float64(a[i+l*lda])
	}
	bt := func(l, j int) float64 { // op(B)[l, j]
		if transB {
			return float64(b[j+l*ldb])
		}
		return float64(b[l+j*ldb])
	}
	out := append([]float32(nil), c...)
	for j := range n {
		for i := range m {
			var sum float64
			for l := range k {
				sum += at(i, l) * bt(l, j)
			}
			out[i+j*ldc] = float32(float64(alpha)*sum + float64(beta)*float64(c[i+j*ldc]))
		}
	}
	return out
}

// bf16 is x rounded to the nearest bfloat16, ties to even (NaN aside), as
// its bits.
func bf16(x float32) uint16 {
	u := math.Float32bits(x)
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// testGemmBF16: GemmBF16 (cublasGemmEx with bfloat16 A and B, float32 C
// and accumulation) against the float64 product of the bfloat16 values,
// for every transpose, padded leading dimensions, alpha and beta. On the
// fake cuBLAS, which reads each operand as the type the call names and
// refuses combinations a real cuBLAS refuses, a wrong type code (A read as
// float32, say) fails here. A GPU older than compute capability 8.0 has no
// bfloat16 GEMMs: skipped there.
func testGemmBF16(t *testing.T, ctx *Context) {
	if major, _, err := ctx.Device().ComputeCapability(); err != nil || major < 8 {
		t.Skipf("compute capability %d (%v): no bfloat16 GEMMs before 8.0", major, err)
	}
	s := gpuStream(t, ctx)
	h, err := NewBlas(s)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Destroy()
	r := rand.New(rand.NewPCG(7, 8))
	up16 := func(v []uint16) DevicePtr {
		p := devAlloc(t, ctx, 2*len(v))
		if err := s.MemcpyHtoD(p, unsafe.Pointer(&v[0]), 2*len(v)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, dims := range [][3]int{{1, 1, 1}, {17, 9, 33}, {64, 128, 256}, {130, 70, 5}} {
		m, n, k := dims[0], dims[1], dims[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				rowsA, colsA := m, k
				if ta {
					rowsA, colsA = k, m
				}
				rowsB, colsB := k, n
				if tb {
					rowsB, colsB = n, k
				}
				lda, ldb, ldc := rowsA+1, rowsB+2, m+3
				A, B, C := randFloats(r, lda*colsA), randFloats(r, ldb*colsB), randFloats(r, ldc*n)
				hA, hB := make([]uint16, len(A)), make([]uint16, len(B))
				for i := range A {
					hA[i] = bf16(A[i])
					A[i] = math.Float32frombits(uint32(hA[i]) << 16)
				}
				for i := range B {
					hB[i] = bf16(B[i])
					B[i] = math.Float32frombits(uint32(hB[i]) << 16)
				}
				alpha, beta := float32(1.25), float32(-0.5)
				want := gemmRef(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
				dA, dB, dC := up16(hA), up16(hB), upload(t, ctx, s, C)
				if err := h.GemmBF16(ta, tb, m, n, k, alpha, dA, lda, dB, ldb, beta, dC, ldc); err != nil {
					t.Fatal(err)
				}
				got := download(t, s, dC, len(C))
				scale := float64(k)*math.Abs(float64(alpha)) + math.Abs(float64(beta))
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*scale {
						t.Fatalf("%dx%dx%d ta=%v tb=%v: C[%d] = %v, want %v", m, n, k, ta, tb, i, got[i], want[i])
					}
				}
			}
		}
	}
	d := devAlloc(t, ctx, 2*16*16)
	err = h.GemmBF16(false, false, 16, 16, 16, 1, d, 8, d, 16, 0, d, 16)
	var e *Error
	if !errors.As(err, &e) || e.Name != "CUBLAS_STATUS_INVALID_VALUE" || !strings.Contains(err.Error(), "cublasGemmEx(NN, bf16") {
		t.Errorf("lda < m: %v", err)
	}
	c := devAlloc(t, ctx, 4*4*4)
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.GemmBF16(false, false, 4, 4, 4, 1, d, 4, d, 4, 0, c, 4); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("GemmBF16 allocates %v times per call", allocs)
	}
	if err := s.Synchronize(); err != nil {
		t.Fatal(err)
	}
}

func testSgemm(t *testing.T, ctx *Context) {
	s := gpuStream(t, ctx)
	h, err := NewBlas(s)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Destroy()
	if h.Version() < 110000 {
		t.Errorf("cuBLAS version %d", h.Version())
	}
	t.Logf("cuBLAS version %d", h.Version())
	r := rand.New(rand.NewPCG(5, 6))
	for _, tf32 := range []bool{false, true} {
		if err := h.SetMathMode(tf32); err != nil {
			t.Fatal(err)
		}
		tol := 1e-5 // relative to the sum of |terms|; FP32 accumulation
		if tf32 {
			tol = 3e-3 // TF32 keeps 10 mantissa bits of the inputs
		}
		for _, dims := range [][3]int{{1, 1, 1}, {17, 9, 33}, {64, 128, 256}, {130, 70, 5}} {
			m, n, k := dims[0], dims[1], dims[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					rowsA, colsA := m, k
					if ta {
						rowsA, colsA = k, m
					}
					rowsB, colsB := k, n
					if tb {
						rowsB, colsB = n, k
					}
					lda, ldb, ldc := rowsA+1, rowsB+2, m+3 // padded leading dimensions
					A, B, C := randFloats(r, lda*colsA), randFloats(r, ldb*colsB), randFloats(r, ldc*n)
					alpha, beta := float32(1.25), float32(-0.5)
					want := gemmRef(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
					dA, dB, dC := upload(t, ctx, s, A), upload(t, ctx, s, B), upload(t, ctx, s, C)
					if err := h.Sgemm(ta, tb, m, n, k, alpha, dA, lda, dB, ldb, beta, dC, ldc); err != nil {
						t.Fatal(err)
					}
					got := download(t, s, dC, len(C))
					scale := float64(k)*math.Abs(float64(alpha)) + math.Abs(float64(beta))
					for i := range got {
						if d := math.Abs(float64(got[i] - want[i])); d > tol*scale {
							t.Fatalf("tf32=%v %dx%dx%d ta=%v tb=%v: C[%d] = %v, want %v", tf32, m, n, k, ta, tb, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	if err := h.SetMathMode(false); err != nil {
		t.Fatal(err)
	}

	// Strided batched: three independent 8x6x4 products.
	const m, n, k, batch = 8, 6, 4, 3
	A, B, C := randFloats(r, m*k*batch), randFloats(r, k*n*batch), make([]float32, m*n*batch)
	dA, dB, dC := upload(t, ctx, s, A), upload(t, ctx, s, B), upload(t, ctx, s, C)
	if err := h.SgemmStridedBatched(false, false, m, n, k, 1, dA, m, m*k, dB, k, k*n, 0, dC, m, m*n, batch); err != nil {
		t.Fatal(err)
	}
	got := download(t, s, dC, len(C))
	for i := range batch {
		want := gemmRef(false, false, m, n, k, 1, A[i*m*k:], m, B[i*k*n:], k, 0, C[i*m*n:(i+1)*m*n], m)
		for j := range want {
			if math.Abs(float64(got[i*m*n+j]-want[j])) > 1e-4 {
				t.Fatalf("batch %d element %d: %v, want %v", i, j, got[i*m*n+j], want[j])
			}
		}
	}

	// An invalid leading dimension is a named cuBLAS error.
	err = h.Sgemm(false, false, 16, 16, 16, 1, dA, 8, dB, 16, 0, dC, 16)
	var e *Error
	if !errors.As(err, &e) || e.Name != "CUBLAS_STATUS_INVALID_VALUE" || !strings.Contains(err.Error(), "lda=8") {
		t.Errorf("lda < m: %v", err)
	}
	// Sgemm allocates nothing either.
	allocs := testing.AllocsPerRun(1000, func() {
		if err := h.Sgemm(false, false, m, n, k, 1, dA, m, dB, k, 0, dC, m); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Sgemm allocates %v times per call", allocs)
	}
	if err := s.Synchronize(); err != nil {
		t.Fatal(err)
	}
}

func testEvents(t *testing.T, ctx *Context) {
	s := gpuStream(t, ctx)
	start, err := ctx.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer start.Destroy()
	end, err := ctx.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer end.Destroy()
	const bytes = 64 << 20
	p := devAlloc(t, ctx, bytes)
	if err := start.Record(s); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := s.MemsetD32(p, uint32(i), bytes/4); err != nil {
			t.Fatal(err)
		}
	}
	if err := end.Record(s); err != nil {
		t.Fatal(err)
	}
	if err := end.Synchronize(); err != nil {
		t.Fatal(err)
	}
	ms, err := ElapsedMs(start, end)
	if err != nil {
		t.Fatal(err)
	}
	if ms <= 0 || ms > 10000 {
		t.Errorf("10 memsets of 64 MiB took %v ms", ms)
	}
	t.Logf("10 x 64 MiB memset: %.3f ms (%.0f GB/s)", ms, 10*bytes/float64(ms)/1e6)
}

func testOutOfMemory(t *testing.T, ctx *Context) {
	p, err := ctx.MemAlloc(1<<50, "a 1 PiB tensor")
	if err == nil {
		ctx.MemFree(p)
		t.Fatal("allocating 1 PiB succeeded")
	}
	if !IsOutOfMemory(err) {
		t.Fatalf("not recognised as out of memory: %v", err)
	}
	want := `cuMemAlloc(1 PiB for "a 1 PiB tensor"): CUDA_ERROR_OUT_OF_MEMORY (out of memory)`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	// The context still works afterwards.
	q, err := ctx.MemAlloc(1<<20, "after OOM")
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.MemFree(q); err != nil {
		t.Fatal(err)
	}
}

// testAnyThread uses one context from goroutines locked to OS threads where
// no context is current: every call must make it current itself.
func testAnyThread(t *testing.T, ctx *Context) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			if err := clearCurrentContext(); err != nil {
				errs <- err
				return
			}
			s, err := ctx.NewStream()
			if err != nil {
				errs <- err
				return
			}
			defer s.Destroy()
			p, err := ctx.MemAlloc(4096, "thread test")
			if err != nil {
				errs <- err
				return
			}
			defer ctx.MemFree(p)
			if err := s.MemsetD32(p, uint32(g), 1024); err != nil {
				errs <- err
				return
			}
			var v [1024]uint32
			if err := s.MemcpyDtoH(unsafe.Pointer(&v[0]), p, 4096); err != nil {
				errs <- err
				return
			}
			if err := s.Synchronize(); err != nil {
				errs <- err
				return
			}
			if v[1023] != uint32(g) {
				errs <- errors.New("wrong value read back")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
