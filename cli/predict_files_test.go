package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// runWithin is run, failing if the command has not returned after limit (a
// FIFO made predict block for ever).
func runWithin(t *testing.T, limit time.Duration, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		c, o, e := run(t, args...)
		done <- result{c, o, e}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.err
	case <-time.After(limit):
		t.Fatalf("trainer %s: still running after %v", strings.Join(args, " "), limit)
	}
	return 0, "", ""
}

// badInputs makes the files predict must refuse without reading them
// whole or blocking, each with a word its error must contain.
func badInputs(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	bad := map[string]string{
		filepath.Join(dir, "missing.png"): "not found",
		dir:                               "directory",
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		bad["/dev/zero"] = "character device"
	}
	fifo := filepath.Join(dir, "fifo.png")
	if err := syscall.Mkfifo(fifo, 0o644); err == nil {
		bad[fifo] = "named pipe"
	}
	// A sparse file over the cap that starts as a valid PNG header.
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, testkit.PNGHeader(32, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, maxImageBytes+1); err != nil {
		t.Fatal(err)
	}
	bad[big] = "64 MiB"
	return bad
}

// TestPredictSkipsBadFiles: among good images, each file that is not a
// readable regular image (a device such as /dev/zero, a FIFO, a directory,
// a file over 64 MiB, a missing file, a text file) is named on one stderr
// line and skipped; the good ones are predicted and the exit code is 2.
func TestPredictSkipsBadFiles(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	dir := t.TempDir()
	good1 := writePNG(t, filepath.Join(dir, "good1.png"), noiseImage(32, 32, 1))
	good2 := writePNG(t, filepath.Join(dir, "good2.png"), noiseImage(40, 20, 2))
	bad := badInputs(t)
	text := filepath.Join(dir, "x.png")
	os.WriteFile(text, []byte("this is not an image\n"), 0o644)
	bad[text] = "not a PNG or JPEG"
	files := []string{good1}
	for f := range bad {
		files = append(files, f)
	}
	files = append(files, good2)
	for _, jsonLogs := range []bool{false, true} {
		args := append([]string{"predict", "--device", "cpu", "--threads", "1", "--checkpoint", ck, "--json"}, files...)
		if jsonLogs {
			args = append([]string{"--log-format", "json"}, args...)
		}
		code, out, errOut := runWithin(t, 30*time.Second, args...)
		if code != ExitSkipped {
			t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitSkipped, errOut)
		}
		var predicted []string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var r predictLine
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("stdout line %q: %v", sc.Text(), err)
			}
			predicted = append(predicted, r.File)
		}
		if strings.Join(predicted, " ") != good1+" "+good2 {
			t.Fatalf("predicted %q, want the two good images", predicted)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if jsonLogs {
			checkJSONLines(t, errOut)
		}
		for f, why := range bad {
			n := 0
			for _, l := range lines {
				if strings.Contains(l, f+":") {
					n++
					if !strings.Contains(l, why) {
						t.Errorf("the line for %s does not say %q: %s", f, why, l)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d stderr lines name %s, want 1; stderr:\n%s", n, f, errOut)
			}
		}
	}
}

// TestPredictAllBad: when no image can be read the run fails (exit 1), a
// single bad file with its own error.
func TestPredictAllBad(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 32, W: 32}, testClasses)
	for f, why := range badInputs(t) {
		code, out, errOut := runWithin(t, 30*time.Second, "predict", "--device", "cpu", "--checkpoint", ck, f)
		if code != ExitError || out != "" {
			t.Fatalf("%s: exit %d, stdout %q; want exit 1, nothing printed; stderr:\n%s", f, code, out, errOut)
		}
		if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 || !strings.Contains(lines[0], f) || !strings.Contains(lines[0], why) {
			t.Fatalf("%s: want one error line naming it and saying %q:\n%s", f, why, errOut)
		}
	}
}
