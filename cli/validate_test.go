package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagsCheckedBeforeData: every bad flag value is refused, with the
// flag's name, before any data is downloaded or loaded. The CIFAR-10 cases
// would download (to an empty cache, through a proxy that refuses
// connections); the folder cases point at a folder whose only image is
// junk, so decoding it would fail with another message.
func TestFlagsCheckedBeforeData(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	folder := filepath.Join(t.TempDir(), "imgs")
	for _, c := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(folder, c), 0o755)
		os.WriteFile(filepath.Join(folder, c, "x.png"), []byte("junk"), 0o644)
	}
	ck := filepath.Join(t.TempDir(), "none.safetensors")
	train := []string{"train", "--device", "cpu", "--out", filepath.Join(t.TempDir(), "m.safetensors")}
	fold := append(train[:len(train):len(train)], "--dataset", "folder", "--data-dir", folder)
	cases := []struct {
		args []string
		want string
	}{
		{append(train, "--threads", "-1"), "--threads -1"},
		{append(train, "--threads", "100000"), "--threads 100000"},
		{append(train, "--device", "tpu"), "--device tpu"},
		{append(train, "--epochs", "-1"), "--epochs -1"},
		{append(train, "--lr", "0"), "--lr 0"},
		{append(train, "--lr", "-0.1"), "--lr -0.1"},
		{append(train, "--lr", "NaN"), "--lr NaN"},
		{append(train, "--lr", "Inf"), "--lr +Inf"},
		{append(train, "--keep", "-1"), "--keep -1"},
		{append(train, "--save-every", "-1"), "--save-every -1"},
		{append(train, "--early-stop", "-1"), "--early-stop -1"},
		{append(train, "--sync-every", "-2"), "--sync-every -2"},
		{append(train, "--batch-size", "0"), "--batch-size 0"},
		{append(fold, "--val-split", "0"), "--val-split 0"},
		{append(fold, "--val-split", "1"), "--val-split 1"},
		{append(fold, "--val-split", "-0.5"), "--val-split -0.5"},
		{append(fold, "--val-dir", folder, "--val-split", "1.5"), "--val-split 1.5"},
		{append(fold, "--image-size", "-1"), "--image-size -1"},
		{append(fold, "--image-size", "5000"), "--image-size 5000"},
		{append(fold, "--threads", "-2"), "--threads -2"},
		{[]string{"eval", "--checkpoint", ck, "--threads", "-1"}, "--threads -1"},
		{[]string{"eval", "--checkpoint", ck, "--device", "tpu"}, "--device tpu"},
		{[]string{"predict", "--checkpoint", ck, "--threads", "-1", "x.png"}, "--threads -1"},
		{[]string{"bench", "--threads", "-1"}, "--threads -1"},
		{[]string{"bench", "--batch-size", "0"}, "--batch-size 0"},
		{append(train, "--precision", "fp16"), `--precision "fp16"`},
		{append(train, "--tf32", "--precision", "bf16"), "contradicts --precision bf16"},
		{[]string{"eval", "--checkpoint", ck, "--precision", "half"}, `--precision "half"`},
		{[]string{"bench", "--precision", "int8"}, `--precision "int8"`},
		{[]string{"bench", "--precision", "fp32", "--tf32"}, "contradicts --precision fp32"},
	}
	for _, c := range cases {
		t.Run(c.args[0]+" "+strings.Join(c.args[len(c.args)-2:], " "), func(t *testing.T) {
			cache := t.TempDir()
			t.Setenv("XDG_CACHE_HOME", cache)
			t.Setenv("HOME", cache)
			code, _, e := run(t, c.args...)
			if code == 0 {
				t.Fatalf("accepted; stderr:\n%s", e)
			}
			lines := strings.Split(strings.TrimSpace(e), "\n")
			if msg := lines[len(lines)-1]; !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not name %q; stderr:\n%s", msg, c.want, e)
			}
			for _, w := range []string{"downloading", "data loaded", "x.png"} {
				if strings.Contains(e, w) {
					t.Errorf("data was read before the flags were checked (%q in stderr):\n%s", w, e)
				}
			}
			if _, err := os.Stat(filepath.Join(cache, "trainer")); err == nil {
				t.Errorf("the download cache was created")
			}
		})
	}
}
