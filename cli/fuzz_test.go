package cli

// Fuzz targets of the command line's file readers (run with scripts/fuzz.sh,
// or
//
//	go test -run='^$' -fuzz='^FuzzPlotHistory$' -fuzztime=30s ./cli
//
// ).

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/trainer-go/trainer/internal/testkit"
)

// FuzzPlotHistory plots the input as a history CSV: it must return, within
// the fuzz time limit and an allocation budget, either a one-line error
// naming the file or a PNG.
func FuzzPlotHistory(f *testing.F) {
	header := "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,images_per_s\n"
	for _, rows := range []string{
		"1,1.5,0.4,1.6,0.38,0.001,10,4000\n2,1.2,0.5,1.3,0.45,0.001,10,4000\n",
		"1,1.5,0.4,,,0.001,10,4000\n",
		"1,NaN,0.4,1.6,NaN,0.001,10,4000\n",
		"1,1.5,0.4,1.6,0.38,0.001,10,4000\n1e15,1.2,0.5,1.3,0.45,0.001,10,4000\n",
		"-5,1.2,0.5,1.3,0.45,0.001,10,4000\n",
		"1,-1e308,0.4,1e308,0.38,0.001,10,4000\n2,1e308,0.5,-1e308,0.45,0.001,10,4000\n",
		"1,Inf,0.4,1.6,0.38,0.001,10,4000\n",
		"1,1000000000,0,-1000000000,1,0,0,0\n1000000000,-1000000000,1,1000000000,0,0,0,0\n",
		"3,1,1,1,1,1,1,1\n4,1,1,1,1,1,1,1.0000001\n",
	} {
		f.Add(header + rows)
	}
	f.Add("")
	f.Add("epoch,loss\n1,2\n")
	f.Add("\ufeffepoch,loss,accuracy,val_loss,val_accuracy\n1,1,1,1,1\n")

	f.Fuzz(func(t *testing.T, body string) {
		dir := t.TempDir()
		csvPath, pngPath := filepath.Join(dir, "history.csv"), filepath.Join(dir, "history.png")
		if err := os.WriteFile(csvPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		var err error
		got := testkit.Allocated(t, func() { err = PlotHistory(csvPath, pngPath) })
		// The PNG canvas (about 1150x450 RGBA), gonum's plot, and per row a
		// handful of parsed fields and points.
		testkit.CheckAlloc(t, got, 64<<20+uint64(4096*strings.Count(body, "\n")+64*len(body)), "plotting a history")
		if err != nil {
			testkit.CheckFileErr(t, err, csvPath)
			return
		}
		if _, err := os.Stat(pngPath); err != nil {
			t.Fatalf("PlotHistory returned nil but wrote no PNG: %v", err)
		}
	})
}

// FuzzReadRegularFile fuzzes predict's bounded file read (readRegularFile;
// the decode of the bytes read is data/image's, fuzzed there by
// FuzzDecodeImage and FuzzLoadBytes): a regular file of the input's bytes
// under a limit, or a directory, a FIFO, or a symbolic link to either kind.
// It must return promptly, allocate about the limit at most, refuse all but
// regular files within the limit with a one-line error naming the path, and
// return a regular file's bytes exactly.
func FuzzReadRegularFile(f *testing.F) {
	f.Add([]byte("\x89PNG\r\n\x1a\n"), uint16(100), uint8(0))
	f.Add([]byte("0123456789"), uint16(9), uint8(0))
	f.Add([]byte{}, uint16(0), uint8(1))
	f.Add([]byte("x"), uint16(1), uint8(2))
	f.Add([]byte("x"), uint16(1), uint8(3))
	f.Add([]byte("x"), uint16(1), uint8(4))
	f.Fuzz(func(t *testing.T, content []byte, limit16 uint16, kind uint8) {
		dir := t.TempDir()
		target := filepath.Join(dir, "img.png")
		switch kind % 5 {
		case 0, 3:
			if err := os.WriteFile(target, content, 0o644); err != nil {
				t.Fatal(err)
			}
		case 1:
			os.Mkdir(target, 0o755)
		case 2, 4:
			if err := syscall.Mkfifo(target, 0o644); err != nil {
				t.Skip(err)
			}
		}
		path := target
		if kind%5 >= 3 {
			path = filepath.Join(dir, "link.png")
			if err := os.Symlink(target, path); err != nil {
				t.Skip(err)
			}
		}
		limit := int64(limit16)
		var b []byte
		var err error
		got := testkit.Allocated(t, func() { b, err = readRegularFile(path, limit) })
		testkit.CheckAlloc(t, got, uint64(limit)*4+64<<10, "reading a file")
		regular := kind%5 == 0 || kind%5 == 3
		switch {
		case err != nil:
			testkit.CheckFileErr(t, err, path)
			if regular && int64(len(content)) <= limit {
				t.Fatalf("a regular file of %d bytes under a limit of %d: %v", len(content), limit, err)
			}
		case !regular || int64(len(content)) > limit:
			t.Fatalf("read %d bytes from a %d-byte file of kind %d under a limit of %d", len(b), len(content), kind%5, limit)
		case !bytes.Equal(b, content):
			t.Fatalf("read %q, the file holds %q", b, content)
		}
	})
}
