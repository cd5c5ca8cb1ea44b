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

	ucli "github.com/urfave/cli/v2"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/trainer-go/trainer/checkpoint"
	trainrun "github.com/trainer-go/trainer/run"
)

// plotCSVName is the per-epoch CSV that train writes into a run folder, and
// plotPNGName the PNG that plot draws from it by default.
const (
	plotCSVName = "history.csv"
	plotPNGName = "history.png"
)

func plotCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "plot",
		Usage:     "draw the loss and accuracy curves of a training run as a PNG",
		ArgsUsage: "RUN",
		Description: "RUN is a run folder holding " + plotCSVName + " or the CSV file itself (header\n" +
			"epoch,loss,accuracy,val_loss,val_accuracy,... and one row per epoch). Draws two\n" +
			"panels, loss and val_loss by epoch, accuracy and val_accuracy by epoch, into --out\n" +
			"(default: " + plotPNGName + " in the run folder, or the CSV's name with .png beside it).\n\n" +
			"Examples:\n   trainer plot runs/cifar10    # writes runs/cifar10/" + plotPNGName + "\n" +
			"   trainer plot --out curves.png runs/cifar10/" + plotCSVName,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "out", Usage: "PNG file to write"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("plot takes one run folder or %s file, got %d arguments (flags go before them), e.g. trainer plot runs/cifar10", plotCSVName, c.NArg())
			}
			csvPath, out, err := plotPaths(c.Args().First(), c.String("out"))
			if err != nil {
				return err
			}
			if err := PlotHistory(csvPath, out); err != nil {
				return err
			}
			fmt.Fprintln(stdout, out)
			return nil
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
			return "", "", fmt.Errorf("run %s: not found (give a run folder holding %s, or the CSV file)", run, plotCSVName)
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
		return "", "", fmt.Errorf("--out %q: give a PNG file path such as %s", out, plotPNGName)
	}
	return csvPath, out, nil
}

// folderHistory is the history CSV of the one run in folder dir; several
// runs are an error that lists them.
func folderHistory(dir string) (string, error) {
	runs, _ := filepath.Glob(filepath.Join(dir, "*.history.csv"))
	switch len(runs) {
	case 0:
		return filepath.Join(dir, plotCSVName), nil
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

// readHistoryCSV parses a history CSV. An empty cell (a metric not measured in
// that epoch) reads as NaN and leaves a gap in its curve.
func readHistoryCSV(path string) (*historyCurves, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: not found (train writes it into the run folder)", path)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %v", path, err)
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
		for i, j := range idx {
			cell := strings.TrimSpace(rec[j])
			v := math.NaN()
			if cell != "" {
				v, err = strconv.ParseFloat(cell, 64)
				if err != nil || math.IsInf(v, 0) || (i == 0 && math.IsNaN(v)) {
					return nil, fmt.Errorf("%s line %d: %s %q is not a number", path, line, plotColumns[i], cell)
				}
			} else if i == 0 {
				return nil, fmt.Errorf("%s line %d: the epoch is empty", path, line)
			}
			h.cols[i] = append(h.cols[i], v)
		}
	}
	if len(h.cols[0]) == 0 {
		return nil, fmt.Errorf("%s: no epochs yet, only a header; plot again after the first epoch", path)
	}
	return h, nil
}

// PlotHistory draws the loss and accuracy curves of the history CSV at
// csvPath side by side into the PNG pngPath (written atomically).
func PlotHistory(csvPath, pngPath string) error {
	h, err := readHistoryCSV(csvPath)
	if err != nil {
		return err
	}
	name := filepath.Base(filepath.Dir(csvPath))
	if abs, err := filepath.Abs(csvPath); err == nil {
		name = filepath.Base(filepath.Dir(abs))
	}
	if filepath.Base(csvPath) != plotCSVName {
		name = filepath.Base(csvPath)
	}
	epochs := h.cols[0]
	lossP, err := historyPanel("Loss", "cross-entropy", epochs, h.cols[1], h.cols[3], true)
	if err != nil {
		return err
	}
	accP, err := historyPanel("Accuracy", "fraction correct", epochs, h.cols[2], h.cols[4], false)
	if err != nil {
		return err
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
		return fmt.Errorf("plot %s: encoding PNG: %w", pngPath, err)
	}
	return checkpoint.WriteFileAtomic(pngPath, buf.Bytes())
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

// epochTicks labels whole epochs only, about eight at most.
type epochTicks struct{}

func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000} {
		step = s
		if span/s <= 8 {
			break
		}
	}
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ts
}

// valueTicks are gonum's default ticks labelled with as many decimals as the
// tick values need (the default can print 1.8 twice for 1.75 and 1.85).
type valueTicks struct{}

func (valueTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
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
