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

	"github.com/trainer-go/trainer/data"
	dimage "github.com/trainer-go/trainer/data/image"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/model"
)

var testClasses = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// tinyNet plans and builds the small test network for input in on a
// one-thread CPU backend (closed when the test ends) and returns it with its
// initial parameters.
func tinyNet(t *testing.T, in model.Shape) (*model.Network, []float32) {
	t.Helper()
	net, err := model.Plan("conv4k3,maxpool2,flatten,dense10", in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := net.Build(b, 1, 7); err != nil {
		t.Fatal(err)
	}
	p, err := net.GetParams()
	if err != nil {
		t.Fatal(err)
	}
	return net, p
}

// tinyCheckpoint saves a small randomly initialised model for input in,
// with the CIFAR-10 class names unless classes is empty.
func tinyCheckpoint(t *testing.T, in model.Shape, classes []string) string {
	t.Helper()
	net, p := tinyNet(t, in)
	// Glorot weights on a tiny net give nearly uniform probabilities; scale
	// them up so the top classes are well separated.
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

// TestPredictErrors: bad input gives exit 1 and an error line naming the
// file, and nothing is predicted, when no image can be read (see
// TestPredictSkipsBadFiles for bad files among good ones).
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
		{"missing file", append(pred, ck, filepath.Join(dir, "nope.jpg")), []string{"nope.jpg", "not found"}},
		{"text as png", append(pred, ck, text), []string{"x.png", "not a PNG or JPEG"}},
		{"all bad", append(pred, ck, text, trunc), []string{"none of the 2 images"}},
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

// TestPredictInputMatchesTraining: no train/predict skew. An image folder
// (32x32 PNGs and JPEGs, some grey) is loaded as training loads it, resized
// to 24x24 and not resized; for every image, predict's input path
// (loadImageInput) on the training file gives, bit for bit, the tensor the
// CPU backend's GatherImages feeds the model for that image (with the
// scale model.Network.LoadBatch passes).
func TestPredictInputMatchesTraining(t *testing.T) {
	root := t.TempDir()
	for i := range 6 {
		var img image.Image = noiseImage(32, 32, uint64(10+i))
		if i == 2 {
			g := image.NewGray(image.Rect(0, 0, 32, 32))
			for k := range g.Pix {
				g.Pix[k] = uint8(k * 13)
			}
			img = g
		}
		dir := filepath.Join(root, []string{"cat", "dog"}[i%2])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			writeJPEG(t, filepath.Join(dir, strconv.Itoa(i)+".jpg"), img)
		} else {
			writePNG(t, filepath.Join(dir, strconv.Itoa(i)+".png"), img)
		}
	}
	b, err := cpu.New(device.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, size := range []int{24, 0} {
		d, err := data.LoadFolder(root, data.FolderOptions{Size: size})
		if err != nil {
			t.Fatal(err)
		}
		in := model.Shape{C: d.C, H: d.H, W: d.W}
		hw := in.H * in.W
		src, _ := b.Alloc("images", device.U8, len(d.Images))
		idx, _ := b.Alloc("idx", device.I32, 1)
		dst, _ := b.Alloc("input", device.F32, in.Size())
		if err := b.UploadU8(src, 0, d.Images); err != nil {
			t.Fatal(err)
		}
		dec := dimage.NewDecoder()
		files := folderFiles(t, root)
		resampled := 0
		for i, f := range files {
			if err := b.UploadI32(idx, 0, []int32{int32(i)}); err != nil {
				t.Fatal(err)
			}
			b.GatherImages(src, idx, 1, in.C, hw, 1.0/255, dst, nil, nil) // as model.Network.LoadBatch
			want := make([]float32, in.Size())
			if err := b.DownloadF32(dst, 0, want); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, in.Size())
			if err := loadImageInput(dec, f, in, got); err != nil {
				t.Fatal(err)
			}
			for k := range want {
				if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
					t.Fatalf("size %d, %s: predict's input[%d] = %v (%#x), training's = %v (%#x)", size, f, k, got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]))
				}
			}
			// The resized input is not simply the full-size one: resizing happened.
			if size != 0 && want[0] != want[1] {
				resampled++
			}
		}
		if size != 0 && resampled == 0 {
			t.Fatalf("size %d: every image's first two inputs are equal: was anything resized?", size)
		}
		for _, buf := range []device.Buffer{src, idx, dst} {
			b.Free(buf)
		}
	}
}

// folderFiles lists root/<class>/<file> in LoadFolder's order (sorted
// classes, then sorted names).
func folderFiles(t *testing.T, root string) []string {
	t.Helper()
	classes, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, c := range classes {
		entries, err := os.ReadDir(filepath.Join(root, c.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			files = append(files, filepath.Join(root, c.Name(), e.Name()))
		}
	}
	return files
}

// TestDataErrorsNameFlags: package data words its errors without flags
// (*data.LocationError); train names the flag that set the value at fault
// (cli/errors_data.go).
func TestDataErrorsNameFlags(t *testing.T) {
	root, good := t.TempDir(), t.TempDir()
	for _, d := range []string{"a", "b"} {
		for _, r := range []string{root, good} {
			if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	writePNG(t, filepath.Join(root, "a", "1.png"), noiseImage(8, 8, 1))
	writePNG(t, filepath.Join(root, "a", "2.png"), noiseImage(6, 8, 2))
	writePNG(t, filepath.Join(root, "b", "3.png"), noiseImage(8, 8, 3))
	writePNG(t, filepath.Join(good, "a", "1.png"), noiseImage(8, 8, 1))
	writePNG(t, filepath.Join(good, "b", "2.png"), noiseImage(8, 8, 2))
	missing := filepath.Join(t.TempDir(), "nope")
	train := []string{"train", "--device", "cpu", "--dataset", "folder", "--epochs", "1", "--data-dir"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(train, missing), missing + ": folder not found; pass --data-dir pointing at an image folder (one subfolder per class"},
		{append(train, good, "--val-dir", missing), missing + ": folder not found; pass --val-dir pointing at an image folder"},
		{append(train, root), "image is 6x8 but the first image is 8x8; images must share one size unless resized (--image-size)"},
		{[]string{"train", "--device", "cpu", "--data-dir", missing}, missing + ": folder not found; pass --data-dir pointing at a cifar-10-batches-bin folder or cifar-10-binary.tar.gz, or omit it to download"},
	} {
		code, _, errOut := run(t, c.args...)
		if code != ExitError || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, ExitError, c.want)
		}
	}
}
