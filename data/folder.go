package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// FolderOptions configures LoadFolder.
type FolderOptions struct {
	// Size, if not 0, resizes every image to Size x Size (bilinear; area
	// averaging along an axis shrunk by more than 2x). With 0 images keep
	// their size, and all must share one.
	Size int

	// Classes, if set, fixes the class list and order (label i is
	// Classes[i]), for example to load a validation folder with the labels
	// of the training data. Every class folder must then be in the list;
	// listed classes without a folder are allowed. Default: the sorted names
	// of the class folders.
	Classes []string

	// Workers is the number of images decoded in parallel; 0 means
	// runtime.GOMAXPROCS(0) (normally the number of CPUs).
	Workers int
}

// Limits of LoadFolder, variables so tests can lower them.
var (
	maxImageSide    = 16384           // pixels per side of a source image
	maxImagePixels  = 64 << 20        // pixels of a source image (64 Mpx)
	maxFolderBytes  = int64(32) << 30 // bytes of the loaded dataset
	imageExtensions = []string{".png", ".jpg", ".jpeg"}
)

// folderLayout says what LoadFolder expects.
const folderLayout = "an image folder holds one subfolder per class, each with .png, .jpg or .jpeg files"

// folderImage is one image file to load.
type folderImage struct {
	path  string
	label int32
}

// LoadFolder reads an image-folder dataset: root/<class>/<image>, where the
// class names are the sorted names of root's subfolders (or o.Classes) and
// an image's label is the index of its class. Image files are the files
// named *.png, *.jpg or *.jpeg (any case) directly in a class folder; other
// files, subfolders and hidden names (starting with ".") are ignored, at
// both levels.
//
// Images are decoded with the standard library (PNG or JPEG, whatever the
// extension says), converted to RGB (grey images to three equal channels;
// alpha is dropped, as PIL's convert("RGB") does), resized if o.Size is set,
// and stored as uint8, channel-major (C=3). Decoding runs on o.Workers
// goroutines, but the order is fixed (by label, then by file name within a
// class) so the result does not depend on the worker count.
//
// Each image's size is read from its header and refused if over 16384 px
// per side or 64 Mpx before it is decoded. Errors name the folder or file at
// fault; when several images are bad, the first in that order is reported.
func LoadFolder(root string, o FolderOptions) (*Dataset, error) {
	if o.Size < 0 || o.Size > maxImageSide {
		return nil, fmt.Errorf("data: FolderOptions.Size %d must be 0 (keep) or 1..%d", o.Size, maxImageSide)
	}
	if o.Workers < 0 {
		return nil, fmt.Errorf("data: FolderOptions.Workers %d must be 0 (one per CPU) or more", o.Workers)
	}
	for i, c := range o.Classes {
		if c == "" || strings.HasPrefix(c, ".") || strings.ContainsAny(c, `/\`) {
			return nil, fmt.Errorf("data: FolderOptions.Classes[%d] = %q is not a folder name", i, c)
		}
		if slices.Contains(o.Classes[:i], c) {
			return nil, fmt.Errorf("data: FolderOptions.Classes lists %q twice", c)
		}
	}
	files, classes, err := listFolder(root, o.Classes)
	if err != nil {
		return nil, err
	}

	h, w := o.Size, o.Size
	if o.Size == 0 {
		// All images must share the first one's size.
		cfg, err := newDecoder().imageConfig(files[0].path)
		if err != nil {
			return nil, err
		}
		h, w = cfg.Height, cfg.Width
	}
	n := len(files)
	isz := int64(3) * int64(h) * int64(w)
	if int64(n) > maxFolderBytes/isz {
		return nil, &fileError{root, fmt.Sprintf("%d images of 3x%dx%d would need %.1f GiB in memory, more than the %d GiB allowed; resize them smaller (FolderOptions.Size)", n, h, w, float64(n)*float64(isz)/(1<<30), maxFolderBytes>>30), nil}
	}
	d := &Dataset{
		Images:  make([]uint8, int64(n)*isz),
		Labels:  make([]int32, n),
		N:       n,
		C:       3,
		H:       h,
		W:       w,
		Classes: classes,
	}
	for i, f := range files {
		d.Labels[i] = f.label
	}

	workers := o.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	var (
		next    atomic.Int64 // next image to take
		failed  atomic.Bool
		wg      sync.WaitGroup
		errMu   sync.Mutex
		errAt   = n
		firstEr error
	)
	for range workers {
		wg.Go(func() {
			dec := newDecoder()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := dec.load(files[i].path, d.Images[int64(i)*isz:int64(i+1)*isz], w, h, o.Size == 0)
				if err != nil {
					// Images are taken in order, so every image before i
					// has been taken and will finish: the smallest index
					// that fails is the first bad image, whatever the
					// timing.
					errMu.Lock()
					if i < errAt {
						errAt, firstEr = i, err
					}
					errMu.Unlock()
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if firstEr != nil {
		return nil, firstEr
	}
	return d, nil
}

// isImageName reports whether name is a visible file name with an image
// extension.
func isImageName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	return slices.Contains(imageExtensions, ext)
}

// listFolder returns the image files under root in load order and the class
// names.
func listFolder(root string, fixed []string) ([]folderImage, []string, error) {
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() {
		msg := "folder not found; pass --data-dir pointing at an image folder (" + folderLayout + ")"
		if err == nil {
			msg = "is a file, not a folder; " + folderLayout
		} else if !errors.Is(err, fs.ErrNotExist) {
			msg = "cannot open folder: " + errText(err)
		}
		return nil, nil, &fileError{root, msg, err}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, &fileError{root, "cannot list folder: " + errText(err), err}
	}
	var found []string // sorted: ReadDir sorts by name
	loose := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := os.Stat(filepath.Join(root, e.Name())) // follows links
		switch {
		case err == nil && fi.IsDir():
			found = append(found, e.Name())
		case err == nil && isImageName(e.Name()):
			loose++
		}
	}
	if len(found) == 0 {
		msg := "has no class folders; " + folderLayout
		if loose > 0 {
			msg = fmt.Sprintf("has no class folders but %d images directly in it; %s", loose, folderLayout)
		}
		return nil, nil, &fileError{root, msg, nil}
	}
	classes := found
	if len(fixed) > 0 {
		classes = slices.Clone(fixed)
		for _, name := range found {
			if !slices.Contains(fixed, name) {
				return nil, nil, &fileError{filepath.Join(root, name), fmt.Sprintf("class folder %q is not one of the %d expected classes (%s); remove or rename it", name, len(fixed), strings.Join(fixed, ", ")), nil}
			}
		}
	}
	var files []folderImage
	for label, name := range classes {
		dir := filepath.Join(root, name)
		if len(fixed) > 0 && !slices.Contains(found, name) {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, &fileError{dir, "cannot list folder: " + errText(err), err}
		}
		before := len(files)
		for _, e := range entries {
			if !isImageName(e.Name()) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if !e.Type().IsRegular() {
				if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
					continue // a folder named like an image, a broken link, ...
				}
			}
			files = append(files, folderImage{p, int32(label)})
		}
		if len(files) == before {
			return nil, nil, &fileError{dir, "class folder has no images (.png, .jpg or .jpeg); add some or remove the folder", nil}
		}
	}
	return files, classes, nil
}

// smallImageBytes: files up to this size are read whole, in one go, and
// decoded from memory; larger ones are streamed.
const smallImageBytes = 64 << 10

// decoder holds one worker's reusable buffers.
type decoder struct {
	buf     []byte        // small file contents
	mem     bytes.Reader  // reads buf
	br      *bufio.Reader // reads a large file
	src     io.Reader     // &mem or br, set by open and rewind
	planes  []uint8       // source image as RGB planes, when resizing
	tmp     []float32     // horizontal pass of the resize
	weights map[[2]int]*axisWeights
}

func newDecoder() *decoder {
	return &decoder{buf: make([]byte, smallImageBytes+1), br: bufio.NewReaderSize(nil, 32<<10), weights: map[[2]int]*axisWeights{}}
}

// open opens path and sets dec.src to read it from the start; it returns
// the file (to close) and whether it was read whole into memory.
func (dec *decoder) open(path string) (*os.File, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, &fileError{path, "cannot open: " + errText(err), err}
	}
	n, err := io.ReadFull(f, dec.buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		dec.mem.Reset(dec.buf[:n])
		dec.src = &dec.mem
		return f, true, nil
	case err != nil:
		f.Close()
		return nil, false, &fileError{path, "cannot read: " + errText(err), err}
	}
	if err := dec.rewind(f, false); err != nil {
		f.Close()
		return nil, false, &fileError{path, "cannot read: " + errText(err), err}
	}
	return f, false, nil
}

// rewind makes dec.src read the file from the start again.
func (dec *decoder) rewind(f *os.File, inMemory bool) error {
	if inMemory {
		_, err := dec.mem.Seek(0, io.SeekStart)
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dec.br.Reset(f)
	dec.src = dec.br
	return nil
}

// config decodes the header of the image dec.src reads and checks its
// format and size.
func (dec *decoder) config(path string) (image.Config, string, error) {
	var sig [8]byte
	n, _ := io.ReadFull(dec.src, sig[:])
	format := ""
	switch {
	case n >= 8 && string(sig[:]) == "\x89PNG\r\n\x1a\n":
		format = "png"
	case n >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff:
		format = "jpeg"
	default:
		return image.Config{}, "", &fileError{path, fmt.Sprintf("not a PNG or JPEG file (starts with %q)", sig[:n]), nil}
	}
	rest := io.MultiReader(bytes.NewReader(sig[:n]), dec.src)
	var cfg image.Config
	var err error
	if format == "png" {
		cfg, err = png.DecodeConfig(rest)
	} else {
		cfg, err = jpeg.DecodeConfig(rest)
	}
	if err != nil {
		return cfg, "", &fileError{path, "cannot decode image: " + errText(err) + " (corrupt or truncated " + strings.ToUpper(format) + " file?)", err}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxImageSide || cfg.Height > maxImageSide || int64(cfg.Width)*int64(cfg.Height) > int64(maxImagePixels) {
		return cfg, "", &fileError{path, fmt.Sprintf("image is %dx%d; refusing images over %d px per side or %d Mpx (corrupt or not meant as training data?)", cfg.Width, cfg.Height, maxImageSide, maxImagePixels>>20), nil}
	}
	return cfg, format, nil
}

// imageConfig returns the checked header of the image at path.
func (dec *decoder) imageConfig(path string) (image.Config, error) {
	f, _, err := dec.open(path)
	if err != nil {
		return image.Config{}, err
	}
	defer f.Close()
	cfg, _, err := dec.config(path)
	return cfg, err
}

// load decodes the image at path into dst (3*h*w bytes, channel-major),
// resized to w x h unless exact, in which case its size must be w x h.
func (dec *decoder) load(path string, dst []uint8, w, h int, exact bool) error {
	f, inMemory, err := dec.open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, format, err := dec.config(path)
	if err != nil {
		return err
	}
	if exact && (cfg.Width != w || cfg.Height != h) {
		return &fileError{path, fmt.Sprintf("image is %dx%d but the first image is %dx%d; images must share one size unless resized (FolderOptions.Size)", cfg.Width, cfg.Height, w, h), nil}
	}
	if err := dec.rewind(f, inMemory); err != nil {
		return &fileError{path, "cannot read: " + errText(err), err}
	}
	var img image.Image
	if format == "png" {
		img, err = png.Decode(dec.src)
	} else {
		img, err = jpeg.Decode(dec.src)
	}
	if err != nil {
		return &fileError{path, "cannot decode image: " + errText(err) + " (corrupt or truncated file?)", err}
	}
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw != cfg.Width || sh != cfg.Height {
		return &fileError{path, fmt.Sprintf("image decodes to %dx%d but its header says %dx%d (corrupt file?)", sw, sh, cfg.Width, cfg.Height), nil}
	}
	if sw == w && sh == h {
		toPlanes(img, dst)
		return nil
	}
	dec.planes = grow(dec.planes, 3*sw*sh)
	toPlanes(img, dec.planes)
	dec.resize(dec.planes, sw, sh, dst, w, h)
	return nil
}

// grow returns b resized to n, reallocating only if its capacity is short.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// toPlanes writes img as three w*h planes R, G, B into dst.
func toPlanes(img image.Image, dst []uint8) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	r, g, bl := dst[:plane], dst[plane:2*plane], dst[2*plane:3*plane]
	switch m := img.(type) {
	case *image.YCbCr:
		// Chroma sample (x>>xs, y>>ys), as image.YCbCr.COffset computes.
		xs, ys := 0, 0
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio422:
			xs = 1
		case image.YCbCrSubsampleRatio420:
			xs, ys = 1, 1
		case image.YCbCrSubsampleRatio440:
			ys = 1
		case image.YCbCrSubsampleRatio411:
			xs = 2
		case image.YCbCrSubsampleRatio410:
			xs, ys = 2, 1
		}
		for y := range h {
			sy := b.Min.Y + y
			yrow := m.Y[(sy-m.Rect.Min.Y)*m.YStride+(b.Min.X-m.Rect.Min.X):]
			crow := (sy>>ys - m.Rect.Min.Y>>ys) * m.CStride
			cb, cr := m.Cb[crow:], m.Cr[crow:]
			c0 := m.Rect.Min.X >> xs
			o := y * w
			for x := range w {
				ci := (b.Min.X+x)>>xs - c0
				r[o+x], g[o+x], bl[o+x] = ycbcrToRGB(yrow[x], cb[ci], cr[ci])
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			copy(r[y*w:], row)
			copy(g[y*w:], row)
			copy(bl[y*w:], row)
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				i := y*w + x
				r[i], g[i], bl[i] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				i := y*w + x
				pr, pg, pb, pa := row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]
				if pa != 0xff && pa != 0 { // premultiplied: undo, dropping alpha
					pr = uint8((uint32(pr)*0xff + uint32(pa)/2) / uint32(pa))
					pg = uint8((uint32(pg)*0xff + uint32(pa)/2) / uint32(pa))
					pb = uint8((uint32(pb)*0xff + uint32(pa)/2) / uint32(pa))
				}
				r[i], g[i], bl[i] = pr, pg, pb
			}
		}
	case *image.Paletted:
		var pal [256][3]uint8
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [3]uint8{n.R, n.G, n.B}
		}
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, p := range row {
				i := y*w + x
				r[i], g[i], bl[i] = pal[p][0], pal[p][1], pal[p][2]
			}
		}
	default: // Gray16, NRGBA64, RGBA64, CMYK, ...: slow but general
		for y := range h {
			for x := range w {
				n := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := y*w + x
				r[i], g[i], bl[i] = n.R, n.G, n.B
			}
		}
	}
}

// ycbcrToRGB is color.YCbCrToRGB, copied so that it inlines.
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy1 := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy1 + 91881*cr1
	if uint32(r)&0xff000000 == 0 {
		r >>= 16
	} else {
		r = ^(r >> 31)
	}
	g := yy1 - 22554*cb1 - 46802*cr1
	if uint32(g)&0xff000000 == 0 {
		g >>= 16
	} else {
		g = ^(g >> 31)
	}
	b := yy1 + 116130*cb1
	if uint32(b)&0xff000000 == 0 {
		b >>= 16
	} else {
		b = ^(b >> 31)
	}
	return uint8(r), uint8(g), uint8(b)
}

// axisWeights resamples one axis from src to dst samples: output i is
// sum over k < count of w[i*count+k] * in[first[i]+k].
type axisWeights struct {
	first []int
	count int
	w     []float32
}

// weightsFor returns (cached) resampling weights from n to m samples.
func (dec *decoder) weightsFor(n, m int) *axisWeights {
	key := [2]int{n, m}
	if a, ok := dec.weights[key]; ok {
		return a
	}
	a := resampleWeights(n, m)
	if len(dec.weights) > 64 {
		clear(dec.weights) // many sizes: keep the cache small
	}
	dec.weights[key] = a
	return a
}

// resampleWeights computes the weights to resample n samples to m. Pixel
// centres are aligned (output i sits at (i+0.5)*n/m - 0.5 in the input, as
// in PIL, OpenCV and PyTorch with align_corners=False). Enlarging or
// shrinking by up to 2x is linear interpolation between the two nearest
// samples (edges clamped); shrinking by more averages the input samples
// under each output sample's footprint, weighted by coverage (area
// averaging), so no input is skipped.
func resampleWeights(n, m int) *axisWeights {
	scale := float64(n) / float64(m)
	a := &axisWeights{first: make([]int, m)}
	if n == 1 {
		a.count, a.w = 1, make([]float32, m)
		for i := range a.w {
			a.w[i] = 1
		}
		return a
	}
	if scale <= 2 {
		a.count = 2
		a.w = make([]float32, 2*m)
		for i := range m {
			x := (float64(i)+0.5)*scale - 0.5
			x = min(max(x, 0), float64(n-1))
			x0 := min(int(x), n-2)
			t := x - float64(x0)
			a.first[i] = x0
			a.w[2*i], a.w[2*i+1] = float32(1-t), float32(t)
		}
		return a
	}
	a.count = min(int(math.Ceil(scale))+1, n)
	a.w = make([]float32, a.count*m)
	for i := range m {
		lo, hi := float64(i)*scale, float64(i+1)*scale
		first := int(lo)
		a.first[i] = min(first, n-a.count) // keep first+count within n
		for k := range a.count {
			j := a.first[i] + k
			cover := min(hi, float64(j+1)) - max(lo, float64(j))
			if cover > 0 {
				a.w[i*a.count+k] = float32(cover / scale)
			}
		}
	}
	return a
}

// resize resamples the three sw x sh planes in src to dw x dh planes in dst:
// a horizontal pass into float32 rows, then a vertical pass row by row.
func (dec *decoder) resize(src []uint8, sw, sh int, dst []uint8, dw, dh int) {
	ax, ay := dec.weightsFor(sw, dw), dec.weightsFor(sh, dh)
	dec.tmp = grow(dec.tmp, sh*dw+dw)
	tmp, acc := dec.tmp[:sh*dw], dec.tmp[sh*dw:]
	for c := range 3 {
		in := src[c*sw*sh : (c+1)*sw*sh]
		out := dst[c*dw*dh : (c+1)*dw*dh]
		for y := range sh {
			row := in[y*sw : (y+1)*sw]
			t := tmp[y*dw : (y+1)*dw]
			switch ax.count {
			case 1:
				for x := range t {
					t[x] = float32(row[ax.first[x]])
				}
			case 2:
				for x := range t {
					f := ax.first[x]
					t[x] = ax.w[2*x]*float32(row[f]) + ax.w[2*x+1]*float32(row[f+1])
				}
			default:
				for x := range t {
					ws := ax.w[x*ax.count : (x+1)*ax.count]
					px := row[ax.first[x] : ax.first[x]+ax.count]
					var s float32
					for k, wt := range ws {
						s += wt * float32(px[k])
					}
					t[x] = s
				}
			}
		}
		for y := range dh {
			ws := ay.w[y*ay.count : (y+1)*ay.count]
			base := ay.first[y]
			w0 := ws[0]
			for x, v := range tmp[base*dw : (base+1)*dw] {
				acc[x] = w0 * v
			}
			for k := 1; k < len(ws); k++ {
				if wt := ws[k]; wt != 0 {
					for x, v := range tmp[(base+k)*dw : (base+k+1)*dw] {
						acc[x] += wt * v
					}
				}
			}
			o := out[y*dw : (y+1)*dw]
			for x, v := range acc {
				o[x] = toUint8(v)
			}
		}
	}
}

// toUint8 rounds v, a convex combination of uint8 values (so in [0, 255]
// up to float rounding), to the nearest uint8.
func toUint8(v float32) uint8 {
	return uint8(int32(v + 0.5))
}

// SplitValidation splits d into a training and a validation set for
// --val-split, stratified by label: for each class, a seeded shuffle picks
// which of its images go to validation. The validation set holds
// round(frac*N) images, spread over the classes in proportion to their sizes
// (largest remainders get the leftover ones, ties to the lower label,
// preferring classes that keep a training image). Both
// sets keep d's order and get their own copies of the pixels; the result
// depends only on d, frac and seed.
func SplitValidation(d *Dataset, frac float64, seed uint64) (train, val *Dataset, err error) {
	if d == nil {
		return nil, nil, errors.New("data: SplitValidation of a nil dataset")
	}
	if !(frac > 0 && frac < 1) {
		return nil, nil, fmt.Errorf("data: validation fraction %v must be between 0 and 1 (exclusive)", frac)
	}
	isz := d.ImageSize()
	if d.N < 0 || len(d.Labels) != d.N || len(d.Images) != d.N*isz {
		return nil, nil, fmt.Errorf("data: SplitValidation: dataset has N=%d but %d labels and %d pixel bytes (want %d)", d.N, len(d.Labels), len(d.Images), d.N*isz)
	}
	nVal := int(math.Round(frac * float64(d.N)))
	if nVal == 0 || nVal == d.N {
		return nil, nil, fmt.Errorf("data: a validation fraction of %v of %d images leaves %d for validation and %d for training; both need at least one", frac, d.N, nVal, d.N-nVal)
	}

	// Group indices by label.
	numClasses := len(d.Classes)
	for i, l := range d.Labels {
		if l < 0 || (numClasses > 0 && int(l) >= numClasses) {
			return nil, nil, fmt.Errorf("data: SplitValidation: image %d has label %d, outside 0..%d", i, l, numClasses-1)
		}
	}
	if numClasses == 0 {
		numClasses = int(slices.Max(d.Labels)) + 1
	}
	byClass := make([][]int32, numClasses)
	for i, l := range d.Labels {
		byClass[l] = append(byClass[l], int32(i))
	}

	// Per-class quotas: floors, then the remaining images to the largest
	// fractional parts.
	quota := make([]int, numClasses)
	rem := make([]float64, numClasses)
	left := nVal
	for c, idx := range byClass {
		q := frac * float64(len(idx))
		quota[c] = int(q)
		rem[c] = q - float64(quota[c])
		left -= quota[c]
	}
	order := make([]int, numClasses)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	// First to classes that keep a training image, then to any.
	for _, keep := range []int{1, 0} {
		for _, c := range order {
			if left > 0 && rem[c] > 0 && quota[c]+keep < len(byClass[c]) {
				quota[c]++
				rem[c] = 0
				left--
			}
		}
	}

	// Pick each class's validation images with one seeded generator.
	inVal := make([]bool, d.N)
	rng := rand.New(rand.NewPCG(seed, 0x76616c2d73706c74)) // "val-splt"
	for c, idx := range byClass {
		perm := make([]int32, len(idx))
		Permutation(rng, perm)
		for _, p := range perm[:quota[c]] {
			inVal[idx[p]] = true
		}
	}
	train = &Dataset{N: d.N - nVal, C: d.C, H: d.H, W: d.W, Classes: slices.Clone(d.Classes)}
	val = &Dataset{N: nVal, C: d.C, H: d.H, W: d.W, Classes: slices.Clone(d.Classes)}
	for _, s := range []*Dataset{train, val} {
		s.Images = make([]uint8, 0, s.N*isz)
		s.Labels = make([]int32, 0, s.N)
	}
	for i := range d.N {
		s := train
		if inVal[i] {
			s = val
		}
		s.Images = append(s.Images, d.Image(i)...)
		s.Labels = append(s.Labels, d.Labels[i])
	}
	return train, val, nil
}
