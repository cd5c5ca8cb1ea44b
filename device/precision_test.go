package device

import (
	"math"
	"math/rand/v2"
	"testing"
)

// nearest rounds x to the grid of floats whose low `drop` mantissa bits are
// zero, by another route than BF16Bits/RoundTF32: it takes the two
// neighbours on that grid, lo (toward zero) and hi (away from zero, possibly
// infinity), and picks the nearer in float64 (both differences are exact),
// breaking ties to the neighbour with an even last kept bit (even) or away
// from zero (!even). Overflow: hi past the largest finite value is
// infinity, chosen when x is at least half a step above the largest.
func nearest(x float32, drop uint, even bool) float32 {
	u := math.Float32bits(x)
	step := uint32(1) << drop
	lo := u &^ (step - 1)
	hi := lo + step // the next grid value away from zero (exponent carry included)
	flo, fhi := math.Float32frombits(lo), math.Float32frombits(hi)
	if lo&0x7f800000 == 0x7f800000 {
		return flo // infinity
	}
	dlo, dhi := math.Abs(float64(x)-float64(flo)), 0.0
	if math.IsInf(float64(fhi), 0) {
		// The step beyond the largest finite value.
		big := float64(math.Float32frombits(lo)) + math.Copysign(float64(uint64(1)<<(drop))*math.Pow(2, float64(int(lo>>23&0xff)-127-23)), float64(x))
		dhi = math.Abs(big - float64(x))
	} else {
		dhi = math.Abs(float64(fhi) - float64(x))
	}
	switch {
	case dlo < dhi:
		return flo
	case dhi < dlo:
		return fhi
	case even:
		if lo>>drop&1 == 0 {
			return flo
		}
		return fhi
	}
	return fhi
}

// roundingCases are random bit patterns of every exponent, halfway cases,
// neighbours of halfway, subnormals, the largest finite values, zeros,
// infinities.
func roundingCases(drop uint) []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	var xs []float32
	for range 200000 {
		xs = append(xs, math.Float32frombits(rng.Uint32()))
	}
	half := uint32(1) << (drop - 1)
	for range 20000 {
		base := rng.Uint32() &^ (uint32(1)<<drop - 1)
		for _, d := range []uint32{half - 1, half, half + 1, 0, 1, uint32(1)<<drop - 1} {
			xs = append(xs, math.Float32frombits(base|d))
		}
	}
	for _, u := range []uint32{0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x00800000, 0x7f7fffff, 0xff7fffff,
		0x7f7f8000, 0x7f7f7fff, 0x7f7fefff, 0x7f7ff000, 0x7f800000, 0xff800000} {
		xs = append(xs, math.Float32frombits(u))
	}
	return xs
}

func TestRoundBF16(t *testing.T) {
	for _, x := range roundingCases(16) {
		got := RoundBF16(x)
		if x != x {
			if got == got || BF16Bits(x) != 0x7fff {
				t.Fatalf("RoundBF16(NaN %#x) = %#x, want the canonical NaN 0x7fff", math.Float32bits(x), BF16Bits(x))
			}
			continue
		}
		want := nearest(x, 16, true)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("RoundBF16(%g = %#x) = %g (%#x), want %g (%#x)", x, math.Float32bits(x), got, math.Float32bits(got), want, math.Float32bits(want))
		}
		if uint32(BF16Bits(x))<<16 != math.Float32bits(got) || BF16Float(BF16Bits(x)) != got {
			t.Fatalf("BF16Bits/BF16Float disagree with RoundBF16 at %#x", math.Float32bits(x))
		}
	}
}

func TestRoundTF32(t *testing.T) {
	for _, x := range roundingCases(13) {
		got := RoundTF32(x)
		if x != x {
			if got == got || math.Float32bits(got)&0x1fff != 0 {
				t.Fatalf("RoundTF32(NaN %#x) = %#x, want a NaN with 13 zero low bits", math.Float32bits(x), math.Float32bits(got))
			}
			continue
		}
		if want := nearest(x, 13, false); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("RoundTF32(%g = %#x) = %g (%#x), want %g (%#x)", x, math.Float32bits(x), got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
}

func TestParsePrecision(t *testing.T) {
	for _, p := range []Precision{PrecisionFP32, PrecisionTF32, PrecisionBF16} {
		q, err := ParsePrecision(p.String())
		if err != nil || q != p {
			t.Errorf("ParsePrecision(%q) = %v, %v", p.String(), q, err)
		}
	}
	var zero Precision
	if zero != PrecisionFP32 {
		t.Error("the zero Precision is not fp32")
	}
	for _, bad := range []string{"", "FP32", "fp16", "half"} {
		if _, err := ParsePrecision(bad); err == nil {
			t.Errorf("ParsePrecision(%q) accepted", bad)
		}
	}
}
