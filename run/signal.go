package run

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext is cancelled by the first SIGINT, SIGTERM or SIGHUP (a
// closed terminal or SSH session), after a note on
// w; a second one exits the process at once with ExitInterrupted. stop
// releases the signals.
func SignalContext(w io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		n := 0
		for sig := range ch {
			n++
			if n == 1 {
				// The signal's name: under mpirun a SIGTERM may mean that
				// another rank died and mpirun is ending the job.
				fmt.Fprintf(w, "trainer: interrupt (%v): stopping after the current step (press Ctrl-C again to quit at once)\n", sig)
				cancel()
				continue
			}
			os.Exit(ExitInterrupted)
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
