//go:build cgo

package emu

/*
#cgo CXXFLAGS: -std=c++17 -O2 -Wall
#include <stdlib.h>
#include "launch.h"
*/
import "C"

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/trainer-go/trainer/kernels"
)

// Launch is one grid: Grid blocks of Block threads, run in increasing block
// and thread order, or decreasing when Reverse. From > 0 runs only blocks
// From..Grid-1 of the grid (blockIdx and gridDim as in the whole grid): the
// tail of an index space too large to run whole, e.g. past 2^31 elements.
type Launch struct {
	Grid, Block int
	Reverse     bool
	From        int
}

// Config picks the launch for a kernel with a number of work items.
type Config func(work int) Launch

// GPU is the launch configuration of the GPU backend: kernels.Grid(work)
// blocks of kernels.Block threads.
func GPU(work int) Launch { return Launch{Grid: kernels.Grid(work), Block: kernels.Block} }

// Fixed launches grid blocks of block threads whatever the work, so small
// grids exercise the grid-stride loops.
func Fixed(grid, block int, reverse bool) Config {
	return func(int) Launch { return Launch{Grid: grid, Block: block, Reverse: reverse} }
}

// Signatures maps each kernel compiled into the emulator to its C parameter
// types in order, as the C++ compiler sees them.
func Signatures() map[string][]string {
	out := map[string][]string{}
	for i := range int(C.emu_kernels()) {
		out[C.GoString(C.emu_kernel_name(C.int(i)))] = strings.Split(C.GoString(C.emu_kernel_sig(C.int(i))), ",")
	}
	return out
}

var (
	sigOnce sync.Once
	sigs    map[string][]string

	launchedMu sync.Mutex
	launched   = map[string]int{}
)

// Launched reports how many times each kernel has been run by Run.
func Launched() map[string]int {
	launchedMu.Lock()
	defer launchedMu.Unlock()
	return maps.Clone(launched)
}

// guard is the number of elements fenced off before and after each buffer.
const guard = 64

// Fill patterns of the guard zones: a quiet NaN for floats (and the same bits
// for int32), 0xA5 in every byte of other element sizes (bytes, bfloat16s,
// doubles).
const (
	guard32 = 0x7fc0dead
	guard8  = 0xa5
)

type buffer struct {
	mem   unsafe.Pointer // the C allocation: guard, data, guard
	elem  int            // element size in bytes
	n     int            // elements
	src   []byte         // the Go slice's bytes
	write bool           // copy back after the launch
	arg   int            // first argument index, for messages
}

func (b *buffer) data() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(b.mem, guard*b.elem)), b.n*b.elem)
}

func (b *buffer) guards() ([]byte, []byte) {
	all := unsafe.Slice((*byte)(b.mem), (b.n+2*guard)*b.elem)
	return all[:guard*b.elem], all[(guard+b.n)*b.elem:]
}

func guardPattern(elem int) []byte {
	p := make([]byte, guard*elem)
	for i := 0; i < len(p); i += elem {
		if elem == 4 {
			*(*uint32)(unsafe.Pointer(&p[i])) = guard32
		} else {
			for j := range elem {
				p[i+j] = guard8
			}
		}
	}
	return p
}

// sliceBytes views a []float32, []int32, []uint8, []uint16 or []float64 as
// bytes; ok is false for anything else.
func sliceBytes(a any) (b []byte, elem int, isNil bool, ok bool) {
	switch s := a.(type) {
	case []float32:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s)), 4, s == nil, true
	case []int32:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s)), 4, s == nil, true
	case []uint8:
		return unsafe.Slice(unsafe.SliceData(s), len(s)), 1, s == nil, true
	case []uint16:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 2*len(s)), 2, s == nil, true
	case []float64:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 8*len(s)), 8, s == nil, true
	}
	return nil, 0, false, false
}

// goType is the Go argument type Run takes for a C parameter type.
var goType = map[string]string{
	"float*":                "[]float32",
	"const float*":          "[]float32",
	"int*":                  "[]int32",
	"const int*":            "[]int32",
	"const unsigned char*":  "[]uint8",
	"unsigned short*":       "[]uint16",
	"const unsigned short*": "[]uint16",
	"const double*":         "[]float64",
	"int":                   "int",
	"unsigned long long":    "uint64",
	"float":                 "float32",
}

// Run launches the named kernel with args in the kernel's parameter order:
// a []float32, []int32, []uint8, []uint16 (bfloat16) or []float64 for each
// pointer, as its C type says (nil for NULL), an int for
// each int, a uint64 for each unsigned long long and a float32 for each
// float. Slices are copied to C memory and,
// for non-const pointers, back again; the same slice passed twice is one
// buffer (in-place ops), partly overlapping slices are an error. The error
// also reports writes outside a buffer or into a const one.
func Run(name string, l Launch, args ...any) error {
	sig, err := signature(name, len(args))
	if err != nil {
		return err
	}
	p := &packer{name: name, sig: sig}
	defer p.free()
	argv := p.alloc(len(args) * int(unsafe.Sizeof(uintptr(0))))
	argp := unsafe.Slice((*unsafe.Pointer)(argv), len(args))
	for i, a := range args {
		cell := p.alloc(8) // the argument's value
		argp[i] = cell
		if err := p.pack(i, a, cell); err != nil {
			return err
		}
	}
	if err := launch(name, l, argv, len(args)); err != nil {
		return err
	}
	return p.finish(l)
}

// signature is the named kernel's C parameter types, checked against the
// number of arguments.
func signature(name string, nargs int) ([]string, error) {
	sigOnce.Do(func() { sigs = Signatures() })
	sig, ok := sigs[name]
	if !ok {
		return nil, fmt.Errorf("emu: no kernel %s", name)
	}
	if nargs != len(sig) {
		return nil, fmt.Errorf("emu: %s takes %d arguments, got %d", name, len(sig), nargs)
	}
	return sig, nil
}

// launch runs the kernel on the kernelParams array argv and counts it.
func launch(name string, l Launch, argv unsafe.Pointer, nargs int) error {
	rev := C.int(0)
	if l.Reverse {
		rev = 1
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if rc := C.emu_launch(cname, C.int(l.Grid), C.int(l.Block), C.int(l.From), rev, (*unsafe.Pointer)(argv), C.int(nargs)); rc != 0 {
		why := ""
		if rc == -4 {
			why = " (it calls __syncthreads: register it with KERNEL_BARRIERS in kernels.cc)"
		}
		return fmt.Errorf("emu: launching %s <<<%d, %d>>> from block %d: error %d%s", name, l.Grid, l.Block, l.From, rc, why)
	}
	launchedMu.Lock()
	launched[name]++
	launchedMu.Unlock()
	return nil
}

// packer turns Run's Go arguments into a kernelParams array in C memory.
type packer struct {
	name  string
	sig   []string
	bufs  []*buffer
	cells []unsafe.Pointer
}

func (p *packer) alloc(bytes int) unsafe.Pointer {
	c := C.calloc(1, C.size_t(bytes))
	p.cells = append(p.cells, c)
	return c
}

func (p *packer) free() {
	for _, b := range p.bufs {
		C.free(b.mem)
	}
	for _, c := range p.cells {
		C.free(c)
	}
}

// pack stores argument i, a, into cell.
func (p *packer) pack(i int, a any, cell unsafe.Pointer) error {
	t := p.sig[i]
	want := goType[t]
	bad := func() error {
		return fmt.Errorf("emu: %s argument %d (%s) must be %s, got %T", p.name, i, t, want, a)
	}
	switch want {
	case "int":
		v, ok := a.(int)
		if !ok {
			return bad()
		}
		if int(int32(v)) != v {
			return fmt.Errorf("emu: %s argument %d = %d does not fit a C int", p.name, i, v)
		}
		*(*int32)(cell) = int32(v)
	case "uint64":
		v, ok := a.(uint64)
		if !ok {
			return bad()
		}
		*(*uint64)(cell) = v
	case "float32":
		v, ok := a.(float32)
		if !ok {
			return bad()
		}
		*(*float32)(cell) = v
	case "":
		return fmt.Errorf("emu: %s argument %d has unsupported C type %s", p.name, i, t)
	default:
		if fmt.Sprintf("%T", a) != want {
			return bad()
		}
		return p.packSlice(i, a, cell)
	}
	return nil
}

// packSlice copies a slice argument into a guarded C buffer (or reuses the
// buffer of the same slice passed before) and stores its address in cell.
func (p *packer) packSlice(i int, a any, cell unsafe.Pointer) error {
	src, elem, isNil, _ := sliceBytes(a)
	if isNil {
		*(*unsafe.Pointer)(cell) = nil
		return nil
	}
	var b *buffer
	for _, o := range p.bufs {
		if len(src) > 0 && len(o.src) > 0 && overlaps(src, o.src) {
			if unsafe.SliceData(src) != unsafe.SliceData(o.src) || len(src) != len(o.src) {
				return fmt.Errorf("emu: %s arguments %d and %d overlap partly", p.name, o.arg, i)
			}
			b = o
		}
	}
	if b == nil {
		n := len(src) / elem
		b = &buffer{mem: C.malloc(C.size_t((n + 2*guard) * elem)), elem: elem, n: n, src: src, arg: i}
		p.bufs = append(p.bufs, b)
		lo, hi := b.guards()
		copy(lo, guardPattern(elem))
		copy(hi, guardPattern(elem))
		copy(b.data(), src)
	}
	b.write = b.write || !strings.HasPrefix(p.sig[i], "const ")
	*(*unsafe.Pointer)(cell) = unsafe.Add(b.mem, guard*elem)
	return nil
}

// finish checks the guard zones and const buffers and copies the written
// buffers back to their slices.
func (p *packer) finish(l Launch) error {
	var errs []string
	for _, b := range p.bufs {
		lo, hi := b.guards()
		pat := guardPattern(b.elem)
		if !bytes.Equal(lo, pat) || !bytes.Equal(hi, pat) {
			errs = append(errs, fmt.Sprintf("wrote outside argument %d (%s, %d elements)", b.arg, p.sig[b.arg], b.n))
		}
		if b.write {
			copy(b.src, b.data())
		} else if !bytes.Equal(b.src, b.data()) {
			errs = append(errs, fmt.Sprintf("wrote to const argument %d (%s)", b.arg, p.sig[b.arg]))
		}
	}
	if errs != nil {
		return fmt.Errorf("emu: %s <<<%d, %d>>>: %s", p.name, l.Grid, l.Block, strings.Join(errs, "; "))
	}
	return nil
}

func overlaps(a, b []byte) bool {
	a0 := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(len(b)) && b0 < a0+uintptr(len(a))
}

// Kernels lists the kernels compiled into the emulator, sorted.
func Kernels() []string {
	var names []string
	for n := range Signatures() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
