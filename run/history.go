package run

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/model"
)

// HistoryHeader is the first line of history.csv.
const HistoryHeader = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_s"

// history is a run's per-epoch record: history.csv and history.jsonl beside
// the checkpoint, rewritten atomically after every epoch.
type history struct {
	rows []string // CSV lines without the header
	json []string
}

func jsonlPath(csv string) string { return strings.TrimSuffix(csv, ".csv") + ".jsonl" }

// truncate loads an existing history and keeps the epochs up to keep (a
// resumed run drops epochs recorded after its checkpoint); keep 0 starts
// afresh.
func (h *history) truncate(path string, keep int) error {
	h.rows, h.json = nil, nil
	if keep == 0 {
		return h.write(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil // no history yet: start one
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := sc.Text()
		if line == 1 || t == "" {
			continue
		}
		ep, err := strconv.Atoi(strings.SplitN(t, ",", 2)[0])
		if err != nil {
			return fmt.Errorf("%s: line %d: %q does not start with an epoch number (delete the file to start a new history)", path, line, t)
		}
		if ep <= keep {
			h.rows = append(h.rows, t)
		}
	}
	if jf, err := os.ReadFile(jsonlPath(path)); err == nil {
		for _, l := range strings.Split(string(jf), "\n") {
			var r model.EpochResult
			if json.Unmarshal([]byte(l), &r) == nil && r.Epoch >= 1 && r.Epoch <= keep {
				h.json = append(h.json, l)
			}
		}
	}
	return h.write(path)
}

func (h *history) add(path string, r model.EpochResult, lr float64) error {
	h.rows = append(h.rows, fmt.Sprintf("%d,%.6f,%.6f,%.6f,%.6f,%g,%.3f,%.1f",
		r.Epoch, r.Loss, r.Accuracy, r.ValLoss, r.ValAccuracy, lr, r.Seconds, r.ImagesPerS))
	j, _ := json.Marshal(struct {
		model.EpochResult
		LR float64 `json:"lr"`
	}{r, lr})
	h.json = append(h.json, string(j))
	return h.write(path)
}

func (h *history) write(path string) error {
	csv := HistoryHeader + "\n" + strings.Join(h.rows, "\n")
	if len(h.rows) > 0 {
		csv += "\n"
	}
	if err := checkpoint.WriteFileAtomic(path, []byte(csv)); err != nil {
		return err
	}
	js := strings.Join(h.json, "\n")
	if len(h.json) > 0 {
		js += "\n"
	}
	return checkpoint.WriteFileAtomic(jsonlPath(path), []byte(js))
}
