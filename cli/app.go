// Package cli is the command line: it parses flags, sets up logging, picks
// the device and prints results. Nothing imports it but main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/trainer-go/trainer/internal/pool"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/device"
	_ "github.com/trainer-go/trainer/device/cpu" // registers "cpu"
	_ "github.com/trainer-go/trainer/device/gpu" // registers "gpu"
	trainrun "github.com/trainer-go/trainer/run"
)

// Exit codes, documented in the README.
const (
	ExitOK          = 0
	ExitError       = 1                        // bad input, failed run
	ExitUsage       = 2                        // usage error: unknown command or flag, a flag value that does not parse, stray arguments
	ExitSkipped     = 3                        // predict, explain: some input files could not be read and were skipped
	ExitInterrupted = trainrun.ExitInterrupted // Ctrl-C / SIGTERM / SIGHUP
)

// exitError carries an exit code through urfave/cli.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

var log zerolog.Logger

// program is how the binary was invoked (os.Args[0]: "trainer" from the
// PATH, "./trainer" from a checkout), for the commands it prints.
var program = "trainer"

// Where output goes; tests swap them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func setupLogging(format, level string, w io.Writer, tty bool) error {
	lv, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	jsonMode = format == "json"
	switch format {
	case "json":
		log = zerolog.New(orderedJSON{w}).Level(lv).With().Timestamp().Logger()
	case "text":
		log = zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: !tty, TimeFormat: "15:04:05", FieldsOrder: consoleFieldsOrder}).Level(lv).With().Timestamp().Logger()
	default:
		return fmt.Errorf("--log-format %q: use text or json", format)
	}
	return nil
}

// App builds the command tree.
func App() *ucli.App {
	return &ucli.App{
		Name:  "trainer",
		Usage: "train convolutional image classifiers on NVIDIA GPUs or the CPU",
		Description: "Examples:\n" +
			"   trainer train --epochs 10                 # CIFAR-10, downloaded on first use\n" +
			"   trainer eval --checkpoint model.safetensors\n" +
			"   trainer summary --model conv16k3,maxpool2,flatten,dense10\n" +
			"   trainer bench --device=cpu --json\n" +
			"   trainer devices\n\n" +
			"Global options may also follow the command (trainer train --log-format json).",
		Version:              Version(),
		Suggest:              true,
		EnableBashCompletion: true,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "text (human-readable) or json (one object per line)"},
			&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Before: func(c *ucli.Context) error {
			w := stderr
			if logStderr != nil {
				w = logStderr
			}
			return setupLogging(c.String("log-format"), c.String("log-level"), w, w == os.Stderr && isTerminal(os.Stderr))
		},
		Commands: []*ucli.Command{trainCommand(), evalCommand(), summaryCommand(), benchCommand(), devicesCommand(), predictCommand(), explainCommand(), exportCommand(), plotCommand(), completionCommand()},
	}
}

// Run runs the command line and returns the process exit code. Errors are
// printed as one line on stderr (a JSON object with --log-format json). A
// failed write to stdout is an error too: whatever the command, output that
// did not arrive never exits 0.
func Run(args []string) int {
	out := &errWriter{w: stdout}
	saved := stdout
	stdout = out
	defer func() { stdout = saved }()
	// In JSON mode the plain lines written to stderr (the interrupt notice
	// and resume command from package run) become JSON objects; the logger
	// and the error line write JSON to the real stderr themselves.
	rawErr := stderr
	if len(args) > 0 && args[0] != "" {
		program = args[0]
	}
	args = hoistGlobalFlags(args, App())
	jsonMode = jsonFormatArg(args)
	lines := &jsonLines{w: rawErr}
	logStderr = rawErr
	if jsonMode {
		stderr = lines
	}
	defer func() { stderr, logStderr = rawErr, nil }()

	app := App()
	app.Writer, app.ErrWriter = out, rawErr
	app.ExitErrHandler = func(*ucli.Context, error) {} // we print errors ourselves
	var notFound error
	setUsageErrors(app, &notFound)
	err := app.Run(args)
	if err == nil {
		err = notFound
	}
	lines.Flush()
	err = outputError(err, out.err)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	printError(rawErr, userError(err), code)
	return code
}

// exitCode is the exit code for err.
func exitCode(err error) int {
	var ee *exitError
	var ie *trainrun.InterruptedError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ie):
		return ExitInterrupted
	}
	return ExitError
}

// printError prints the one error line of a failed command on stderr.
func printError(w io.Writer, err error, code int) {
	if jsonMode {
		jsonLine(w, zerolog.ErrorLevel, err.Error(), code)
		return
	}
	fmt.Fprintf(w, "trainer: error: %v\n", err)
}

// userError adds command-line advice to errors that speak of values only:
// a missing checkpoint says how one is made.
func userError(err error) error {
	var nf *checkpoint.NotFoundError
	if errors.As(err, &nf) {
		return fmt.Errorf("%v (trainer train --out writes one)", err)
	}
	return err
}

// signalContext is cancelled by the first SIGINT/SIGTERM/SIGHUP; a second one exits
// at once (see trainrun.SignalContext).
func signalContext() (context.Context, func()) { return trainrun.SignalContext(stderr) }

// openDevice opens the backend the device flags name and logs the choice,
// including why an "auto" run is not on the GPU.
func openDevice(c *ucli.Context) (device.Backend, error) {
	d, err := deviceOf(c)
	if err != nil {
		return nil, err
	}
	return openDeviceAt(d)
}

// deviceOf is the device the flags of deviceFlags ask for (GPU index 0).
func deviceOf(c *ucli.Context) (trainrun.Device, error) {
	prec, err := precisionOf(c)
	if err != nil {
		return trainrun.Device{}, err
	}
	g, _ := device.ParseGraphMode(c.String("cuda-graphs")) // checked by the flag's Action
	return trainrun.Device{Name: c.String("device"), Threads: c.Int("threads"), Precision: prec, Graphs: g}, nil
}

// openDeviceAt is openDevice for d (on GPU d.Index when the GPU is used).
func openDeviceAt(d trainrun.Device) (device.Backend, error) {
	name, threads := d.Name, d.Threads
	wp, err := workerPool(threads)
	if err != nil {
		return nil, err
	}
	b, fallback, err := device.Open(name, device.Options{Threads: threads, Pool: wp, Precision: d.Precision, Index: d.Index, Graphs: d.Graphs})
	if err != nil {
		if name == "gpu" {
			return nil, fmt.Errorf("--device gpu: %v (use --device auto or cpu to run on the CPU)", err)
		}
		return nil, fmt.Errorf("--device %s: %v", name, err)
	}
	if fallback != nil {
		lv, msg := gpuNotice(fallback)
		log.WithLevel(lv).Msg(msg)
	}
	log.Info().Str("device", b.Name()).Msg(b.Describe())
	return b, nil
}

// workers is the process's one worker pool, sized by --threads: the CPU
// backend runs its ops on it and the folder loader decodes images on it.
// A command that asks for another size replaces it (tests run many
// commands in one process).
var workers struct {
	mu      sync.Mutex
	p       *pool.Pool
	threads int
}

// workerPool is the worker pool for --threads (0: one worker per core).
func workerPool(threads int) (*pool.Pool, error) {
	if err := trainrun.ValidateThreads(threads); err != nil {
		return nil, err
	}
	workers.mu.Lock()
	defer workers.mu.Unlock()
	if workers.p == nil || workers.threads != threads {
		if workers.p != nil {
			workers.p.Close()
		}
		workers.p, workers.threads = pool.New(threads), threads
	}
	return workers.p, nil
}

// gpuNotice is the one line an "auto" run prints when it falls back to the
// CPU: the reason without its advice (trainer devices gives it all), at
// info level on a machine without the NVIDIA driver, where the CPU is the
// only choice, and at warn level when a driver is there but failed.
func gpuNotice(fallback error) (zerolog.Level, string) {
	full := fallback.Error()
	why, _, _ := strings.Cut(full, ": ")
	if len(why) > 100 {
		why = why[:97] + "..."
	}
	if i := strings.LastIndex(full, " ("); i > len(why) && strings.HasSuffix(full, ")") {
		why += full[i:] // the failing call and its error code
	}
	msg := fmt.Sprintf("no usable GPU: %s; running on the CPU (trainer devices says more)", why)
	if strings.Contains(why, "libcuda was not found") {
		return zerolog.InfoLevel, msg
	}
	return zerolog.WarnLevel, msg
}
