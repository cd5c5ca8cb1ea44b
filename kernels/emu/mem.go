//go:build cgo

package emu

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
static void* emu_addr(uintptr_t a) { return (void*)a; }
static uintptr_t emu_reserve(size_t n) {
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? 0 : (uintptr_t)p;
}
static int emu_unreserve(uintptr_t p, size_t n) { return munmap((void*)p, n); }
*/
import "C"

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"unsafe"

	"github.com/trainer-go/trainer/kernels"
)

// Device memory for tests of the GPU backend's launch code without a GPU:
// Malloc hands out C memory whose address stands in for a device pointer,
// fenced by guard zones like Run's buffers, and LaunchParams runs a kernel
// on a kernelParams array exactly as it would go to cuLaunchKernel, with
// those addresses inside.

// guardBytes is the size of the guard zone before and after each block.
const guardBytes = guard * 4

var (
	memMu sync.Mutex
	mem   = map[uintptr]int{} // data address -> bytes
)

// Malloc allocates bytes of zeroed memory between two guard zones and
// returns its address, or 0 when C is out of memory.
func Malloc(bytes int) uintptr {
	base := C.calloc(C.size_t(bytes+2*guardBytes), 1)
	if base == nil {
		return 0
	}
	all := unsafe.Slice((*byte)(base), bytes+2*guardBytes)
	copy(all[:guardBytes], guardPattern(4))
	copy(all[guardBytes+bytes:], guardPattern(4))
	p := uintptr(base) + guardBytes
	memMu.Lock()
	mem[p] = bytes
	memMu.Unlock()
	return p
}

// Free checks p's guard zones and releases it; p must come from Malloc.
func Free(p uintptr) error {
	err := checkGuards(p)
	memMu.Lock()
	_, ok := mem[p]
	delete(mem, p)
	memMu.Unlock()
	if !ok {
		return fmt.Errorf("emu: Free(%#x): not allocated by Malloc", p)
	}
	C.free(C.emu_addr(C.uintptr_t(p - guardBytes)))
	return err
}

// Live is the number of blocks allocated by Malloc and not freed.
func Live() int {
	memMu.Lock()
	defer memMu.Unlock()
	return len(mem)
}

// Bytes is the memory at p, n bytes long.
func Bytes(p uintptr, n int) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(C.emu_addr(C.uintptr_t(p))), n)
}

func checkGuards(p uintptr) error {
	memMu.Lock()
	n, ok := mem[p]
	memMu.Unlock()
	if !ok {
		return nil
	}
	pat := guardPattern(4)
	if !bytes.Equal(Bytes(p-guardBytes, guardBytes), pat) || !bytes.Equal(Bytes(p+uintptr(n), guardBytes), pat) {
		return fmt.Errorf("emu: something wrote outside the %d bytes at %#x", n, p)
	}
	return nil
}

// CheckGuards checks the guard zones of every live Malloc block.
func CheckGuards() error {
	memMu.Lock()
	ps := slices.Collect(maps.Keys(mem))
	memMu.Unlock()
	for _, p := range ps {
		if err := checkGuards(p); err != nil {
			return err
		}
	}
	return nil
}

// LaunchParams runs the named kernel with params, a kernelParams array of
// nargs pointers to the argument values, as cuLaunchKernel takes it; pointer
// arguments are addresses from Malloc. It then checks every guard zone.
func LaunchParams(name string, l Launch, params unsafe.Pointer, nargs int) error {
	if _, err := signature(name, nargs); err != nil {
		return err
	}
	if err := launch(name, l, params, nargs); err != nil {
		return err
	}
	if err := CheckGuards(); err != nil {
		return fmt.Errorf("%s <<<%d, %d>>>: %w", name, l.Grid, l.Block, err)
	}
	return nil
}

// Reserve maps bytes of zeroed address space without committing memory for
// it (MAP_NORESERVE): only the pages a kernel touches take memory. It is for
// tests of buffers past 2^31 elements of which a launch (Launch.From) touches
// only the tail. The memory has no guard zones; Unreserve returns it.
func Reserve(bytes int) (uintptr, error) {
	p := C.emu_reserve(C.size_t(bytes))
	if p == 0 {
		return 0, fmt.Errorf("emu: reserving %d bytes of address space failed", bytes)
	}
	return uintptr(p), nil
}

// Unreserve unmaps memory from Reserve.
func Unreserve(p uintptr, bytes int) error {
	if C.emu_unreserve(C.uintptr_t(p), C.size_t(bytes)) != 0 {
		return fmt.Errorf("emu: unmapping %d bytes at %#x failed", bytes, p)
	}
	return nil
}

// AddrLauncher runs the launch functions of package kernels on device
// addresses from Malloc or Reserve (P = uintptr): it packs each launch into
// a kernelParams array in C memory, checking the launch function's C types
// against the C++ compiler's signature, and runs it under Config. The first
// error is kept in Err and later launches are skipped.
type AddrLauncher struct {
	Config Config
	Err    error
}

// Launch packs a and runs k over work items.
func (l *AddrLauncher) Launch(k *kernels.Kernel, work int, a kernels.Args[uintptr]) {
	if l.Err != nil {
		return
	}
	l.Err = launchAddrs(k, l.Config(work), a)
}

func launchAddrs(k *kernels.Kernel, l Launch, a kernels.Args[uintptr]) error {
	sig, err := signature(k.Name, a.Len())
	if err != nil {
		return err
	}
	n := a.Len()
	block := C.calloc(C.size_t(2*n+1), 8) // n value slots, then n pointers to them
	defer C.free(block)
	vals := unsafe.Slice((*uint64)(block), n)
	ptrs := unsafe.Slice((*unsafe.Pointer)(unsafe.Add(block, 8*n)), n)
	for i := range n {
		x := a.At(i)
		if x.Type.String() != sig[i] {
			return fmt.Errorf("emu: %s parameter %d (%s): the launch function says %s, the C source %s", k.Name, i, x.Name, x.Type, sig[i])
		}
		switch x.Type {
		case kernels.Int:
			v := x.Int()
			if int(int32(v)) != v {
				return fmt.Errorf("emu: %s parameter %d (%s) = %d does not fit a C int", k.Name, i, x.Name, v)
			}
			*(*int32)(unsafe.Pointer(&vals[i])) = int32(v)
		case kernels.Float:
			*(*float32)(unsafe.Pointer(&vals[i])) = x.Float()
		case kernels.U64:
			vals[i] = x.Bits
		default:
			vals[i] = uint64(x.Ptr)
		}
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	return LaunchParams(k.Name, l, unsafe.Add(block, 8*n), n)
}
