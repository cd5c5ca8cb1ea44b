package cli

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"short row", []string{"plot", file("short.csv", header+good+good+"3,1.2,0.5\n")}, []string{"short.csv", "line 4", "3 fields"}},
		{"header only", []string{"plot", file("empty.csv", header)}, []string{"empty.csv", "no epochs"}},
		{"empty file", []string{"plot", file("zero.csv", "")}, []string{"zero.csv", "empty"}},
		{"wrong header", []string{"plot", file("hdr.csv", "epoch,loss\n1,2\n")}, []string{"hdr.csv", "line 1", "accuracy"}},
		{"bad quote", []string{"plot", file("quote.csv", header+good+"2,\"1.2,0.5,1,1,1,1,1\n")}, []string{"quote.csv", "line 3"}},
		{"two runs", []string{"plot", dir, dir}, []string{"one run folder"}},
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
