package cli

import (
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"

	"github.com/trainer-go/trainer/internal/testkit"
)

// writeHistory writes a history.csv of n epochs in the layout train writes.
func writeHistory(t *testing.T, path string, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_s\n")
	for e := 1; e <= n; e++ {
		loss := 2.0 / float64(e+1)
		acc := 1 - loss/2.5
		fmt.Fprintf(&b, "%d,%.6f,%.6f,%.6f,%.6f,0.001,12.345,4051.2\n", e, loss, acc, loss+0.1, acc-0.05)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkPlotPNG decodes path and checks it is a sizeable, non-blank picture
// that shows both curve colours.
func checkPlotPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	r := img.Bounds()
	if r.Dx() < 600 || r.Dy() < 300 || r.Dx() > 4000 || r.Dy() > 3000 {
		t.Fatalf("%s is %dx%d; expected a two-panel plot of about 1150x450", path, r.Dx(), r.Dy())
	}
	colours := map[[3]uint32]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			colours[[3]uint32{cr >> 8, cg >> 8, cb >> 8}]++
		}
	}
	if len(colours) < 20 {
		t.Fatalf("%s has only %d colours: blank or nearly", path, len(colours))
	}
	if white := colours[[3]uint32{255, 255, 255}]; white < r.Dx()*r.Dy()/2 {
		t.Errorf("%s: only %d of %d pixels are white background", path, white, r.Dx()*r.Dy())
	}
	for name, c := range map[string][3]uint32{"training (blue)": {31, 119, 180}, "validation (orange)": {255, 127, 14}} {
		if colours[c] < 200 {
			t.Errorf("%s: the %s curves cover %d pixels; expected two curves' worth", path, name, colours[c])
		}
	}
	// Both halves of the picture hold curves (two panels).
	for half := range 2 {
		n := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X + half*r.Dx()/2; x < r.Min.X+(half+1)*r.Dx()/2; x++ {
				cr, cg, cb, _ := img.At(x, y).RGBA()
				if [3]uint32{cr >> 8, cg >> 8, cb >> 8} == [3]uint32{31, 119, 180} {
					n++
				}
			}
		}
		if n < 100 {
			t.Errorf("%s: the %s panel has %d pixels of the training curve", path, []string{"left", "right"}[half], n)
		}
	}
}

// TestPlotRunFolder: plot RUN writes RUN/history.png; plot CSV --out writes
// where asked; PlotHistory is callable directly.
func TestPlotRunFolder(t *testing.T) {
	dir := t.TempDir()
	writeHistory(t, filepath.Join(dir, "history.csv"), 6)
	code, out, errOut := run(t, "plot", dir)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	want := filepath.Join(dir, "history.png")
	if strings.TrimSpace(out) != want {
		t.Errorf("plot printed %q, want the PNG path %q", out, want)
	}
	checkPlotPNG(t, want)

	other := filepath.Join(t.TempDir(), "curves.png")
	if code, _, errOut := run(t, "plot", "--out", other, filepath.Join(dir, "history.csv")); code != 0 {
		t.Fatalf("plot CSV --out: exit %d:\n%s", code, errOut)
	}
	checkPlotPNG(t, other)

	one := filepath.Join(t.TempDir(), "run7.csv")
	writeHistory(t, one, 1)
	if code, _, errOut := run(t, "plot", one); code != 0 {
		t.Fatalf("plot of one epoch: exit %d:\n%s", code, errOut)
	}
	if _, err := os.Stat(strings.TrimSuffix(one, ".csv") + ".png"); err != nil {
		t.Fatalf("plot CSV writes the PNG beside it: %v", err)
	}

	direct := filepath.Join(t.TempDir(), "sub", "h.png")
	if err := PlotHistory(filepath.Join(dir, "history.csv"), direct); err != nil {
		t.Fatal(err)
	}
	checkPlotPNG(t, direct)
}

// TestPlotErrors: a missing run, malformed rows (named by line), a header
// without rows and extra arguments each give exit 1 and one error line.
func TestPlotErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	header := "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_s\n"
	good := "1,1.5,0.4,1.6,0.38,0.001,10,4000\n"
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing run", []string{"plot", filepath.Join(dir, "nope")}, []string{"nope", "not found"}},
		{"folder without csv", []string{"plot", dir}, []string{"history.csv", "not found"}},
		{"not a number", []string{"plot", file("nan.csv", header+good+"2,abc,0.5,1.4,0.45,0.001,10,4000\n")}, []string{"nan.csv", "line 3", "loss", "abc"}},
		{"short row", []string{"plot", file("short.csv", header+good+"2,1.4,0.45,1.5,0.4,0.001,10,4000\n3,1.2,0.5\n")}, []string{"short.csv", "line 4", "3 fields"}},
		{"header only", []string{"plot", file("empty.csv", header)}, []string{"empty.csv", "no epochs"}},
		{"empty file", []string{"plot", file("zero.csv", "")}, []string{"zero.csv", "empty"}},
		{"wrong header", []string{"plot", file("hdr.csv", "epoch,loss\n1,2\n")}, []string{"hdr.csv", "line 1", "accuracy"}},
		{"bad quote", []string{"plot", file("quote.csv", header+good+"2,\"1.2,0.5,1,1,1,1,1\n")}, []string{"quote.csv", "line 3"}},
		{"two runs", []string{"plot", dir, dir}, []string{"one checkpoint, run folder"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, c.args...)
			if code != ExitError {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitError, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			msg := lines[len(lines)-1]
			if len(lines) != 1 || !strings.HasPrefix(msg, "trainer: error: ") {
				t.Fatalf("stderr is not one error line:\n%s", errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nan.png")); err == nil {
		t.Errorf("a malformed CSV still produced a PNG")
	}
}

// plotPromptly runs PlotHistory on a history CSV of body and fails if it
// takes more than limit (the hang cases of the issue looped for ever in tick
// generation).
func plotPromptly(t *testing.T, body string, limit time.Duration) (csvPath, pngPath string, err error) {
	t.Helper()
	dir := t.TempDir()
	csvPath, pngPath = filepath.Join(dir, "history.csv"), filepath.Join(dir, "history.png")
	if err := os.WriteFile(csvPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- PlotHistory(csvPath, pngPath) }()
	select {
	case err = <-done:
	case <-time.After(limit):
		t.Fatalf("PlotHistory still running after %v on:\n%s", limit, body)
	}
	return csvPath, pngPath, err
}

// TestPlotHostileHistory: the histories that made plot loop for ever (huge
// or negative epochs, values of ±1e308, NaN, Inf) each give, promptly, a
// one-line error naming the file and the row, or a valid plot.
func TestPlotHostileHistory(t *testing.T) {
	header := "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_s\n"
	good := "1,1.5,0.4,1.6,0.38,0.001,10,4000\n"
	cases := []struct {
		name string
		rows string
		want []string // nil: a valid plot
	}{
		{"huge epoch", good + "1e15,1.2,0.5,1.3,0.45,0.001,10,4000\n", []string{"line 3", "epoch"}},
		{"huge integer epoch", good + "1000000000000000,1.2,0.5,1.3,0.45,0.001,10,4000\n", []string{"line 3", "epoch"}},
		{"negative epoch", "-5,1.2,0.5,1.3,0.45,0.001,10,4000\n" + good, []string{"line 2", "epoch"}},
		{"fractional epoch", good + "1.5,1.2,0.5,1.3,0.45,0.001,10,4000\n", []string{"line 3", "epoch"}},
		{"epochs not increasing", good + good, []string{"line 3", "epoch"}},
		{"value 1e308", good + "2,1e308,0.5,1.3,0.45,0.001,10,4000\n", []string{"line 3", "loss"}},
		{"value -1e308", good + "2,1.2,0.5,-1e308,0.45,0.001,10,4000\n", []string{"line 3", "val_loss"}},
		{"both 1e308", "1,-1e308,0.4,1e308,0.38,0.001,10,4000\n2,1e308,0.5,-1e308,0.45,0.001,10,4000\n", []string{"line 2", "loss"}},
		{"Inf", good + "2,1.2,Inf,1.3,0.45,0.001,10,4000\n", []string{"line 3", "accuracy"}},
		{"-Inf", good + "2,1.2,0.5,-Inf,0.45,0.001,10,4000\n", []string{"line 3", "val_loss"}},
		{"NaN epoch", good + "NaN,1.2,0.5,1.3,0.45,0.001,10,4000\n", []string{"line 3", "epoch"}},
		{"NaN value", good + "2,NaN,0.5,1.3,0.45,0.001,10,4000\n3,1.1,0.55,NaN,0.46,0.001,10,4000\n", nil},
		{"all values NaN", "1,NaN,NaN,NaN,NaN,0.001,10,4000\n", nil},
		{"too many rows", manyRows(maxHistoryRows + 1), []string{"line 100002", "more than 100000 epochs"}},
		{"wide but sane", "1,1000000,0,-1000000,1,0.001,10,4000\n1000000,-1000000,1,1000000,0,0.001,10,4000\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			csvPath, pngPath, err := plotPromptly(t, header+c.rows, 20*time.Second)
			if c.want == nil {
				if err != nil {
					t.Fatalf("want a plot, got %v", err)
				}
				if _, err := os.Stat(pngPath); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error mentioning %q, got a plot", c.want)
			}
			testkit.CheckFileErr(t, err, csvPath)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// manyRows is n rows of epochs 1..n.
func manyRows(n int) string {
	var b strings.Builder
	for e := 1; e <= n; e++ {
		fmt.Fprintf(&b, "%d,1,0.5,1,0.5,0.001,1,1\n", e)
	}
	return b.String()
}

// TestPlotTicksCapped: whatever the range, neither axis gets more than
// maxTicks ticks, and tick generation returns at once.
func TestPlotTicksCapped(t *testing.T) {
	for _, r := range [][2]float64{{0, 1e15}, {-1e308, 1e308}, {0, math.MaxFloat64}, {-math.MaxFloat64, math.MaxFloat64},
		{1, 1}, {0, 1e-300}, {5, -5}, {math.Inf(-1), math.Inf(1)}, {math.NaN(), 3}, {0.75, 1e6 + 0.25}, {1e15, 1e15 + 0.25}} {
		for _, m := range []plot.Ticker{epochTicks{}, valueTicks{}} {
			done := make(chan []plot.Tick, 1)
			go func() { done <- m.Ticks(r[0], r[1]) }()
			select {
			case ts := <-done:
				if len(ts) > maxTicks {
					t.Errorf("%T.Ticks(%g, %g): %d ticks, more than %d", m, r[0], r[1], len(ts), maxTicks)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%T.Ticks(%g, %g) still running after 5 s", m, r[0], r[1])
			}
		}
	}
}

// TestPlotDeadline: a plot that takes longer than its deadline returns an
// error saying so rather than holding up training.
func TestPlotDeadline(t *testing.T) {
	defer func(d time.Duration) { plotDeadline = d }(plotDeadline)
	plotDeadline = time.Nanosecond
	dir := t.TempDir()
	writeHistory(t, filepath.Join(dir, "history.csv"), 50)
	start := time.Now()
	err := PlotHistory(filepath.Join(dir, "history.csv"), filepath.Join(dir, "history.png"))
	if err == nil || !strings.Contains(err.Error(), "plot took longer than") {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
}
