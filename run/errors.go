package run

import (
	"context"
	"errors"
	"fmt"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
)

// ExitInterrupted is the exit status of a run stopped by SIGINT, SIGTERM or
// SIGHUP.
const ExitInterrupted = 130

// InterruptedError is a run stopped by an interrupt (or ctx's
// cancellation); the command line exits with ExitInterrupted.
type InterruptedError struct{ Err error }

func (e *InterruptedError) Error() string { return e.Err.Error() }
func (e *InterruptedError) Unwrap() error { return e.Err }

// interrupted marks err as an interrupt when ctx was cancelled.
func interrupted(ctx interface{ Err() error }, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return &InterruptedError{err}
	}
	return err
}

// flagError is an error whose message names the setting (flag) it came
// from; it wraps the original.
type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }

// FlagError names the setting behind a value error of model: a model spec
// error becomes "--model: ..." (with a pointer to the grammar for a bad
// layer), a diverged loss says "try a lower --lr". Other errors are
// returned as they are.
func FlagError(err error) error {
	var se *model.SpecError
	if errors.As(err, &se) {
		msg := "--model: " + se.Msg
		if se.Layer > 0 {
			msg += " (see trainer train --help for the grammar)"
		}
		return &flagError{msg, err}
	}
	var de *model.DivergedError
	if errors.As(err, &de) {
		return &flagError{de.Message("--lr"), err}
	}
	return err
}

// WithBatchHint adds to an out-of-memory error (device.OutOfMemoryError)
// the largest batch that would fit in the device's free memory, and to a
// batch past the backend's index limit (model.BatchLimitError) the largest
// batch it allows, as a --batch-size.
func WithBatchHint(err error, b device.Backend, net *model.Network) error {
	var ble *model.BatchLimitError
	if errors.As(err, &ble) {
		return &flagError{fmt.Sprintf("--batch-size %d: %v: use --batch-size %d or less", ble.Batch, err, ble.MaxBatch), err}
	}
	var oom *device.OutOfMemoryError
	if !errors.As(err, &oom) {
		return err
	}
	free, _, merr := b.MemInfo() // what is free now, with the buffers already made: a safe estimate
	if merr != nil {
		return fmt.Errorf("%w; try a smaller --batch-size", err)
	}
	fit := int(float64(free) * 0.8 / float64(net.BytesPerImageOn(b)))
	if fit < 1 {
		return fmt.Errorf("%w; even one image needs %.1f MiB", err, float64(net.BytesPerImageOn(b))/(1<<20))
	}
	return fmt.Errorf("%w; about %.2f MiB per image: --batch-size %d would fit", err, float64(net.BytesPerImageOn(b))/(1<<20), fit)
}

// LockedError is a run refused because another process holds the lock on
// its --out.
type LockedError struct {
	Out, Lock string // the checkpoint and its lock file
	PID       int    // of the holder, 0 if the lock file does not say
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("PID %d", e.PID)
	}
	return fmt.Sprintf("--out %s is in use by another run: %s holds the lock file %s (wait for it to end or stop it, or choose another --out)", e.Out, who, e.Lock)
}
