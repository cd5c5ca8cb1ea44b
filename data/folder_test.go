package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dimage "github.com/trainer-go/trainer/data/image"
	"github.com/trainer-go/trainer/internal/pool"
	"github.com/trainer-go/trainer/internal/testkit"
)

// encode returns img as PNG or (quality 100) JPEG bytes.
func encode(t *testing.T, img image.Image, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// solid returns a w x h NRGBA image of one colour.
func solid(w, h int, c color.NRGBA) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return m
}

// checkPlane fails unless every pixel of channel c of image i is want
// (within tol).
func checkPlane(t *testing.T, d *Dataset, i, c int, want uint8, tol int) {
	t.Helper()
	plane := d.Image(i)[c*d.H*d.W : (c+1)*d.H*d.W]
	for j, v := range plane {
		if diff := int(v) - int(want); diff < -tol || diff > tol {
			t.Fatalf("image %d channel %d pixel %d = %d, want %d±%d", i, c, j, v, want, tol)
		}
	}
}

func TestLoadFolder(t *testing.T) {
	root := t.TempDir()
	red := color.NRGBA{200, 10, 30, 255}
	green := color.NRGBA{20, 180, 60, 255}
	writeFile(t, filepath.Join(root, "cat", "a.png"), encode(t, solid(8, 8, red), "png"))
	writeFile(t, filepath.Join(root, "cat", "b.JPG"), encode(t, solid(16, 12, green), "jpeg"))
	writeFile(t, filepath.Join(root, "cat", "c.jpeg"), encode(t, testkit.SolidGray(5, 9, 90), "jpeg"))
	writeFile(t, filepath.Join(root, "dog", "x.PNG"), encode(t, testkit.SolidGray(3, 3, 140), "png"))
	// Skipped: hidden files and folders, other extensions, files in the
	// root, a subfolder's image that does not decode.
	writeFile(t, filepath.Join(root, "dog", ".hidden.png"), []byte("not an image"))
	writeFile(t, filepath.Join(root, "dog", "notes.txt"), []byte("x"))
	writeFile(t, filepath.Join(root, "dog", "sub", "deep.png"), []byte("not an image"))
	writeFile(t, filepath.Join(root, "dog", "dir.png", "f"), []byte("x"))
	writeFile(t, filepath.Join(root, ".git", "x.png"), []byte("not an image"))
	writeFile(t, filepath.Join(root, "readme.png"), []byte("not an image"))

	d, err := LoadFolder(root, FolderOptions{Size: 8})
	if err != nil {
		t.Fatal(err)
	}
	if d.N != 4 || d.C != 3 || d.H != 8 || d.W != 8 || len(d.Images) != 4*3*64 {
		t.Fatalf("N,C,H,W = %d,%d,%d,%d", d.N, d.C, d.H, d.W)
	}
	if !slices.Equal(d.Classes, []string{"cat", "dog"}) || !slices.Equal(d.Labels, []int32{0, 0, 0, 1}) {
		t.Errorf("classes %v labels %v", d.Classes, d.Labels)
	}
	checkSkipped(t, root, d.Skipped, map[string]SkipKind{
		".git": SkipHidden, "readme.png": SkipNotImage, "dog/.hidden.png": SkipHidden, "dog/dir.png/f": SkipNotImage,
		"dog/notes.txt": SkipNotImage, "dog/sub/deep.png": SkipUnreadable,
	})
	// Solid colours stay solid through decoding, conversion and resizing
	// (JPEG within a few levels).
	for c, v := range []uint8{red.R, red.G, red.B} {
		checkPlane(t, d, 0, c, v, 0)
	}
	for c, v := range []uint8{green.R, green.G, green.B} {
		checkPlane(t, d, 1, c, v, 3)
	}
	for c := range 3 { // grey: three equal channels
		checkPlane(t, d, 2, c, 90, 1)
		checkPlane(t, d, 3, c, 140, 0)
	}

	// A fixed class list sets the labels and the order, and may list
	// absent classes.
	d2, err := LoadFolder(root, FolderOptions{Size: 8, Classes: []string{"dog", "zebra", "cat"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d2.Classes, []string{"dog", "zebra", "cat"}) || !slices.Equal(d2.Labels, []int32{0, 2, 2, 2}) {
		t.Errorf("fixed classes: classes %v labels %v", d2.Classes, d2.Labels)
	}
	if !bytes.Equal(d2.Image(0), d.Image(3)) || !bytes.Equal(d2.Image(1), d.Image(0)) {
		t.Errorf("fixed classes: images differ")
	}
}

func TestLoadFolderKeepSize(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(4, 4))
	a, b := testkit.Noise(rng, 6, 5), testkit.Noise(rng, 6, 5)
	writeFile(t, filepath.Join(root, "x", "a.png"), encode(t, a, "png"))
	writeFile(t, filepath.Join(root, "y", "b.png"), encode(t, b, "png"))
	d, err := LoadFolder(root, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.N != 2 || d.H != 5 || d.W != 6 {
		t.Fatalf("N %d H %d W %d, want 2, 5, 6", d.N, d.H, d.W)
	}
	// Exact pixels, channel-major.
	px := d.Image(1)
	for y := range 5 {
		for x := range 6 {
			c := b.NRGBAAt(x, y)
			i := y*6 + x
			if px[i] != c.R || px[30+i] != c.G || px[60+i] != c.B {
				t.Fatalf("pixel (%d,%d) = %d,%d,%d, want %v", x, y, px[i], px[30+i], px[60+i], c)
			}
		}
	}
	// A different size is an error naming the file.
	odd := filepath.Join(root, "y", "c.png")
	writeFile(t, odd, encode(t, testkit.Noise(rng, 5, 6), "png"))
	_, err = LoadFolder(root, FolderOptions{})
	checkErr(t, err, odd, "image is 5x6 but the first image is 6x5", "images must share one size unless resized (the image size)")
}

func TestResizeBilinearCheckerboard(t *testing.T) {
	root := t.TempDir()
	m := image.NewGray(image.Rect(0, 0, 2, 2))
	m.Pix = []uint8{0, 255, 255, 0}
	writeFile(t, filepath.Join(root, "c", "board.png"), encode(t, m, "png"))
	d, err := LoadFolder(root, FolderOptions{Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Pixel centres aligned: output x samples input (x+0.5)/2-0.5, clamped:
	// weights of the second pixel 0, .25, .75, 1 along each axis.
	want := []uint8{
		0, 64, 191, 255,
		64, 96, 159, 191,
		191, 159, 96, 64,
		255, 191, 64, 0,
	}
	for c := range 3 {
		if got := d.Image(0)[c*16 : (c+1)*16]; !bytes.Equal(got, want) {
			t.Errorf("channel %d = %v, want %v", c, got, want)
		}
	}
}

// testPool returns a pool of n workers, closed when the test ends.
func testPool(t *testing.T, n int) *pool.Pool {
	p := pool.New(n)
	t.Cleanup(p.Close)
	return p
}

// makeTree writes n random images of assorted sizes and formats in classes
// folders under root.
func makeTree(t *testing.T, root string, classes, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range n {
		c := string(rune('a' + i%classes))
		w, h := 3+rng.IntN(40), 3+rng.IntN(40)
		format, ext := "png", ".png"
		if i%3 == 0 {
			format, ext = "jpeg", ".jpg"
		}
		var img image.Image = testkit.Noise(rng, w, h)
		if i%5 == 0 {
			img = testkit.SolidGray(w, h, uint8(i))
		}
		writeFile(t, filepath.Join(root, c, strings.Repeat("z", i%4)+string(rune('A'+i))+ext), encode(t, img, format))
	}
}

func TestLoadFolderDeterministic(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 3, 40)
	d1, err := LoadFolder(root, FolderOptions{Size: 7, Pool: testPool(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d4, err := LoadFolder(root, FolderOptions{Size: 7, Pool: testPool(t, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if d1.N != 40 || !bytes.Equal(d1.Images, d4.Images) || !slices.Equal(d1.Labels, d4.Labels) {
		t.Errorf("pools of 1 and 4 workers differ (N %d)", d1.N)
	}
	// Sorted file names within sorted classes.
	for i := 1; i < d1.N; i++ {
		if d1.Labels[i] < d1.Labels[i-1] {
			t.Fatalf("labels not in class order: %v", d1.Labels)
		}
	}
}

func TestLoadFolderErrors(t *testing.T) {
	good := encode(t, solid(4, 4, color.NRGBA{1, 2, 3, 255}), "png")
	// tree makes root with a good class folder "a" plus the given files.
	tree := func(t *testing.T, files map[string][]byte) string {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "a", "ok.png"), good)
		for name, b := range files {
			writeFile(t, filepath.Join(root, name), b)
		}
		return root
	}
	t.Run("root missing", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "nope")
		_, err := LoadFolder(root, FolderOptions{})
		checkErr(t, err, root, "folder not found", "the dataset folder should be an image folder", "one subfolder per class")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(err, fs.ErrNotExist) is false")
		}
	})
	t.Run("root is a file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		writeFile(t, p, good)
		_, err := LoadFolder(p, FolderOptions{})
		checkErr(t, err, p, "is a file, not a folder")
	})
	t.Run("root is an archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "photos.tar.gz")
		writeFile(t, p, good)
		_, err := LoadFolder(p, FolderOptions{})
		checkErr(t, err, p, "is an archive, and image folders are not read from archives: unpack it", "should be an image folder")
	})
	t.Run("no class folders", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, ".hidden", "x.png"), good)
		_, err := LoadFolder(root, FolderOptions{})
		checkErr(t, err, root, "has no class folders;")
	})
	t.Run("images without class folders", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "x.png"), good)
		writeFile(t, filepath.Join(root, "y.jpg"), good)
		_, err := LoadFolder(root, FolderOptions{})
		checkErr(t, err, root, "has no class folders but 2 images directly in it")
	})
	t.Run("empty class", func(t *testing.T) {
		root := tree(t, map[string][]byte{"b/readme.txt": nil, "b/.x.png": good})
		_, err := LoadFolder(root, FolderOptions{})
		checkErr(t, err, filepath.Join(root, "b")+": class folder has no images")
	})
	t.Run("undecodable", func(t *testing.T) {
		root := tree(t, map[string][]byte{"b/bad.png": []byte("hello, not a picture")})
		_, err := LoadFolder(root, FolderOptions{Size: 4})
		checkErr(t, err, filepath.Join(root, "b", "bad.png"), "not a PNG or JPEG file")
	})
	t.Run("gif", func(t *testing.T) {
		root := tree(t, map[string][]byte{"b/x.png": encode(t, image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black}), "gif")})
		_, err := LoadFolder(root, FolderOptions{Size: 4})
		checkErr(t, err, filepath.Join(root, "b", "x.png"), `not a PNG or JPEG file (starts with "GIF89a`)
	})
	t.Run("truncated jpeg", func(t *testing.T) {
		j := encode(t, testkit.Noise(rand.New(rand.NewPCG(1, 1)), 20, 20), "jpeg")
		root := tree(t, map[string][]byte{"b/t.jpg": j[:len(j)/2]})
		_, err := LoadFolder(root, FolderOptions{Size: 4})
		checkErr(t, err, filepath.Join(root, "b", "t.jpg"), "cannot decode image")
	})
	t.Run("class with no readable image", func(t *testing.T) {
		root := tree(t, map[string][]byte{"b/1.png": []byte("bad"), "b/2.png": []byte("bad"), "c/3.png": []byte("bad")})
		for _, workers := range []int{1, 3} {
			_, err := LoadFolder(root, FolderOptions{Size: 4, Pool: testPool(t, workers)})
			checkErr(t, err, filepath.Join(root, "b")+": class folder has no image that can be read (the first, "+filepath.Join(root, "b", "1.png")+": not a PNG or JPEG file")
		}
	})
	t.Run("no readable image, size kept", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "a", "1.png"), []byte("bad"))
		writeFile(t, filepath.Join(root, "b", "2.jpg"), []byte("bad"))
		_, err := LoadFolder(root, FolderOptions{})
		checkErr(t, err, "no image could be read; the first: "+filepath.Join(root, "a", "1.png")+": not a PNG or JPEG file")
	})
	for _, tc := range []struct {
		name string
		w, h uint32
	}{{"too wide", 16385, 10}, {"too tall", 10, 20000}, {"too many pixels", 10000, 10000}} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, map[string][]byte{"b/big.png": testkit.PNGHeader(tc.w, tc.h)})
			_, err := LoadFolder(root, FolderOptions{Size: 4})
			checkErr(t, err, filepath.Join(root, "b", "big.png"), "refusing images over 16384 px per side or 64 Mpx")
		})
	}
	t.Run("first image too big, size kept", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "a", "big.png"), testkit.PNGHeader(20000, 20000))
		_, err := LoadFolder(root, FolderOptions{})
		checkErr(t, err, "big.png", "image is 20000x20000")
	})
	t.Run("class not in list", func(t *testing.T) {
		root := tree(t, map[string][]byte{"b/ok.png": good})
		_, err := LoadFolder(root, FolderOptions{Classes: []string{"a", "c"}})
		checkErr(t, err, filepath.Join(root, "b"), `class folder "b" is not one of the 2 expected classes (a, c)`)
	})
	t.Run("too much memory", func(t *testing.T) {
		defer func(v int64) { maxFolderBytes = v }(maxFolderBytes)
		maxFolderBytes = 1000
		root := tree(t, nil)
		_, err := LoadFolder(root, FolderOptions{Size: 32})
		checkErr(t, err, root, "1 images of 3x32x32 would need", "resize them smaller (the image size)")
	})
	t.Run("bad options", func(t *testing.T) {
		root := tree(t, nil)
		for _, o := range []FolderOptions{{Size: -1}, {Size: 20000}, {Classes: []string{"a", "a"}}, {Classes: []string{"a", ""}}, {Classes: []string{"x/y"}}} {
			if _, err := LoadFolder(root, o); err == nil {
				t.Errorf("%+v: no error", o)
			}
		}
	})
}

// labelled makes a dataset whose image i is filled with byte i%256 and
// whose label counts are given.
func labelled(counts ...int) *Dataset {
	d := &Dataset{C: 1, H: 2, W: 2}
	for c, n := range counts {
		d.Classes = append(d.Classes, string(rune('a'+c)))
		for range n {
			d.Labels = append(d.Labels, int32(c))
		}
	}
	d.N = len(d.Labels)
	// Interleave classes so that order preservation is visible.
	rng := rand.New(rand.NewPCG(1, 1))
	rng.Shuffle(d.N, func(i, j int) { d.Labels[i], d.Labels[j] = d.Labels[j], d.Labels[i] })
	for i := range d.N {
		d.Images = append(d.Images, uint8(i), uint8(i>>8), 0, 0)
	}
	return d
}

// ids returns the image ids (from their pixels) of d, in order.
func ids(d *Dataset) []int {
	var r []int
	for i := range d.N {
		p := d.Image(i)
		r = append(r, int(p[0])|int(p[1])<<8)
	}
	return r
}

func TestSplitValidation(t *testing.T) {
	d := labelled(50, 40, 13)
	train, val, err := SplitValidation(d, 0.2, 42)
	if err != nil {
		t.Fatal(err)
	}
	if val.N != 21 || train.N != 82 || len(val.Images) != 21*4 || len(train.Labels) != 82 {
		t.Fatalf("val %d train %d, want 21 and 82", val.N, train.N)
	}
	var counts [3]int
	for _, l := range val.Labels {
		counts[l]++
	}
	if counts != [3]int{10, 8, 3} { // 10, 8, 2.6 -> the extra one to the largest remainder
		t.Errorf("validation class counts %v, want [10 8 3]", counts)
	}
	tr, va := ids(train), ids(val)
	if !slices.IsSorted(tr) || !slices.IsSorted(va) {
		t.Errorf("order not kept")
	}
	all := slices.Concat(tr, va)
	slices.Sort(all)
	for i, id := range all {
		if id != i {
			t.Fatalf("train and validation overlap or miss images")
		}
	}
	for i, id := range tr {
		if train.Labels[i] != d.Labels[id] {
			t.Fatalf("label of image %d lost", id)
		}
	}
	if !slices.Equal(train.Classes, d.Classes) || train.C != 1 || val.H != 2 {
		t.Errorf("geometry or classes lost")
	}
	train.Images[0]++ // copies, not views
	if d.Images[4*tr[0]] == train.Images[0] {
		t.Errorf("train shares pixels with the input")
	}

	_, val2, _ := SplitValidation(d, 0.2, 42)
	_, val3, _ := SplitValidation(d, 0.2, 43)
	if !slices.Equal(ids(val2), va) {
		t.Errorf("same seed, different split")
	}
	if slices.Equal(ids(val3), va) {
		t.Errorf("different seeds, same split")
	}

	// A class with a single image keeps it for training when it can: of 3
	// validation images, 2.4 are due to class 0 and 0.6 to class 1, and the
	// extra one goes to class 0 although class 1's remainder is larger.
	_, val, err = SplitValidation(labelled(4, 1), 0.6, 1)
	if err != nil || val.N != 3 || slices.Contains(val.Labels, 1) {
		t.Errorf("tiny class: %v, val labels %v", err, val.Labels)
	}
}

func TestSplitValidationErrors(t *testing.T) {
	d := labelled(5, 5)
	for _, frac := range []float64{0, 1, -0.1, 1.5, math.NaN(), 0.01, 0.99} {
		if _, _, err := SplitValidation(d, frac, 1); err == nil {
			t.Errorf("frac %v: no error", frac)
		}
	}
	bad := labelled(5, 5)
	bad.Labels[3] = 7
	_, _, err := SplitValidation(bad, 0.5, 1)
	checkErr(t, err, "image 3 has label 7, outside 0..1")
	bad = labelled(5, 5)
	bad.N = 11
	_, _, err = SplitValidation(bad, 0.5, 1)
	checkErr(t, err, "N=11 but 10 labels")
	if _, _, err := SplitValidation(nil, 0.5, 1); err == nil {
		t.Errorf("nil dataset: no error")
	}
}

// checkSkipped fails unless skipped holds exactly the paths of want
// (relative to root, slash-separated), each of its kind, with a reason.
func checkSkipped(t *testing.T, root string, skipped []SkippedFile, want map[string]SkipKind) {
	t.Helper()
	got := map[string]SkipKind{}
	for _, s := range skipped {
		rel, err := filepath.Rel(root, s.Path)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel)
		if _, dup := got[rel]; dup {
			t.Errorf("%s skipped twice", rel)
		}
		got[rel] = s.Kind
		if s.Reason == "" {
			t.Errorf("%s skipped without a reason", rel)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("skipped %v, want %v", got, want)
	}
}

// TestLoadFolderNested: images in subfolders of a class folder belong to
// the class, extensions in any case are images, everything else is
// skipped with its reason; the pixels are those data/image decodes from
// each file, in path order, whatever the worker count.
func TestLoadFolderNested(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 11))
	img := func(rel, format string) string {
		writeFile(t, filepath.Join(root, filepath.FromSlash(rel)), encode(t, testkit.Noise(rng, 5+rng.IntN(9), 5+rng.IntN(9)), format))
		return rel
	}
	jpg := encode(t, testkit.Noise(rng, 20, 20), "jpeg")
	loaded := []string{ // load order: by class, then by path
		img("cat/a.PNG", "png"),
		img("cat/b/c.Jpeg", "jpeg"),
		img("cat/b/d/e/f.jpg", "jpeg"),
		img("cat/z.JPG", "jpeg"),
		img("dog/2019/x.png", "png"),
		img("dog/y.jpeg", "jpeg"),
	}
	files := map[string][]byte{
		"dog/notes.txt":        []byte("x"),
		"dog/README":           []byte("x"),
		"dog/photo.webp":       []byte("RIFF"),
		"cat/b/anim.GIF":       encode(t, image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black}), "gif"),
		"cat/.DS_Store":        []byte("x"),
		"cat/._a.PNG":          []byte("AppleDouble"),
		"cat/b/Thumbs.db":      []byte("x"),
		"__MACOSX/cat/._a.PNG": []byte("AppleDouble"),
		"labels.csv":           []byte("x"),
		"cat/broken.jpg":       []byte("hello"),
		"dog/2019/trunc.jpg":   jpg[:len(jpg)/2],
		"dog/gif.png":          encode(t, image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black}), "gif"),
	}
	for rel, b := range files {
		writeFile(t, filepath.Join(root, filepath.FromSlash(rel)), b)
	}
	want := map[string]SkipKind{
		"dog/notes.txt": SkipNotImage, "dog/README": SkipNotImage, "dog/photo.webp": SkipNotImage, "cat/b/anim.GIF": SkipNotImage,
		"cat/.DS_Store": SkipHidden, "cat/._a.PNG": SkipHidden, "cat/b/Thumbs.db": SkipHidden, "__MACOSX": SkipHidden,
		"labels.csv": SkipNotImage, "cat/broken.jpg": SkipUnreadable, "dog/2019/trunc.jpg": SkipUnreadable, "dog/gif.png": SkipUnreadable,
	}
	const size = 6
	var ref []uint8
	dec := dimage.NewDecoder()
	for _, rel := range loaded {
		px := make([]uint8, 3*size*size)
		if err := dec.Load(filepath.Join(root, filepath.FromSlash(rel)), px, dimage.Shape{C: 3, H: size, W: size}, true); err != nil {
			t.Fatal(err)
		}
		ref = append(ref, px...)
	}
	for _, workers := range []int{1, 3} {
		d, err := LoadFolder(root, FolderOptions{Size: size, Pool: testPool(t, workers)})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Classes, []string{"cat", "dog"}) || !slices.Equal(d.Labels, []int32{0, 0, 0, 0, 1, 1}) || d.N != 6 {
			t.Fatalf("%d workers: N %d classes %v labels %v", workers, d.N, d.Classes, d.Labels)
		}
		if !bytes.Equal(d.Images, ref) {
			t.Errorf("%d workers: pixels differ from decoding %v one by one", workers, loaded)
		}
		checkSkipped(t, root, d.Skipped, want)
		for _, s := range d.Skipped {
			rel, _ := filepath.Rel(root, s.Path)
			for name, reason := range map[string]string{
				"photo.webp": "a .webp image, and only PNG and JPEG are read: convert it", "anim.GIF": "a .gif image", "notes.txt": "not an image: .txt",
				"README": "no .png, .jpg or .jpeg extension", "labels.csv": "not in a class folder", "broken.jpg": "not a PNG or JPEG file",
				"trunc.jpg": "cannot decode image", "gif.png": `starts with "GIF8`,
			} {
				if filepath.Base(rel) == name && !strings.Contains(s.Reason, reason) {
					t.Errorf("%s skipped for %q, want %q", rel, s.Reason, reason)
				}
			}
		}
	}

	// The listing finds the same classes and, by name, the same images
	// (the undecodable ones included) and skips the rest.
	l, err := ListFolder(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	listWant := maps.Clone(want)
	for rel, k := range want {
		if k == SkipUnreadable {
			delete(listWant, rel)
		}
	}
	if !slices.Equal(l.Classes, []string{"cat", "dog"}) || l.Images != 9 {
		t.Errorf("listing: classes %v, %d images; want cat, dog and 9", l.Classes, l.Images)
	}
	checkSkipped(t, root, l.Skipped, listWant)

	// Kept size: the first image (cat/a.PNG) sets it; with it unreadable,
	// the next readable one does.
	writeFile(t, filepath.Join(root, "cat", "a.PNG"), []byte("garbage"))
	first := filepath.Join(root, "cat", "b", "c.Jpeg")
	w, h, err := dec.Config(first)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadFolder(root, FolderOptions{})
	checkErr(t, err, fmt.Sprintf("but the first image is %dx%d", w, h))
}

// TestLoadFolderDepthAndLinks: images are read down to MaxFolderDepth
// levels below the class folder; deeper folders, and links back to a
// folder above, are skipped; a link to a folder elsewhere is followed.
func TestLoadFolderDepthAndLinks(t *testing.T) {
	root := t.TempDir()
	png := encode(t, testkit.SolidGray(3, 3, 7), "png")
	writeFile(t, filepath.Join(root, "b", "0.png"), png)
	deepest := filepath.Join(root, "a")
	for i := 1; i <= MaxFolderDepth+1; i++ {
		deepest = filepath.Join(deepest, fmt.Sprint(i))
		writeFile(t, filepath.Join(deepest, "img.png"), png)
	}
	d, err := LoadFolder(root, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.N != MaxFolderDepth+1 {
		t.Errorf("%d images, want %d (levels 1..%d of a, and b's)", d.N, MaxFolderDepth+1, MaxFolderDepth)
	}
	tooDeep := strings.TrimPrefix(filepath.ToSlash(deepest), filepath.ToSlash(root)+"/")
	checkSkipped(t, root, d.Skipped, map[string]SkipKind{tooDeep: SkipNotImage})

	elsewhere := t.TempDir()
	writeFile(t, filepath.Join(elsewhere, "x.png"), png)
	if err := os.Symlink(elsewhere, filepath.Join(root, "b", "linked")); err != nil {
		t.Skipf("cannot make symbolic links here: %v", err)
	}
	if err := os.Symlink("..", filepath.Join(root, "b", "loop")); err != nil {
		t.Fatal(err)
	}
	d, err = LoadFolder(root, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.N != MaxFolderDepth+2 {
		t.Errorf("%d images, want %d (with the linked folder's, once)", d.N, MaxFolderDepth+2)
	}
	checkSkipped(t, root, d.Skipped, map[string]SkipKind{tooDeep: SkipNotImage, "b/loop": SkipNotImage})
}

// TestFolderClassNameWithComma: a class folder whose name has a comma is
// refused by name (class names are stored comma-separated), not split.
func TestFolderClassNameWithComma(t *testing.T) {
	root := t.TempDir()
	for _, c := range []string{"cats", "dogs, big"} {
		if err := os.MkdirAll(filepath.Join(root, c), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, c, "a.png"), encode(t, image.NewRGBA(image.Rect(0, 0, 4, 4)), "png"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := ListFolder(root, nil)
	if err == nil || !strings.Contains(err.Error(), `"dogs, big"`) || !strings.Contains(err.Error(), "rename the folder") {
		t.Fatalf("err = %v", err)
	}
}
