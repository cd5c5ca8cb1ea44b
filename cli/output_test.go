package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// runTo runs the command line in-process with stdout going to out and
// returns the exit code and stderr.
func runTo(t *testing.T, out io.Writer, args ...string) (int, string) {
	t.Helper()
	var e bytes.Buffer
	stdout, stderr = out, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	code := Run(append([]string{"trainer"}, args...))
	return code, e.String()
}

// TestStdoutFull: with stdout on /dev/full, every command that prints on
// stdout exits non-zero with one error line saying the write failed.
func TestStdoutFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 8)
	ck := filepath.Join(t.TempDir(), "m.safetensors")
	train := []string{"train", "--device", "cpu", "--threads", "1", "--data-dir", dir, "--epochs", "1", "--batch-size", "8", "--model", "flatten,dense10"}
	if code, _, e := run(t, append(train, "--out", ck)...); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, e)
	}
	img := writePNG(t, filepath.Join(t.TempDir(), "a.png"), noiseImage(32, 32, 3))
	tiny := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	plotDir := t.TempDir()
	writeHistory(t, filepath.Join(plotDir, "history.csv"), 3)
	cases := [][]string{
		{"summary"},
		{"completion", "bash"},
		{"completion", "zsh"},
		{"completion", "fish"},
		{"devices"},
		{"--help"},
		{"plot", plotDir},
		append(train, "--quiet", "--out", filepath.Join(t.TempDir(), "q.safetensors")),
		{"eval", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--data-dir", dir},
		{"eval", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--data-dir", dir, "--json"},
		{"predict", "--device", "cpu", "--threads", "1", "--checkpoint", tiny, img, img},
		{"predict", "--device", "cpu", "--threads", "1", "--checkpoint", tiny, "--json", img},
		{"bench", "--device", "cpu", "--threads", "1", "--steps", "1", "--warmup", "0", "--batch-size", "2", "--model", "flatten,dense10"},
		{"bench", "--device", "cpu", "--threads", "1", "--steps", "1", "--warmup", "0", "--batch-size", "2", "--model", "flatten,dense10", "--json"},
	}
	for i, args := range cases {
		name := args[0]
		if len(args) > 1 && !strings.Contains(args[1], "/") {
			name += " " + args[1]
		}
		t.Run(fmt.Sprintf("%d %s", i, name), func(t *testing.T) {
			code, e := runTo(t, full, args...)
			if code == ExitOK {
				t.Fatalf("exit 0 although nothing could be written; stderr:\n%s", e)
			}
			var errLines []string
			for _, l := range strings.Split(strings.TrimSpace(e), "\n") {
				if strings.HasPrefix(l, "trainer: error: ") {
					errLines = append(errLines, l)
				}
			}
			want := "trainer: error: writing to stdout: no space left on device"
			if len(errLines) != 1 || errLines[0] != want {
				t.Fatalf("want one line %q; stderr:\n%s", want, e)
			}
		})
	}
}

// checkJSONLines fails unless every line of stderr is a JSON object, and
// returns them.
func checkJSONLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stderr line %q is not a JSON object (%v); stderr:\n%s", l, err, stderr)
		}
		objs = append(objs, m)
	}
	return objs
}

// TestJSONLogStderr: with --log-format json every line on stderr is a JSON
// object: usage errors, errors (with their exit code) and the interrupt
// lines with the resume command.
func TestJSONLogStderr(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, 8)
	train := []string{"--log-format", "json", "train", "--device", "cpu", "--threads", "1", "--data-dir", dir, "--batch-size", "8", "--model", "flatten,dense10"}
	cases := []struct {
		name string
		args []string
		code int
		want string // in some message
	}{
		{"bad flag", append(train, "--bogus"), ExitUsage, "bogus"},
		{"bad global flag", []string{"--log-format=json", "--bogus", "summary"}, ExitUsage, "bogus"},
		{"bad value", append(train, "--epochs", "zero"), ExitUsage, "zero"},
		{"global flag after the command", []string{"eval", "--log-format", "json", "--checkpoint", filepath.Join(t.TempDir(), "none.safetensors")}, ExitError, "none.safetensors"},
		{"missing checkpoint", append(train, "--resume", filepath.Join(t.TempDir(), "none.safetensors")), ExitError, "none.safetensors"},
		{"eval missing checkpoint", []string{"--log-format", "json", "eval", "--checkpoint", filepath.Join(t.TempDir(), "none.safetensors")}, ExitError, "none.safetensors"},
		{"interrupted", append(train, "--epochs", "3", "--stop-after-steps", "2", "--out", filepath.Join(t.TempDir(), "m.safetensors")), ExitInterrupted, "resume with"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, e := run(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, e)
			}
			objs := checkJSONLines(t, e)
			found := false
			for _, o := range objs {
				msg, _ := o["message"].(string)
				found = found || strings.Contains(msg, c.want)
			}
			if !found {
				t.Errorf("no message mentions %q; stderr:\n%s", c.want, e)
			}
			last := objs[len(objs)-1]
			if last["level"] != "error" || last["exit_code"] != float64(c.code) {
				t.Errorf("the last line %v is not an error with exit_code %d", last, c.code)
			}
		})
	}
}
