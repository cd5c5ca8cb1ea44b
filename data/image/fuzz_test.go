package image

// Tests of the decoder: fuzzing (run with scripts/fuzz.sh, or
//
//	go test -run='^$' -fuzz='^FuzzDecodeImage$' -fuzztime=30s ./data/image
//
// ), the pixel conversions, and the resizer against a float64 reference.

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// ---- image folders: one image's decode and resize ----

// fuzzEncode returns img encoded as PNG, or as JPEG at the given quality.
func fuzzEncode(t testing.TB, img image.Image, format string, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzDecodeImage decodes the input as one image of an image folder (the
// decoder each of LoadFolder's workers uses): to a w x h target (resized, or required
// to match exactly), then again with the same decoder to another size, as a
// worker reuses its buffers. Source images are capped lower than in
// LoadFolder (the cap is what is tested, not its value) to keep the fuzzer
// fast.
func FuzzDecodeImage(f *testing.F) {
	defer func(s, p int) { maxSide, maxPixels = s, p }(maxSide, maxPixels)
	maxSide, maxPixels = 2048, 1<<20

	rng := rand.New(rand.NewPCG(5, 6))
	pal := image.NewPaletted(image.Rect(0, 0, 5, 3), color.Palette{color.Black, color.White, color.NRGBA{200, 10, 10, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	g16 := image.NewGray16(image.Rect(0, 0, 3, 7))
	for i := range g16.Pix {
		g16.Pix[i] = uint8(rng.Uint32())
	}
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, 4, 4))
	for i := range rgba64.Pix {
		rgba64.Pix[i] = uint8(rng.Uint32())
	}
	translucent := testkit.Noise(rng, 6, 6)
	for i := 3; i < len(translucent.Pix); i += 4 {
		translucent.Pix[i] = uint8(rng.Uint32())
	}
	seeds := [][]byte{
		fuzzEncode(f, testkit.Noise(rng, 8, 8), "png", 0),
		fuzzEncode(f, testkit.SolidGray(5, 9, 77), "png", 0),
		fuzzEncode(f, pal, "png", 0),
		fuzzEncode(f, g16, "png", 0),
		fuzzEncode(f, rgba64, "png", 0),
		fuzzEncode(f, translucent, "png", 0),
		fuzzEncode(f, testkit.Noise(rng, 8, 8), "jpeg", 90),
		fuzzEncode(f, testkit.Noise(rng, 13, 7), "jpeg", 50), // 4:2:0 with partial blocks
		fuzzEncode(f, testkit.SolidGray(9, 5, 200), "jpeg", 75),
		fuzzEncode(f, testkit.Noise(rng, 150, 150), "png", 0), // over 64 KiB: streamed, not read whole
		testkit.PNGHeader(1024, 1024),                         // header only, at the pixel cap
		testkit.PNGHeader(2049, 1),                            // over the side cap
		[]byte("GIF89a"),
	}
	for i, s := range seeds {
		f.Add(s, uint8(32), uint8(32), false)
		f.Add(s, uint8(i), uint8(i*7), i%2 == 0)
	}
	f.Add(seeds[0], uint8(8), uint8(8), true) // exact size

	f.Fuzz(func(t *testing.T, file []byte, w8, h8 uint8, exact bool) {
		w, h := int(w8)%64+1, int(h8)%64+1
		path := testkit.WriteTemp(t, "img.png", file)
		dec := NewDecoder()
		dst := make([]uint8, 3*w*h)
		dst2 := make([]uint8, 3*h*w)
		var err, err2 error
		got := testkit.Allocated(t, func() {
			err = dec.Load(path, dst, Shape{C: 3, H: h, W: w}, !exact)
			err2 = dec.Load(path, dst2, Shape{C: 3, H: w, W: h}, true)
		})
		// Two decodes of a capped source (at most 8 bytes a pixel, RGB
		// planes, float rows) plus what the decoders keep per input byte.
		testkit.CheckAlloc(t, got, uint64(64*len(file))+uint64(maxPixels)*48+4<<20, "decoding an image twice")
		if err != nil {
			testkit.CheckFileErr(t, err, path)
		}
		if err2 != nil {
			testkit.CheckFileErr(t, err2, path)
		}
		if err == nil && err2 != nil && !exact {
			t.Fatalf("decoded to %dx%d but not to %dx%d: %v", w, h, h, w, err2)
		}
	})
}
