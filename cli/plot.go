package cli

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/trainer-go/trainer/checkpoint"
	trainrun "github.com/trainer-go/trainer/run"
)

// plotCSVName is the per-epoch CSV that train writes beside a checkpoint
// <name>.safetensors (<name> + plotCSVName), and the name an older version
// wrote into the run folder; plotPNGName is the PNG that plot draws.
const (
	plotCSVName = ".history.csv"
	plotPNGName = ".history.png"
	oldCSVName  = "history.csv"
)

func plotCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "plot",
		Usage:     "draw the loss and accuracy curves of a training run as a PNG",
		ArgsUsage: "RUN",
		Description: "RUN is a checkpoint (its <name>" + plotCSVName + " beside it is read), a run folder\n" +
			"holding one run's <name>" + plotCSVName + ", or the CSV file itself (header\n" +
			"epoch,loss,accuracy,val_loss,val_accuracy,... and one row per epoch). Draws two\n" +
			"panels, loss and val_loss by epoch, accuracy and val_accuracy by epoch, into --out\n" +
			"(default: the CSV's name with .png, beside it).\n\n" +
			"Examples:\n   trainer plot runs/a/model.safetensors    # writes runs/a/model" + plotPNGName + "\n" +
			"   trainer plot --out curves.png runs/a/model" + plotCSVName,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "out", Usage: "PNG file to write"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("plot takes one checkpoint, run folder or <name>%s file, got %d arguments (flags go before them), e.g. trainer plot runs/a/model.safetensors", plotCSVName, c.NArg())
			}
			csvPath, out, err := plotPaths(c.Args().First(), c.String("out"))
			if err != nil {
				return err
			}
			if err := PlotHistory(csvPath, out); err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, out)
			return err
		},
	}
}

// plotPaths resolves the RUN argument to the CSV to read and the PNG to
// write: a checkpoint's <stem>.history.csv (the checkpoint itself need not
// be there), the one <stem>.history.csv of a run folder (history.csv in a
// folder of an older version), or a CSV file.
func plotPaths(run, out string) (csvPath, png string, err error) {
	if strings.HasSuffix(run, ".safetensors") {
		csvPath = trainrun.HistoryPath(run)
	} else if st, err := os.Stat(run); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("run %s: not found (give a checkpoint, a run folder holding <name>%s, or the CSV file)", run, plotCSVName)
		}
		return "", "", fmt.Errorf("run %s: %v", run, err)
	} else if !st.IsDir() {
		csvPath = run
	} else if csvPath, err = folderHistory(run); err != nil {
		return "", "", err
	}
	if out == "" {
		out = strings.TrimSuffix(csvPath, filepath.Ext(csvPath)) + ".png"
	}
	if strings.HasSuffix(out, "/") || filepath.Clean(out) == filepath.Clean(csvPath) {
		return "", "", fmt.Errorf("--out %q: give a PNG file path such as model%s", out, plotPNGName)
	}
	return csvPath, out, nil
}

// folderHistory is the history CSV of the one run in folder dir; several
// runs are an error that lists them.
func folderHistory(dir string) (string, error) {
	runs, _ := filepath.Glob(filepath.Join(dir, "*.history.csv"))
	switch len(runs) {
	case 0:
		return filepath.Join(dir, oldCSVName), nil
	case 1:
		return runs[0], nil
	}
	names := make([]string, len(runs))
	for i, r := range runs {
		names[i] = filepath.Base(r)
	}
	return "", fmt.Errorf("run %s holds the histories of %d runs (%s): give one of them, or its checkpoint", dir, len(runs), strings.Join(names, ", "))
}

// plotColumns are the CSV columns that plot needs; others are ignored.
var plotColumns = []string{"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}

// historyCurves is the parsed CSV: one slice per column in plotColumns.
type historyCurves struct {
	cols [5][]float64 // epoch, loss, accuracy, val_loss, val_accuracy
}

// Limits of a history CSV: a real one is far inside them, a corrupt or
// hostile one is refused before any drawing.
const (
	maxHistoryBytes = 16 << 20 // bytes of the file
	maxHistoryRows  = 100000   // epochs
	maxHistoryEpoch = 1e9      // largest epoch number
	maxHistoryValue = 1e9      // largest magnitude of a loss or accuracy
)

// readHistoryCSV parses a history CSV. An empty cell or NaN (a metric not
// measured in that epoch) reads as NaN and leaves a gap in its curve. Each
// row's epoch must be a whole number from 1 to maxHistoryEpoch, greater
// than the row before; each value must be finite and at most
// maxHistoryValue in magnitude. Errors name the file and the line.
func readHistoryCSV(path string) (*historyCurves, error) {
	raw, err := readRegularFile(path, maxHistoryBytes)
	if err != nil {
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: not found (train writes it into the run folder)", path)
		}
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = -1 // we check the count and name the line ourselves
	header, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file; expected a header row %s and one row per epoch", path, strings.Join(plotColumns, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	idx, err := historyColumns(path, header)
	if err != nil {
		return nil, err
	}
	h := &historyCurves{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // csv.ParseError names the line
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s line %d: %d fields, the header has %d", path, line, len(rec), len(header))
		}
		if len(h.cols[0]) == maxHistoryRows {
			return nil, fmt.Errorf("%s line %d: more than %d epochs; plot draws at most that many", path, line, maxHistoryRows)
		}
		if err := h.addRow(rec, idx); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", path, line, err)
		}
	}
	if len(h.cols[0]) == 0 {
		return nil, fmt.Errorf("%s: no epochs yet, only a header; plot again after the first epoch", path)
	}
	return h, nil
}

// historyColumns finds each of plotColumns in the header.
func historyColumns(path string, header []string) ([]int, error) {
	idx := make([]int, len(plotColumns))
	for i, name := range plotColumns {
		idx[i] = -1
		for j, h := range header {
			if strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) == name {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			return nil, fmt.Errorf("%s line 1: the header lacks column %q (expected %s,...)", path, name, strings.Join(plotColumns, ","))
		}
	}
	return idx, nil
}

// addRow checks one CSV row (the columns at idx) and appends it.
func (h *historyCurves) addRow(rec []string, idx []int) error {
	var row [5]float64
	for i, j := range idx {
		cell := strings.TrimSpace(rec[j])
		v, err := strconv.ParseFloat(cell, 64)
		switch {
		case i == 0 && cell == "":
			return errors.New("the epoch is empty")
		case i == 0 && (err != nil || v != math.Trunc(v) || v < 1 || v > maxHistoryEpoch):
			return fmt.Errorf("epoch %q is not a whole number from 1 to %g", cell, float64(maxHistoryEpoch))
		case i == 0 && len(h.cols[0]) > 0 && v <= h.cols[0][len(h.cols[0])-1]:
			return fmt.Errorf("epoch %s does not follow epoch %g (epochs must increase)", cell, h.cols[0][len(h.cols[0])-1])
		case cell == "" || (err == nil && math.IsNaN(v)):
			v = math.NaN() // not measured: a gap
		case err != nil || math.IsInf(v, 0):
			return fmt.Errorf("%s %q is not a finite number", plotColumns[i], cell)
		case math.Abs(v) > maxHistoryValue:
			return fmt.Errorf("%s %s is out of range (at most %g in magnitude)", plotColumns[i], cell, float64(maxHistoryValue))
		}
		row[i] = v
	}
	for i, v := range row {
		h.cols[i] = append(h.cols[i], v)
	}
	return nil
}

// plotDeadline bounds the time a plot may take (training waits for the
// plot drawn at its end); a variable so tests can shorten it.
var plotDeadline = 60 * time.Second

// PlotHistory draws the loss and accuracy curves of the history CSV at
// csvPath side by side into the PNG pngPath (written atomically). It gives
// up with an error after plotDeadline, so that nothing, training included,
// ever waits on a plot for longer.
func PlotHistory(csvPath, pngPath string) error {
	type result struct {
		png []byte
		err error
	}
	done := make(chan result, 1) // buffered: a late plot does not block
	go func() {
		png, err := renderHistory(csvPath, pngPath)
		done <- result{png, err}
	}()
	timer := time.NewTimer(plotDeadline)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return r.err
		}
		return checkpoint.WriteFileAtomic(pngPath, r.png)
	case <-timer.C:
		return fmt.Errorf("plot %s: plot took longer than %v; gave up (is %s very long?)", pngPath, plotDeadline, csvPath)
	}
}

// renderHistory reads the history CSV at csvPath and returns its plot as a
// PNG.
func renderHistory(csvPath, pngPath string) ([]byte, error) {
	h, err := readHistoryCSV(csvPath)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(filepath.Dir(csvPath))
	if abs, err := filepath.Abs(csvPath); err == nil {
		name = filepath.Base(filepath.Dir(abs))
	}
	switch base := filepath.Base(csvPath); {
	case strings.HasSuffix(base, plotCSVName): // runs/a/model.history.csv: "a/model"
		name += "/" + strings.TrimSuffix(base, plotCSVName)
	case base != oldCSVName:
		name = base
	}
	epochs := h.cols[0]
	lossP, err := historyPanel("Loss", "cross-entropy", epochs, h.cols[1], h.cols[3], true)
	if err != nil {
		return nil, err
	}
	accP, err := historyPanel("Accuracy", "fraction correct", epochs, h.cols[2], h.cols[4], false)
	if err != nil {
		return nil, err
	}

	const dpi = 96
	img := vgimg.NewWith(vgimg.UseWH(vg.Inch*12, vg.Inch*4.75), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	title := plot.New().Title.TextStyle
	title.Font.Size = vg.Points(15)
	title.XAlign = draw.XCenter
	title.YAlign = draw.YTop
	last := len(epochs) - 1
	heading := fmt.Sprintf("Training history: %s (%d epochs", name, len(epochs))
	if len(epochs) == 1 {
		heading = fmt.Sprintf("Training history: %s (1 epoch", name)
	}
	if va := h.cols[4][last]; !math.IsNaN(va) {
		heading += fmt.Sprintf(", final val_accuracy %.4f", va)
	}
	heading += ")"
	dc.FillText(title, vg.Point{X: dc.Center().X, Y: dc.Max.Y - vg.Points(6)}, heading)
	body := draw.Crop(dc, 0, 0, 0, -vg.Points(28))
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(18), PadLeft: vg.Points(6), PadRight: vg.Points(10), PadBottom: vg.Points(6)}
	plots := [][]*plot.Plot{{lossP, accP}}
	canvases := plot.Align(plots, tiles, body)
	lossP.Draw(canvases[0][0])
	accP.Draw(canvases[0][1])

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot %s: encoding PNG: %w", pngPath, err)
	}
	return buf.Bytes(), nil
}

var (
	trainColor = color.RGBA{R: 31, G: 119, B: 180, A: 255} // matplotlib's blue and orange
	valColor   = color.RGBA{R: 255, G: 127, B: 14, A: 255}
)

// historyPanel is one panel: the training and validation curves of a metric.
func historyPanel(title, ylabel string, epochs, train, val []float64, legendTop bool) (*plot.Plot, error) {
	// legendTop is the preferred corner: where the curves usually are not.
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = epochTicks{}
	p.Y.Tick.Marker = valueTicks{}
	// Keep the first and last points off the axes.
	lo, hi := slices.Min(epochs), slices.Max(epochs)
	pad := max((hi-lo)*0.03, 0.25)
	p.X.Min, p.X.Max = lo-pad, hi+pad
	p.Add(plotter.NewGrid())
	p.Legend.ThumbnailWidth = vg.Points(24)
	metric := strings.ToLower(title)
	for _, s := range []struct {
		label string
		ys    []float64
		col   color.Color
		dash  bool
		shape draw.GlyphDrawer
	}{
		{metric + " (training)", train, trainColor, false, draw.CircleGlyph{}},
		{"val_" + metric + " (validation)", val, valColor, true, draw.SquareGlyph{}},
	} {
		var xys plotter.XYs
		for i, y := range s.ys {
			if !math.IsNaN(y) {
				xys = append(xys, plotter.XY{X: epochs[i], Y: y})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot: %s: %w", s.label, err)
		}
		line.Color, line.Width = s.col, vg.Points(2)
		if s.dash {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		points.Color, points.Shape, points.Radius = s.col, s.shape, vg.Points(2.5)
		p.Add(line, points)
		p.Legend.Add(s.label, line, points)
	}
	// A nearly flat metric (one epoch, a plateau) would get a y range so
	// narrow that the tick labels repeat: widen it around its centre.
	if ylo, yhi := p.Y.Min, p.Y.Max; yhi >= ylo {
		if minSpan := 0.1 * max(math.Abs(ylo+yhi)/2, 0.1); yhi-ylo < minSpan {
			mid := (ylo + yhi) / 2
			p.Y.Min, p.Y.Max = mid-minSpan/2, mid+minSpan/2
		}
	}
	placeLegend(p, epochs, [][]float64{train, val}, legendTop)
	return p, nil
}

// placeLegend puts the legend in the first corner, of top-right and
// bottom-right (in the order legendTop prefers), then top-left and
// bottom-left, whose box (about a third of the width, a fifth of the height)
// no data point falls in.
func placeLegend(p *plot.Plot, xs []float64, series [][]float64, legendTop bool) {
	type corner struct{ top, left bool }
	corners := []corner{{legendTop, false}, {!legendTop, false}, {legendTop, true}, {!legendTop, true}}
	free := func(c corner) bool {
		xw, yh := 0.38*(p.X.Max-p.X.Min), 0.22*(p.Y.Max-p.Y.Min)
		for _, ys := range series {
			for i, y := range ys {
				inX := xs[i] >= p.X.Max-xw
				if c.left {
					inX = xs[i] <= p.X.Min+xw
				}
				inY := y <= p.Y.Min+yh
				if c.top {
					inY = y >= p.Y.Max-yh
				}
				if inX && inY {
					return false
				}
			}
		}
		return true
	}
	best := corners[0]
	for _, c := range corners {
		if free(c) {
			best = c
			break
		}
	}
	p.Legend.Top, p.Legend.Left = best.top, best.left
	p.Legend.XOffs = -vg.Points(6)
	if best.left {
		p.Legend.XOffs = vg.Points(6)
	}
	p.Legend.YOffs = vg.Points(6)
	if best.top {
		p.Legend.YOffs = -vg.Points(2)
	}
}

// maxTicks bounds the ticks of an axis, whatever its range.
const maxTicks = 20

// tickRange reports whether lo..hi is a range ticks can be placed on: finite,
// increasing, and wide enough that stepping through it advances (a span
// below the float64 resolution at lo would step for ever).
func tickRange(lo, hi float64) bool {
	span := hi - lo
	return !math.IsNaN(span) && !math.IsInf(span, 0) && span > 0 && span > 1e-9*max(math.Abs(lo), math.Abs(hi))
}

// epochTicks labels whole epochs only, about eight at most.
type epochTicks struct{}

func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	if !tickRange(lo, hi) {
		return nil
	}
	// The smallest whole step of 1, 2, 2.5 or 5 times a power of ten that
	// gives at most eight ticks.
	step := 0.0
	for p := 1.0; step == 0 && !math.IsInf(p, 0); p *= 10 {
		for _, m := range []float64{1, 2, 2.5, 5} {
			if s := m * p; s == math.Trunc(s) && (hi-lo)/s <= 8 {
				step = s
				break
			}
		}
	}
	if step == 0 {
		return nil
	}
	var ts []plot.Tick
	for i, v := 0, math.Ceil(lo/step)*step; v <= hi+1e-9 && i < maxTicks; i, v = i+1, v+step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ts
}

// valueTicks are gonum's default ticks labelled with as many decimals as the
// tick values need (the default can print 1.8 twice for 1.75 and 1.85), at
// most maxTicks of them.
type valueTicks struct{}

func (valueTicks) Ticks(lo, hi float64) []plot.Tick {
	if !tickRange(lo, hi) {
		return nil
	}
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	if len(ts) > maxTicks { // keep the labelled ones, then thin them out
		ts = slices.DeleteFunc(ts, func(t plot.Tick) bool { return t.Label == "" })
		for k := 2; len(ts) > maxTicks; k++ {
			var kept []plot.Tick
			for i := 0; i < len(ts); i += k {
				kept = append(kept, ts[i])
			}
			ts = kept
		}
	}
	for d := 0; d <= 8; d++ {
		exact := true
		for _, t := range ts {
			if t.Label != "" {
				v, _ := strconv.ParseFloat(strconv.FormatFloat(t.Value, 'f', d, 64), 64)
				exact = exact && math.Abs(v-t.Value) <= 1e-9*max(math.Abs(t.Value), 1)
			}
		}
		if exact || d == 8 {
			for i := range ts {
				if ts[i].Label != "" {
					ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', d, 64)
				}
			}
			break
		}
	}
	return ts
}
