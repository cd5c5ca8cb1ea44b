package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/model"
)

// loadCIFAR reads CIFAR-10 from dir, or downloads it to the cache first.
func loadCIFAR(ctx context.Context, dir string) (train, test *data.Dataset, err error) {
	if dir == "" {
		last := time.Now()
		dir, err = data.EnsureCIFAR10(ctx, data.FetchOptions{Progress: func(done, total int64) {
			if time.Since(last) > 2*time.Second || done == total {
				last = time.Now()
				log.Info().Int64("bytes", done).Int64("total", total).Msgf("downloading CIFAR-10: %.0f%%", 100*float64(done)/float64(max(total, 1)))
			}
		}})
		if err != nil {
			return nil, nil, err
		}
	}
	t0 := time.Now()
	train, test, err = data.LoadCIFAR10(dir)
	if err != nil {
		return nil, nil, err
	}
	log.Info().Str("dir", dir).Int("train", train.N).Int("validation", test.N).Float64("seconds", round(time.Since(t0).Seconds(), 3)).Msg("CIFAR-10 loaded")
	return train, test, nil
}

func toModel(d *data.Dataset) *model.Data {
	return &model.Data{Images: d.Images, Labels: d.Labels, N: d.N}
}

func shapeOf(d *data.Dataset) model.Shape { return model.Shape{C: d.C, H: d.H, W: d.W} }

func checkShape(net *model.Network, d *data.Dataset, what string) error {
	if s := shapeOf(d); s != net.Input {
		return fmt.Errorf("%s images are %s but the model expects %s", what, s, net.Input)
	}
	return nil
}
