package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	ucli "github.com/urfave/cli/v2"

	dimage "github.com/trainer-go/trainer/data/image"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// maxPredictBatch bounds the batch the network is built for; more images are
// run in several batches.
const maxPredictBatch = 256

// maxImageBytes is the largest image file predict reads.
const maxImageBytes = 64 << 20

func predictCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "predict",
		Usage:     "classify PNG or JPEG images with a trained checkpoint",
		ArgsUsage: "IMAGE...",
		Description: "Decodes each image (PNG or JPEG, any size; grey or RGBA becomes RGB, alpha is ignored),\n" +
			"resizes it to the model's input (bilinear, antialiased when shrinking) and scales pixels to\n" +
			"[0,1], exactly as training reads an image folder, then prints the --top most likely\n" +
			"classes with their probabilities.\n" +
			"Only regular files of at most 64 MiB are read. A file that cannot be read or decoded is\n" +
			"named on one stderr line and skipped; the others are predicted and the exit code is 2.\n" +
			"With --json each image is one line: {\"file\":...,\"top\":[{\"class\",\"index\",\"p\"},...]}.\n\n" +
			"Example:\n   trainer predict --checkpoint model.safetensors --top 3 cat.png ship.jpg",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "checkpoint", Value: "model.safetensors", Usage: "safetensors file written by train"},
			&ucli.IntFlag{Name: "top", Value: 3, Usage: "how many classes to print per image"},
			&ucli.BoolFlag{Name: "no-ema", Usage: "use the trained weights even when the checkpoint holds their moving average (--ema)"},
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
	if ck.HasEMA(net) && !c.Bool("no-ema") {
		flat = ck.FlatEMA(net) // the weights validation used
	}
	in := net.Input
	if in.C != 1 && in.C != 3 {
		return fmt.Errorf("checkpoint %s: the model takes %d-channel images; predict handles 1 (grey) or 3 (RGB)", ck.Path, in.C)
	}
	classes := classNames(ck, net.Classes)
	topK = min(topK, net.Classes)

	// Decode everything first: bad files are reported and skipped before
	// any work.
	files, x, skipped, err := loadInputs(files, in)
	if err != nil {
		return err
	}

	b, err := openDevice(c)
	if err != nil {
		return err
	}
	defer b.Close()
	bs := min(len(files), maxPredictBatch)
	if err := net.Build(b, bs, 0); err != nil {
		return err
	}
	defer net.Close()
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
			if err := printTop(file, top); err != nil {
				return err
			}
		}
	}
	if skipped > 0 {
		return &exitError{ExitSkipped, fmt.Errorf("%d of %d images could not be read and were skipped (each is named above)", skipped, skipped+len(files))}
	}
	return nil
}

// printTop prints an image's top classes as text.
func printTop(file string, top []prediction) error {
	if _, err := fmt.Fprintln(stdout, file); err != nil {
		return err
	}
	for r, p := range top {
		if _, err := fmt.Fprintf(stdout, "  %d. %-12s %.4f\n", r+1, p.Class, p.P); err != nil {
			return err
		}
	}
	return nil
}

// loadInputs reads and decodes the image files as model inputs of shape in.
// A file that cannot be read or decoded is named on one line on stderr and
// left out; it returns the files read, their inputs, and how many were left
// out. When none can be read it fails (with a single file's own error).
func loadInputs(files []string, in model.Shape) (ok []string, x []float32, skipped int, err error) {
	x = make([]float32, 0, len(files)*in.Size())
	dec := dimage.NewDecoder()
	dst := make([]float32, in.Size())
	var errs []error
	for _, f := range files {
		if err := loadImageInput(dec, f, in, dst); err != nil {
			errs = append(errs, err)
			continue
		}
		ok = append(ok, f)
		x = append(x, dst...)
	}
	switch {
	case len(errs) == 1 && len(files) == 1:
		return nil, nil, 0, errs[0]
	case len(ok) == 0:
		for _, e := range errs {
			printSkipped(e)
		}
		return nil, nil, 0, fmt.Errorf("none of the %d images could be read (each is named above)", len(files))
	}
	for _, e := range errs {
		printSkipped(e)
	}
	return ok, x, len(errs), nil
}

// printSkipped reports an image file left out, on one line of stderr.
func printSkipped(err error) {
	msg := err.Error() + " (skipped)"
	if jsonMode {
		jsonLine(logStderrOr(), zerolog.ErrorLevel, msg, -1)
		return
	}
	fmt.Fprintf(stderr, "trainer: error: %s\n", msg)
}

// classNames reads the checkpoint's class names, or numbers the classes
// when it has none or the wrong count.
func classNames(ck *model.Checkpoint, n int) []string {
	names := strings.Split(ck.Meta[meta.Classes], ",")
	if ck.Meta[meta.Classes] != "" && len(names) == n {
		return names
	}
	if ck.Meta[meta.Classes] != "" {
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
		out[r] = prediction{Class: classes[j], Index: j, P: shortFloat(probs[j])}
	}
	return out
}

// shortFloat is the shortest decimal that reads back as v, so JSON shows
// 0.81 rather than 0.8100000023841858.
func shortFloat(v float32) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return p
}

// loadImageInput decodes the PNG or JPEG file path and writes it, resized to
// in.H x in.W and scaled to [0,1], into dst (CHW, in.C = 1 or 3): by the
// same path, bit for bit, as training reads an image folder and gathers a
// batch (package data/image).
//
// Only a regular file of at most maxImageBytes is read (a device such as
// /dev/zero, a FIFO or a directory is refused without reading it), and
// then decoded from memory.
func loadImageInput(dec *dimage.Decoder, path string, in model.Shape, dst []float32) error {
	b, err := readRegularFile(path, maxImageBytes)
	if err != nil {
		return fmt.Errorf("image %w", err)
	}
	if err := dec.LoadFloatBytes(path, b, dst, dimage.Shape{C: in.C, H: in.H, W: in.W}); err != nil {
		return fmt.Errorf("image %w", err)
	}
	return nil
}
