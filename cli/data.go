package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/model"
	trainrun "github.com/trainer-go/trainer/run"
	"github.com/trainer-go/trainer/run/meta"
)

// dataFlags select the dataset of train and eval.
func dataFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "dataset", Value: "cifar10", Usage: "cifar10, mnist (both downloaded on first use) or folder (--data-dir ROOT/<class>/[subfolders/]*.png|jpg|jpeg)"},
		&ucli.StringFlag{Name: "data-dir", Usage: "the dataset: cifar-10-batches-bin or cifar-10-binary.tar.gz as downloaded, the folder of the MNIST files (.gz or not), or an image-folder root (default: download to the user cache)"},
		&ucli.StringFlag{Name: "val-dir", Usage: "folder dataset: a separate validation root with the same class folders"},
		&ucli.Float64Flag{Name: "val-split", Value: 0.1, Usage: "folder dataset without --val-dir: fraction held out for validation (stratified, seeded)"},
		&ucli.IntFlag{Name: "image-size", Usage: "folder dataset: resize every image to NxN (0: keep; all must then match)"},
	}
}

// dataSpec is a dataset choice, from flags or a checkpoint.
type dataSpec struct {
	kind, dir, valDir string
	valSplit          float64
	size              int
	classes           []string // fixed class list (evaluating a folder model)
	seed              uint64
	threads           int // --threads: sizes the worker pool that decodes images
}

func dataSpecFrom(c *ucli.Context, seed uint64) (dataSpec, error) {
	ds := dataSpec{kind: c.String("dataset"), dir: c.String("data-dir"), valDir: c.String("val-dir"),
		valSplit: c.Float64("val-split"), size: c.Int("image-size"), seed: seed, threads: c.Int("threads")}
	return ds, trainrun.ValidateDataset(datasetFlags(c), c.IsSet("val-split"))
}

func (ds dataSpec) progress() func(done, total int64) {
	last := time.Now()
	return func(done, total int64) {
		if time.Since(last) > 2*time.Second || done == total {
			last = time.Now()
			log.Info().Int64("bytes", done).Int64("total", total).Msgf("downloading %s: %.0f%%", ds.kind, 100*float64(done)/float64(max(total, 1)))
		}
	}
}

// load reads the training and validation sets.
func (ds dataSpec) load(ctx context.Context) (train, val *data.Dataset, err error) {
	t0 := time.Now()
	defer func() { err = dataFlagError(err, ds) }() // errors name the flag that set the value
	dir := ds.dir
	switch ds.kind {
	case "cifar10":
		if dir == "" {
			if dir, err = data.EnsureCIFAR10(ctx, data.FetchOptions{Progress: ds.progress()}); err != nil {
				return nil, nil, err
			}
		}
		train, val, err = data.LoadCIFAR10(dir)
	case "mnist":
		if dir == "" {
			if dir, err = data.EnsureMNIST(ctx, data.FetchOptions{Progress: ds.progress()}); err != nil {
				return nil, nil, err
			}
		}
		train, val, err = data.LoadMNIST(dir)
	case "folder":
		wp, perr := workerPool(ds.threads)
		if perr != nil {
			return nil, nil, perr
		}
		o := data.FolderOptions{Size: ds.size, Classes: ds.classes, Pool: wp}
		if train, err = data.LoadFolder(dir, o); err != nil {
			return nil, nil, err
		}
		logSkipped(dir, train.Skipped)
		if ds.valDir != "" {
			o.Classes = train.Classes
			if o.Size == 0 {
				o.Size = train.H
			}
			if val, err = data.LoadFolder(ds.valDir, o); err == nil {
				logSkipped(ds.valDir, val.Skipped)
			}
		} else {
			skipped := train.Skipped
			if train, val, err = data.SplitValidation(train, ds.valSplit, ds.seed); err == nil {
				train.Skipped = skipped // the files of the folder split
			}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	log.Info().Str("dataset", ds.kind).Str("dir", dir).Int("train", train.N).Int("validation", val.N).
		Str("shape", fmt.Sprintf("%dx%dx%d", train.C, train.H, train.W)).Float64("seconds", round(time.Since(t0).Seconds(), 3)).Msg("data loaded")
	return train, val, nil
}

// skippedShown is how many skipped files the summary line names.
const skippedShown = 3

// logSkipped logs the files of image folder root that were not loaded:
// every one at debug level, and a summary line naming the first few
// (unreadable images first; hidden and system files left out) at info
// level, or at warn level when some image files could not be read.
func logSkipped(root string, skipped []data.SkippedFile) {
	var first, rest []string // unreadable ones, others
	for _, s := range skipped {
		log.Debug().Str("path", s.Path).Str("reason", s.Reason).Msg("skipped")
		if s.Kind == data.SkipHidden {
			continue
		}
		rel, err := filepath.Rel(root, s.Path)
		if err != nil {
			rel = s.Path
		}
		if s.Kind == data.SkipUnreadable {
			first = append(first, rel+": "+s.Reason)
		} else {
			rest = append(rest, rel+": "+s.Reason)
		}
	}
	n := len(first) + len(rest)
	if n == 0 {
		return
	}
	all := append(first, rest...)
	what := "files"
	if n == 1 {
		what = "file"
	}
	msg := fmt.Sprintf("skipped %d %s in %s: %s", n, what, root, strings.Join(all[:min(n, skippedShown)], "; "))
	if n > skippedShown {
		msg += fmt.Sprintf("; and %d more (--log-level debug lists them all)", n-skippedShown)
	}
	ev := log.Info()
	if len(first) > 0 {
		ev = log.Warn()
	}
	ev.Str("dir", root).Int("skipped", n).Int("unreadable", len(first)).Msg(msg)
}

// fromCheckpoint fills in what eval needs to read the data a checkpoint was
// trained on.
func (ds *dataSpec) fromCheckpoint(c *ucli.Context, ck *model.Checkpoint, in model.Shape) error {
	m := meta.Decode(ck.Meta)
	if !c.IsSet("dataset") && m.Dataset != "" {
		ds.kind = m.Dataset
	}
	if ds.kind == "folder" {
		if ds.dir == "" {
			return fmt.Errorf("checkpoint %s was trained on an image folder: pass --data-dir (and --val-dir or --val-split as in training)", ck.Path)
		}
		if len(m.Classes) > 0 {
			ds.classes = m.Classes
		}
		if !c.IsSet("image-size") {
			ds.size = in.H
		}
		if !c.IsSet("val-split") {
			ds.valSplit = m.ValSplit
		}
		ds.seed = m.Seed
	}
	return nil
}

func toModel(d *data.Dataset) *model.Data {
	return &model.Data{Images: d.Images, Labels: d.Labels, N: d.N}
}

func shapeOf(d *data.Dataset) model.Shape { return model.Shape{C: d.C, H: d.H, W: d.W} }

// checkShape checks that d's images and classes suit net: its input shape,
// and as many outputs as d has classes.
func checkShape(net *model.Network, d *data.Dataset, what string) error {
	if s := shapeOf(d); s != net.Input {
		return fmt.Errorf("%s images are %s but the model expects %s", what, s, net.Input)
	}
	if k := len(d.Classes); k > 0 && k != net.Classes {
		return fmt.Errorf("the model has %d outputs but the %s data has %d classes (%s): it was trained on another dataset", net.Classes, what, k, strings.Join(d.Classes, ", "))
	}
	return nil
}
