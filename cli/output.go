package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	ucli "github.com/urfave/cli/v2"
)

// errWriter passes writes on to w and remembers the first error: once a
// write has failed, every later one fails with the same error, and Run
// reports it when the command ends.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	e.err = err
	return n, err
}

// outputError is the error of a command that returned err and whose
// stdout writes failed with werr (nil: none failed): "writing to stdout:
// ..." when the failed write is the cause, or the command did not fail.
func outputError(err, werr error) error {
	if werr == nil || (err != nil && !errors.Is(err, werr)) {
		return err
	}
	return fmt.Errorf("writing to stdout: %s", pathErrText(werr))
}

// jsonMode is set when the log format is JSON: then every line on stderr,
// errors included, is a JSON object.
var jsonMode bool

// jsonFormatArg reports whether the global flags, before the command, ask
// for JSON logs (known before parsing, so a usage error in the global flags
// is reported in JSON too).
func jsonFormatArg(args []string) bool {
	json := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "log-format" {
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		json = val == "json"
	}
	return json
}

// jsonLine writes one JSON log object {"level","time","message"} (and
// "exit_code" when code >= 0) to w, whatever the log level.
func jsonLine(w io.Writer, level zerolog.Level, msg string, code int) {
	l := zerolog.New(w)
	ev := l.WithLevel(level).Time(zerolog.TimestampFieldName, time.Now())
	if code >= 0 {
		ev = ev.Int("exit_code", code)
	}
	ev.Msg(msg)
}

// logStderr is the real stderr during Run, for the logger (in JSON mode
// the stderr variable is a jsonLines writer for plain lines).
var logStderr io.Writer

// logStderrOr is the real stderr: logStderr during Run, else stderr.
func logStderrOr() io.Writer {
	if logStderr != nil {
		return logStderr
	}
	return stderr
}

// jsonLines turns each line written to it into a JSON object
// {"level":"warn","message":line} on w. Safe for concurrent use (the
// signal goroutine writes to it).
type jsonLines struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// maxLine bounds a line kept waiting for its newline.
const maxLine = 64 << 10

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = append(j.buf, p...)
	for {
		i := bytes.IndexByte(j.buf, '\n')
		if i < 0 {
			break
		}
		j.emit(j.buf[:i])
		j.buf = j.buf[i+1:]
	}
	if len(j.buf) > maxLine {
		j.emit(j.buf)
		j.buf = j.buf[:0]
	}
	return len(p), nil
}

// Flush writes a last line that has no newline.
func (j *jsonLines) Flush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.emit(j.buf)
	j.buf = nil
}

func (j *jsonLines) emit(line []byte) {
	if s := strings.TrimRight(string(line), " \t\r"); strings.TrimSpace(s) != "" {
		jsonLine(j.w, zerolog.WarnLevel, s, -1)
	}
}

// setUsageErrors makes usage errors (an unknown flag, a bad value) plain
// errors, without the help text urfave/cli prints, for JSON mode: Run then
// reports them as one JSON object.
func setUsageErrors(app *ucli.App) {
	app.OnUsageError = func(_ *ucli.Context, err error, _ bool) error {
		return fmt.Errorf("%v (see trainer --help)", err)
	}
	for _, cmd := range app.Commands {
		name := cmd.Name
		cmd.OnUsageError = func(_ *ucli.Context, err error, _ bool) error {
			return fmt.Errorf("%v (see trainer %s --help)", err, name)
		}
	}
}
