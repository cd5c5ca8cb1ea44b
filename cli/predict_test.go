package cli

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/model"
)

var testClasses = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// tinyCheckpoint saves a small randomly initialised model for input in,
// with the CIFAR-10 class names unless classes is empty.
func tinyCheckpoint(t *testing.T, in model.Shape, classes []string) string {
	t.Helper()
	net, err := model.Plan("conv4k3,maxpool2,flatten,dense10", in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := net.Build(b, 1, 7); err != nil {
		t.Fatal(err)
	}
	// Glorot weights on a tiny net give nearly uniform probabilities; scale
	// them up so the top classes are well separated.
	p, _ := net.GetParams()
	for i := range p {
		p[i] *= 8
	}
	if err := net.SetParams(p); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"format": "trainer/1", "model": net.Spec, "input": in.String(), "eval_batch": "32"}
	if len(classes) > 0 {
		meta["classes"] = strings.Join(classes, ",")
	}
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	writeSafetensors(t, path, net.Tensors(p), meta)
	return path
}

// writeSafetensors writes a checkpoint by the safetensors format itself
// (8-byte little-endian header length, JSON header, little-endian float32
// data) rather than through model.SaveCheckpoint, so predict is also checked
// against a file laid out by the spec.
func writeSafetensors(t *testing.T, path string, ts []model.Tensor, meta map[string]string) {
	t.Helper()
	header := map[string]any{"__metadata__": meta}
	var data []byte
	for _, tn := range ts {
		start := len(data)
		for _, v := range tn.Data {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
		header[tn.Name] = map[string]any{"dtype": "F32", "shape": tn.Shape, "data_offsets": []int{start, len(data)}}
	}
	hj, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	out = append(append(out, hj...), data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func noiseImage(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	return img
}

func solidImage(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func writePNG(t *testing.T, path string, img image.Image) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeJPEG(t *testing.T, path string, img image.Image) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return path
}

type predictLine struct {
	File string
	Top  []struct {
		Class string
		Index int
		P     float64
	}
}

// predictJSON runs predict --json on the CPU and parses its lines.
func predictJSON(t *testing.T, ck string, top int, files ...string) []predictLine {
	t.Helper()
	args := append([]string{"predict", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--top", strconv.Itoa(top), "--json"}, files...)
	code, out, errOut := run(t, args...)
	if code != 0 {
		t.Fatalf("predict exit %d:\n%s", code, errOut)
	}
	var res []predictLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r predictLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("--json printed a line that is not JSON: %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	if len(res) != len(files) {
		t.Fatalf("%d JSON lines for %d images:\n%s", len(res), len(files), out)
	}
	for i, r := range res {
		if r.File != files[i] {
			t.Fatalf("line %d is for %q, want %q", i+1, r.File, files[i])
		}
		if len(r.Top) != top {
			t.Fatalf("%s: %d classes, want --top %d", r.File, len(r.Top), top)
		}
	}
	return res
}

// sameTop reports whether two results agree to within tol in every
// probability (the same image at another batch position may round
// differently in the last bit).
func sameTop(a, b predictLine, tol float64) bool {
	for i := range a.Top {
		if a.Top[i].Index != b.Top[i].Index || math.Abs(a.Top[i].P-b.Top[i].P) > tol {
			return false
		}
	}
	return true
}

// TestPredictText: the default output lists the top-k classes of each file,
// named from the checkpoint, descending, summing to at most 1.
func TestPredictText(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	dir := t.TempDir()
	a := writePNG(t, filepath.Join(dir, "a.png"), noiseImage(45, 30, 1))
	b := writeJPEG(t, filepath.Join(dir, "b.jpg"), noiseImage(17, 64, 2))
	code, out, errOut := run(t, "predict", "--device", "cpu", "--threads", "1", "--checkpoint", ck, a, b)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 8 {
		t.Fatalf("want 2 x (file + 3 classes) = 8 lines, got:\n%s", out)
	}
	for f, file := range []string{a, b} {
		block := lines[4*f : 4*f+4]
		if block[0] != file {
			t.Fatalf("block %d starts with %q, want the file name %q", f, block[0], file)
		}
		sum, prev := 0.0, 2.0
		for r, l := range block[1:] {
			fields := strings.Fields(l)
			if len(fields) != 3 || fields[0] != strconv.Itoa(r+1)+"." {
				t.Fatalf("line %q is not 'rank. class p'", l)
			}
			if !strings.Contains(strings.Join(testClasses, ","), fields[1]) {
				t.Fatalf("line %q: class %q is not one of the checkpoint's", l, fields[1])
			}
			p, err := strconv.ParseFloat(fields[2], 64)
			if err != nil || p < 0 || p > prev {
				t.Fatalf("line %q: probability not descending in [0,1]:\n%s", l, out)
			}
			sum, prev = sum+p, p
		}
		if sum > 1+1e-3 {
			t.Fatalf("top-3 probabilities of %s sum to %v > 1", file, sum)
		}
	}
}

// TestPredictJSON: --json gives one object per image; all ten
// probabilities sum to 1, descending, with class names matching indices.
func TestPredictJSON(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	dir := t.TempDir()
	a := writePNG(t, filepath.Join(dir, "a.png"), noiseImage(32, 32, 3))
	b := writeJPEG(t, filepath.Join(dir, "b.jpeg"), noiseImage(100, 70, 4))
	for _, r := range predictJSON(t, ck, 10, a, b) {
		sum := 0.0
		seen := map[int]bool{}
		for i, p := range r.Top {
			if i > 0 && p.P > r.Top[i-1].P {
				t.Fatalf("%s: probabilities not descending: %+v", r.File, r.Top)
			}
			if p.Class != testClasses[p.Index] || seen[p.Index] {
				t.Fatalf("%s: class %q index %d (names %v)", r.File, p.Class, p.Index, testClasses)
			}
			seen[p.Index] = true
			sum += p.P
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Fatalf("%s: the ten probabilities sum to %v", r.File, sum)
		}
	}
	// --top larger than the number of classes prints them all.
	if r := predictJSON(t, ck, 10, a); len(r[0].Top) != 10 {
		t.Fatal(r)
	}
}

// TestPredictConsistent: the same pixels give the same answer however they
// arrive: the same file twice, a PNG copy in another pixel format, a grey
// image against its RGB twin, a constant colour at 64x64 (resized) against
// 32x32 (not resized: a bilinear resize of a constant is exact), a
// transparent image against its opaque twin (alpha is ignored), and an
// image in a second batch (more than 256 images) against the first.
func TestPredictConsistent(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	dir := t.TempDir()
	noise := noiseImage(48, 40, 5)
	a := writePNG(t, filepath.Join(dir, "a.png"), noise)
	// The same pixels as a 16-bit PNG (v*257), which decodes to another
	// pixel format and takes another path through the converter.
	wide := image.NewRGBA64(noise.Bounds())
	for i, v := range noise.Pix {
		wide.Pix[2*i], wide.Pix[2*i+1] = v, v
	}
	aCopy := writePNG(t, filepath.Join(dir, "a-16bit.png"), wide)
	col := color.NRGBA{R: 200, G: 90, B: 30, A: 255}
	big := writePNG(t, filepath.Join(dir, "solid64.png"), solidImage(64, 64, col))
	small := writePNG(t, filepath.Join(dir, "solid32.png"), solidImage(32, 32, col))
	clear := col
	clear.A = 10
	seeThrough := writePNG(t, filepath.Join(dir, "solid-alpha.png"), solidImage(50, 20, clear))
	grey := image.NewGray(image.Rect(0, 0, 30, 30))
	for i := range grey.Pix {
		grey.Pix[i] = byte(i * 7)
	}
	greyFile := writePNG(t, filepath.Join(dir, "grey.png"), grey)
	greyRGB := image.NewNRGBA(grey.Bounds())
	for i, v := range grey.Pix {
		copy(greyRGB.Pix[4*i:], []byte{v, v, v, 255})
	}
	greyRGBFile := writePNG(t, filepath.Join(dir, "grey-rgb.png"), greyRGB)

	r := predictJSON(t, ck, 10, a, a, aCopy, big, small, seeThrough, greyFile, greyRGBFile)
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {3, 4}, {3, 5}, {6, 7}} {
		x, y := r[pair[0]], r[pair[1]]
		if !sameTop(x, y, 1e-6) {
			t.Errorf("%s and %s hold the same pixels but predict differently:\n%+v\n%+v", x.File, y.File, x.Top, y.Top)
		}
	}
	if sameTop(r[0], r[3], 1e-3) {
		t.Errorf("noise and a solid colour predict the same: the images do not reach the model")
	}

	// 257 images: two batches; the last is in the second.
	files := []string{big}
	for range 256 {
		files = append(files, a)
	}
	r2 := predictJSON(t, ck, 10, files...)
	if !sameTop(r2[0], r[3], 1e-6) || !sameTop(r2[256], r[0], 1e-6) || !sameTop(r2[1], r2[256], 1e-6) {
		t.Errorf("batched predictions differ: first %+v vs %+v; last %+v vs %+v", r2[0].Top, r[3].Top, r2[256].Top, r[0].Top)
	}
}

// TestPredictGreyModel: a 1-channel model takes colour images as their
// luminance, and class numbers stand in when the checkpoint names none.
func TestPredictGreyModel(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 1, H: 16, W: 16}, nil)
	dir := t.TempDir()
	a := writePNG(t, filepath.Join(dir, "a.png"), noiseImage(40, 40, 6))
	g := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range g.Pix {
		g.Pix[i] = 77
	}
	grey := writePNG(t, filepath.Join(dir, "grey.png"), g)
	// The luminance 0.299*R + 0.587*G + 0.114*B of (77, 77, 77) is 77.
	lum := writePNG(t, filepath.Join(dir, "lum.png"), solidImage(20, 20, color.NRGBA{R: 77, G: 77, B: 77, A: 255}))
	r := predictJSON(t, ck, 3, a, grey, lum)
	for _, p := range r[0].Top {
		if p.Class != strconv.Itoa(p.Index) {
			t.Fatalf("without class names the class should be its number: %+v", p)
		}
	}
	if !sameTop(r[1], r[2], 1e-6) {
		t.Fatalf("grey 77 and RGB (77,77,77) differ: %+v vs %+v", r[1].Top, r[2].Top)
	}
}

// TestPredictErrors: bad input gives exit 1 and one error line naming the
// file, and nothing is predicted when any image is bad.
func TestPredictErrors(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	dir := t.TempDir()
	good := writePNG(t, filepath.Join(dir, "good.png"), noiseImage(32, 32, 8))
	text := filepath.Join(dir, "x.png")
	os.WriteFile(text, []byte("this is not an image\n"), 0o644)
	trunc := filepath.Join(dir, "trunc.png")
	raw, _ := os.ReadFile(good)
	os.WriteFile(trunc, raw[:len(raw)/2], 0o644)
	junk := filepath.Join(dir, "junk.safetensors")
	os.WriteFile(junk, []byte("not a checkpoint"), 0o644)
	pred := []string{"predict", "--device", "cpu", "--threads", "1", "--checkpoint"}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing file", append(pred, ck, good, filepath.Join(dir, "nope.jpg")), []string{"nope.jpg", "not found"}},
		{"text as png", append(pred, ck, good, text), []string{"x.png", "not a PNG or JPEG"}},
		{"truncated png", append(pred, ck, trunc), []string{"trunc.png", "PNG"}},
		{"no images", append(pred, ck), []string{"at least one image"}},
		{"bad top", append(append(pred, ck), "--top", "0", good), []string{"--top 0"}},
		{"junk checkpoint", append(pred, junk, good), []string{"junk.safetensors"}},
		{"missing checkpoint", append(pred, filepath.Join(dir, "none.safetensors"), good), []string{"none.safetensors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, c.args...)
			if code != ExitError {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitError, errOut)
			}
			if out != "" {
				t.Fatalf("printed predictions before failing:\n%s", out)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			msg := lines[len(lines)-1]
			if !strings.HasPrefix(msg, "trainer: error: ") {
				t.Fatalf("last stderr line %q is not an error line", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}
