package run

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// files keeps the files of one run: the latest checkpoint, numbered
// copies, the best one and the history, and the metadata saved with them.
type files struct {
	out     string
	keep    int
	net     *model.Network
	meta    Meta // settings and results; Train is set per save by model
	saved   string
	history history
	log     *zerolog.Logger
}

// HistoryPath is the history CSV of the run whose checkpoint is out:
// <stem>.history.csv beside it, stem being out without .safetensors
// (<stem>.history.jsonl lies beside it, and <stem>.history.png once drawn).
// Each run has its own, so several runs can share a folder.
func HistoryPath(out string) string { return strings.TrimSuffix(out, ".safetensors") + ".history.csv" }

func (r *files) base() (dir, stem string) {
	return filepath.Dir(r.out), strings.TrimSuffix(filepath.Base(r.out), ".safetensors")
}

// save writes the full training state to the checkpoint and a numbered
// copy, then drops numbered copies beyond keep.
func (r *files) save(t *model.Trainer, why string) error {
	st, err := t.State()
	if err != nil {
		return err
	}
	m := r.meta
	m.BestValAccuracy = max(m.BestValAccuracy, m.ValAccuracy)
	m.SavedBecause = why
	md := m.Encode()
	for _, k := range []string{meta.Format, meta.Model, meta.Input} {
		delete(md, k) // model writes them, from the network
	}
	if err := model.SaveCheckpoint(r.out, r.net, st, md); err != nil {
		return err
	}
	r.saved = r.out
	r.log.Debug().Str("checkpoint", r.out).Str("why", why).Int("global_step", st.AdamStep).Msg("saved")
	if r.keep == 0 {
		return nil
	}
	dir, stem := r.base()
	numbered := filepath.Join(dir, fmt.Sprintf("%s-step%09d.safetensors", stem, st.AdamStep))
	if err := r.copyTo(numbered); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, stem+"-step*.safetensors"))
	sort.Strings(old)
	for len(old) > r.keep {
		os.Remove(old[0])
		old = old[1:]
	}
	return nil
}

// copyTo copies the checkpoint just written to path, atomically.
func (r *files) copyTo(path string) error {
	data, err := os.ReadFile(r.out)
	if err != nil {
		return err
	}
	return checkpoint.WriteFileAtomic(path, data)
}

// copyBest copies the checkpoint just written to <stem>-best.safetensors.
func (r *files) copyBest() error {
	dir, stem := r.base()
	return r.copyTo(filepath.Join(dir, stem+"-best.safetensors"))
}
