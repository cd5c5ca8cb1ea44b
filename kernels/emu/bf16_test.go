//go:build cgo

package emu

import (
	"fmt"
	"math"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// bf16Inputs are random float32 bit patterns (every exponent, NaNs and
// infinities among them), values halfway between two bfloat16s and next to
// halfway, subnormals, the largest finite values, signed zeros and
// infinities.
func bf16Inputs(t *testing.T) []float32 {
	r := rng(t)
	var xs []float32
	for range 20000 {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	for range 2000 {
		base := r.Uint32() &^ 0xffff
		for _, d := range []uint32{0x7fff, 0x8000, 0x8001, 0, 0xffff} {
			xs = append(xs, math.Float32frombits(base|d))
		}
	}
	for _, u := range []uint32{0, 0x80000000, 1, 0x807fffff, 0x7f7fffff, 0xff7f8000, 0x7f7f7fff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001} {
		xs = append(xs, math.Float32frombits(u))
	}
	return xs
}

// TestBF16Convert: f32_to_bf16 against device.BF16Bits (itself checked
// against an independent nearest-neighbour rounding in package device),
// bit for bit, NaNs included; bf16_to_f32 against device.BF16Float, on
// every one of the 65,536 bit patterns.
func TestBF16Convert(t *testing.T) {
	x := bf16Inputs(t)
	out := each(t, func(cfg Config) ([]any, error) {
		y := make([]uint16, len(x))
		for i := range y {
			y[i] = 0xdead
		}
		return []any{y}, F32ToBF16(cfg, x, y, len(x))
	})
	for i, h := range out[0].([]uint16) {
		if want := device.BF16Bits(x[i]); h != want {
			t.Fatalf("f32_to_bf16(%g = %#x) = %#04x, want %#04x", x[i], math.Float32bits(x[i]), h, want)
		}
	}
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	out = each(t, func(cfg Config) ([]any, error) {
		y := nans(len(all))
		return []any{y}, BF16ToF32(cfg, all, y, len(all))
	})
	for i, f := range out[0].([]float32) {
		if math.Float32bits(f) != math.Float32bits(device.BF16Float(all[i])) {
			t.Fatalf("bf16_to_f32(%#04x) = %#x, want %#x", all[i], math.Float32bits(f), math.Float32bits(device.BF16Float(all[i])))
		}
	}
}

// TestIm2ColBF16: im2col_bf16 is the reference im2col with every value
// rounded by device.BF16Bits, bit for bit.
func TestIm2ColBF16(t *testing.T) {
	for _, g := range convGeoms {
		t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
			x := randF32(rng(t), g.C*g.N*g.H*g.W)
			out := each(t, func(cfg Config) ([]any, error) {
				col := make([]uint16, g.ColRows()*g.ColCols())
				for i := range col {
					col[i] = 0x7fc1
				}
				return []any{col}, Im2ColBF16(cfg, g, x, col)
			})
			for i, want := range refIm2Col(g, x) {
				if got := out[0].([]uint16)[i]; got != device.BF16Bits(want) {
					t.Fatalf("col[%d] = %#04x, want %#04x (%g)", i, got, device.BF16Bits(want), want)
				}
			}
		})
	}
}
