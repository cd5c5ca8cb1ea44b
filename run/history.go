package run

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/model"
)

// HistoryHeader is the first line of a history CSV.
const HistoryHeader = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_s"

// history is a run's per-epoch record: <stem>.history.csv and
// <stem>.history.jsonl beside the checkpoint, rewritten atomically after
// every epoch. Each holds at most one row per epoch, in epoch order.
type history struct {
	rows []historyRow // CSV lines without the header
	json []historyRow
}

// historyRow is one line of a history file and the epoch it records.
type historyRow struct {
	epoch int
	line  string
}

func jsonlPath(csv string) string { return strings.TrimSuffix(csv, ".csv") + ".jsonl" }

// truncate loads the history at from and writes to path its epochs up to
// keep (a resumed run drops epochs recorded after its checkpoint); keep 0
// starts afresh.
func (h *history) truncate(from, path string, keep int) error {
	h.rows, h.json = nil, nil
	if keep == 0 {
		return h.write(path)
	}
	b, err := os.ReadFile(from)
	if errors.Is(err, fs.ErrNotExist) {
		return h.write(path) // no history yet: start one
	}
	if err != nil {
		return fmt.Errorf("history %s: %w", from, err)
	}
	if h.rows, err = readHistory(from, b, keep); err != nil {
		return err
	}
	if jb, err := os.ReadFile(jsonlPath(from)); err == nil {
		h.json = readHistoryJSON(jb, keep)
	}
	return h.write(path)
}

// resumedHistory is the history a run resumed from the checkpoint ck into
// out continues: out's own, or where out has none yet (a new --out), that
// of the run ck belongs to (ck's own, or for a copy its run's).
func resumedHistory(ck, out string) string {
	own := HistoryPath(out)
	if _, err := os.Stat(own); err == nil {
		return own
	}
	if run, ok := runOf(ck); ok {
		ck = run
	}
	return HistoryPath(ck)
}

// readHistory parses a history CSV (b, read from path) and returns, for
// each epoch from 1 to keep, the last row written for it, in epoch order:
// a file spliced by an older version or by hand never yields an epoch
// twice. The first line is the header; empty lines are skipped. A row
// whose first field is not an epoch number is an error naming the line.
func readHistory(path string, b []byte, keep int) ([]historyRow, error) {
	var rows []historyRow
	rest := string(b)
	for line := 1; rest != ""; line++ {
		var t string
		t, rest, _ = strings.Cut(rest, "\n")
		t = strings.TrimSuffix(t, "\r")
		if line == 1 || t == "" {
			continue
		}
		field, _, _ := strings.Cut(t, ",")
		ep, err := strconv.Atoi(field)
		if err != nil || ep < 1 {
			return nil, fmt.Errorf("%s: line %d: %.40q does not start with an epoch number (delete the file to start a new history)", path, line, t)
		}
		if ep <= keep {
			rows = append(rows, historyRow{ep, t})
		}
	}
	return lastPerEpoch(rows), nil
}

// readHistoryJSON is readHistory for the JSON lines file; lines that do
// not parse are dropped.
func readHistoryJSON(b []byte, keep int) []historyRow {
	var rows []historyRow
	for _, l := range strings.Split(string(b), "\n") {
		var r model.EpochResult
		if json.Unmarshal([]byte(l), &r) == nil && r.Epoch >= 1 && r.Epoch <= keep {
			rows = append(rows, historyRow{r.Epoch, l})
		}
	}
	return lastPerEpoch(rows)
}

// lastPerEpoch sorts rows by epoch and keeps, of rows with the same epoch,
// the one that came last.
func lastPerEpoch(rows []historyRow) []historyRow {
	slices.SortStableFunc(rows, func(a, b historyRow) int { return cmp.Compare(a.epoch, b.epoch) })
	out := rows[:0]
	for i, r := range rows {
		if i+1 < len(rows) && rows[i+1].epoch == r.epoch {
			continue
		}
		out = append(out, r)
	}
	return out
}

// add records epoch r; rows of that epoch or later (left by a run that was
// stopped and resumed from an earlier point) are dropped first.
func (h *history) add(path string, r model.EpochResult, lr float64) error {
	h.rows = dropFrom(h.rows, r.Epoch)
	h.json = dropFrom(h.json, r.Epoch)
	h.rows = append(h.rows, historyRow{r.Epoch, fmt.Sprintf("%d,%.6f,%.6f,%.6f,%.6f,%g,%.3f,%.1f",
		r.Epoch, r.Loss, r.Accuracy, r.ValLoss, r.ValAccuracy, lr, r.Seconds, r.ImagesPerS)})
	j, _ := json.Marshal(struct {
		model.EpochResult
		LR float64 `json:"lr"`
	}{r, lr})
	h.json = append(h.json, historyRow{r.Epoch, string(j)})
	return h.write(path)
}

// dropFrom removes the rows of epoch ep and later.
func dropFrom(rows []historyRow, ep int) []historyRow {
	return slices.DeleteFunc(rows, func(r historyRow) bool { return r.epoch >= ep })
}

func joinRows(rows []historyRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.line)
		b.WriteByte('\n')
	}
	return b.String()
}

func (h *history) write(path string) error {
	if err := checkpoint.WriteFileAtomic(path, []byte(HistoryHeader+"\n"+joinRows(h.rows))); err != nil {
		return err
	}
	return checkpoint.WriteFileAtomic(jsonlPath(path), []byte(joinRows(h.json)))
}
