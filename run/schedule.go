package run

import (
	"fmt"
	"math"
)

// LRFunc is the learning rate at step s (0-based) of steps in epoch
// (0-based).
type LRFunc func(epoch, s, steps int) float64

// Schedule returns the learning-rate schedule name for a run of epochs
// epochs with base rate lr: nil for "constant" (the rate throughout);
// "cosine" anneals to 0 over the run, lr/2 (1 + cos(pi t)) with t the
// fraction of the run done; "step" multiplies lr by 0.1 from epoch
// epochs/2 and by 0.01 from epoch epochs*3/4 (integer division);
// "onecycle" is PyTorch's OneCycleLR (max_lr lr, total_steps the run's
// steps, pct_start 0.3 or r.Warmup, cosine annealing, div_factor 25,
// final_div_factor 1e4, three_phase off); "linear" rises linearly from
// lr*r.LRStartFactor to lr over r.Warmup steps (a fraction of the run when
// below 1, floored), then falls linearly to lr*r.LREndFactor at the last
// step. All are evaluated per step.
func Schedule(name string, lr float64, epochs int, r Recipe) (LRFunc, error) {
	switch name {
	case "onecycle":
		pct := 0.3
		if r.Warmup > 0 {
			if r.Warmup >= 1 {
				return nil, fmt.Errorf("--warmup %g: onecycle takes a fraction of the run (pct_start), below 1", r.Warmup)
			}
			pct = r.Warmup
		}
		return func(epoch, s, steps int) float64 {
			return OneCycle(lr, pct, epoch*steps+s, epochs*steps)
		}, nil
	case "linear":
		return func(epoch, s, steps int) float64 {
			total := epochs * steps
			w := int(r.Warmup)
			if r.Warmup < 1 {
				w = int(r.Warmup * float64(total))
			}
			return lr * linearFactor(epoch*steps+s, total, w, r.LRStartFactor, r.LREndFactor)
		}, nil
	case "constant":
		return nil, nil
	case "cosine":
		return func(epoch, s, steps int) float64 {
			t := (float64(epoch) + float64(s)/float64(steps)) / float64(epochs)
			return lr * 0.5 * (1 + math.Cos(math.Pi*min(t, 1)))
		}, nil
	case "step":
		return func(epoch, s, steps int) float64 {
			switch {
			case epoch >= epochs*3/4:
				return lr * 0.01
			case epoch >= epochs/2:
				return lr * 0.1
			}
			return lr
		}, nil
	}
	return nil, fmt.Errorf("--lr-schedule %q: use constant, cosine, step, onecycle or linear", name)
}

// OneCycle is PyTorch's OneCycleLR learning rate at step i of total (its
// defaults but pct_start: div_factor 25, final_div_factor 1e4, cosine).
func OneCycle(maxLR, pct float64, i, total int) float64 {
	initial := maxLR / 25
	final := initial / 1e4
	end1, end2 := pct*float64(total)-1, float64(total-1)
	cosAnneal := func(start, end, p float64) float64 { return end + (start-end)/2*(math.Cos(math.Pi*p)+1) }
	x := float64(i)
	if x <= end1 && end1 > 0 {
		return cosAnneal(initial, maxLR, x/end1)
	}
	if end2 <= end1 {
		return final
	}
	return cosAnneal(maxLR, final, (x-max(end1, 0))/(end2-max(end1, 0)))
}

// linearFactor is the linear schedule's factor at step i of total with w
// warm-up steps.
func linearFactor(i, total, w int, start, end float64) float64 {
	if i < w {
		f := float64(i) / float64(w)
		return start*(1-f) + f
	}
	if total <= w {
		return 1
	}
	f := float64(i-w) / float64(total-w)
	return (1 - f) + end*f
}
