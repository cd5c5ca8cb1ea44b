package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/trainer-go/trainer/model"
)

// explainTop is how many classes explain prints and draws per image.
const explainTop = 3

func explainCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "explain",
		Usage:     "show which pixels a trained checkpoint's prediction rests on (Grad-CAM and saliency maps)",
		ArgsUsage: "IMAGE...",
		Description: "Reads each image as predict does, runs it through the model in evaluation mode and back\n" +
			"from the score of one class (its logit, before the softmax: the most likely class unless\n" +
			"--class is given), and writes OUT-DIR/NAME.explain.png (NAME: the image's file name without\n" +
			"its extension) with three panels side by side: the model's input, scaled up by a whole\n" +
			"factor to at least 160 px (nearest neighbour); Grad-CAM over the output of the last conv\n" +
			"layer (or --layer): ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of the score's\n" +
			"gradient over channel k of the layer's output A, upsampled bilinearly and drawn in the jet\n" +
			"colours over the input; and the saliency map max_c |d score / d input| (white: largest).\n" +
			"The Grad-CAM map is scaled from its minimum (0) to its maximum (1), as pytorch-grad-cam does\n" +
			"(a constant map shows as 0); the saliency map is divided by its maximum. Captions and the\n" +
			"top 3 classes are drawn in the image.\n" +
			"Prints the top 3 classes of each image as predict does, then the PNG's path; with --json\n" +
			"one line per image: {\"file\",\"png\",\"class\",\"index\",\"p\",\"layer\",\"top\":[...]}.\n" +
			"An image that cannot be read is named on stderr and skipped (exit code 2).\n\n" +
			"Example:\n   trainer explain --checkpoint model.safetensors --out-dir maps cat.png ship.jpg",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "checkpoint", Value: "model.safetensors", Usage: "safetensors file written by train"},
			&ucli.StringFlag{Name: "out-dir", Value: ".", Usage: "folder for the NAME.explain.png files (made if missing)"},
			&ucli.StringFlag{Name: "layer", Usage: "layer for Grad-CAM, any with CxHxW output (default: the last conv layer)"},
			&ucli.StringFlag{Name: "class", Usage: "class to explain, by name or index (default: the most likely)"},
			&ucli.BoolFlag{Name: "no-ema", Usage: "use the trained weights even when the checkpoint holds their moving average (--ema)"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object per image per line"},
		}, deviceFlags()...),
		Action: runExplain,
	}
}

// explainResult is the --json line of one image.
type explainResult struct {
	File  string       `json:"file"`
	PNG   string       `json:"png"`
	Class string       `json:"class"`
	Index int          `json:"index"`
	P     float64      `json:"p"`
	Layer string       `json:"layer"`
	Top   []prediction `json:"top"`
}

// explainJob is what runExplain checked before any work.
type explainJob struct {
	files   []string
	outs    map[string]string // image file -> PNG path
	classes []string
	class   int // -1: the most likely
	layer   string
	flat    []float32
	net     *model.Network
}

func runExplain(c *ucli.Context) error {
	j, err := prepareExplain(c)
	if err != nil {
		return err
	}
	files, x, skipped, err := loadInputs(j.files, j.net.Input)
	if err != nil {
		return err
	}
	b, err := openDevice(c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := j.net.Build(b, 1, 0); err != nil {
		return err
	}
	defer j.net.Close()
	if err := j.net.SetParams(j.flat); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	size := j.net.Input.Size()
	for i, f := range files {
		r, err := j.explainOne(f, x[i*size:(i+1)*size])
		if err != nil {
			return err
		}
		if err := printExplained(c.Bool("json"), enc, r); err != nil {
			return err
		}
	}
	if skipped > 0 {
		return &exitError{ExitSkipped, fmt.Errorf("%d of %d images could not be read and were skipped (each is named above)", skipped, skipped+len(files))}
	}
	return nil
}

// prepareExplain checks the flags, the checkpoint and the output paths.
func prepareExplain(c *ucli.Context) (*explainJob, error) {
	files := c.Args().Slice()
	if len(files) == 0 {
		return nil, fmt.Errorf("explain needs at least one image file, e.g. trainer explain --checkpoint model.safetensors cat.png")
	}
	for _, f := range files {
		if strings.HasPrefix(f, "-") && f != "-" {
			return nil, fmt.Errorf("image %q looks like a flag: put flags before the image files", f)
		}
	}
	ck, net, flat, err := model.Open(c.String("checkpoint"))
	if err != nil {
		return nil, err
	}
	if ck.HasEMA(net) && !c.Bool("no-ema") {
		flat = ck.FlatEMA(net)
	}
	if in := net.Input; in.C != 1 && in.C != 3 {
		return nil, fmt.Errorf("checkpoint %s: the model takes %d-channel images; explain handles 1 (grey) or 3 (RGB)", ck.Path, in.C)
	}
	j := &explainJob{files: files, classes: classNames(ck, net.Classes), flat: flat, net: net}
	if j.class, err = classIndex(c.String("class"), j.classes); err != nil {
		return nil, err
	}
	if j.layer, err = net.CAMLayer(c.String("layer")); err != nil {
		return nil, fmt.Errorf("--layer: %v", err)
	}
	if j.outs, err = explainOutputs(c.String("out-dir"), files); err != nil {
		return nil, err
	}
	return j, nil
}

// classIndex resolves --class: a class name, else an index; "" is -1 (the
// most likely class).
func classIndex(v string, classes []string) (int, error) {
	if v == "" {
		return -1, nil
	}
	for i, n := range classes {
		if n == v {
			return i, nil
		}
	}
	last := len(classes) - 1
	if i, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if i < 0 || i > last {
			return 0, fmt.Errorf("--class %d: the model has classes 0 to %d", i, last)
		}
		return i, nil
	}
	names := classes
	if len(names) > 20 {
		names = append(names[:20:20], "...")
	}
	return 0, fmt.Errorf("--class %q: the model has no class of that name; its classes are %s (or give an index from 0 to %d)",
		v, strings.Join(names, ", "), last)
}

// explainOutputs makes the output folder, checks that it takes files, and
// maps each image to its PNG, refusing two images that would write the
// same file and a PNG that would replace one of the images.
func explainOutputs(dir string, files []string) (map[string]string, error) {
	if err := checkOutDir(dir); err != nil {
		return nil, err
	}
	outs := make(map[string]string, len(files))
	writer := map[string]string{}
	for _, f := range files {
		base := filepath.Base(f)
		out := filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+".explain.png")
		key, _ := filepath.Abs(out)
		if prev, ok := writer[key]; ok && prev != f {
			return nil, fmt.Errorf("images %s and %s would both be explained in %s: rename one, or explain them in two runs with different --out-dir", prev, f, out)
		}
		writer[key], outs[f] = f, out
	}
	if err := checkNotInput(files, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// checkOutDir makes dir if needed and proves that a file can be written
// in it.
func checkOutDir(dir string) error {
	if dir == "" {
		return errors.New("--out-dir is empty: give a folder for the PNG files")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out-dir %s: cannot make the folder: %s", dir, pathErrText(err))
	}
	f, err := os.CreateTemp(dir, ".explain-probe-*")
	if err != nil {
		return fmt.Errorf("--out-dir %s: cannot write there: %s (choose another folder)", dir, pathErrText(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkNotInput refuses an output path that names one of the input
// files: the same path, or (the output existing) the same file by another
// name (a link).
func checkNotInput(files []string, outs map[string]string) error {
	type input struct {
		name string
		st   os.FileInfo
	}
	byPath := map[string]string{}
	var ins []input
	for _, f := range files {
		if a, err := filepath.Abs(f); err == nil {
			byPath[a] = f
		}
		if st, err := os.Stat(f); err == nil {
			ins = append(ins, input{f, st})
		}
	}
	clash := func(out, f string) error {
		return fmt.Errorf("the explanation %s would overwrite the input image %s: choose another --out-dir or rename the image", out, f)
	}
	for _, out := range outs {
		if a, err := filepath.Abs(out); err == nil && byPath[a] != "" {
			return clash(out, byPath[a])
		}
		st, err := os.Stat(out)
		if err != nil {
			continue
		}
		for _, in := range ins {
			if os.SameFile(st, in.st) {
				return clash(out, in.name)
			}
		}
	}
	return nil
}

// explainOne explains one image (x: the model's input) and writes its PNG.
func (j *explainJob) explainOne(file string, x []float32) (*explainResult, error) {
	e, err := j.net.Explain(x, j.class, j.layer)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", file, err)
	}
	top := topClasses(e.Probs, j.classes, min(explainTop, j.net.Classes))
	r := &explainResult{File: file, PNG: j.outs[file], Class: j.classes[e.Class], Index: e.Class,
		P: shortFloat(e.Probs[e.Class]), Layer: e.Layer, Top: top}
	img := renderExplanation(x, j.net.Input, e, r)
	if err := writePNGAtomic(r.PNG, img); err != nil {
		return nil, err
	}
	return r, nil
}

func printExplained(asJSON bool, enc *json.Encoder, r *explainResult) error {
	if asJSON {
		return enc.Encode(r)
	}
	if err := printTop(r.File, r.Top); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "  Grad-CAM of %s (p %.4f) on layer %s: %s\n", r.Class, r.P, r.Layer, r.PNG)
	return err
}

// writePNGAtomic encodes img to a new file beside path and renames it into
// place, so a failed write leaves no half file.
func writePNGAtomic(path string, img image.Image) error {
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.%d.tmp", filepath.Base(path), os.Getpid()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return fmt.Errorf("writing %s: %s", path, pathErrText(err))
	}
	err = png.Encode(f, img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %s", path, pathErrText(err))
	}
	return nil
}

// The explanation image: a caption of two lines above each panel, the
// panels side by side, the top classes below.
const (
	panelMin  = 160 // panels are the input scaled by the smallest whole factor reaching this
	margin    = 8   // around and between the panels
	lineH     = 13  // basicfont.Face7x13
	charW     = 7
	captionH  = 2*lineH + 4
	footLines = explainTop
)

// explainScale is the whole factor the input is scaled by in the panels.
func explainScale(in model.Shape) int {
	return max(1, (panelMin+max(in.H, in.W)-1)/max(in.H, in.W))
}

// renderExplanation draws the three panels of an explanation of input x.
func renderExplanation(x []float32, in model.Shape, e *model.Explanation, r *explainResult) *image.RGBA {
	s := explainScale(in)
	pw, ph := s*in.W, s*in.H
	w := 3*pw + 4*margin
	h := margin + captionH + ph + margin + footLines*lineH + margin
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	y0 := margin + captionH
	cam := model.UpsampleBilinear(e.CAM, in.H, in.W, ph, pw)
	for py := range ph {
		for px := range pw {
			p := (py/s)*in.W + px/s
			base := inputColor(x, in, p)
			img.SetRGBA(margin+px, y0+py, base)
			img.SetRGBA(2*margin+pw+px, y0+py, blend(base, jet(cam[py*pw+px])))
			g := uint8(math.Round(255 * float64(e.Saliency[p])))
			img.SetRGBA(3*margin+2*pw+px, y0+py, color.RGBA{g, g, g, 255})
		}
	}
	captions := [3][2]string{
		{"input", fmt.Sprintf("%dx%d", in.W, in.H)},
		{"Grad-CAM: " + r.Class, "layer " + r.Layer},
		{"saliency: " + r.Class, "max_c |dscore/dx|"},
	}
	for i, lines := range captions {
		x0 := margin + i*(pw+margin)
		drawText(img, x0, margin+lineH-2, pw, lines[0])
		drawText(img, x0, margin+2*lineH-2, pw, lines[1])
	}
	for k, t := range r.Top {
		drawText(img, margin, y0+ph+margin+(k+1)*lineH-2, w-2*margin, fmt.Sprintf("%d. %s  %.4f", k+1, t.Class, t.P))
	}
	return img
}

// inputColor is pixel p of the model input x (CHW in [0,1]).
func inputColor(x []float32, in model.Shape, p int) color.RGBA {
	hw := in.H * in.W
	v := func(c int) uint8 { return uint8(math.Round(255 * math.Min(math.Max(float64(x[c*hw+p]), 0), 1))) }
	if in.C == 1 {
		g := v(0)
		return color.RGBA{g, g, g, 255}
	}
	return color.RGBA{v(0), v(1), v(2), 255}
}

// jet is the jet colour map (OpenCV's COLORMAP_JET, which pytorch-grad-cam
// draws with): dark blue at 0, through cyan, yellow, to dark red at 1.
func jet(v float32) color.RGBA {
	ch := func(c float64) uint8 {
		return uint8(math.Round(255 * math.Min(math.Max(1.5-math.Abs(4*float64(v)-c), 0), 1)))
	}
	return color.RGBA{ch(3), ch(2), ch(1), 255}
}

// blend is half the image, half the heat map (pytorch-grad-cam's
// show_cam_on_image with image_weight 0.5).
func blend(a, b color.RGBA) color.RGBA {
	m := func(x, y uint8) uint8 { return uint8((int(x) + int(y) + 1) / 2) }
	return color.RGBA{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B), 255}
}

// drawText writes s in black with its baseline at y, cut to width pixels
// (basicfont draws ASCII and Latin-1).
func drawText(img *image.RGBA, x, y, width int, s string) {
	if r, n := []rune(s), width/charW; len(r) > n {
		s = string(r[:max(n-2, 0)]) + ".."
	}
	d := font.Drawer{Dst: img, Src: image.Black, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
