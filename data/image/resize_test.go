package image

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// refWeights is an independent float64 triangle (bilinear) filter as PIL
// defines its BILINEAR resize: output pixel o of n → m sits at source
// coordinate (o+0.5)·n/m (pixel i spans [i, i+1)); the triangle's half-width
// is max(n/m, 1); weights are clipped to the image and renormalised.
func refWeights(n, m int) [][]float64 {
	scale := float64(n) / float64(m)
	support := math.Max(scale, 1)
	ws := make([][]float64, m)
	for o := range ws {
		centre := (float64(o) + 0.5) * scale
		w := make([]float64, n)
		var sum float64
		for i := range n {
			w[i] = math.Max(0, 1-math.Abs(float64(i)+0.5-centre)/support)
			sum += w[i]
		}
		for i := range w {
			w[i] /= sum
		}
		ws[o] = w
	}
	return ws
}

// refResize resizes one sw x sh plane to dw x dh in float64.
func refResize(src []uint8, sw, sh, dw, dh int) []float64 {
	wx, wy := refWeights(sw, dw), refWeights(sh, dh)
	out := make([]float64, dw*dh)
	for oy := range dh {
		for ox := range dw {
			var s float64
			for y, a := range wy[oy] {
				if a == 0 {
					continue
				}
				for x, b := range wx[ox] {
					s += a * b * float64(src[y*sw+x])
				}
			}
			out[oy*dw+ox] = s
		}
	}
	return out
}

// writePNG writes img as a PNG file in dir and returns its path.
func writePNG(t *testing.T, dir, name string, img image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return testkit.WriteTemp(t, name, buf.Bytes())
}

// TestResizeMatchesReference resizes random images, up and down, through
// Decoder.Load and compares every pixel with the float64 reference. The
// tolerance is 0.5 + 1/256 of a level: the output is the reference rounded
// to the nearest uint8, after draw's own rounding to 16 bits (±0.5/257 of a
// level) and float error; a wrong filter (no widening when shrinking, other
// centre alignment, no renormalisation at edges) is off by whole levels.
func TestResizeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dec := NewDecoder()
	sizes := [][4]int{{32, 32, 24, 24}, {7, 5, 13, 11}, {40, 9, 6, 17}, {3, 3, 1, 1}, {1, 6, 5, 2}, {50, 50, 7, 7}, {17, 23, 23, 17}}
	for range 8 {
		sizes = append(sizes, [4]int{1 + rng.IntN(60), 1 + rng.IntN(60), 1 + rng.IntN(40), 1 + rng.IntN(40)})
	}
	const tol = 0.5 + 1.0/256
	worst := 0.0
	for _, sz := range sizes {
		sw, sh, dw, dh := sz[0], sz[1], sz[2], sz[3]
		img := testkit.Noise(rng, sw, sh)
		path := writePNG(t, t.TempDir(), "n.png", img)
		for _, c := range []int{3, 1} {
			got := make([]uint8, c*dw*dh)
			if err := dec.Load(path, got, Shape{C: c, H: dh, W: dw}, true); err != nil {
				t.Fatal(err)
			}
			for ch := range c {
				plane := make([]uint8, sw*sh)
				for i := range plane {
					r, g, b := img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2]
					if c == 1 {
						plane[i] = uint8(math.Floor(0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b) + 0.5))
					} else {
						plane[i] = img.Pix[4*i+ch]
					}
				}
				want := refResize(plane, sw, sh, dw, dh)
				for i, w := range want {
					d := math.Abs(float64(got[ch*dw*dh+i]) - w)
					worst = max(worst, d)
					if d > tol {
						t.Fatalf("%dx%d -> %dx%d, C=%d, channel %d pixel %d: got %d, reference %.4f", sw, sh, dw, dh, c, ch, i, got[ch*dw*dh+i], w)
					}
				}
			}
		}
	}
	t.Logf("largest difference from the reference: %.4f levels", worst)
}

// TestResizeConstant: a constant image stays exactly constant at any size.
func TestResizeConstant(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dec := NewDecoder()
	for range 20 {
		col := color.NRGBA{uint8(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32()), 255}
		sw, sh, dw, dh := 1+rng.IntN(50), 1+rng.IntN(50), 1+rng.IntN(50), 1+rng.IntN(50)
		m := image.NewNRGBA(image.Rect(0, 0, sw, sh))
		for i := 0; i < len(m.Pix); i += 4 {
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = col.R, col.G, col.B, col.A
		}
		path := writePNG(t, t.TempDir(), "c.png", m)
		got := make([]uint8, 3*dw*dh)
		if err := dec.Load(path, got, Shape{C: 3, H: dh, W: dw}, true); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if want := []uint8{col.R, col.G, col.B}[i/(dw*dh)]; v != want {
				t.Fatalf("%v %dx%d -> %dx%d: pixel %d = %d, want %d", col, sw, sh, dw, dh, i, v, want)
			}
		}
	}
}

// TestLoadSameSizeIsExact: an image of the target size is not resampled,
// resizing or not, and without resizing another size is a *SizeError.
func TestLoadSameSizeIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	img := testkit.Noise(rng, 9, 6)
	path := writePNG(t, t.TempDir(), "s.png", img)
	dec := NewDecoder()
	for _, resize := range []bool{true, false} {
		got := make([]uint8, 3*9*6)
		if err := dec.Load(path, got, Shape{C: 3, H: 6, W: 9}, resize); err != nil {
			t.Fatal(err)
		}
		for i := range 9 * 6 {
			for c := range 3 {
				if got[c*54+i] != img.Pix[4*i+c] {
					t.Fatalf("resize=%v: pixel %d channel %d = %d, want %d", resize, i, c, got[c*54+i], img.Pix[4*i+c])
				}
			}
		}
	}
	err := dec.Load(path, make([]uint8, 3*36), Shape{C: 3, H: 6, W: 6}, false)
	if se, ok := err.(*SizeError); !ok || se.W != 9 || se.H != 6 || se.Path != path {
		t.Fatalf("want a *SizeError for 9x6, got %v", err)
	}
}

// TestToFloat: the float input is the uint8 pixel times float32(1.0/255),
// the trainer's gather, not v/255 (which differs in the last bit for some v).
func TestToFloat(t *testing.T) {
	src := make([]uint8, 256)
	for i := range src {
		src[i] = uint8(i)
	}
	dst := make([]float32, 256)
	ToFloat(dst, src)
	scale := float32(1.0 / 255)
	for i, v := range dst {
		if v != float32(i)*scale || v < 0 || v > 1 {
			t.Fatalf("ToFloat(%d) = %v", i, v)
		}
	}
}
