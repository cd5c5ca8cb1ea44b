package run

import (
	"math"
	"testing"
)

// TestSchedules compares the schedules with values worked out by hand.
func TestSchedules(t *testing.T) {
	cos, err := Schedule("cosine", 0.1, 10, DefaultRecipe())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		epoch, s, steps int
		want            float64
	}{
		{0, 0, 100, 0.1},                 // t=0: cos 0 = 1
		{5, 0, 100, 0.05},                // t=1/2: cos(pi/2) = 0
		{2, 50, 100, 0.0853553390593274}, // t=1/4: 0.05 (1 + sqrt(2)/2)
		{9, 50, 100, 0.000615582970243},  // t=0.95: 0.05 (1 + cos(0.95 pi))
		{10, 0, 100, 0},                  // t=1
		{12, 0, 100, 0},                  // past the end: held at 0
	} {
		if got := cos(c.epoch, c.s, c.steps); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("cosine(%d,%d/%d) = %.15g, want %.15g", c.epoch, c.s, c.steps, got, c.want)
		}
	}
	step, _ := Schedule("step", 1, 8, DefaultRecipe())
	for epoch, want := range []float64{1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01} {
		if got := step(epoch, 0, 10); math.Abs(got-want) > 1e-12 {
			t.Errorf("step schedule epoch %d = %g, want %g", epoch, got, want)
		}
	}
	// 5 epochs: x0.1 from epoch 5/2 = 2, x0.01 from 15/4 = 3.
	step5, _ := Schedule("step", 2, 5, DefaultRecipe())
	for epoch, want := range []float64{2, 2, 0.2, 0.02, 0.02} {
		if got := step5(epoch, 3, 10); math.Abs(got-want) > 1e-12 {
			t.Errorf("5-epoch step schedule epoch %d = %g, want %g", epoch, got, want)
		}
	}
	if f, err := Schedule("constant", 1, 8, DefaultRecipe()); f != nil || err != nil {
		t.Error("constant schedule should be nil (Adam's LR throughout)")
	}
	if _, err := Schedule("triangle", 1, 8, DefaultRecipe()); err == nil {
		t.Error("unknown schedule accepted")
	}
}
