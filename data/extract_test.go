package data

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// extract writes entries as an archive and unpacks it into a fresh dest
// folder inside a fresh top folder; it returns top, dest and the error.
func extract(t *testing.T, entries ...tarEntry) (top, dest string, err error) {
	t.Helper()
	top = t.TempDir()
	archive := filepath.Join(t.TempDir(), "a.tar.gz")
	writeFile(t, archive, tarGz(t, entries...))
	dest = filepath.Join(top, "dest")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	return top, dest, ExtractTarGz(archive, dest)
}

func TestExtractTarGz(t *testing.T) {
	_, dest, err := extract(t,
		tarEntry{name: "./", typeflag: tar.TypeDir},
		tarEntry{name: "./a/b/", typeflag: tar.TypeDir},
		tarEntry{name: "./a/b/file", typeflag: tar.TypeReg, body: []byte("hello")},
		tarEntry{name: "c//d.bin", typeflag: tar.TypeReg, body: []byte("x")}, // parent created implicitly
		tarEntry{name: "empty", typeflag: tar.TypeReg},
	)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a/b/file": "hello", "c/d.bin": "x", "empty": ""} {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestExtractTarGzRejects(t *testing.T) {
	evil := []byte("pwned")
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dotdot", []tarEntry{{name: "../evil", typeflag: tar.TypeReg, body: evil}}, `".."`},
		{"inner dotdot", []tarEntry{{name: "a/../../evil", typeflag: tar.TypeReg, body: evil}}, `".."`},
		{"harmless-looking dotdot", []tarEntry{{name: "a/../evil", typeflag: tar.TypeReg, body: evil}}, `".."`},
		{"dotdot dir", []tarEntry{{name: "../evil/", typeflag: tar.TypeDir}}, `".."`},
		{"absolute", []tarEntry{{name: "/tmp/evil", typeflag: tar.TypeReg, body: evil}}, "absolute"},
		{"backslash", []tarEntry{{name: `..\evil`, typeflag: tar.TypeReg, body: evil}}, "unsafe"},
		{"symlink", []tarEntry{{name: "link", typeflag: tar.TypeSymlink, link: "/etc"}}, "symbolic link"},
		{"symlink then write through it", []tarEntry{
			{name: "link", typeflag: tar.TypeSymlink, link: ".."},
			{name: "link/evil", typeflag: tar.TypeReg, body: evil},
		}, "symbolic link"},
		{"hardlink", []tarEntry{{name: "hl", typeflag: tar.TypeLink, link: "../evil"}}, "hard link"},
		{"fifo", []tarEntry{{name: "fifo", typeflag: tar.TypeFifo}}, "only regular files and folders"},
		{"char device", []tarEntry{{name: "null", typeflag: tar.TypeChar}}, "only regular files and folders"},
		{"duplicate", []tarEntry{
			{name: "f", typeflag: tar.TypeReg, body: []byte("1")},
			{name: "f", typeflag: tar.TypeReg, body: []byte("2")},
		}, "refusing to overwrite"},
		{"file named dot", []tarEntry{{name: ".", typeflag: tar.TypeReg, body: evil}}, "destination itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, _, err := extract(t, tc.entries...)
			checkErr(t, err, "a.tar.gz", tc.want)
			checkOnly(t, top, "dest")
			if _, err := os.Stat(filepath.Join(os.TempDir(), "evil")); err == nil {
				t.Errorf("something wrote %s", filepath.Join(os.TempDir(), "evil"))
			}
		})
	}
}

func TestExtractTarGzSymlinkInDest(t *testing.T) {
	// A symlink already in the destination must not be followed outward.
	top := t.TempDir()
	outside := filepath.Join(top, "outside")
	dest := filepath.Join(top, "dest")
	os.Mkdir(outside, 0o755)
	os.Mkdir(dest, 0o755)
	if err := os.Symlink(outside, filepath.Join(dest, "link")); err != nil {
		t.Skip("cannot create symlinks here:", err)
	}
	archive := filepath.Join(t.TempDir(), "a.tar.gz")
	writeFile(t, archive, tarGz(t, tarEntry{name: "link/evil", typeflag: tar.TypeReg, body: []byte("pwned")}))
	if err := ExtractTarGz(archive, dest); err == nil {
		t.Errorf("wrote through a symlink in the destination")
	}
	checkOnly(t, outside)
}

func TestExtractTarGzBombs(t *testing.T) {
	defer func(b int64, e int) { maxExtractBytes, maxExtractEntries = b, e }(maxExtractBytes, maxExtractEntries)
	maxExtractBytes, maxExtractEntries = 1000, 5

	// Exactly at the cap is fine.
	if _, _, err := extract(t, tarEntry{name: "a", typeflag: tar.TypeReg, body: make([]byte, 600)},
		tarEntry{name: "b", typeflag: tar.TypeReg, body: make([]byte, 400)}); err != nil {
		t.Errorf("archive at the size cap: %v", err)
	}
	_, _, err := extract(t, tarEntry{name: "a", typeflag: tar.TypeReg, body: make([]byte, 600)},
		tarEntry{name: "b", typeflag: tar.TypeReg, body: make([]byte, 401)})
	checkErr(t, err, "more than 1000 bytes", "archive bomb")

	var many []tarEntry
	for i := range 6 {
		many = append(many, tarEntry{name: string(rune('a'+i)) + "/", typeflag: tar.TypeDir})
	}
	_, _, err = extract(t, many...)
	checkErr(t, err, "more than 5 entries")
}

func TestExtractTarGzCorrupt(t *testing.T) {
	dir := t.TempDir()
	notGz := filepath.Join(dir, "x.tar.gz")
	writeFile(t, notGz, []byte("plain text"))
	checkErr(t, ExtractTarGz(notGz, dir), notGz, "not a gzip archive")

	good := tarGz(t, validEntries()...)
	cut := filepath.Join(dir, "cut.tar.gz")
	writeFile(t, cut, good[:len(good)/2])
	dest := filepath.Join(dir, "dest")
	os.Mkdir(dest, 0o755)
	if err := ExtractTarGz(cut, dest); err == nil {
		t.Errorf("truncated archive: no error")
	}
	missing := filepath.Join(dir, "none.tar.gz")
	checkErr(t, ExtractTarGz(missing, dir), missing, "cannot open archive")
	if !bytes.HasPrefix(good, []byte{0x1f, 0x8b}) {
		t.Fatal("test archive is not gzip")
	}
}
