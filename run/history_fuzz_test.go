package run

import (
	"strconv"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// FuzzReadHistory reads the input as a history CSV, as a resumed run does
// (keep: the checkpoint's epoch). Invariants: no panic or hang, allocation
// bounded by the input's size, errors are one line and name the file, and
// the rows read have epochs from 1 to keep, strictly increasing (never an
// epoch twice), each row being a line of the input that starts with its
// epoch. Run it with
//
//	go test -run='^$' -fuzz='^FuzzReadHistory$' -fuzztime=30s ./run
//
// or with scripts/fuzz.sh.
func FuzzReadHistory(f *testing.F) {
	f.Add([]byte(HistoryHeader+"\n1,2.3,0.1,2.2,0.1,0.001,1.5,400\n2,2.1,0.2,2.0,0.2,0.001,1.5,400\n"), 2)
	f.Add([]byte(HistoryHeader+"\n1,a\n2,b\n1,c\n3,d\n2,e\n"), 2)
	f.Add([]byte(HistoryHeader+"\r\n1,x\r\n\r\n"), 5)
	f.Add([]byte("\n\nx,1\n"), 1)
	f.Add([]byte(HistoryHeader+"\n-1,x\n"), 3)
	f.Add([]byte(HistoryHeader+"\n99999999999999999999,x\n"), 1<<30)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, file []byte, keep int) {
		const path = "runs/a/m.history.csv"
		var rows []historyRow
		var err error
		got := testkit.Allocated(t, func() { rows, err = readHistory(path, file, keep) })
		// The string copy of the input, a 24-byte row per line, sorting.
		testkit.CheckAlloc(t, got, uint64(64*len(file)+64<<10), "readHistory")
		if err != nil {
			testkit.CheckFileErr(t, err, path)
			return
		}
		lines := strings.ReplaceAll("\n"+string(file)+"\n", "\r\n", "\n")
		prev := 0
		for _, r := range rows {
			if r.epoch <= prev || r.epoch > keep {
				t.Fatalf("epoch %d after %d (keep %d): not increasing or beyond keep", r.epoch, prev, keep)
			}
			prev = r.epoch
			if !strings.Contains(lines, "\n"+r.line+"\n") {
				t.Fatalf("row %q is not a line of the input", r.line)
			}
			if ep, err := strconv.Atoi(strings.SplitN(r.line, ",", 2)[0]); err != nil || ep != r.epoch {
				t.Fatalf("row %q is recorded as epoch %d", r.line, r.epoch)
			}
		}
	})
}
