package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/trainer-go/trainer/data"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// TestOutChecks: an --out that is a folder, a symbolic link, a name longer
// than a file name may be, or a path longer than the system takes is
// refused with a message naming --out, before any data is read and without
// creating anything.
func TestOutChecks(t *testing.T) {
	root := t.TempDir()
	folder := filepath.Join(root, "dir.safetensors")
	os.Mkdir(folder, 0o755)
	target := filepath.Join(root, "target.safetensors")
	link := filepath.Join(root, "link.safetensors")
	dangling := filepath.Join(root, "dangling.safetensors")
	os.Symlink(target, link)
	os.WriteFile(target, []byte("x"), 0o644)
	os.Symlink(filepath.Join(root, "none.safetensors"), dangling)
	long := filepath.Join(root, "new", strings.Repeat("a", 256), "m.safetensors")
	longName := filepath.Join(root, "new", strings.Repeat("b", 250)+".safetensors")
	var deep strings.Builder
	deep.WriteString(filepath.Join(root, "deep"))
	for deep.Len() < 5041-len("/m.safetensors") {
		deep.WriteString("/" + strings.Repeat("c", 99))
	}
	deep.WriteString("/m.safetensors")
	before := listTree(t, root)
	for _, c := range []struct{ out, want string }{
		{folder, "--out " + folder + " is a folder"},
		{link, "--out " + link + " is a symbolic link"},
		{dangling, "--out " + dangling + " is a symbolic link"},
		{long, "over the 255-byte limit"},
		{longName, "over the 255-byte limit"},
		{deep.String(), "path is too long"},
	} {
		cfg := Default()
		cfg.Out, cfg.Force = c.out, true
		env := Env{Load: func(context.Context, Dataset) (*data.Dataset, *data.Dataset, error) {
			t.Fatalf("data loaded for --out %.60s...", c.out)
			return nil, nil, nil
		}}
		err := Train(context.Background(), cfg, env)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--out") {
			t.Errorf("--out %.80s: got %v, want %q", c.out, err, c.want)
		}
	}
	if after := listTree(t, root); after != before {
		t.Errorf("refused runs created files:\nbefore %s\nafter  %s", before, after)
	}
}

func listTree(t *testing.T, root string) string {
	var names []string
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		names = append(names, strings.TrimPrefix(p, root))
		return nil
	})
	return strings.Join(names, " ")
}

// TestResumeFromCopy: resuming from a numbered or best copy without --out
// writes to the run's checkpoint (and says so), never to the copy; if the
// run's checkpoint is further on, the resume is refused.
func TestResumeFromCopy(t *testing.T) {
	cfg := smallConfig(t)
	cfg.SaveEvery, cfg.Keep = 5, 100
	var e strings.Builder
	if err := Train(context.Background(), cfg, testEnv(&e)); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	dir := filepath.Dir(cfg.Out)
	copyAt := func(step int) string {
		return filepath.Join(dir, fmt.Sprintf("m-step%09d.safetensors", step))
	}
	resume := func(from string) error {
		r := Default()
		r.Resume, r.Data.Dir, r.Epochs, r.Keep, r.SaveEvery = from, cfg.Data.Dir, 3, 100, 5
		env := testEnv(&e)
		env.Log = testLogger(&e)
		return Train(context.Background(), r, env)
	}
	// The copy at the last step is as far on as the run's checkpoint.
	st := snapshot(t, copyAt(20))
	e.Reset()
	if err := resume(copyAt(20)); err != nil {
		t.Fatalf("resume from the copy at the run's last step: %v\n%s", err, e.String())
	}
	st.check(t)
	if !strings.Contains(e.String(), "writing to "+cfg.Out) {
		t.Errorf("the log does not say where the resumed run writes:\n%s", e.String())
	}
	if ck, err := model.LoadCheckpoint(cfg.Out); err != nil || meta.Decode(ck.Meta).Epoch != 3 {
		t.Fatalf("the run's checkpoint after the resume: %v", err)
	}
	// Now the run's checkpoint is further on than every copy.
	for _, from := range []string{copyAt(10), filepath.Join(dir, "m-best.safetensors")} {
		st := snapshot(t, from)
		err := resume(from)
		if err == nil || !strings.Contains(err.Error(), cfg.Out) || !strings.Contains(err.Error(), "--out") {
			t.Errorf("resume from %s while %s is further on: %v", from, cfg.Out, err)
		}
		st.check(t)
	}
	// The run's checkpoint deleted: a copy resumes into it; the history is
	// cut back to the copy's epoch and continued.
	os.Remove(cfg.Out)
	st = snapshot(t, copyAt(10))
	if err := resume(copyAt(10)); err != nil {
		t.Fatalf("resume from a copy with no run checkpoint: %v\n%s", err, e.String())
	}
	st.check(t)
	if got := strings.Join(historyEpochs(t, HistoryPath(cfg.Out)), " "); got != "1 2 3" {
		t.Errorf("history epochs %q after resuming from the step-10 copy, want 1 2 3", got)
	}
}

type fileSnap struct {
	path string
	data []byte
	mod  time.Time
}

func snapshot(t *testing.T, path string) fileSnap {
	t.Helper()
	b, err := os.ReadFile(path)
	st, err2 := os.Stat(path)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %v %v", path, err, err2)
	}
	return fileSnap{path, b, st.ModTime()}
}

func (s fileSnap) check(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(s.path)
	st, err2 := os.Stat(s.path)
	if err != nil || err2 != nil || string(b) != string(s.data) || !st.ModTime().Equal(s.mod) {
		t.Errorf("the copy %s was modified (or removed): %v %v", s.path, err, err2)
	}
}

func testLogger(w *strings.Builder) zerolog.Logger { return zerolog.New(w) }

// TestNoPeriodicSaveAtEpochEnd: a periodic save never falls on an epoch's
// last step, where the training state (step 10 of 10) does not resume; a
// run killed between that save and the epoch's own could not continue. The
// epoch's save covers that step.
func TestNoPeriodicSaveAtEpochEnd(t *testing.T) {
	cfg := smallConfig(t) // 10 steps per epoch
	cfg.SaveEvery, cfg.Keep = 5, 0
	var e strings.Builder
	env := testEnv(&e)
	env.Log = testLogger(&e)
	if err := Train(context.Background(), cfg, env); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	var periodic []string
	for _, l := range strings.Split(e.String(), "\n") {
		if strings.Contains(l, `"why":"periodic"`) {
			i := strings.Index(l, `"global_step":`)
			periodic = append(periodic, strings.SplitN(l[i+len(`"global_step":`):], ",", 2)[0])
		}
	}
	if got := strings.Join(periodic, " "); got != "5 15" {
		t.Errorf("periodic saves at global steps %q, want 5 15 (10 and 20 end epochs)", got)
	}
}
