package run

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
)

// listing is what a folder dataset's listing told before any image was
// decoded.
type listing struct {
	classes []string
	images  int         // training and validation images
	shape   model.Shape // 0 when unknown (images kept at a size not read)
}

// checkData checks the dataset against the model before anything is
// loaded: the class count (10 for CIFAR-10 and MNIST, the class folders of
// a folder dataset, listed but not decoded) against the model's last
// layer. A new folder run with the default model gets a head of its class
// count.
func (s *session) checkData() error {
	d := &s.cfg.Data
	k, where := 10, d.Kind
	if d.Kind == "folder" {
		l, err := listFolders(*d)
		if err != nil {
			return err
		}
		s.listing, k, where = l, len(l.classes), d.Dir
		if k < 2 {
			return fmt.Errorf("--data-dir %s: has only one class folder, %q: a classifier needs at least 2 classes", d.Dir, l.classes[0])
		}
		if d.ValDir != "" && sameDir(d.Dir, d.ValDir) {
			s.log.Warn().Str("dir", d.Dir).Str("val_dir", d.ValDir).Msg("--val-dir is the training folder: validation on the training images: the accuracy will be optimistic")
		}
		if s.resume == nil && !s.cfg.isSet("model") && s.cfg.Model == model.DefaultSpec && k != 10 {
			s.cfg.Model = strings.TrimSuffix(model.DefaultSpec, "dense10") + fmt.Sprintf("dense%d", k)
		}
	}
	s.classes = k
	if p, ok := model.Preset(strings.TrimSpace(s.cfg.Model)); ok {
		if last := p.Layers[len(p.Layers)-1]; last.Type == "dense" && last.Units != k {
			s.log.Info().Str("model", s.cfg.Model).Int("classes", k).Msgf("the %s preset's head %q has %d outputs: using %d, one per class", s.cfg.Model, last.Name, last.Units, k)
		}
	}
	md, err := model.ResolveModelFor(s.cfg.Model, k)
	if err != nil {
		return FlagError(err)
	}
	if last := md.Layers[len(md.Layers)-1]; last.Type == "dense" && last.Units != k {
		name := last.Name
		if specs, err := model.ParseSpec(s.cfg.Model); err == nil && !model.IsModelFile(s.cfg.Model) {
			name = specs[len(specs)-1].Token // the user's own word for it
		}
		return headError(name, last.Units, where, k)
	}
	return nil
}

// headError is a last layer whose units do not match the class count.
func headError(token string, units int, where string, k int) error {
	return fmt.Errorf("--model: the last layer %q has %d units, but %s has %d classes; end the model with dense%d", token, units, where, k, k)
}

// listFolders lists a folder dataset's training folder (and validation
// folder), without decoding.
func listFolders(d Dataset) (*listing, error) {
	l, err := data.ListFolder(d.Dir, d.Classes)
	if err != nil {
		return nil, DataError(err, d)
	}
	out := &listing{classes: l.Classes, images: l.Images}
	if d.ValDir != "" {
		vl, err := data.ListFolder(d.ValDir, l.Classes)
		if err != nil {
			return nil, DataError(err, d)
		}
		out.images += vl.Images
	}
	if d.ImageSize > 0 {
		out.shape = model.Shape{C: 3, H: d.ImageSize, W: d.ImageSize}
	} else if w, h, err := l.FirstImageSize(); err == nil {
		out.shape = model.Shape{C: 3, H: h, W: w}
	}
	return out, nil
}

// DataError words an error of package data about a value (a
// *data.LocationError) with the flag that set it: --data-dir, --val-dir
// (when the value is d's validation folder) or --image-size. Other errors,
// and nil, are returned as they are.
func DataError(err error, d Dataset) error {
	var le *data.LocationError
	if !errors.As(err, &le) {
		return err
	}
	flag := "--data-dir"
	switch {
	case le.Setting == data.SettingSize:
		flag = "--image-size"
	case d.ValDir != "" && le.Root == d.ValDir:
		flag = "--val-dir"
	}
	msg := le.Fix(flag, true)
	if le != err {
		// Wrapped: keep the outer context, with the inner message replaced.
		msg = strings.Replace(err.Error(), le.Error(), msg, 1)
	}
	return &flagError{msg, err}
}

// sameDir says whether two paths name one folder (after making them
// absolute and resolving symbolic links).
func sameDir(a, b string) bool {
	resolve := func(p string) string {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Clean(p)
	}
	return resolve(a) == resolve(b)
}

// memEstimate is the memory a run needs, by what takes it.
type memEstimate struct {
	fixed    uint64      // parameters, gradients, Adam moments
	perImage uint64      // activations, gradients and im2col buffers per image of a batch
	batch    int         // images the buffers hold: min(--batch-size, dataset size)
	images   int         // images of the dataset, when it counts (not yet in memory)
	shape    model.Shape // of a dataset image
}

func (m memEstimate) dataBytes() uint64 { return uint64(m.images) * (uint64(m.shape.Size()) + 4) }

func (m memEstimate) total() uint64 { return m.fixed + m.perImage*uint64(m.batch) + m.dataBytes() }

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// checkMemory refuses a run that would not fit in the memory the backend
// says is available, with the estimate and the --batch-size that fits (or,
// when the dataset itself is too large, the cost of one image). Only
// backends on host memory are checked here: a device's allocation failure
// is an OutOfMemoryError that WithBatchHint explains.
func (s *session) checkMemory(b device.Backend, m memEstimate) error {
	if !b.Caps().HostMemory {
		return nil
	}
	free, _, err := b.MemInfo()
	if err != nil || m.total() <= free {
		return nil
	}
	msg := fmt.Sprintf("the run needs about %s (parameters, gradients and Adam moments %s; %d images per batch at %s each",
		mib(m.total()), mib(m.fixed), m.batch, mib(m.perImage))
	if m.images > 0 {
		msg += fmt.Sprintf("; the dataset, %d images of %s, %s", m.images, m.shape, mib(m.dataBytes()))
	}
	msg += fmt.Sprintf(") but %s available on the %s", mib(free), b.Name())
	size := s.cfg.Data.ImageSize
	if base := m.fixed + m.dataBytes(); base < free*9/10 && m.perImage > 0 {
		if fit := (free*9/10 - base) / m.perImage; fit >= 1 {
			hint := ""
			if size > 0 {
				hint = fmt.Sprintf(", or use a smaller --image-size (%d now: %s per image in the dataset, %s per image in a batch)", size, mib(uint64(m.shape.Size())), mib(m.perImage))
			}
			return fmt.Errorf("--batch-size %d: %s; --batch-size %d would fit%s", s.cfg.BatchSize, msg, fit, hint)
		}
	}
	if size > 0 {
		return fmt.Errorf("--image-size %d: %s; at %s per image in the dataset and %s per image in a batch, use a smaller --image-size",
			size, msg, mib(uint64(m.shape.Size())), mib(m.perImage))
	}
	return fmt.Errorf("--batch-size %d: %s; even one image per batch does not fit: use smaller images or a smaller --model", s.cfg.BatchSize, msg)
}

// checkListed checks the memory of a folder dataset from its listing,
// before any image is decoded: the dataset and the run's buffers.
func (s *session) checkListed(b device.Backend) error {
	l := s.listing
	if l == nil || l.shape.Size() == 0 {
		return nil
	}
	m := memEstimate{images: l.images, shape: l.shape}
	net, err := model.PlanFor(s.cfg.Model, l.shape, s.classes)
	switch {
	case err == nil:
		m.fixed, m.perImage, m.batch = uint64(net.FixedBytes()), uint64(net.BytesPerImageOn(b)), min(s.cfg.BatchSize, l.images)
	case s.cfg.Data.ImageSize > 0:
		return FlagError(err) // the shape is --image-size's: no need to decode to know
	}
	// Otherwise (images kept at the first one's size) a model that does not
	// plan is reported after loading, where a bad image comes first; the
	// dataset alone is still checked.
	return s.checkMemory(b, m)
}
