// Package emu runs the CUDA kernels of package kernels on the CPU, for tests.
//
// With cgo, kernels.cc compiles the same CUDA C sources that
// scripts/build-kernels.sh turns into the committed PTX (../all.cu) as plain
// C++, with cuda_host.h standing in for the CUDA built-ins, and Run launches
// any of them by name over a whole grid: every block, every thread, one after
// another (in reverse order on request), with the arguments packed the way
// cuLaunchKernel takes them. A kernel with barriers runs each block's
// threads as coroutines that switch at __syncthreads (see cuda_host.h). Buffers are copied into C memory fenced by guard
// zones, so a kernel that writes out of bounds, or writes an input it should
// only read, is reported; reads out of bounds see NaN.
//
// The typed functions (Im2Col, BiasGrad, SoftmaxXent, ...) mirror the
// device.Backend ops: they check the slices' lengths, then call the same
// launch functions of package kernels as the GPU backend does (so the
// argument order is the one the GPU uses), with a Config; GPU is the launch
// configuration the GPU backend uses (kernels.Block, kernels.Grid). Every
// launch checks the launch function's C types against the C++ compiler's
// signature of the kernel. The tests compare every kernel with plain Go
// references written from device/backend.go and with the CPU backend.
//
// Malloc, Free and LaunchParams stand in for device memory and
// cuLaunchKernel: device/gpu's tests run the GPU backend itself on them, its
// packed parameter buffers going straight to the host-compiled kernels.
//
// Without cgo the package is empty.
package emu
