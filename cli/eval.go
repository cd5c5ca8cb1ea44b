package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

func evalCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "eval",
		Usage: "evaluate a checkpoint on the CIFAR-10 test/validation batch",
		Description: "Loads a safetensors checkpoint written by train and reports loss and accuracy on\n" +
			"test_batch.bin, in batches of the size used for validation during training, so\n" +
			"the accuracy reproduces the final val_accuracy exactly on the same device.\n\n" +
			"Example:\n   trainer eval --checkpoint model.safetensors --data-dir cifar-10-batches-bin --json",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "checkpoint", Value: "model.safetensors", Usage: "safetensors file written by train"},
			&ucli.IntFlag{Name: "batch-size", Usage: "evaluation batch (default: the checkpoint's training batch)"},
			&ucli.StringFlag{Name: "tta", Value: "none", Usage: "test-time augmentation: none, flip (mean logits of the image and its mirror) or flip-translate (airbench94's: also shifted by one pixel, reflect padded)"},
			&ucli.BoolFlag{Name: "no-ema", Usage: "evaluate the trained weights even when the checkpoint holds their moving average (--ema)"},
			&ucli.BoolFlag{Name: "json", Usage: `print one JSON object {"loss","accuracy","nonfinite","samples",...} on stdout (a NaN or infinite loss or accuracy is null, with "nonfinite": true)`},
		}, append(dataFlags(), deviceFlags()...)...),
		Action: runEval,
	}
}

func runEval(c *ucli.Context) error {
	tta, err := model.ParseTTA(c.String("tta"))
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	ck, net, flat, err := model.Open(c.String("checkpoint"))
	if err != nil {
		return err
	}
	weights := "trained"
	if ck.HasEMA(net) && !c.Bool("no-ema") {
		flat, weights = ck.FlatEMA(net), "ema"
	}
	bs := c.Int("batch-size")
	if bs == 0 {
		bs = meta.Decode(ck.Meta).EvalBatch
		if bs < 1 {
			bs = 256
		}
	}
	if bs < 1 || bs > 65536 {
		return fmt.Errorf("--batch-size %d: must be between 1 and 65536", bs)
	}
	ctx, stop := signalContext()
	defer stop()
	ds, err := dataSpecFrom(c, 0)
	if err != nil {
		return err
	}
	if err := ds.fromCheckpoint(c, ck, net.Input); err != nil {
		return err
	}
	_, test, err := ds.load(ctx)
	if err != nil {
		return interrupted(ctx, err)
	}
	if err := checkShape(net, test, "validation"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", ck.Path, err)
	}
	b, err := openDevice(c)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := net.Build(b, bs, 0); err != nil {
		return err
	}
	defer net.Close()
	if err := net.SetParams(flat); err != nil {
		return err
	}
	r, err := model.EvaluateReport(net, toModel(test), bs, tta)
	if err != nil {
		return err
	}
	classes := test.Classes
	if len(classes) != net.Classes {
		classes = nil
		for i := 0; i < net.Classes; i++ {
			classes = append(classes, fmt.Sprint(i))
		}
	}
	perClass := r.ClassAccuracy()
	nonFinite := !finite(r.Loss) || !finite(r.Accuracy)
	if c.Bool("json") {
		pc := map[string]float64{}
		for i, a := range perClass {
			pc[classes[i]] = a
		}
		// encoding/json refuses NaN and Inf: a value that is not finite is
		// null, and "nonfinite" says so.
		return json.NewEncoder(stdout).Encode(map[string]any{"loss": finiteOrNil(r.Loss), "accuracy": finiteOrNil(r.Accuracy),
			"nonfinite": nonFinite, "samples": r.Samples, "weights": weights, "tta": c.String("tta"), "classes": classes, "per_class_accuracy": pc, "confusion": r.Confusion})
	}
	if _, err := fmt.Fprintf(stdout, "loss %.4f  accuracy %.4f  on %d images\n", r.Loss, r.Accuracy, r.Samples); err != nil {
		return err
	}
	if nonFinite {
		fmt.Fprintf(stdout, "warning: the loss or accuracy is not finite (NaN or Inf): the model's outputs are not finite numbers; are the weights in %s finite?\n", ck.Path)
	}
	return printConfusion(r, classes, perClass)
}

// printConfusion prints the confusion matrix with each class's accuracy.
func printConfusion(r *model.Report, classes []string, perClass []float64) error {
	fmt.Fprintln(stdout)
	w := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "true \\ predicted\t")
	for i := range classes {
		fmt.Fprintf(w, "%d\t", i)
	}
	fmt.Fprint(w, "accuracy\t\n")
	for t, row := range r.Confusion {
		fmt.Fprintf(w, "%d %s\t", t, classes[t])
		for _, v := range row {
			fmt.Fprintf(w, "%d\t", v)
		}
		fmt.Fprintf(w, "%.4f\t\n", perClass[t])
	}
	return w.Flush()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// finiteOrNil is v, or nil (JSON null) when v is NaN or infinite.
func finiteOrNil(v float64) any {
	if !finite(v) {
		return nil
	}
	return v
}
