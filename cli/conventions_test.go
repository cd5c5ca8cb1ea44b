package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trainer-go/trainer/model"
)

// TestCLIConventions: help and help CMD work and go to stdout; usage errors
// go to stderr as one line with exit code 2, a suggestion when the
// misspelling is close and none when it is not; --version prints the
// version.
func TestCLIConventions(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		code       int
		out, err   string // substrings of stdout and stderr ("": must be empty)
		notInError string
	}{
		{"help", []string{"help"}, 0, "COMMANDS:", "", ""},
		{"help train", []string{"help", "train"}, 0, "--batch-size", "", ""},
		{"train --help", []string{"train", "--help"}, 0, "--batch-size", "", ""},
		{"version", []string{"--version"}, 0, "trainer version", "", ""},
		{"misspelt command", []string{"trian"}, ExitUsage, "", `Did you mean "train"?`, ""},
		{"unknown command", []string{"xyzzy"}, ExitUsage, "", `no command "xyzzy"`, "Did you mean"},
		{"misspelt flag", []string{"train", "--epoch", "3"}, ExitUsage, "", "Did you mean --epochs?", ""},
		{"far flag", []string{"summary", "--device", "cpu"}, ExitUsage, "", "--device (see trainer summary --help)", "Did you mean"},
		{"bad number", []string{"train", "--batch-size", "many"}, ExitUsage, "", `"many" for flag --batch-size`, ""},
		{"global flag after command", []string{"summary", "--model", "seed", "--log-level", "error"}, 0, "conv1", "", ""},
		{"bad global flag after command", []string{"summary", "--log-level", "loud"}, ExitError, "", "--log-level", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, o, e := run(t, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, o, e)
			}
			if c.out == "" && o != "" || !strings.Contains(o, c.out) {
				t.Errorf("stdout %q, want it to contain %q", o, c.out)
			}
			if c.err == "" && e != "" || !strings.Contains(e, c.err) {
				t.Errorf("stderr %q, want it to contain %q", e, c.err)
			}
			if c.notInError != "" && strings.Contains(e, c.notInError) {
				t.Errorf("stderr %q has %q", e, c.notInError)
			}
			if c.code == ExitUsage && strings.Count(strings.TrimSpace(e), "\n") != 0 {
				t.Errorf("a usage error is one line, got:\n%s", e)
			}
		})
	}
}

// TestHoistGlobalFlags: global flags after the command move before it, in
// both spellings, and nothing after "--" or that is a value of another
// flag moves.
func TestHoistGlobalFlags(t *testing.T) {
	app := App()
	cases := []struct{ in, want string }{
		{"trainer train --epochs 3", "trainer train --epochs 3"},
		{"trainer train --log-format json --epochs 3", "trainer --log-format json train --epochs 3"},
		{"trainer --log-level warn train --log-format=json", "trainer --log-level warn --log-format=json train"},
		{"trainer predict --checkpoint m -- --log-format json", "trainer predict --checkpoint m -- --log-format json"},
		{"trainer --log-format json nosuch --log-level warn", "trainer --log-format json nosuch --log-level warn"},
		{"trainer", "trainer"},
	}
	for _, c := range cases {
		got := strings.Join(hoistGlobalFlags(strings.Fields(c.in), app), " ")
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestJSONKeyOrder: a JSON log line comes out with the message first and
// the training figures in logKeyOrder, whatever order they were logged
// in; other keys keep their order after them, and values are unchanged.
func TestJSONKeyOrder(t *testing.T) {
	in := `{"level":"info","seconds":1.5,"zeta":"z","val_loss":2,"epoch":3,"alpha":[1,{"b":2}],"lr":0.1,"time":"t","message":"epoch 3/9","loss":2.5}`
	var buf bytes.Buffer
	if _, err := (orderedJSON{&buf}).Write([]byte(in + "\n")); err != nil {
		t.Fatal(err)
	}
	keys := jsonKeys(t, buf.Bytes())
	want := []string{"level", "time", "message", "epoch", "loss", "val_loss", "lr", "seconds", "zeta", "alpha"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	var a, b map[string]any
	json.Unmarshal([]byte(in), &a)
	json.Unmarshal(buf.Bytes(), &b)
	if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
		t.Errorf("values changed: %s -> %s", ja, jb)
	}
	for _, bad := range []string{"not json\n", `{"a":1}{"b":2}`, `[1,2]`} {
		buf.Reset()
		(orderedJSON{&buf}).Write([]byte(bad))
		if buf.String() != bad {
			t.Errorf("%q passed as %q", bad, buf.String())
		}
	}
}

func jsonKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.Token()
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		dec.Decode(&v)
	}
	return keys
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestVersionOf: the version names the module version, the commit (marked
// dirty when it was) and the Go version.
func TestVersionOf(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-01T00:00:00Z"}}}
	got := versionOf(bi)
	for _, w := range []string{"v1.2.3", "commit 0123456789ab+dirty", "2026-12-01", "go1.26.0"} {
		if !strings.Contains(got, w) {
			t.Errorf("version %q lacks %q", got, w)
		}
	}
	if got := versionOf(&debug.BuildInfo{GoVersion: "go1.26.0"}); !strings.HasPrefix(got, "(devel)") {
		t.Errorf("no version: %q", got)
	}
}

// TestGPUNotice: the fallback notice is one short line that keeps the
// error code, at info level when there is no driver at all.
func TestGPUNotice(t *testing.T) {
	lv, msg := gpuNotice(errors.New("the NVIDIA driver library is installed but no GPU is visible: check that nvidia-smi lists a GPU, that CUDA_VISIBLE_DEVICES is unset (cuInit: CUDA_ERROR_NO_DEVICE)"))
	if lv.String() != "warn" || strings.Contains(msg, "nvidia-smi") || !strings.Contains(msg, "CUDA_ERROR_NO_DEVICE") || len(msg) > 160 {
		t.Errorf("%v %q", lv, msg)
	}
	lv, msg = gpuNotice(errors.New("the NVIDIA driver library libcuda was not found (tried libcuda.so.1): install the NVIDIA driver"))
	if lv.String() != "info" || strings.Contains(msg, "install") {
		t.Errorf("%v %q", lv, msg)
	}
}

// TestProgressLineFits: the progress line never exceeds the width it is
// given, keeps the most useful parts as the width shrinks, and shows
// everything on a wide terminal.
func TestProgressLineFits(t *testing.T) {
	p := model.Progress{Epoch: 12, Step: 1234, Steps: 1563, Loss: 1.23456, Accuracy: 0.56789, ImagesPerS: 123456, Elapsed: 95 * time.Second}
	for w := 0; w <= 200; w++ {
		line := progressLine(p, 100, w)
		if len(line) > w {
			t.Fatalf("width %d: %d characters: %q", w, len(line), line)
		}
		if w >= 79 && !strings.Contains(line, "ETA") || w >= 79 && !strings.Contains(line, "loss 1.2346") {
			t.Errorf("width %d drops the loss or ETA: %q", w, line)
		}
	}
	wide := progressLine(p, 100, 200)
	for _, s := range []string{"epoch 12/100", "1234/1563", "123456 img/s", "acc 0.5679", "(run ", strings.Repeat("=", 18)} {
		if !strings.Contains(wide, s) {
			t.Errorf("wide line %q lacks %q", wide, s)
		}
	}
	var buf bytes.Buffer
	b := newProgressBar(&buf, 100) // not a terminal: 80 columns
	b.Update(p)
	if line := strings.TrimPrefix(buf.String(), "\r\x1b[K"); len(line) > 79 || !strings.HasPrefix(line, "epoch 12/100") {
		t.Errorf("default width: %q", line)
	}
}
