// Package cuda is trainer's access to the NVIDIA CUDA driver API and cuBLAS,
// both loaded at run time with dlopen.
//
// # Why dlopen
//
// Linking against libcuda and libcublas would make the binary need the CUDA
// toolkit to build and the GPU libraries to start. Loading them at run time
// instead means one binary builds anywhere (no CUDA header or library at
// build time, only a C compiler for cgo), starts everywhere, uses the cuBLAS
// that matches the driver (libcublas.so.N for a driver of CUDA N, else an
// older one down to 11: cuDriverGetVersion decides), and, where there is no
// GPU, says which step failed and what to do (Probe, which also creates a
// cuBLAS handle) before training falls back to the CPU.
//
// # Layers
//
// As in Rust's cudarc, three layers:
//
//  1. Raw (api.h): the C signatures of the entry points, declared without the
//     vendor headers, under the versioned names cuda.h maps to
//     (cuMemAlloc -> cuMemAlloc_v2), and two tables of function pointers.
//     Every symbol is resolved with dlsym when a library is loaded, from one
//     {name, &ptr} table per library (cuda_cgo.go); a missing library or
//     symbol fails the load with a *LoadError that names it. A test compiles
//     api.h against the real cuda.h and cublas_v2.h where they are installed.
//  2. Thin: one C shim per entry point. Shims for context-bound calls first
//     make the caller's context current on the OS thread they run on, because
//     goroutines move between threads and the CUDA current context is per
//     thread; a Go wrapper turns the status into an *Error named by
//     cuGetErrorName (or this package's table for cuBLAS).
//  3. Typed: Device, Context, Stream, DevicePtr, HostMem, Event, Module,
//     Function, Args and Blas, with the wrappers as methods.
//
// Load (driver and cuBLAS) and LoadDriver load once; TRAINER_LIBCUDA and
// TRAINER_LIBCUBLAS name the file to load instead of the default list.
//
// # Rules for callers
//
// Objects may be used from any goroutine, but a Stream's order is the order
// of the calls, an Args or a Blas must not be used concurrently, and nothing
// is freed automatically except an Args dropped without Free. Copies between
// Go memory and the device are safe with Go's cgo pointer rules: the driver
// has finished with pageable memory when the call returns. Hot calls
// (Launch, Sgemm, Memcpy*, Memset*, Event.Record) allocate nothing on the Go
// heap; kernel arguments live in C memory (Args).
//
// Built with CGO_ENABLED=0, the package offers only Probe, which reports
// StepNoCgo (ErrNoCgo), and the report types: nothing else can work without
// cgo, and the program's !cgo build does not import the package at all.
//
// # Testing on a GPU
//
// go test ./cuda runs everywhere: GPU tests skip without a GPU, and the same
// cases also run against a fake driver and fake cuBLAS compiled from
// testdata/ with gcc. On a GPU machine, from a prebuilt binary:
//
//	go test -c -o cuda.test ./cuda
//	TRAINER_REQUIRE_GPU=1 ./cuda.test -test.v
//
// TRAINER_REQUIRE_GPU=1 turns every "no GPU" skip into a failure.
package cuda
