package cli

import (
	"errors"
	"strings"

	"github.com/trainer-go/trainer/data"
)

// flagError is a data error worded for the command line: the fix names the
// flag that carries the value (--data-dir, --val-dir or --image-size)
// instead of describing it. It unwraps to the data error.
type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }

// dataFlagError maps an error of package data about a value (a
// *data.LocationError) to the flag of ds that set it; other errors, and
// nil, are returned as they are.
func dataFlagError(err error, ds dataSpec) error {
	var le *data.LocationError
	if !errors.As(err, &le) {
		return err
	}
	flag := "--data-dir"
	switch {
	case le.Setting == data.SettingSize:
		flag = "--image-size"
	case ds.valDir != "" && le.Root == ds.valDir:
		flag = "--val-dir"
	}
	msg := le.Fix(flag, true)
	if le != err {
		// Wrapped: keep the outer context, with the inner message replaced.
		msg = strings.Replace(err.Error(), le.Error(), msg, 1)
	}
	return &flagError{msg, err}
}
