package run

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/model"
)

// historyEpochs returns the epoch numbers of a history CSV's rows, in order.
func historyEpochs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != HistoryHeader {
		t.Fatalf("%s: header %q", path, lines[0])
	}
	var eps []string
	for _, l := range lines[1:] {
		eps = append(eps, strings.SplitN(l, ",", 2)[0])
	}
	return eps
}

// TestHistoryPerRun: two runs with different --out in one folder keep
// their own history (<stem>.history.csv, .jsonl, .png), not one file that
// they overwrite or splice.
func TestHistoryPerRun(t *testing.T) {
	a := smallConfig(t)
	b := a
	b.Out = filepath.Join(filepath.Dir(a.Out), "b.safetensors")
	b.Epochs = 3
	var e strings.Builder
	var plotted []string
	env := testEnv(&e)
	env.Plot = func(csv, png string) error { plotted = append(plotted, csv, png); return nil }
	for _, cfg := range []Config{a, b} {
		if err := Train(context.Background(), cfg, env); err != nil {
			t.Fatalf("%v\n%s", err, e.String())
		}
	}
	dir := filepath.Dir(a.Out)
	if got := strings.Join(historyEpochs(t, filepath.Join(dir, "m.history.csv")), " "); got != "1 2" {
		t.Errorf("m.history.csv holds epochs %q, want 1 2", got)
	}
	if got := strings.Join(historyEpochs(t, filepath.Join(dir, "b.history.csv")), " "); got != "1 2 3" {
		t.Errorf("b.history.csv holds epochs %q, want 1 2 3", got)
	}
	for _, f := range []string{"m.history.jsonl", "b.history.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("no %s", f)
		}
	}
	want := []string{filepath.Join(dir, "m.history.csv"), filepath.Join(dir, "m.history.png"), filepath.Join(dir, "b.history.csv"), filepath.Join(dir, "b.history.png")}
	if strings.Join(plotted, " ") != strings.Join(want, " ") {
		t.Errorf("plot hook called with %v, want %v", plotted, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "history.csv")); err == nil {
		t.Error("a folder-wide history.csv was written")
	}
}

// TestHistoryNoDuplicateEpochs: a history that holds an epoch twice (a
// spliced file) is read back with one row per epoch, the last one written,
// up to the checkpoint's epoch; adding an epoch replaces a row of that
// epoch or later.
func TestHistoryNoDuplicateEpochs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.history.csv")
	rows := []string{"1,1.0,0.1,1.0,0.1,0.001,1,1", "2,0.9,0.2,0.9,0.2,0.001,1,1", "3,0.8,0.3,0.8,0.3,0.001,1,1",
		"2,0.7,0.4,0.7,0.4,0.001,1,1", "3,0.6,0.5,0.6,0.5,0.001,1,1", "4,0.5,0.6,0.5,0.6,0.001,1,1"}
	os.WriteFile(path, []byte(HistoryHeader+"\n"+strings.Join(rows, "\n")+"\n"), 0o644)
	var h history
	if err := h.truncate(path, path, 3); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := HistoryHeader + "\n" + rows[0] + "\n" + rows[3] + "\n" + rows[4] + "\n"
	if string(b) != want {
		t.Fatalf("after truncating to epoch 3:\n%s\nwant\n%s", b, want)
	}
	if err := h.add(path, model.EpochResult{Epoch: 3, Loss: 0.25}, 0.001); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(historyEpochs(t, path), " "); got != "1 2 3" {
		t.Fatalf("after adding epoch 3 again: epochs %q", got)
	}
}
