//go:build unix

package run

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/trainer-go/trainer/data"
)

// TestMain: with RUN_TEST_HOLD_LOCK set, the test binary becomes a child
// that takes an exclusive flock on that file, as a run does, says so on
// stdout and waits to be killed.
func TestMain(m *testing.M) {
	if path := os.Getenv("RUN_TEST_HOLD_LOCK"); path != "" {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil || unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			os.Exit(3)
		}
		fmt.Fprintf(f, "%d\n", os.Getpid())
		fmt.Println("locked")
		select {}
	}
	os.Exit(m.Run())
}

// holdLock starts a child process that holds the lock file path.
func holdLock(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RUN_TEST_HOLD_LOCK="+path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if l, _ := bufio.NewReader(out).ReadString('\n'); l != "locked\n" {
		t.Fatalf("the child did not take the lock: %q", l)
	}
	return cmd
}

// TestOutLocked: while another process holds <out>.lock, a run on that
// --out is refused at once, naming the holder's PID and the lock file; once
// the holder is killed (SIGKILL: the kernel releases its flock), the lock
// file it left does not block the next run.
func TestOutLocked(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Epochs = 1
	lock := cfg.Out + ".lock"
	holder := holdLock(t, lock)
	var e strings.Builder
	loaded := false
	env := testEnv(&e)
	load := env.Load
	env.Load = func(ctx context.Context, d Dataset) (_, _ *data.Dataset, _ error) {
		loaded = true
		return load(ctx, d)
	}
	err := Train(context.Background(), cfg, env)
	want := fmt.Sprintf("PID %d", holder.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), lock) || !strings.Contains(err.Error(), "--out") {
		t.Fatalf("a run on a locked --out: %v; want an error naming %q and %s", err, want, lock)
	}
	if loaded {
		t.Error("the data was loaded before the lock was checked (refuse at once)")
	}
	if _, err := os.Stat(cfg.Out); err == nil {
		t.Error("the refused run wrote the checkpoint")
	}
	holder.Process.Kill()
	holder.Wait()
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("the killed holder's lock file should still be there for this test: %v", err)
	}
	if err := Train(context.Background(), cfg, testEnv(&e)); err != nil {
		t.Fatalf("a stale lock file blocked the run: %v\n%s", err, e.String())
	}
	if _, err := os.Stat(lock); err == nil {
		t.Error("the run left its lock file behind")
	}
	if _, err := os.Stat(filepath.Dir(lock)); err != nil {
		t.Fatal(err)
	}
}

// TestOutLockedDuringRun: the lock is held for the whole run: from the plot
// hook (the run's last step) a second lock attempt on the file fails.
func TestOutLockedDuringRun(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Epochs = 1
	var e strings.Builder
	env := testEnv(&e)
	held := false
	env.Plot = func(string, string) error {
		f, err := os.Open(cfg.Out + ".lock")
		if err != nil {
			return nil
		}
		defer f.Close()
		held = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
		b := make([]byte, 32)
		n, _ := f.Read(b)
		if strings.TrimSpace(string(b[:n])) != fmt.Sprint(os.Getpid()) {
			t.Errorf("the lock file holds %q, not the PID", b[:n])
		}
		return nil
	}
	if err := Train(context.Background(), cfg, env); err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	if !held {
		t.Error("the lock was not held during the run")
	}
}
