package cli

// Fuzz targets of the command line's file readers (run with scripts/fuzz.sh,
// or
//
//	go test -run='^$' -fuzz='^FuzzPlotHistory$' -fuzztime=30s ./cli
//
// ).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// FuzzPlotHistory plots the input as a history CSV: it must return, within
// the fuzz time limit and an allocation budget, either a one-line error
// naming the file or a PNG.
func FuzzPlotHistory(f *testing.F) {
	header := "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_s\n"
	for _, rows := range []string{
		"1,1.5,0.4,1.6,0.38,0.001,10,4000\n2,1.2,0.5,1.3,0.45,0.001,10,4000\n",
		"1,1.5,0.4,,,0.001,10,4000\n",
		"1,NaN,0.4,1.6,NaN,0.001,10,4000\n",
		"1,1.5,0.4,1.6,0.38,0.001,10,4000\n1e15,1.2,0.5,1.3,0.45,0.001,10,4000\n",
		"-5,1.2,0.5,1.3,0.45,0.001,10,4000\n",
		"1,-1e308,0.4,1e308,0.38,0.001,10,4000\n2,1e308,0.5,-1e308,0.45,0.001,10,4000\n",
		"1,Inf,0.4,1.6,0.38,0.001,10,4000\n",
		"1,1000000000,0,-1000000000,1,0,0,0\n1000000000,-1000000000,1,1000000000,0,0,0,0\n",
		"3,1,1,1,1,1,1,1\n4,1,1,1,1,1,1,1.0000001\n",
	} {
		f.Add(header + rows)
	}
	f.Add("")
	f.Add("epoch,loss\n1,2\n")
	f.Add("\ufeffepoch,loss,accuracy,val_loss,val_accuracy\n1,1,1,1,1\n")

	f.Fuzz(func(t *testing.T, body string) {
		dir := t.TempDir()
		csvPath, pngPath := filepath.Join(dir, "history.csv"), filepath.Join(dir, "history.png")
		if err := os.WriteFile(csvPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		got := testkit.Allocated(t, func() { err = PlotHistory(csvPath, pngPath) })
		// The PNG canvas (about 1150x450 RGBA), gonum's plot, and per row a
		// handful of parsed fields and points.
		testkit.CheckAlloc(t, got, 64<<20+uint64(4096*strings.Count(body, "\n")+64*len(body)), "plotting a history")
		if err != nil {
			testkit.CheckFileErr(t, err, csvPath)
			return
		}
		if _, err := os.Stat(pngPath); err != nil {
			t.Fatalf("PlotHistory returned nil but wrote no PNG: %v", err)
		}
	})
}
