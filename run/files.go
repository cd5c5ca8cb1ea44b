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
	off     bool // another rank writes the files: save and the history do nothing
}

// truncateHistory starts the history (see history.truncate), unless off.
func (r *files) truncateHistory(from, path string, keep int) error {
	if r.off {
		return nil
	}
	return r.history.truncate(from, path, keep)
}

// addHistory records an epoch (see history.add), unless off.
func (r *files) addHistory(path string, e model.EpochResult, lr float64) error {
	if r.off {
		return nil
	}
	return r.history.add(path, e, lr)
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
	if r.off {
		return nil
	}
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
	if r.off {
		return nil
	}
	dir, stem := r.base()
	return r.copyTo(filepath.Join(dir, stem+"-best.safetensors"))
}

// nameMax and pathMax are the longest file name and path that Linux (and
// most Unix file systems) accept, in bytes.
const (
	nameMax = 255
	pathMax = 4096
)

// checkOut refuses an --out that cannot hold a run's checkpoint, before
// anything is read or created: a folder, a symbolic link (a save renames a
// new file over --out, which would replace the link, not write where it
// points), a path under a file, or names too long for the file system,
// counting the longest name made from it (the temporary file of a numbered
// copy).
func checkOut(out string) error {
	if out == "" {
		return nil // validate says what to give
	}
	if st, err := os.Lstat(out); err == nil {
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("--out %s is a symbolic link: give the path of the checkpoint file itself (saving renames a new file over --out, which would replace the link rather than write where it points)", out)
		case st.IsDir():
			return fmt.Errorf("--out %s is a folder: give a checkpoint file path, e.g. %s", out, filepath.Join(out, "model.safetensors"))
		}
	}
	dir, base := filepath.Split(out)
	for _, c := range strings.Split(filepath.ToSlash(dir), "/") {
		if len(c) > nameMax {
			return fmt.Errorf("--out: the folder name %.32s... is %d bytes long, over the %d-byte limit of a file name", c, len(c), nameMax)
		}
	}
	stem := strings.TrimSuffix(base, ".safetensors")
	longest := len("." + stem + "-step000000000.safetensors" + ".tmp0123456789")
	if longest > nameMax {
		return fmt.Errorf("--out: the file name %.32s... is %d bytes long; with the names made from it (<name>-step000000000.safetensors and its temporary file) it comes over the %d-byte limit of a file name: give a name of at most %d bytes",
			base, len(base), nameMax, nameMax-(longest-len(base)))
	}
	if n := len(out) + longest - len(base); n >= pathMax {
		return fmt.Errorf("--out: the path is too long (%d bytes, with the names made from it %d; the system takes at most %d)", len(out), n, pathMax-1)
	}
	return checkParent(out)
}

// checkParent refuses an --out whose nearest existing parent is not a
// folder.
func checkParent(out string) error {
	for d := filepath.Dir(out); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("--out %s: %s is not a folder", out, d)
			}
			return nil
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
