package kernels

import "math"

// CType is the C type of a kernel parameter.
type CType uint8

// The parameter types the kernels use.
const (
	FloatPtr       CType = iota // float*
	ConstFloatPtr               // const float*
	IntPtr                      // int*
	ConstIntPtr                 // const int*
	ConstBytePtr                // const unsigned char*
	Int                         // int
	Float                       // float
	U64                         // unsigned long long
	U16Ptr                      // unsigned short* (bfloat16)
	ConstU16Ptr                 // const unsigned short*
	ConstDoublePtr              // const double*
)

var ctypeNames = [...]string{"float*", "const float*", "int*", "const int*", "const unsigned char*", "int", "float", "unsigned long long",
	"unsigned short*", "const unsigned short*", "const double*"}

// String is the type as C spells it.
func (t CType) String() string {
	if int(t) < len(ctypeNames) {
		return ctypeNames[t]
	}
	return "?"
}

// IsPtr reports whether the parameter is a pointer (its value is Arg.Ptr).
func (t CType) IsPtr() bool { return t <= ConstBytePtr || t >= U16Ptr }

// Arg is one argument of a launch: the parameter's name and C type as the .cu
// source declares them, and the value, Ptr for a pointer, otherwise Bits (an
// int as int64 bits, a float as math.Float32bits, an unsigned long long).
type Arg[P any] struct {
	Name string
	Type CType
	Ptr  P
	Bits uint64
}

// Int is the value of an Int argument.
func (a Arg[P]) Int() int { return int(int64(a.Bits)) }

// Float is the value of a Float argument.
func (a Arg[P]) Float() float32 { return math.Float32frombits(uint32(a.Bits)) }

// MaxParams is the most parameters a kernel may have.
const MaxParams = 16

// Args is the argument list of one launch, in parameter order. It is a
// value (a fixed array), so building one and handing it to a Launcher
// allocates nothing.
type Args[P any] struct {
	n int
	a [MaxParams]Arg[P]
}

// Len is the number of arguments.
func (a *Args[P]) Len() int { return a.n }

// At is argument i.
func (a *Args[P]) At(i int) Arg[P] { return a.a[i] }

func (a *Args[P]) add(name string, t CType, p P, bits uint64) *Args[P] {
	a.a[a.n] = Arg[P]{Name: name, Type: t, Ptr: p, Bits: bits} // panics past MaxParams: a bug in this package
	a.n++
	return a
}

func (a *Args[P]) ptr(name string, t CType, p P) *Args[P] { return a.add(name, t, p, 0) }
func (a *Args[P]) i(name string, v int) *Args[P]          { return a.add(name, Int, *new(P), uint64(int64(v))) }
func (a *Args[P]) f(name string, v float32) *Args[P] {
	return a.add(name, Float, *new(P), uint64(math.Float32bits(v)))
}
func (a *Args[P]) u64(name string, v uint64) *Args[P] { return a.add(name, U64, *new(P), v) }

// Launcher runs kernels: the GPU backend packs the arguments for
// cuLaunchKernel, the emulator (kernels/emu) runs the host-compiled C. Launch
// runs k over work grid-stride work items, Grid(work) blocks of Block
// threads, nothing when work <= 0. P is the launcher's pointer type (a
// device address, a host slice). Errors are the launcher's to keep.
type Launcher[P any] interface {
	Launch(k *Kernel, work int, args Args[P])
}

// Conv is the geometry parameters of the conv kernels (device.ConvGeom with
// PH = PadH, PW = PadW).
type Conv struct{ C, N, H, W, KH, KW, SH, SW, PH, PW, OH, OW int }

func (a *Args[P]) conv(g Conv) {
	a.i("C", g.C).i("N", g.N).i("H", g.H).i("W", g.W).i("KH", g.KH).i("KW", g.KW).
		i("SH", g.SH).i("SW", g.SW).i("PH", g.PH).i("PW", g.PW).i("OH", g.OH).i("OW", g.OW)
}

// Pool is the geometry parameters of the pool kernels (device.PoolGeom with
// P = Planes).
type Pool struct{ P, H, W, KH, KW, SH, SW, OH, OW int }

func (a *Args[P]) pool(g Pool) {
	a.i("P", g.P).i("H", g.H).i("W", g.W).i("KH", g.KH).i("KW", g.KW).
		i("SH", g.SH).i("SW", g.SW).i("OH", g.OH).i("OW", g.OW)
}
