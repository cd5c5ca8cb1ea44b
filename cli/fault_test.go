package cli

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
	"github.com/trainer-go/trainer/run/meta"
)

// TestKillResumeCycles is fault injection on a real training process: a
// run that saves every 3 steps is killed with SIGKILL at a random moment,
// then resumed and killed again, 20 times, then resumed to completion.
// After every kill the checkpoint and its copies load (the SHA-256 holds),
// the history has each epoch once, from 1, up to at least the checkpoint's
// epoch (at most one ahead: the history is written just before the epoch's
// save), and the next run is not blocked by the lock file the killed one
// left. At the end the history holds exactly the run's epochs.
func TestKillResumeCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 20 kill-and-resume cycles take about 15 s")
	}
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 40) // 200 training images: 25 steps of 8 per epoch
	out := filepath.Join(t.TempDir(), "m.safetensors")
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill times from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	common := " --device cpu --threads 1 --data-dir " + dir + " --batch-size 8 --save-every 3 --keep 2 --model flatten,dense10"
	epoch := 0
	for cycle := 1; cycle <= 20; cycle++ {
		args := "train --epochs 1000 --out " + out + common
		if _, err := os.Stat(out); err == nil {
			args = "train --epochs 1000 --resume " + out + common
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TRAINER_TEST_MAIN=1", "TRAINER_TEST_ARGS="+args)
		var e strings.Builder
		cmd.Stderr = &e
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+rng.IntN(570)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("cycle %d: the run ended by itself (exit %d) before it was killed:\n%s", cycle, cmd.ProcessState.ExitCode(), e.String())
		}
		if _, err := os.Stat(out); err != nil {
			continue // killed before its first save
		}
		epoch = checkAfterKill(t, cycle, out)
	}
	if epoch == 0 {
		t.Fatal("no kill came after the first epoch: the kill times are too short to test resuming across epochs")
	}
	final := epoch + 2
	code, _, e := run(t, strings.Fields("train --epochs "+strconv.Itoa(final)+" --resume "+out+common)...)
	if code != 0 {
		t.Fatalf("the final resume: exit %d\n%s", code, e)
	}
	if rows := historyRows(t, out); rows != final {
		t.Fatalf("after the final resume the history holds epochs 1..%d, want 1..%d", rows, final)
	}
	if _, err := os.Stat(out + ".lock"); err == nil {
		t.Error("the finished run left its lock file")
	}
}

// checkAfterKill checks the files of a killed run and returns the epochs
// its checkpoint has completed.
func checkAfterKill(t *testing.T, cycle int, out string) int {
	t.Helper()
	ck, err := model.LoadCheckpoint(out)
	if err != nil {
		t.Fatalf("cycle %d: the checkpoint does not load after a kill: %v", cycle, err)
	}
	copies, _ := filepath.Glob(strings.TrimSuffix(out, ".safetensors") + "-*.safetensors")
	for _, c := range copies {
		if _, err := model.LoadCheckpoint(c); err != nil {
			t.Fatalf("cycle %d: the copy %s does not load after a kill: %v", cycle, c, err)
		}
	}
	m := meta.Decode(ck.Meta)
	if m.Train == nil {
		t.Fatalf("cycle %d: the checkpoint holds no training state", cycle)
	}
	epoch := m.Train.Epoch
	if rows := historyRows(t, out); rows < epoch || rows > epoch+1 {
		t.Fatalf("cycle %d: the history holds epochs 1..%d, the checkpoint has completed %d", cycle, rows, epoch)
	}
	return epoch
}

// historyRows checks that the history of the run in out holds epochs 1..n,
// each once and in order, and returns n.
func historyRows(t *testing.T, out string) int {
	t.Helper()
	path := strings.TrimSuffix(out, ".safetensors") + ".history.csv"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, l := range lines[1:] {
		if ep, _, _ := strings.Cut(l, ","); ep != strconv.Itoa(i+1) {
			t.Fatalf("%s: row %d is epoch %q, want %d (a duplicate or missing epoch):\n%s", path, i+1, ep, i+1, b)
		}
	}
	return len(lines) - 1
}
