package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trainer-go/trainer/model"
)

// progressBar is the live line on a terminal: steps, speed, running loss and
// accuracy, and the ETA of the epoch and of the run. It is only used when
// stderr is a terminal; logs elsewhere get one line per epoch.
type progressBar struct {
	w      io.Writer
	epochs int
	shown  bool
}

func newProgressBar(w io.Writer, epochs int) *progressBar { return &progressBar{w: w, epochs: epochs} }

// Update shows p.
func (b *progressBar) Update(p model.Progress) {
	if b == nil || p.Steps == 0 {
		return
	}
	const width = 24
	done := width * p.Step / p.Steps
	bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
	perStep := p.Elapsed / time.Duration(max(p.Step, 1))
	etaEpoch := perStep * time.Duration(p.Steps-p.Step)
	etaRun := etaEpoch + perStep*time.Duration(p.Steps*(b.epochs-p.Epoch))
	fmt.Fprintf(b.w, "\r\x1b[Kepoch %d/%d [%s] %d/%d  %.0f img/s  loss %.4f  acc %.4f  ETA %s (run %s)",
		p.Epoch, b.epochs, bar, p.Step, p.Steps, p.ImagesPerS, p.Loss, p.Accuracy, short(etaEpoch), short(etaRun))
	b.shown = true
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
