package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/image/draw"
)

// Limits of source images, variables so tests can lower them.
var (
	maxSide   = 16384    // pixels per side
	maxPixels = 64 << 20 // pixels (64 Mpx)
)

// MaxSide is the largest side, in pixels, of an image this package decodes
// (and so the largest sensible target size).
func MaxSide() int { return maxSide }

// Scale converts a stored uint8 pixel to the model's float32 input, as the
// trainer's gather does (model.Network.LoadBatch passes 1.0/255).
const Scale float32 = 1.0 / 255

// Shape is the layout of a decoded image: C channels (1 or 3) of H x W
// pixels, channel-major.
type Shape struct{ C, H, W int }

// Size is the number of values of an image of shape s.
func (s Shape) Size() int { return s.C * s.H * s.W }

// Error is a one-line error about an image file: "path: message". It
// unwraps to the underlying error, if any.
type Error struct {
	Path string
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// SizeError says an image does not have the size it must have when it is
// not resized.
type SizeError struct {
	Path         string
	W, H         int // the image's size
	WantW, WantH int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("%s: image is %dx%d, want %dx%d", e.Path, e.W, e.H, e.WantW, e.WantH)
}

// errText is err's message without the path an *fs.PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// smallFileBytes: files up to this size are read whole, in one go, and
// decoded from memory; larger ones are streamed.
const smallFileBytes = 64 << 10

// Decoder decodes images, keeping its buffers from one image to the next.
// It is not safe for concurrent use: give each worker its own.
type Decoder struct {
	buf     []byte        // small file contents
	mem     bytes.Reader  // reads buf
	br      *bufio.Reader // reads a large file
	src     io.Reader     // &mem or br, set by open and rewind
	planes  []uint8       // source image as planes, when resizing
	rgba    image.RGBA    // resize source
	out     image.RGBA64  // resize destination
	scalers map[[4]int]draw.Scaler
}

// NewDecoder returns a decoder.
func NewDecoder() *Decoder {
	return &Decoder{buf: make([]byte, smallFileBytes+1), br: bufio.NewReaderSize(nil, 32<<10), scalers: map[[4]int]draw.Scaler{}}
}

// open opens path and sets d.src to read it from the start; it returns the
// file (to close) and whether it was read whole into memory.
func (d *Decoder) open(path string) (*os.File, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		msg := "cannot open: " + errText(err)
		if errors.Is(err, fs.ErrNotExist) {
			msg = "file not found"
		}
		return nil, false, &Error{path, msg, err}
	}
	n, err := io.ReadFull(f, d.buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		d.mem.Reset(d.buf[:n])
		d.src = &d.mem
		return f, true, nil
	case err != nil:
		f.Close()
		return nil, false, &Error{path, "cannot read: " + errText(err), err}
	}
	if err := d.rewind(f, false); err != nil {
		f.Close()
		return nil, false, &Error{path, "cannot read: " + errText(err), err}
	}
	return f, false, nil
}

// rewind makes d.src read the file from the start again.
func (d *Decoder) rewind(f *os.File, inMemory bool) error {
	if inMemory {
		_, err := d.mem.Seek(0, io.SeekStart)
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	d.br.Reset(f)
	d.src = d.br
	return nil
}

// sniff tells the format from the first bytes d.src reads, and returns a
// reader of the whole file.
func (d *Decoder) sniff(path string) (string, io.Reader, error) {
	var sig [8]byte
	n, _ := io.ReadFull(d.src, sig[:])
	rest := io.MultiReader(bytes.NewReader(sig[:n]), d.src)
	switch {
	case n >= 8 && string(sig[:]) == "\x89PNG\r\n\x1a\n":
		return "png", rest, nil
	case n >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff:
		return "jpeg", rest, nil
	}
	return "", nil, &Error{path, fmt.Sprintf("not a PNG or JPEG file (starts with %q)", sig[:n]), nil}
}

// config decodes the header of the image d.src reads and checks its format
// and size.
func (d *Decoder) config(path string) (image.Config, string, error) {
	format, rest, err := d.sniff(path)
	if err != nil {
		return image.Config{}, "", err
	}
	var cfg image.Config
	if format == "png" {
		cfg, err = png.DecodeConfig(rest)
	} else {
		cfg, err = jpeg.DecodeConfig(rest)
	}
	if err != nil {
		return cfg, "", &Error{path, "cannot decode image: " + errText(err) + " (corrupt or truncated " + strings.ToUpper(format) + " file?)", err}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxSide || cfg.Height > maxSide || int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return cfg, "", &Error{path, fmt.Sprintf("image is %dx%d; refusing images over %d px per side or %d Mpx (corrupt or not meant as training data?)", cfg.Width, cfg.Height, maxSide, maxPixels>>20), nil}
	}
	return cfg, format, nil
}

// Config returns the width and height the header of the image at path
// gives, after checking its format and size.
func (d *Decoder) Config(path string) (w, h int, err error) {
	f, _, err := d.open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cfg, _, err := d.config(path)
	return cfg.Width, cfg.Height, err
}

// decode decodes the image at path, checking its header first and, if
// want is not nil, that the image is want.W x want.H.
func (d *Decoder) decode(path string, want *Shape) (image.Image, error) {
	f, inMemory, err := d.open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return d.decodeOpen(path, f, inMemory, want)
}

// decodeOpen is decode once d.src reads the file (from f, or from memory).
func (d *Decoder) decodeOpen(path string, f *os.File, inMemory bool, want *Shape) (image.Image, error) {
	cfg, format, err := d.config(path)
	if err != nil {
		return nil, err
	}
	if want != nil && (cfg.Width != want.W || cfg.Height != want.H) {
		return nil, &SizeError{path, cfg.Width, cfg.Height, want.W, want.H}
	}
	if err := d.rewind(f, inMemory); err != nil {
		return nil, &Error{path, "cannot read: " + errText(err), err}
	}
	var img image.Image
	if format == "png" {
		img, err = png.Decode(d.src)
	} else {
		img, err = jpeg.Decode(d.src)
	}
	if err != nil {
		return nil, &Error{path, "cannot decode image: " + errText(err) + " (corrupt or truncated " + strings.ToUpper(format) + " file?)", err}
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, &Error{path, fmt.Sprintf("image decodes to %dx%d but its header says %dx%d (corrupt file?)", b.Dx(), b.Dy(), cfg.Width, cfg.Height), nil}
	}
	return img, nil
}

// Load decodes the image at path into dst (s.Size() bytes, channel-major,
// s.C = 1 or 3). With resize it is resized to s.W x s.H unless it already
// has that size; without, a different size is a *SizeError (checked from
// the header, before decoding).
func (d *Decoder) Load(path string, dst []uint8, s Shape, resize bool) error {
	return d.load(path, nil, false, dst, s, resize)
}

// LoadBytes is Load of an image file already read whole into b (name is
// the file's name, for errors): the same decode, bit for bit.
func (d *Decoder) LoadBytes(name string, b []byte, dst []uint8, s Shape, resize bool) error {
	return d.load(name, b, true, dst, s, resize)
}

// load is Load (fromBytes false: path is read) or LoadBytes.
func (d *Decoder) load(path string, data []byte, fromBytes bool, dst []uint8, s Shape, resize bool) error {
	if s.C != 1 && s.C != 3 {
		return fmt.Errorf("image: %d channels; 1 (grey) or 3 (RGB) are supported", s.C)
	}
	var want *Shape
	if !resize {
		want = &s
	}
	var img image.Image
	var err error
	if fromBytes {
		d.mem.Reset(data)
		d.src = &d.mem
		img, err = d.decodeOpen(path, nil, true, want)
	} else {
		img, err = d.decode(path, want)
	}
	if err != nil {
		return err
	}
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw == s.W && sh == s.H {
		toPlanes(img, dst, s.C)
		return nil
	}
	d.planes = grow(d.planes, s.C*sw*sh)
	toPlanes(img, d.planes, s.C)
	d.resize(d.planes, s.C, sw, sh, dst, s.W, s.H)
	return nil
}

// LoadFloat is Load (always resizing) followed by ToFloat: the image at
// path as the model input the trainer would gather for it.
func (d *Decoder) LoadFloat(path string, dst []float32, s Shape) error {
	px := make([]uint8, s.Size())
	if err := d.Load(path, px, s, true); err != nil {
		return err
	}
	ToFloat(dst, px)
	return nil
}

// LoadFloatBytes is LoadFloat of an image file already read whole into b
// (name is the file's name, for errors).
func (d *Decoder) LoadFloatBytes(name string, b []byte, dst []float32, s Shape) error {
	px := make([]uint8, s.Size())
	if err := d.LoadBytes(name, b, px, s, true); err != nil {
		return err
	}
	ToFloat(dst, px)
	return nil
}

// ToFloat writes src scaled to [0,1] into dst as the trainer's gather does:
// dst[i] = float32(src[i]) * Scale.
func ToFloat(dst []float32, src []uint8) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = float32(v) * Scale
	}
}

// grow returns b resized to n, reallocating only if its capacity is short.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}
