package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// TestSignalSavesAndResumes sends a real SIGINT (and, separately, SIGTERM
// and SIGHUP, the signal of a closed terminal or SSH session)
// to a training process: it must finish the step, save a checkpoint that
// loads and holds the training state, print the resume command and exit 130.
func TestSignalSavesAndResumes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 400) // 2,000 images: long enough to be stopped mid-epoch
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.safetensors")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "TRAINER_TEST_MAIN=1",
				"TRAINER_TEST_ARGS=train --device cpu --data-dir "+dir+" --epochs 50 --batch-size 8 --out "+out)
			var e strings.Builder
			cmd.Stderr = &e
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond) // data loaded, training under way
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 60 s after %v:\n%s", sig, e.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != ExitInterrupted {
				t.Fatalf("exit %d after %v, want %d:\n%s", code, sig, ExitInterrupted, e.String())
			}
			if !strings.Contains(e.String(), "resume with:") || !strings.Contains(e.String(), "--resume "+out) {
				t.Fatalf("no resume command printed:\n%s", e.String())
			}
			ck, err := model.LoadCheckpoint(out)
			if err != nil {
				t.Fatalf("the checkpoint saved on %v does not load: %v", sig, err)
			}
			if !ck.Resumable() {
				t.Fatal("the checkpoint saved on interrupt holds no training state")
			}
		})
	}
}
