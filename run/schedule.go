package run

import (
	"fmt"
	"math"
)

// LRFunc is the learning rate at step s (0-based) of steps in epoch
// (0-based).
type LRFunc func(epoch, s, steps int) float64

// Schedule returns the learning-rate schedule name for a run of epochs
// epochs with base rate lr: nil for "constant" (Adam's rate throughout);
// "cosine" anneals to 0 over the run, lr/2 (1 + cos(pi t)) with t the
// fraction of the run done; "step" multiplies lr by 0.1 from epoch
// epochs/2 and by 0.01 from epoch epochs*3/4 (integer division).
func Schedule(name string, lr float64, epochs int) (LRFunc, error) {
	switch name {
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
	return nil, fmt.Errorf("--lr-schedule %q: use constant, cosine or step", name)
}
