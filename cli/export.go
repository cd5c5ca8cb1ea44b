package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/export"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

func exportCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "export",
		Usage: "write a checkpoint as an ONNX model or as PyTorch-named safetensors weights",
		Description: "Loads a checkpoint as predict and eval do (the EMA weights when it holds them, unless\n" +
			"--no-ema) and writes --out atomically; an existing --out is kept unless --force.\n\n" +
			"--format onnx: the network in evaluation mode (BatchNorm with its running statistics,\n" +
			"no dropout), ONNX opset 17. Input \"input\": float32 [N, C, H, W], channels first, the\n" +
			"batch N dynamic; each value is an 8-bit pixel divided by 255 (0 to 1, RGB order for 3\n" +
			"channels) of the image resized to H x W, exactly what predict feeds the network. There\n" +
			"is no mean/std normalisation outside the network (a normalize layer of the model is in\n" +
			"the graph). Output \"logits\": float32 [N, classes], before the softmax. The class\n" +
			"names are in the model's metadata_props \"classes\" (comma-separated).\n\n" +
			"--format safetensors: the weights alone, named and shaped as the PyTorch state_dict\n" +
			"(BatchNorm's running_mean, running_var and num_batches_tracked included), without the\n" +
			"optimizer state or an \"ema.\" copy; the metadata keeps the model description and class\n" +
			"names, so trainer eval and predict read the file too.\n\n" +
			"Examples:\n" +
			"   trainer export --checkpoint model.safetensors --format onnx --out model.onnx\n" +
			"   trainer export --checkpoint model.safetensors --format safetensors --out weights.safetensors",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "checkpoint", Value: "model.safetensors", Usage: "safetensors file written by train"},
			&ucli.StringFlag{Name: "format", Usage: "onnx or safetensors"},
			&ucli.StringFlag{Name: "out", Usage: "the file to write (e.g. model.onnx)"},
			&ucli.BoolFlag{Name: "no-ema", Usage: "export the trained weights even when the checkpoint holds their moving average (--ema)"},
			&ucli.BoolFlag{Name: "force", Usage: "replace --out if it exists"},
		},
		Action: runExport,
	}
}

// exportFormats are the --format values.
var exportFormats = map[string]func(export.Source) ([]byte, error){
	"onnx":        export.ONNX,
	"safetensors": export.SafeTensors,
}

func runExport(c *ucli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("export takes no arguments (got %q): name the file with --out", c.Args().First())
	}
	format := strings.ToLower(strings.TrimSpace(c.String("format")))
	encode, ok := exportFormats[format]
	if !ok {
		if format == "" {
			return fmt.Errorf("--format is missing: use --format onnx or --format safetensors")
		}
		return fmt.Errorf("--format %q: use onnx or safetensors", c.String("format"))
	}
	out, ckPath := c.String("out"), c.String("checkpoint")
	if err := checkExportOut(out, ckPath, c.Bool("force")); err != nil {
		return err
	}
	src, err := exportSource(ckPath, c.Bool("no-ema"))
	if err != nil {
		return err
	}
	b, err := encode(src)
	if err != nil {
		return err
	}
	if err := checkpoint.WriteFileAtomic(out, b); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s: %s of %s (%s weights, input %s, %d classes), %d bytes\n",
		out, format, ckPath, src.Weights, src.Net.Input, src.Net.Classes, len(b))
	return err
}

// checkExportOut refuses an --out that is missing, a folder, the
// checkpoint itself, or (without --force) an existing file.
func checkExportOut(out, ck string, force bool) error {
	if strings.TrimSpace(out) == "" {
		return fmt.Errorf("--out is missing: name the file to write, e.g. --out model.onnx")
	}
	st, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--out %s: %v", out, errors.Unwrap(err))
	case st.IsDir():
		return fmt.Errorf("--out %s is a folder: name a file in it, e.g. --out %s", out, strings.TrimSuffix(out, "/")+"/model.onnx")
	}
	if cst, err := os.Stat(ck); err == nil && os.SameFile(st, cst) {
		return fmt.Errorf("--out %s is the checkpoint itself: write the export to another file", out)
	}
	if !force {
		return fmt.Errorf("--out %s already exists: pass --force to replace it, or choose another file", out)
	}
	return nil
}

// exportSource loads the checkpoint and picks its weights as predict does.
func exportSource(path string, noEMA bool) (export.Source, error) {
	ck, net, flat, err := model.Open(path)
	if err != nil {
		return export.Source{}, err
	}
	weights := "trained"
	if ck.HasEMA(net) && !noEMA {
		flat, weights = ck.FlatEMA(net), "ema"
	}
	tracked := map[string]int64{}
	for _, name := range net.BatchNormNames() {
		if v := ck.Int64s[name+".num_batches_tracked"]; len(v) == 1 {
			tracked[name] = v[0]
		}
	}
	return export.Source{Net: net, Flat: flat, Weights: weights, Classes: classNames(ck, net.Classes),
		Dataset: ck.Meta[meta.Dataset], BatchesTracked: tracked}, nil
}
