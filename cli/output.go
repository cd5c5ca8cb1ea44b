package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
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
	l := zerolog.New(orderedJSON{w})
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

// setUsageErrors makes usage errors (an unknown flag, a value that does
// not parse) one-line errors with exit code ExitUsage, a suggestion for a
// misspelt flag and a pointer to the help, instead of the help text
// urfave/cli prints to stdout. An unknown command sets *notFound likewise
// (urfave/cli reports it through a callback that cannot fail).
func setUsageErrors(app *ucli.App, notFound *error) {
	app.OnUsageError = func(_ *ucli.Context, err error, _ bool) error {
		return usageError(err, flagSuggestion(err, app.Flags), "trainer --help")
	}
	for _, cmd := range app.Commands {
		name, flags := cmd.Name, cmd.Flags
		cmd.OnUsageError = func(_ *ucli.Context, err error, _ bool) error {
			return usageError(err, flagSuggestion(err, flags), "trainer "+name+" --help")
		}
	}
	app.CommandNotFound = func(_ *ucli.Context, name string) {
		hint, best := "", max(2, len(name)/3)+1
		for _, c := range app.Commands {
			if d := editDistance(name, c.Name); d < best && !c.Hidden {
				hint, best = fmt.Sprintf("Did you mean %q?", c.Name), d
			}
		}
		*notFound = usageError(fmt.Errorf("no command %q", name), hint, "trainer help")
	}
}

// usageError is err as a usage error: its message, a suggestion if any,
// and where the help is.
func usageError(err error, suggestion, help string) error {
	msg := strings.NewReplacer("defined: -", "defined: --", "for flag -", "for flag --").Replace(err.Error())
	if suggestion != "" {
		msg += ". " + suggestion
	}
	return &exitError{ExitUsage, fmt.Errorf("%s (see %s)", msg, help)}
}

// flagSuggestion is "Did you mean --x?" for an unknown flag close to one of
// flags, or "".
func flagSuggestion(err error, flags []ucli.Flag) string {
	const prefix = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return ""
	}
	name := strings.TrimLeft(strings.TrimPrefix(msg, prefix), "-")
	s := ucli.SuggestFlag(flags, name, false)
	if s == "" || editDistance(name, strings.TrimLeft(s, "-")) > max(2, len(name)/3) {
		return "" // urfave suggests the nearest flag however far it is
	}
	return fmt.Sprintf("Did you mean %s?", s)
}

// globalFlags are the app's flags that take a value; hoistGlobalFlags
// moves them to before the command.
var globalFlags = []string{"log-format", "log-level"}

// hoistGlobalFlags returns args with the global flags given after the
// command (trainer train --log-format json) moved before it, where
// urfave/cli v2 looks for them. Arguments after "--" stay where they are.
func hoistGlobalFlags(args []string, app *ucli.App) []string {
	cmd := commandIndex(args)
	if cmd < 0 || app.Command(args[cmd]) == nil {
		return args
	}
	var moved, rest []string
	for i := cmd + 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !slices.Contains(globalFlags, name) {
			rest = append(rest, a)
			continue
		}
		moved = append(moved, a)
		if !hasVal && i+1 < len(args) {
			i++
			moved = append(moved, args[i])
		}
	}
	out := append(slices.Clone(args[:cmd]), moved...)
	out = append(out, args[cmd])
	return append(out, rest...)
}

// commandIndex is the index in args of the command (the first argument
// after the program name that is neither a global flag nor its value), or
// -1.
func commandIndex(args []string) int {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return -1
		}
		if !strings.HasPrefix(a, "-") {
			return i
		}
		name, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if slices.Contains(globalFlags, name) && !hasVal {
			i++
		}
	}
	return -1
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
