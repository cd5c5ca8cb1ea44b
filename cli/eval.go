package cli

import (
	"encoding/json"
	"fmt"
	"strconv"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/model"
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
			&ucli.StringFlag{Name: "data-dir", Usage: "a cifar-10-batches-bin folder (default: download to the user cache)"},
			&ucli.IntFlag{Name: "batch-size", Usage: "evaluation batch (default: the checkpoint's training batch)"},
			&ucli.BoolFlag{Name: "json", Usage: `print one JSON object {"loss","accuracy","samples"} on stdout`},
		}, deviceFlags()...),
		Action: runEval,
	}
}

func runEval(c *ucli.Context) error {
	ck, err := model.LoadCheckpoint(c.String("checkpoint"))
	if err != nil {
		return err
	}
	net, err := ck.Plan()
	if err != nil {
		return err
	}
	flat, err := ck.Flat(net)
	if err != nil {
		return err
	}
	bs := c.Int("batch-size")
	if bs == 0 {
		bs, _ = strconv.Atoi(ck.Meta["eval_batch"])
		if bs < 1 {
			bs = 256
		}
	}
	if bs < 1 || bs > 65536 {
		return fmt.Errorf("--batch-size %d: must be between 1 and 65536", bs)
	}
	ctx, stop := signalContext()
	defer stop()
	_, test, err := loadCIFAR(ctx, c.String("data-dir"))
	if err != nil {
		return interrupted(ctx, err)
	}
	if err := checkShape(net, test, "test_batch.bin"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", ck.Path, err)
	}
	b, err := openDevice(c.String("device"), c.Int("threads"), c.Bool("tf32"))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := net.Build(b, bs, 0); err != nil {
		return err
	}
	if err := net.SetParams(flat); err != nil {
		return err
	}
	loss, acc, err := model.Evaluate(net, toModel(test), bs)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(stdout).Encode(map[string]any{"loss": loss, "accuracy": acc, "samples": test.N})
	}
	fmt.Fprintf(stdout, "loss %.4f  accuracy %.4f  on %d images\n", loss, acc, test.N)
	return nil
}
