package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/trainer-go/trainer/model"
)

// progressBar is the live line on a terminal: steps, speed, running loss and
// accuracy, and the ETA of the epoch and of the run. It is only used when
// stderr is a terminal (logs elsewhere get one line per epoch); the trainer
// calls Update about 4 times a second. The line is fitted to the
// terminal's width at every update, so it never wraps, even after a resize:
// the least useful parts go first.
type progressBar struct {
	w      io.Writer
	epochs int
	width  func() int // the terminal's columns (0: unknown)
	shown  bool
}

func newProgressBar(w io.Writer, epochs int) *progressBar {
	b := &progressBar{w: w, epochs: epochs, width: func() int { return 0 }}
	if f, ok := w.(*os.File); ok {
		b.width = func() int {
			cols, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return cols
		}
	}
	return b
}

// defaultColumns is the width assumed when the terminal does not say.
const defaultColumns = 80

// Update shows p.
func (b *progressBar) Update(p model.Progress) {
	if b == nil || p.Steps == 0 {
		return
	}
	cols := b.width()
	if cols <= 0 {
		cols = defaultColumns
	}
	fmt.Fprint(b.w, "\r\x1b[K"+progressLine(p, b.epochs, cols-1)) // the last column would wrap on some terminals
	b.shown = true
}

// progressLine is the progress line for p in at most width characters.
// It drops, in turn, the run's ETA, the accuracy, the speed, the loss and
// the ETA, and narrows the bar from 24 to 8 cells, before it cuts the end.
func progressLine(p model.Progress, epochs, width int) string {
	perStep := p.Elapsed / time.Duration(max(p.Step, 1))
	etaEpoch := perStep * time.Duration(p.Steps-p.Step)
	etaRun := etaEpoch + perStep*time.Duration(p.Steps*(epochs-p.Epoch))
	head := fmt.Sprintf("epoch %d/%d", p.Epoch, epochs)
	count := fmt.Sprintf("%d/%d", p.Step, p.Steps)
	// Optional parts, most useful first.
	parts := []string{
		"ETA " + short(etaEpoch),
		fmt.Sprintf("loss %.4f", p.Loss),
		fmt.Sprintf("%.0f img/s", p.ImagesPerS),
		fmt.Sprintf("acc %.4f", p.Accuracy),
		"(run " + short(etaRun) + ")",
	}
	for keep := len(parts); keep >= 0; keep-- {
		tail := strings.Join(parts[:keep], "  ")
		fixed := len(head) + len(count) + len(tail) + 6 // spaces and brackets
		for cells := 24; cells >= 8; cells-- {
			if fixed+cells <= width {
				return join(head, bar(p, cells), count, tail)
			}
		}
	}
	line := head + " " + count
	return line[:min(len(line), max(width, 0))]
}

func join(head, bar, count, tail string) string {
	s := head + " [" + bar + "] " + count
	if tail != "" {
		s += "  " + tail
	}
	return s
}

// bar is the filled part of a bar of cells cells.
func bar(p model.Progress, cells int) string {
	done := min(cells*p.Step/p.Steps, cells)
	return strings.Repeat("=", done) + strings.Repeat(" ", cells-done)
}

// Clear removes the bar so a log line can take its place.
func (b *progressBar) Clear() {
	if b == nil || !b.shown {
		return
	}
	fmt.Fprint(b.w, "\r\x1b[K")
	b.shown = false
}

func short(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
