//go:build cgo

package emu

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
static void* emu_addr(uintptr_t a) { return (void*)a; }
*/
import "C"

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"unsafe"
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
