package image

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// TestToPlanes checks the fast conversions against the generic one.
func TestToPlanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	var imgs []image.Image
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		m := image.NewYCbCr(image.Rect(0, 0, 13, 11), ratio)
		for _, p := range [][]uint8{m.Y, m.Cb, m.Cr} {
			for i := range p {
				p[i] = uint8(rng.Uint32())
			}
		}
		imgs = append(imgs, m, m.SubImage(image.Rect(1, 3, 12, 10)), m.SubImage(image.Rect(2, 2, 7, 9)))
	}
	rgba := image.NewRGBA(image.Rect(0, 0, 7, 5))
	for i := 0; i < len(rgba.Pix); i += 4 {
		a := uint8(rng.Uint32())
		rgba.Pix[i+3] = a
		for k := range 3 {
			rgba.Pix[i+k] = uint8(rng.UintN(uint(a) + 1)) // premultiplied
		}
	}
	gray := image.NewGray(image.Rect(0, 0, 7, 5))
	gray16 := image.NewGray16(image.Rect(0, 0, 7, 5))
	cmyk := image.NewCMYK(image.Rect(0, 0, 7, 5))
	for _, p := range [][]uint8{gray.Pix, gray16.Pix, cmyk.Pix} {
		for i := range p {
			p[i] = uint8(rng.Uint32())
		}
	}
	pal := image.NewPaletted(image.Rect(0, 0, 7, 5), color.Palette{color.NRGBA{1, 2, 3, 255}, color.NRGBA{200, 100, 50, 128}, color.Gray{77}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(rng.IntN(3))
	}
	imgs = append(imgs, rgba, gray, gray16, cmyk, pal, testkit.Noise(rng, 7, 5), testkit.Noise(rng, 9, 9).SubImage(image.Rect(2, 3, 8, 7)))

	for k, img := range imgs {
		b := img.Bounds()
		w, h := b.Dx(), b.Dy()
		got := make([]uint8, 3*w*h)
		toPlanes(img, got, 3)
		for y := range h {
			for x := range w {
				var want [3]uint8
				if m, ok := img.(*image.YCbCr); ok {
					c := m.YCbCrAt(b.Min.X+x, b.Min.Y+y)
					want[0], want[1], want[2] = color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				} else {
					c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
					want = [3]uint8{c.R, c.G, c.B}
				}
				for c := range 3 {
					if d := int(got[c*w*h+y*w+x]) - int(want[c]); d < -1 || d > 1 {
						t.Fatalf("image %d (%T %v): pixel (%d,%d) channel %d = %d, want %d", k, img, b, x, y, c, got[c*w*h+y*w+x], want[c])
					}
				}
			}
		}
	}
}
