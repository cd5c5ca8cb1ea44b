package image

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// FuzzLoadBytes decodes the input as an image file twice, from its path
// (Load, as training reads an image folder) and from its bytes already read
// (LoadBytes, as predict reads its files): both must give the same pixels,
// or the same error, bit for bit, within the time and allocation limits.
func FuzzLoadBytes(f *testing.F) {
	defer func(s, p int) { maxSide, maxPixels = s, p }(maxSide, maxPixels)
	maxSide, maxPixels = 2048, 1<<20

	rng := rand.New(rand.NewPCG(7, 8))
	f.Add(fuzzEncode(f, testkit.Noise(rng, 8, 8), "png", 0), uint8(5), uint8(7))
	f.Add(fuzzEncode(f, testkit.SolidGray(5, 9, 77), "png", 0), uint8(32), uint8(32))
	f.Add(fuzzEncode(f, testkit.Noise(rng, 13, 7), "jpeg", 50), uint8(4), uint8(4))
	f.Add(fuzzEncode(f, testkit.Noise(rng, 150, 150), "png", 0), uint8(31), uint8(31))
	f.Add(testkit.PNGHeader(2049, 1), uint8(1), uint8(1))
	f.Add([]byte("GIF89a"), uint8(1), uint8(1))

	f.Fuzz(func(t *testing.T, file []byte, w8, h8 uint8) {
		s := Shape{C: 3, H: int(h8)%64 + 1, W: int(w8)%64 + 1}
		path := testkit.WriteTemp(t, "img.png", file)
		a, b := make([]uint8, s.Size()), make([]uint8, s.Size())
		var errA, errB error
		got := testkit.Allocated(t, func() {
			errA = NewDecoder().Load(path, a, s, true)
			errB = NewDecoder().LoadBytes(path, file, b, s, true)
		})
		testkit.CheckAlloc(t, got, uint64(64*len(file))+uint64(maxPixels)*48+4<<20, "decoding an image from its path and its bytes")
		switch {
		case (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()):
			t.Fatalf("from the path: %v; from the bytes: %v", errA, errB)
		case errA == nil && !slices.Equal(a, b):
			t.Fatal("the bytes decode to other pixels than the file")
		}
	})
}
