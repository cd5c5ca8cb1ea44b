package cpu_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/trainer-go/trainer/device"
)

// refShift is the naive index reference of Augment and Translate: image
// j's destination (y, x) reads source row y+oy and column xs+ox, xs =
// flip ? w-1-x : x, mirrored into the image by device.Reflect (reflect) or
// 0 outside it.
func refShift(src []float32, g augGeom, reflect bool, draw func(j int) (oy, ox int, flip bool)) []float32 {
	h, w := g.h, g.w
	dst := make([]float32, len(src))
	for j := range g.n {
		oy, ox, flip := draw(j)
		for ch := range g.c {
			plane := (ch*g.n + j) * h * w
			for y := range h {
				for x := range w {
					xs := x
					if flip {
						xs = w - 1 - x
					}
					sy, sx := y+oy, xs+ox
					if reflect {
						sy, sx = device.Reflect(sy, h), device.Reflect(sx, w)
					} else if sy < 0 || sy >= h || sx < 0 || sx >= w {
						continue
					}
					dst[plane+y*w+x] = src[plane+sy*w+sx]
				}
			}
		}
	}
	return dst
}

// shiftOut runs op on a NaN-filled dst with room after the batch, checks
// the room and src are untouched, and returns the batch.
func shiftOut(t *testing.T, b device.Backend, src []float32, op func(src, dst device.Buffer)) []float32 {
	t.Helper()
	dst := make([]float32, len(src)+5)
	for i := range dst {
		dst[i] = float32(math.NaN())
	}
	sb, db := upload(t, b, slices.Concat(src, []float32{7, 7, 7})), upload(t, b, dst)
	op(sb, db)
	out := download(t, b, db)
	for _, v := range out[len(src):] {
		if v == v {
			t.Fatalf("wrote past the batch: %v", out[len(src):])
		}
	}
	if got := download(t, b, sb); !slices.Equal(got[:len(src)], src) {
		t.Fatal("src changed")
	}
	return out[:len(src)]
}

// TestAugmentReflectNoFlip: reflect padding and noFlip (and zero padding
// with and without noFlip), every pixel against the naive reference, on
// odd sizes, over several steps and thread counts.
func TestAugmentReflectNoFlip(t *testing.T) {
	for _, g := range []augGeom{{3, 5, 7, 9, 1}, {3, 5, 7, 9, 3}, {2, 4, 7, 9, 6}, {1, 3, 2, 3, 1}, {3, 5, 7, 9, 0}, {3, 300, 7, 9, 2}} {
		src := codes(g.c, g.n, g.h, g.w)
		for _, threads := range testThreads {
			b := newBackend(t, threads)
			for _, mode := range [][2]bool{{true, false}, {true, true}, {false, true}, {false, false}} {
				reflect, noFlip := mode[0], mode[1]
				for step := range 3 {
					const seed = 77
					got := shiftOut(t, b, src, func(s, d device.Buffer) {
						b.Augment(s, d, g.c, g.n, g.h, g.w, g.pad, reflect, noFlip, seed, step)
					})
					want := refShift(src, g, reflect, func(j int) (int, int, bool) {
						dy, dx, flip := device.AugmentDraw(seed, step, j, g.pad)
						return dy - g.pad, dx - g.pad, flip && !noFlip
					})
					sameF32(t, fmt.Sprintf("%+v reflect %v noFlip %v step %d threads %d", g, reflect, noFlip, step, threads), got, want)
				}
			}
		}
	}
}

// TestTranslate: every shift |dy| < h, |dx| < w, with and without flip,
// against the naive reference.
func TestTranslate(t *testing.T) {
	for _, g := range []augGeom{{3, 5, 7, 9, 0}, {2, 3, 1, 5, 0}, {1, 2, 4, 1, 0}, {3, 300, 7, 9, 0}} {
		src := codes(g.c, g.n, g.h, g.w)
		for _, threads := range testThreads {
			b := newBackend(t, threads)
			for dy := -g.h + 1; dy < g.h; dy++ {
				for dx := -g.w + 1; dx < g.w; dx++ {
					for _, flip := range []bool{false, true} {
						got := shiftOut(t, b, src, func(s, d device.Buffer) {
							b.Translate(s, d, g.c, g.n, g.h, g.w, dy, dx, flip)
						})
						want := refShift(src, g, true, func(int) (int, int, bool) { return dy, dx, flip })
						sameF32(t, fmt.Sprintf("%+v dy %d dx %d flip %v threads %d", g, dy, dx, flip, threads), got, want)
					}
				}
			}
		}
	}
}
