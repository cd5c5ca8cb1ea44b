package image

// Tests of the decoder: fuzzing (run with scripts/fuzz.sh, or
//
//	go test -run='^$' -fuzz='^FuzzDecodeImage$' -fuzztime=30s ./data/image
//
// ), the pixel conversions, and the resizer against a float64 reference.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// fuzzTimeLimit is how long one input may take.
const fuzzTimeLimit = 10 * time.Second

// fuzzAllocated runs fn, crashing the process with every goroutine's stack
// if it has not returned after fuzzTimeLimit, and returns how many bytes the
// process allocated meanwhile.
func fuzzAllocated(t testing.TB, fn func()) uint64 {
	t.Helper()
	timer := time.AfterFunc(fuzzTimeLimit, func() {
		debug.SetTraceback("all")
		panic(fmt.Sprintf("%s: one input ran for more than %v (hang?)", t.Name(), fuzzTimeLimit))
	})
	defer timer.Stop()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkAlloc fails if got bytes exceed the budget.
func checkAlloc(t testing.TB, got, budget uint64, what string) {
	t.Helper()
	if got > budget {
		t.Fatalf("%s allocated %d bytes, more than its budget of %d (does a reader trust a size before checking it?)", what, got, budget)
	}
}

// checkFileErr fails unless err is a one-line message naming path.
func checkFileErr(t testing.TB, err error, path string) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !strings.Contains(msg, path) {
		t.Errorf("error does not name the file %s: %q", path, msg)
	}
}

// fuzzWrite writes b to a new file name in a fresh temporary folder and
// returns its path.
func fuzzWrite(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// solidGray returns a w x h grey image of one level.
func solidGray(w, h int, v uint8) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = v
	}
	return m
}

// noise returns a w x h opaque image of random colours.
func noise(rng *rand.Rand, w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(rng.Uint32())
		if i%4 == 3 {
			m.Pix[i] = 255
		}
	}
	return m
}

// pngHeader returns a PNG signature and IHDR chunk for a w x h RGB image
// (with a valid CRC) followed by nothing: enough for DecodeConfig, not for
// Decode.
func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	b = binary.BigEndian.AppendUint32(b, w)
	b = binary.BigEndian.AppendUint32(b, h)
	b = append(b, 8, 2, 0, 0, 0)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[12:]))
}

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
	translucent := noise(rng, 6, 6)
	for i := 3; i < len(translucent.Pix); i += 4 {
		translucent.Pix[i] = uint8(rng.Uint32())
	}
	seeds := [][]byte{
		fuzzEncode(f, noise(rng, 8, 8), "png", 0),
		fuzzEncode(f, solidGray(5, 9, 77), "png", 0),
		fuzzEncode(f, pal, "png", 0),
		fuzzEncode(f, g16, "png", 0),
		fuzzEncode(f, rgba64, "png", 0),
		fuzzEncode(f, translucent, "png", 0),
		fuzzEncode(f, noise(rng, 8, 8), "jpeg", 90),
		fuzzEncode(f, noise(rng, 13, 7), "jpeg", 50), // 4:2:0 with partial blocks
		fuzzEncode(f, solidGray(9, 5, 200), "jpeg", 75),
		fuzzEncode(f, noise(rng, 150, 150), "png", 0), // over 64 KiB: streamed, not read whole
		pngHeader(1024, 1024),                         // header only, at the pixel cap
		pngHeader(2049, 1),                            // over the side cap
		[]byte("GIF89a"),
	}
	for i, s := range seeds {
		f.Add(s, uint8(32), uint8(32), false)
		f.Add(s, uint8(i), uint8(i*7), i%2 == 0)
	}
	f.Add(seeds[0], uint8(8), uint8(8), true) // exact size

	f.Fuzz(func(t *testing.T, file []byte, w8, h8 uint8, exact bool) {
		w, h := int(w8)%64+1, int(h8)%64+1
		path := fuzzWrite(t, "img.png", file)
		dec := NewDecoder()
		dst := make([]uint8, 3*w*h)
		dst2 := make([]uint8, 3*h*w)
		var err, err2 error
		got := fuzzAllocated(t, func() {
			err = dec.Load(path, dst, Shape{C: 3, H: h, W: w}, !exact)
			err2 = dec.Load(path, dst2, Shape{C: 3, H: w, W: h}, true)
		})
		// Two decodes of a capped source (at most 8 bytes a pixel, RGB
		// planes, float rows) plus what the decoders keep per input byte.
		checkAlloc(t, got, uint64(64*len(file))+uint64(maxPixels)*48+4<<20, "decoding an image twice")
		if err != nil {
			checkFileErr(t, err, path)
		}
		if err2 != nil {
			checkFileErr(t, err2, path)
		}
		if err == nil && err2 != nil && !exact {
			t.Fatalf("decoded to %dx%d but not to %dx%d: %v", w, h, h, w, err2)
		}
	})
}
