package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG with image.Decode
	_ "image/png"  // registers PNG with image.Decode
	"io/fs"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/model"
)

// maxPredictBatch bounds the batch the network is built for; more images are
// run in several batches.
const maxPredictBatch = 256

// maxImagePixels refuses absurd image sizes before decoding allocates them.
const maxImagePixels = 1 << 28

func predictCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "predict",
		Usage:     "classify PNG or JPEG images with a trained checkpoint",
		ArgsUsage: "IMAGE...",
		Description: "Decodes each image (PNG or JPEG, any size; grey or RGBA becomes RGB, alpha is ignored),\n" +
			"resizes it to the model's input (bilinear, averaging when shrinking), scales pixels to\n" +
			"[0,1] as in training and prints the --top most likely classes with their probabilities.\n" +
			"Every image is decoded before any prediction, so one bad file fails the run up front.\n" +
			"With --json each image is one line: {\"file\":...,\"top\":[{\"class\",\"index\",\"p\"},...]}.\n\n" +
			"Example:\n   trainer predict --checkpoint model.safetensors --top 3 cat.png ship.jpg",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "checkpoint", Value: "model.safetensors", Usage: "safetensors file written by train"},
			&ucli.IntFlag{Name: "top", Value: 3, Usage: "how many classes to print per image"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object per image per line"},
		}, deviceFlags()...),
		Action: runPredict,
	}
}

// prediction is one class of an image's top-k.
type prediction struct {
	Class string  `json:"class"`
	Index int     `json:"index"`
	P     float64 `json:"p"`
}

func runPredict(c *ucli.Context) error {
	files := c.Args().Slice()
	if len(files) == 0 {
		return fmt.Errorf("predict needs at least one image file, e.g. trainer predict --checkpoint model.safetensors cat.png")
	}
	for _, f := range files {
		if strings.HasPrefix(f, "-") && f != "-" {
			return fmt.Errorf("image %q looks like a flag: put flags before the image files", f)
		}
	}
	topK := c.Int("top")
	if topK < 1 {
		return fmt.Errorf("--top %d: must be at least 1", topK)
	}
	ck, net, flat, err := model.Open(c.String("checkpoint"))
	if err != nil {
		return err
	}
	in := net.Input
	if in.C != 1 && in.C != 3 {
		return fmt.Errorf("checkpoint %s: the model takes %d-channel images; predict handles 1 (grey) or 3 (RGB)", ck.Path, in.C)
	}
	classes := classNames(ck, net.Classes)
	topK = min(topK, net.Classes)

	// Decode everything first: a bad file fails the run before any work.
	x := make([]float32, len(files)*in.Size())
	for i, f := range files {
		if err := loadImageInput(f, in, x[i*in.Size():(i+1)*in.Size()]); err != nil {
			return err
		}
	}

	b, err := openDevice(c.String("device"), c.Int("threads"), c.Bool("tf32"))
	if err != nil {
		return err
	}
	defer b.Close()
	bs := min(len(files), maxPredictBatch)
	if err := net.Build(b, bs, 0); err != nil {
		return err
	}
	if err := net.SetParams(flat); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for lo := 0; lo < len(files); lo += bs {
		cnt := min(bs, len(files)-lo)
		probs, err := net.Predict(x[lo*in.Size():(lo+cnt)*in.Size()], cnt)
		if err != nil {
			return err
		}
		for i := range cnt {
			top := topClasses(probs[i*net.Classes:(i+1)*net.Classes], classes, topK)
			file := files[lo+i]
			if c.Bool("json") {
				if err := enc.Encode(struct {
					File string       `json:"file"`
					Top  []prediction `json:"top"`
				}{file, top}); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintln(stdout, file)
			for r, p := range top {
				fmt.Fprintf(stdout, "  %d. %-12s %.4f\n", r+1, p.Class, p.P)
			}
		}
	}
	return nil
}

// classNames reads the checkpoint's class names, or numbers the classes
// when it has none or the wrong count.
func classNames(ck *model.Checkpoint, n int) []string {
	names := strings.Split(ck.Meta["classes"], ",")
	if ck.Meta["classes"] != "" && len(names) == n {
		return names
	}
	if ck.Meta["classes"] != "" {
		log.Warn().Msgf("checkpoint %s names %d classes but the model has %d: printing class numbers", ck.Path, len(names), n)
	}
	names = make([]string, n)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// topClasses returns the k most probable classes, most probable first (ties
// by class index).
func topClasses(probs []float32, classes []string, k int) []prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	out := make([]prediction, k)
	for r := range out {
		j := idx[r]
		// The shortest decimal that reads back as the same float32, so JSON
		// shows 0.81 rather than 0.8100000023841858.
		p, _ := strconv.ParseFloat(strconv.FormatFloat(float64(probs[j]), 'g', -1, 32), 64)
		out[r] = prediction{Class: classes[j], Index: j, P: p}
	}
	return out
}

// loadImageInput decodes the PNG or JPEG file path and writes it, resized to
// in.H x in.W and scaled to [0,1], into dst (CHW, in.C = 1 or 3).
func loadImageInput(path string, in model.Shape, dst []float32) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("image %s: file not found", path)
		case errors.As(err, &pe):
			return fmt.Errorf("image %s: %v", path, pe.Err)
		}
		return fmt.Errorf("image %s: %v", path, err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return fmt.Errorf("image %s: not a PNG or JPEG image", path)
		}
		return fmt.Errorf("image %s: cannot read the %s header: %v", path, format, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return fmt.Errorf("image %s: %dx%d pixels is not a size predict accepts (at most %d megapixels)", path, cfg.Width, cfg.Height, maxImagePixels>>20)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("image %s: cannot decode %s: %v", path, strings.ToUpper(format), err)
	}
	resizeInto(img, in, dst)
	return nil
}

// resizeInto resamples img to in.H x in.W with a separable triangle
// (bilinear) filter on pixel centres, the same as PIL's BILINEAR: enlarging
// is plain bilinear interpolation, shrinking widens the triangle to the
// scale factor so every source pixel contributes (no aliasing). Weights are
// normalised, so a constant image stays exactly constant.
func resizeInto(img image.Image, in model.Shape, dst []float32) {
	r := img.Bounds()
	sw, sh := r.Dx(), r.Dy()
	xw := filterWeights(sw, in.W)
	yw := filterWeights(sh, in.H)
	// Horizontal pass, one source row at a time: tmp is [C][sh][in.W].
	row := make([]float32, 3*sw)
	tmp := make([]float64, in.C*sh*in.W)
	for y := range sh {
		readRow(img, r.Min.Y+y, row)
		if in.C == 1 {
			for x := range sw {
				row[x] = float32(0.299*float64(row[3*x]) + 0.587*float64(row[3*x+1]) + 0.114*float64(row[3*x+2]))
			}
		}
		for c := range in.C {
			for ox, w := range xw {
				var s float64
				for k, wk := range w.w {
					s += wk * float64(row[(w.first+k)*in.C+c])
				}
				tmp[(c*sh+y)*in.W+ox] = s
			}
		}
	}
	// Vertical pass.
	for c := range in.C {
		for oy, w := range yw {
			for ox := range in.W {
				var s float64
				for k, wk := range w.w {
					s += wk * tmp[(c*sh+w.first+k)*in.W+ox]
				}
				dst[(c*in.H+oy)*in.W+ox] = float32(s)
			}
		}
	}
}

// taps are the source pixels first.. and their weights for one output pixel.
type taps struct {
	first int
	w     []float64
}

// filterWeights computes, for each of the out output pixels, the triangle
// filter weights over the in source pixels.
func filterWeights(in, out int) []taps {
	scale := float64(in) / float64(out)
	support := max(scale, 1) // triangle half-width in source pixels
	ws := make([]taps, out)
	for o := range ws {
		centre := (float64(o) + 0.5) * scale
		lo := max(int(math.Floor(centre-support)), 0)
		hi := min(int(math.Ceil(centre+support)), in-1)
		var t taps
		t.first = -1
		var sum float64
		for i := lo; i <= hi; i++ {
			w := 1 - math.Abs(float64(i)+0.5-centre)/support
			if w <= 0 {
				if t.first < 0 {
					continue
				}
				break
			}
			if t.first < 0 {
				t.first = i
			}
			t.w = append(t.w, w)
			sum += w
		}
		if t.first < 0 { // cannot happen for in >= 1, but never index -1
			t.first, t.w, sum = min(int(centre), in-1), []float64{1}, 1
		}
		for k := range t.w {
			t.w[k] /= sum
		}
		ws[o] = t
	}
	return ws
}

// readRow writes row y of img as interleaved RGB floats in [0,1] (alpha
// ignored: colours are taken un-premultiplied) into dst (3 per pixel).
func readRow(img image.Image, y int, dst []float32) {
	r := img.Bounds()
	switch m := img.(type) {
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(r.Min.X, y):]
		for x := range r.Dx() {
			dst[3*x], dst[3*x+1], dst[3*x+2] = float32(p[4*x])/255, float32(p[4*x+1])/255, float32(p[4*x+2])/255
		}
		return
	case *image.Gray:
		p := m.Pix[m.PixOffset(r.Min.X, y):]
		for x := range r.Dx() {
			v := float32(p[x]) / 255
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
		return
	case *image.YCbCr:
		for x := range r.Dx() {
			yi, ci := m.YOffset(r.Min.X+x, y), m.COffset(r.Min.X+x, y)
			R, G, B := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			dst[3*x], dst[3*x+1], dst[3*x+2] = float32(R)/255, float32(G)/255, float32(B)/255
		}
		return
	}
	rgba, _ := img.(*image.RGBA) // PNGs without alpha decode to opaque RGBA
	for x := range r.Dx() {
		if rgba != nil {
			if p := rgba.Pix[rgba.PixOffset(r.Min.X+x, y):]; p[3] == 255 {
				dst[3*x], dst[3*x+1], dst[3*x+2] = float32(p[0])/255, float32(p[1])/255, float32(p[2])/255
				continue
			}
		}
		c := color.NRGBA64Model.Convert(img.At(r.Min.X+x, y)).(color.NRGBA64)
		// For 8-bit sources v*257/65535 is exactly v/255, so this agrees
		// with the fast paths above.
		dst[3*x], dst[3*x+1], dst[3*x+2] = float32(c.R)/65535, float32(c.G)/65535, float32(c.B)/65535
	}
}
