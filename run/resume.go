package run

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/trainer-go/trainer/checkpoint"

	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// loadResume reads the checkpoint of cfg.Resume and takes the run's
// settings from it: settings given explicitly (cfg.Set) may not contradict
// it. Out defaults to the checkpoint, or for a copy (-best, -stepN) to the
// run's checkpoint beside it.
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
	recipe, err := decodeRecipe(ck.Meta[meta.Recipe])
	if err != nil {
		return nil, fmt.Errorf("--resume %s: %v", p, err)
	}
	if err := cfg.Recipe.mergeResumed(recipe, cfg.isSet, p); err != nil {
		return nil, err
	}
	if !cfg.isSet("out") {
		cfg.Out = p
		if run, ok := runOf(p); ok {
			if err := checkRunAhead(run, p, saved); err != nil {
				return nil, err
			}
			cfg.Out = run
		}
	}
	return ck, nil
}

// copyName matches the names of a run's copies: <stem>-best.safetensors
// and <stem>-stepNNNNNNNNN.safetensors.
var copyName = regexp.MustCompile(`^(.+)-(best|step[0-9]{9})\.safetensors$`)

// runOf returns the checkpoint of the run that path is a copy of, and false
// if path is not a copy. A file named like a copy that has its own history
// is a run's checkpoint (its --out was named so).
func runOf(path string) (string, bool) {
	dir, base := filepath.Split(path)
	m := copyName.FindStringSubmatch(base)
	if m == nil {
		return "", false
	}
	if _, err := os.Stat(HistoryPath(path)); err == nil {
		return "", false
	}
	return dir + m[1] + ".safetensors", true
}

// checkRunAhead refuses to resume the copy cp (metadata saved) into the
// run's checkpoint run when that is further on, or does not load: writing
// there would throw training away.
func checkRunAhead(run, cp string, saved meta.Meta) error {
	f, err := checkpoint.Read(run)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--resume %s is a copy of the run in %s, which does not load (%v): pass --out %s to resume the copy into it anyway, or another --out for a new run", cp, run, err, run)
	}
	m := meta.Decode(f.Meta)
	if m.Train != nil && saved.Train != nil && m.Train.AdamStep > saved.Train.AdamStep {
		return fmt.Errorf("--resume %s is a copy at global step %d of the run in %s, which is further on (global step %d): resume %s to continue the run, or pass --out to start a new run from the copy",
			cp, saved.Train.AdamStep, run, m.Train.AdamStep, run)
	}
	return nil
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

// checkWorld refuses to resume a run on another number of processes than
// it was trained on: the batches, the shards of each epoch and the
// position in the epoch depend on it.
func (s *session) checkWorld(ck *model.Checkpoint) error {
	saved := meta.Decode(ck.Meta).WorldSize
	if saved == s.world {
		return nil
	}
	how := "as a single process (no mpirun, srun or torchrun)"
	if saved > 1 {
		how = fmt.Sprintf("on %d processes (mpirun -np %d, srun -n %d, or torchrun with %d processes in all)", saved, saved, saved, saved)
	}
	return fmt.Errorf("--resume %s: the run was trained with a world size of %d and this launch has %d processes: resume it %s, or start a new run with another --out",
		ck.Path, saved, s.world, how)
}
