package model

import "fmt"

// SpecError is a model spec that cannot be parsed or planned. Its message
// speaks of the spec ("model spec: layer 2 "wibble": unknown layer ..."),
// not of where it came from; the command line names its flag (run.FlagError).
type SpecError struct {
	Layer int    // 1-based position of the offending token, 0 when none
	Msg   string // what is wrong, e.g. `layer 2 "wibble": unknown layer; ...`
	Err   error  // the cause, if any
}

func (e *SpecError) Error() string { return "model spec: " + e.Msg }
func (e *SpecError) Unwrap() error { return e.Err }

// DivergedError is a training loss that became NaN or infinite. It matches
// ErrNonFinite (errors.Is).
type DivergedError struct {
	Loss       float64
	Where      string // "at step 3 of epoch 2", or a range of steps
	GlobalStep int
	LR         float64 // the learning rate in force
}

// Message describes the divergence, naming the learning rate as lrName.
func (e *DivergedError) Message(lrName string) string {
	return fmt.Sprintf("%v: the training loss became %v %s (global step %d); the model diverged: try a lower %s (now %g)",
		ErrNonFinite, e.Loss, e.Where, e.GlobalStep, lrName, e.LR)
}

func (e *DivergedError) Error() string { return e.Message("learning rate") }
func (e *DivergedError) Unwrap() error { return ErrNonFinite }
