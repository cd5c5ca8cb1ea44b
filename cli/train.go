package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/model"
)

func deviceFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "device", Value: "auto", Usage: "auto (GPU if usable, else CPU), cpu or gpu"},
		&ucli.IntFlag{Name: "threads", Usage: "CPU worker threads (0: one per core)"},
		&ucli.BoolFlag{Name: "tf32", Usage: "allow TF32 tensor-core GEMMs on the GPU (faster, ~1e-3 relative error)"},
	}
}

func trainCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "train",
		Usage: "train a model on CIFAR-10 (downloaded on first use)",
		Description: "Trains the model given by --model (default: the Keras CIFAR-10 tutorial CNN) with Adam\n" +
			"and sparse softmax cross-entropy, validates after every epoch and saves a safetensors\n" +
			"checkpoint to --out after every epoch.\n\n" +
			"Example:\n   trainer train --epochs 10 --batch-size 32 --out model.safetensors\n\n" + model.SpecGrammar,
		Flags: append([]ucli.Flag{
			&ucli.IntFlag{Name: "epochs", Value: 10, Usage: "passes over the training set"},
			&ucli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per step"},
			&ucli.Float64Flag{Name: "lr", Value: 1e-3, Usage: "Adam learning rate"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed for weights and shuffling"},
			&ucli.StringFlag{Name: "data-dir", Usage: "a cifar-10-batches-bin folder (default: download to the user cache)"},
			&ucli.StringFlag{Name: "model", Value: model.DefaultSpec, Usage: "layer spec (see above)"},
			&ucli.StringFlag{Name: "out", Value: "model.safetensors", Usage: "checkpoint path"},
		}, deviceFlags()...),
		Action: runTrain,
	}
}

func runTrain(c *ucli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("train takes no arguments, got %q (flags go before them?)", c.Args().First())
	}
	epochs, bs, lr := c.Int("epochs"), c.Int("batch-size"), c.Float64("lr")
	if epochs < 1 {
		return fmt.Errorf("--epochs %d: must be at least 1", epochs)
	}
	if bs < 1 || bs > 65536 {
		return fmt.Errorf("--batch-size %d: must be between 1 and 65536", bs)
	}
	if !(lr > 0 && lr < 10) {
		return fmt.Errorf("--lr %g: must be a positive number below 10", lr)
	}
	out := c.String("out")
	if out == "" || strings.HasSuffix(out, "/") {
		return fmt.Errorf("--out %q: give a file path such as model.safetensors", out)
	}
	ctx, stop := signalContext()
	defer stop()

	train, test, err := loadCIFAR(ctx, c.String("data-dir"))
	if err != nil {
		return interrupted(ctx, err)
	}
	net, err := model.Plan(c.String("model"), shapeOf(train))
	if err != nil {
		return err
	}
	b, err := openDevice(c.String("device"), c.Int("threads"), c.Bool("tf32"))
	if err != nil {
		return err
	}
	defer b.Close()
	seed := c.Uint64("seed")
	if err := net.Build(b, bs, seed); err != nil {
		return err
	}
	adam := model.DefaultAdam
	adam.LR = lr
	tr, err := model.NewTrainer(net, toModel(train), toModel(test), model.TrainOptions{
		Batch: bs, Adam: adam, Seed: seed, ProgressEvery: 10 * time.Second,
		OnProgress: func(p model.Progress) {
			log.Info().Int("epoch", p.Epoch).Int("step", p.Step).Int("steps", p.Steps).
				Float64("loss", round(p.Loss, 4)).Float64("accuracy", round(p.Accuracy, 4)).
				Float64("images_per_s", round(p.ImagesPerS, 1)).
				Msgf("epoch %d: step %d/%d", p.Epoch, p.Step, p.Steps)
		},
	})
	if err != nil {
		return err
	}
	log.Info().Str("model", net.Spec).Int("params", net.NumParams()).Int("train", train.N).Int("validation", test.N).
		Int("epochs", epochs).Int("batch_size", bs).Float64("lr", lr).Uint64("seed", seed).Msg("training")
	var last model.EpochResult
	for e := 1; e <= epochs; e++ {
		r, err := tr.RunEpoch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				msg := "no checkpoint was written yet"
				if last.Epoch > 0 {
					msg = fmt.Sprintf("%s holds the model after epoch %d", out, last.Epoch)
				}
				return &exitError{ExitInterrupted, fmt.Errorf("interrupted during epoch %d; %s", e, msg)}
			}
			return err
		}
		last = r
		log.Info().Int("epoch", r.Epoch).Float64("loss", round(r.Loss, 4)).Float64("accuracy", round(r.Accuracy, 4)).
			Float64("val_loss", round(r.ValLoss, 4)).Float64("val_accuracy", round(r.ValAccuracy, 4)).
			Float64("images_per_s", round(r.ImagesPerS, 1)).Float64("seconds", round(r.Seconds, 2)).
			Msgf("epoch %d/%d", r.Epoch, epochs)
		meta := map[string]string{
			"epoch":        strconv.Itoa(r.Epoch),
			"val_accuracy": strconv.FormatFloat(r.ValAccuracy, 'f', -1, 64),
			"val_loss":     strconv.FormatFloat(r.ValLoss, 'f', -1, 64),
			"eval_batch":   strconv.Itoa(bs),
			"classes":      strings.Join(train.Classes, ","),
			"seed":         strconv.FormatUint(seed, 10),
		}
		if err := model.SaveCheckpoint(out, net, meta); err != nil {
			return err
		}
	}
	log.Info().Str("checkpoint", out).Float64("val_accuracy", round(last.ValAccuracy, 4)).
		Msgf("done: val_accuracy %.4f, saved %s", last.ValAccuracy, out)
	return nil
}

// interrupted turns a cancellation into exit code 130.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return &exitError{ExitInterrupted, err}
	}
	return err
}

func round(v float64, digits int) float64 {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}
