//go:build unix

package checkpoint

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileModeUmask: files written atomically get 0666 less the umask (0644
// under the usual 022), as os.WriteFile's would, not os.CreateTemp's 0600.
// The umask is set for the test and restored (the tests of this package
// do not run in parallel).
func TestFileModeUmask(t *testing.T) {
	for _, mask := range []int{0o022, 0o027, 0o002} {
		old := syscall.Umask(mask)
		path := filepath.Join(t.TempDir(), "m.safetensors")
		err := WriteFileAtomic(path, []byte("data"))
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := os.FileMode(0o666 &^ mask); st.Mode().Perm() != want {
			t.Errorf("umask %03o: mode %v, want %v", mask, st.Mode().Perm(), want)
		}
	}
}
