package cpu_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

func newBackend(t *testing.T, threads int) *cpu.Backend {
	t.Helper()
	b, err := cpu.New(device.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func upload(t *testing.T, b device.Backend, v []float32) device.Buffer {
	t.Helper()
	buf, err := b.Alloc("test", device.F32, len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.UploadF32(buf, 0, v); err != nil {
		t.Fatal(err)
	}
	return buf
}

func download(t *testing.T, b device.Backend, buf device.Buffer) []float32 {
	t.Helper()
	v := make([]float32, buf.Len())
	if err := b.DownloadF32(buf, 0, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// augment runs Backend.Augment on a fresh NaN-filled dst with extra room
// after the batch, checks that the room is untouched, and returns the batch.
func augment(t *testing.T, b device.Backend, src []float32, c, n, h, w, pad int, seed uint64, step int) []float32 {
	t.Helper()
	const extra = 5
	dst := make([]float32, c*n*h*w+extra)
	for i := range dst {
		dst[i] = float32(math.NaN())
	}
	sb, db := upload(t, b, slices.Concat(src, []float32{7, 7, 7})), upload(t, b, dst)
	b.Augment(sb, db, c, n, h, w, pad, false, false, seed, step)
	out := download(t, b, db)
	for _, v := range out[c*n*h*w:] {
		if v == v {
			t.Fatalf("Augment wrote past the batch: %v", out[c*n*h*w:])
		}
	}
	if got := download(t, b, sb); !slices.Equal(got[:len(src)], src) {
		t.Fatal("Augment changed src")
	}
	return out[:c*n*h*w]
}

// TestAugmentByHand checks two small images against outputs written out by
// hand. Seed 1, step 0, pad 1: image 0 draws dy 1, dx 2, no flip (hash
// 0x5e41ab087439611e), image 1 dy 0, dx 2, flip (0xf18d6ce93d6cf1ee).
func TestAugmentByHand(t *testing.T) {
	const c, n, h, w, pad = 2, 2, 3, 4, 1
	for j, want := range [][4]any{{1, 2, false, uint64(0x5e41ab087439611e)}, {0, 2, true, uint64(0xf18d6ce93d6cf1ee)}} {
		if hv := device.AugmentHash(1, 0, j); hv != want[3].(uint64) {
			t.Fatalf("AugmentHash(1, 0, %d) = %#x, want %#x", j, hv, want[3])
		}
		if dy, dx, flip := device.AugmentDraw(1, 0, j, pad); dy != want[0] || dx != want[1] || flip != want[2] {
			t.Fatalf("AugmentDraw(1, 0, %d, 1) = %d, %d, %v, want %v", j, dy, dx, flip, want[:3])
		}
	}
	// src[ch, j, y, x] = 1000*ch + 100*j + 1 + 4*y + x
	src := make([]float32, c*n*h*w)
	for i := range src {
		x, y, j, ch := i%w, i/w%h, i/(w*h)%n, i/(w*h*n)
		src[i] = float32(1000*ch + 100*j + 1 + 4*y + x)
	}
	want := []float32{
		// channel 0, image 0: shifted left by one column (source column
		// x+1), the last column from the padding.
		2, 3, 4, 0,
		6, 7, 8, 0,
		10, 11, 12, 0,
		// channel 0, image 1: shifted down by one row (source row y-1),
		// mirrored, source column 4-x.
		0, 0, 0, 0,
		0, 104, 103, 102,
		0, 108, 107, 106,
		// channel 1: the same draws.
		1002, 1003, 1004, 0,
		1006, 1007, 1008, 0,
		1010, 1011, 1012, 0,
		0, 0, 0, 0,
		0, 1104, 1103, 1102,
		0, 1108, 1107, 1106,
	}
	for _, threads := range []int{1, 3} {
		got := augment(t, newBackend(t, threads), src, c, n, h, w, pad, 1, 0)
		if !slices.Equal(got, want) {
			t.Fatalf("%d threads:\n got %v\nwant %v", threads, got, want)
		}
	}
}

// codes is a CNHW batch whose every element is a distinct positive value
// that names its position: 1 + ((ch*n+j)*h+y)*w+x.
func codes(c, n, h, w int) []float32 {
	s := make([]float32, c*n*h*w)
	for i := range s {
		s[i] = float32(i + 1)
	}
	return s
}

// TestAugmentProperty checks every output element of many images: it is the
// source pixel the draw of device.AugmentDraw names, or 0 exactly where that
// pixel is outside the image. The draws are also recovered from the output
// alone (from the pixel values, which name their source position) and their
// statistics checked: every offset in [0, 2*pad] occurs about equally often
// in both directions, and about half the images are flipped.
func TestAugmentProperty(t *testing.T) {
	b := newBackend(t, 4)
	for _, s := range [][5]int{{3, 512, 32, 32, 4}, {1, 600, 28, 28, 2}, {2, 300, 7, 5, 3}, {1, 400, 6, 6, 0}, {1, 50, 3, 4, 6}} {
		g := augGeom{c: s[0], n: s[1], h: s[2], w: s[3], pad: s[4]}
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			src := codes(g.c, g.n, g.h, g.w)
			r := 2*g.pad + 1
			st := drawStats{dy: make([]int, r), dx: make([]int, r)}
			for step := 0; step < 4; step++ {
				const seed = 0xc1fa5
				out := augment(t, b, src, g.c, g.n, g.h, g.w, g.pad, seed, step)
				for j := 0; j < g.n; j++ {
					dy, dx, flip := device.AugmentDraw(seed, step, j, g.pad)
					if dy < 0 || dy >= r || dx < 0 || dx >= r {
						t.Fatalf("image %d: draw dy %d, dx %d outside [0, %d]", j, dy, dx, 2*g.pad)
					}
					seen := false // recovered the draw from a pixel
					for ch := 0; ch < g.c; ch++ {
						for y := 0; y < g.h; y++ {
							for x := 0; x < g.w; x++ {
								seen = g.checkPixel(t, src, out, step, j, ch, y, x, dy, dx, flip, seen)
							}
						}
					}
					if !seen && 2*g.pad < min(g.h, g.w) {
						t.Fatalf("image %d: no source pixel in the crop", j)
					}
					st.add(dy, dx, flip)
				}
			}
			st.check(t, r)
		})
	}
}

// augGeom is the shape of an Augment call.
type augGeom struct{ c, n, h, w, pad int }

// checkPixel checks output pixel (ch, y, x) of image j against the source
// pixel its draw names (or 0 outside the image); unless seen, it also
// decodes the draw from this pixel and its right neighbour and checks it
// matches. It returns whether the draw has now been decoded.
func (g augGeom) checkPixel(t *testing.T, src, out []float32, step, j, ch, y, x, dy, dx int, flip, seen bool) bool {
	t.Helper()
	h, w, n, pad := g.h, g.w, g.n, g.pad
	sy, sx := y+dy-pad, x
	if flip {
		sx = w - 1 - x
	}
	sx += dx - pad
	want := float32(0)
	if sy >= 0 && sy < h && sx >= 0 && sx < w {
		want = src[((ch*n+j)*h+sy)*w+sx]
	}
	got := out[((ch*n+j)*h+y)*w+x]
	if math.Float32bits(got) != math.Float32bits(want) {
		t.Fatalf("step %d image %d (dy %d dx %d flip %v) [%d, %d, %d]: got %v, want %v",
			step, j, dy, dx, flip, ch, y, x, got, want)
	}
	if got == 0 || seen || x+1 >= w {
		return seen
	}
	// Decode this pixel and its right neighbour.
	nb := out[((ch*n+j)*h+y)*w+x+1]
	if nb == 0 {
		return seen
	}
	code := int(got) - 1
	gy, gx := code/w%h, code%w
	gflip := nb == got-1
	gdx := gx - x + pad
	if gflip {
		gdx = gx - (w - 1 - x) + pad
	}
	if code/(w*h) != ch*n+j || gy-y+pad != dy || gdx != dx || gflip != flip {
		t.Fatalf("image %d: decoded dy %d dx %d flip %v, drawn %d %d %v", j, gy-y+pad, gdx, gflip, dy, dx, flip)
	}
	return true
}

// drawStats counts the draws seen.
type drawStats struct {
	dy, dx        []int
	flips, images int
}

func (s *drawStats) add(dy, dx int, flip bool) {
	s.dy[dy]++
	s.dx[dx]++
	if flip {
		s.flips++
	}
	s.images++
}

// check: each offset count is binomial(images, 1/r) and the flip count
// binomial(images, 1/2); allow 5 standard deviations.
func (s *drawStats) check(t *testing.T, r int) {
	t.Helper()
	p := 1 / float64(r)
	sd := math.Sqrt(float64(s.images) * p * (1 - p))
	for v := 0; v < r; v++ {
		for _, cnt := range []struct {
			what string
			got  int
		}{{"dy", s.dy[v]}, {"dx", s.dx[v]}} {
			if math.Abs(float64(cnt.got)-float64(s.images)*p) > 5*sd+0.5 {
				t.Errorf("%s = %d in %d of %d images, expected %.0f", cnt.what, v, cnt.got, s.images, float64(s.images)*p)
			}
		}
	}
	if sdf := math.Sqrt(float64(s.images) * 0.25); math.Abs(float64(s.flips)-float64(s.images)/2) > 5*sdf {
		t.Errorf("%d of %d images flipped", s.flips, s.images)
	}
	t.Logf("%d images: dy %v, dx %v, %d flipped", s.images, s.dy, s.dx, s.flips)
}

// TestAugmentDeterminism: the output depends only on (seed, step, image
// index), not on the thread count or on earlier calls; another step or seed
// gives other draws, and the images of one batch get different draws.
func TestAugmentDeterminism(t *testing.T) {
	const c, n, h, w, pad = 3, 64, 32, 32, 4
	src := codes(c, n, h, w)
	b1, b7 := newBackend(t, 1), newBackend(t, 7)
	a := augment(t, b7, src, c, n, h, w, pad, 99, 12)
	augment(t, b7, src, c, n, h, w, pad, 99, 13) // state between calls must not matter
	if again := augment(t, b7, src, c, n, h, w, pad, 99, 12); !slices.Equal(a, again) {
		t.Fatal("same seed and step, different output")
	}
	if one := augment(t, b1, src, c, n, h, w, pad, 99, 12); !slices.Equal(a, one) {
		t.Fatal("1 thread and 7 threads differ")
	}
	if other := augment(t, b7, src, c, n, h, w, pad, 99, 13); slices.Equal(a, other) {
		t.Fatal("step 12 and 13 give the same output")
	}
	if other := augment(t, b7, src, c, n, h, w, pad, 100, 12); slices.Equal(a, other) {
		t.Fatal("seed 99 and 100 give the same output")
	}
	// Image j of a batch of 64 is image j of a batch of 10: the draw depends
	// on the index, not the batch size.
	small := augment(t, b7, codes(c, 10, h, w), c, 10, h, w, pad, 99, 12)
	for ch := 0; ch < c; ch++ {
		for j := 0; j < 10; j++ {
			got, want := small[(ch*10+j)*h*w:][:h*w], a[(ch*n+j)*h*w:][:h*w]
			for i := range got {
				g, e := got[i], want[i] // codes: offsets within the plane must agree
				if (g == 0) != (e == 0) || (g != 0 && int(g)-1-(ch*10+j)*h*w != int(e)-1-(ch*n+j)*h*w) {
					t.Fatalf("image %d channel %d: batch of 10 and batch of %d disagree", j, ch, n)
				}
			}
		}
	}
	draws := map[[3]int]int{}
	for j := 0; j < n; j++ {
		dy, dx, flip := device.AugmentDraw(99, 12, j, pad)
		f := 0
		if flip {
			f = 1
		}
		draws[[3]int{dy, dx, f}]++
	}
	if len(draws) < 20 { // 162 possible draws for 64 images
		t.Fatalf("only %d distinct draws among %d images: %v", len(draws), n, draws)
	}
}

// TestAugmentAllocs: a steady-state Augment allocates nothing, on one
// worker and on the pool.
func TestAugmentAllocs(t *testing.T) {
	for _, threads := range []int{1, 4} {
		b := newBackend(t, threads)
		const c, n, h, w = 3, 128, 32, 32
		src, dst := upload(t, b, codes(c, n, h, w)), upload(t, b, make([]float32, c*n*h*w))
		step := 0
		if a := testing.AllocsPerRun(20, func() {
			b.Augment(src, dst, c, n, h, w, 4, false, false, 5, step)
			step++
		}); a != 0 {
			t.Errorf("%d threads: %v allocations per Augment", threads, a)
		}
	}
}
