package kernels

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// entries parses the PTX: every ".visible .entry name(" with its parameter
// types (.u64 for pointers and unsigned long long, .u32 for int, .f32 for
// float).
func entries(t *testing.T) map[string][]string {
	t.Helper()
	head := regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(\s*((?:\.param [^)]*)?)\)`)
	param := regexp.MustCompile(`\.param \.(\w+) (\w+)`)
	out := map[string][]string{}
	for _, m := range head.FindAllSubmatch(PTX, -1) {
		name := string(m[1])
		var types []string
		for i, p := range param.FindAllSubmatch(m[2], -1) {
			if want := name + "_param_" + strconv.Itoa(i); string(p[2]) != want {
				t.Fatalf("%s: parameter %d is %s, want %s", name, i, p[2], want)
			}
			types = append(types, string(p[1]))
		}
		if _, dup := out[name]; dup {
			t.Fatalf("entry %s twice in the PTX", name)
		}
		out[name] = types
	}
	if len(out) == 0 {
		t.Fatal("no .entry in the PTX")
	}
	return out
}

func ptxType(c string) string {
	switch {
	case strings.HasSuffix(c, "*"):
		return "u64"
	case c == "int":
		return "u32"
	case c == "unsigned long long":
		return "u64"
	case c == "float":
		return "f32"
	}
	return "?" + c
}

func TestTableMatchesPTX(t *testing.T) {
	got := entries(t)
	seen := map[string]bool{}
	for _, k := range Kernels {
		if seen[k.Name] {
			t.Errorf("%s listed twice", k.Name)
		}
		seen[k.Name] = true
		types, ok := got[k.Name]
		if !ok {
			t.Errorf("%s is in the table but has no .entry in kernels.ptx", k.Name)
			continue
		}
		if len(types) != len(k.Params) {
			t.Errorf("%s: table has %d params, PTX %d", k.Name, len(k.Params), len(types))
			continue
		}
		for i, p := range k.Params {
			if w := ptxType(p.Type); types[i] != w {
				t.Errorf("%s param %d (%s %s): PTX .%s, table says .%s", k.Name, i, p.Type, p.Name, types[i], w)
			}
		}
	}
	for name := range got {
		if !seen[name] {
			t.Errorf(".entry %s is in kernels.ptx but not in the table", name)
		}
	}
}

// TestTableMatchesSources checks each table entry against the prototype in
// its .cu file: same file, same parameter types and names in order.
func TestTableMatchesSources(t *testing.T) {
	proto := regexp.MustCompile(`extern "C" __global__ void (\w+)\(([^)]*)\)`)
	found := map[string]bool{}
	err := fs.WalkDir(Sources, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := Sources.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range proto.FindAllSubmatch(src, -1) {
			name := string(m[1])
			found[name] = true
			k, ok := Lookup(name)
			if !ok {
				t.Errorf("%s (%s) is not in the table", name, path)
				continue
			}
			if k.File != path {
				t.Errorf("%s: table says %s, defined in %s", name, k.File, path)
			}
			want := name + "(" + strings.Join(strings.Fields(string(m[2])), " ") + ")"
			if k.Signature() != want {
				t.Errorf("signature mismatch:\n table %s\nsource %s", k.Signature(), want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kernels {
		if !found[k.Name] {
			t.Errorf("%s is in the table but in no .cu file", k.Name)
		}
	}
	all, err := Sources.ReadFile("all.cu")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kernels {
		if !bytes.Contains(all, []byte(`#include "`+k.File+`"`)) {
			t.Errorf("all.cu does not include %s", k.File)
		}
	}
}

func TestPTXIsPortable(t *testing.T) {
	for _, bad := range []string{".file", ".loc", "\r"} {
		if bytes.Contains(PTX, []byte(bad)) {
			t.Errorf("PTX contains %q", bad)
		}
	}
	if regexp.MustCompile(`(^|[^/])/[A-Za-z0-9_.~-]+/`).Match(PTX) {
		t.Error("PTX mentions a file path")
	}
	if !bytes.Contains(PTX, []byte("\n.target sm_70\n")) {
		t.Error("PTX does not target sm_70 (build with -arch=compute_70)")
	}
	if bytes.IndexByte(PTX, 0) >= 0 {
		t.Error("PTX contains a NUL byte")
	}
}

func TestGrid(t *testing.T) {
	for _, c := range []struct{ work, grid int }{
		{-1, 0}, {0, 0}, {1, 1}, {Block, 1}, {Block + 1, 2}, {Block * MaxGrid, MaxGrid}, {MaxElems, MaxGrid},
	} {
		if g := Grid(c.work); g != c.grid {
			t.Errorf("Grid(%d) = %d, want %d", c.work, g, c.grid)
		}
	}
	// The grid-stride loop "for i < n; i += Block*grid" must not overflow int32.
	if int64(MaxElems)-1+int64(Block*MaxGrid) > 1<<31-1 {
		t.Error("MaxElems too large for int32 grid-stride loops")
	}
}

func TestBiasGradPlan(t *testing.T) {
	for _, s := range [][3]int{{1, 64, 131072}, {128, 10, 1}, {1, 3, 257}, {2, 5, 300}, {1, 1, 1 << 24}, {7, 2, 1}, {64, 512, 1}, {1, 256, 64}} {
		outer, c, inner := s[0], s[1], s[2]
		steps, scratch := BiasGradPlan(outer, c, inner)
		if steps[0].In != -1 || steps[0].Outer != outer || steps[0].Inner != inner {
			t.Errorf("%v: first pass %+v does not read dy", s, steps[0])
		}
		last := steps[len(steps)-1]
		if last.Out != -1 || last.Chunks != 1 {
			t.Errorf("%v: last pass %+v does not write db", s, last)
		}
		for i, st := range steps {
			if i > 0 && (st.In != steps[i-1].Out || st.Outer != 1 || st.Inner != steps[i-1].Chunks) {
				t.Errorf("%v: pass %d %+v does not read pass %d", s, i, st, i-1)
			}
			if st.Out >= 0 {
				if st.Out+c*st.Chunks > scratch {
					t.Errorf("%v: pass %d writes past the scratch (%d)", s, i, scratch)
				}
				if st.In >= 0 && st.Out < st.In+c*st.Inner && st.In < st.Out+c*st.Chunks {
					t.Errorf("%v: pass %d reads and writes overlapping scratch", s, i)
				}
			}
			if st.Chunks > 4096 || (st.Chunks < 4096 && (st.Outer*st.Inner+st.Chunks-1)/st.Chunks > 256) {
				t.Errorf("%v: pass %d %+v: too many chunks or too long a chunk", s, i, st)
			}
		}
		if scratch > c*(4096+64) {
			t.Errorf("%v: scratch %d", s, scratch)
		}
	}
}

func TestTable(t *testing.T) {
	tab := Table()
	if !strings.Contains(tab, "im2col_f32(const float* x, float* col, int C, int N, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW)") {
		t.Errorf("Table:\n%s", tab)
	}
}

// TestPTXFresh rebuilds the PTX from the sources when the nvcc release that
// made the committed PTX is installed, and fails when they differ (what
// scripts/check-ptx.sh checks, here so that go test sees a forgotten
// rebuild). Skipped without nvcc or with another release.
func TestPTXFresh(t *testing.T) {
	nvcc := os.Getenv("NVCC")
	if nvcc == "" {
		nvcc = "nvcc"
	}
	if _, err := exec.LookPath(nvcc); err != nil {
		t.Skip("nvcc not installed")
	}
	ver, err := exec.Command(nvcc, "--version").Output()
	if err != nil {
		t.Skipf("nvcc --version: %v", err)
	}
	have := regexp.MustCompile(`(?m)^// Cuda compilation tools, (release [0-9.]+, V[0-9.]+)`).FindSubmatch(PTX)
	if have == nil || !bytes.Contains(ver, have[1]) {
		t.Skipf("kernels.ptx was made by another nvcc than the installed one")
	}
	out := filepath.Join(t.TempDir(), "kernels.ptx")
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "build-kernels.sh"), out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build-kernels.sh: %v\n%s", err, msg)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, PTX) {
		t.Fatal("kernels.ptx is stale: run scripts/build-kernels.sh and commit the result")
	}
}
