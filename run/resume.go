package run

import (
	"fmt"

	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// loadResume reads the checkpoint of cfg.Resume and takes the run's
// settings from it: settings given explicitly (cfg.Set) may not contradict
// it. Out defaults to the checkpoint.
func loadResume(cfg *Config) (*model.Checkpoint, error) {
	p := cfg.Resume
	ck, err := model.LoadCheckpoint(p)
	if err != nil {
		return nil, err
	}
	if !ck.Resumable() {
		return nil, fmt.Errorf("--resume %s: the checkpoint holds weights only, no training state", p)
	}
	saved := meta.Decode(ck.Meta)
	for _, f := range []struct {
		flag        string
		have, saved any
	}{{"model", cfg.Model, saved.Model}, {"batch-size", cfg.BatchSize, saved.BatchSize}, {"lr", cfg.LR, saved.LR},
		{"lr-schedule", cfg.Schedule, saved.LRSchedule}, {"seed", cfg.Seed, saved.Seed}, {"augment", cfg.Augment, saved.Augment}} {
		if cfg.isSet(f.flag) && fmt.Sprint(f.have) != fmt.Sprint(f.saved) {
			return nil, fmt.Errorf("--%s %v: the run in %s was started with %v; a resumed run keeps its settings (start a new run with another --out instead)", f.flag, f.have, p, f.saved)
		}
	}
	if saved.LRSchedule == "" {
		saved.LRSchedule = "constant"
	}
	cfg.Model, cfg.BatchSize, cfg.LR, cfg.Schedule, cfg.Seed, cfg.Augment =
		saved.Model, saved.BatchSize, saved.LR, saved.LRSchedule, saved.Seed, saved.Augment
	if !cfg.isSet("out") {
		cfg.Out = p
	}
	return ck, nil
}

// resumeDataset takes the dataset kind from the checkpoint resumed; a
// --dataset given explicitly must agree.
func resumeDataset(cfg *Config, ck *model.Checkpoint) error {
	if ck == nil {
		return nil
	}
	saved := meta.Decode(ck.Meta).Dataset
	if saved == "" || saved == cfg.Data.Kind {
		return nil
	}
	if cfg.isSet("dataset") {
		return fmt.Errorf("--dataset %s: the run in %s trained on %s", cfg.Data.Kind, ck.Path, saved)
	}
	cfg.Data.Kind = saved
	return nil
}
