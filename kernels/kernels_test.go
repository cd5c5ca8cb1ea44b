package kernels

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// entries parses the PTX: every ".visible .entry name(" with its parameter
// types (.u64 for pointers and unsigned long long, .u32 for int, .f32 for
// float).
func entries(t *testing.T, ptx []byte) map[string][]string {
	t.Helper()
	head := regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(\s*((?:\.param [^)]*)?)\)`)
	param := regexp.MustCompile(`\.param \.(\w+) (\w+)`)
	out := map[string][]string{}
	for _, m := range head.FindAllSubmatch(ptx, -1) {
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

// launch is one recorded call of a launch function.
type launch struct {
	k    *Kernel
	work int
	args []Arg[string]
}

// recorder is a Launcher that keeps what it is given; pointers are their
// parameter names.
type recorder struct{ got []launch }

func (r *recorder) Launch(k *Kernel, work int, a Args[string]) {
	l := launch{k: k, work: work}
	for i := range a.Len() {
		l.args = append(l.args, a.At(i))
	}
	r.got = append(r.got, l)
}

// launchAll calls every launch function once with random sizes in [1, 50)
// and pointers named after what the caller passes.
func launchAll(rng *rand.Rand) []launch {
	n := func() int { return 1 + rng.IntN(49) }
	f := func() float32 { return rng.Float32() }
	var r recorder
	cv := Conv{n(), n(), n(), n(), n(), n(), n(), n(), n(), n(), n(), n()}
	pl := Pool{n(), n(), n(), n(), n(), n(), n(), n(), n()}
	F32ToBF16(&r, "x", "y", n())
	BF16ToF32(&r, "x", "y", n())
	Im2Col(&r, cv, "x", "col")
	Im2ColBF16(&r, cv, "x", "col")
	Col2Im(&r, cv, "col", "dx")
	MaxPoolFwd(&r, pl, "x", "y", "argmax", rng.IntN(2) == 1)
	MaxPoolBwd(&r, pl, "dy", "y", "argmax", "dx")
	AvgPoolFwd(&r, pl, "x", "y")
	AvgPoolBwd(&r, pl, "dy", "dx")
	BiasAct(&r, "z", "y", "bias", n(), n(), n(), rng.IntN(3))
	BiasGrad(&r, "dy", "a", "db", "part", "count", n(), n(), n(), rng.IntN(3))
	ReLUFwd(&r, "x", "y", n())
	ReLUBwd(&r, "y", "dy", "dx", n())
	SwapAxes01(&r, "src", "dst", n(), n(), n())
	Fill(&r, "x", n(), f())
	SoftmaxXent(&r, "logits", "labels", n(), n(), f(), f(), "dlogits", "stats")
	Adam(&r, "p", "g", "m", "v", n(), f(), f(), f(), f(), f(), f())
	AdamSeg(&r, "p", "g", "m", "v", "seg", n(), n(), rng.Uint64(), rng.Uint64(), rng.Uint64(), f(), f(), f(), rng.IntN(2) == 1)
	SGDSeg(&r, "p", "g", "buf", "seg", n(), n(), rng.Uint64(), f(), rng.IntN(2) == 1)
	RMSpropSeg(&r, "p", "g", "sq", "buf", "seg", n(), n(), rng.Uint64(), f(), f(), f())
	GatherImages(&r, "src", "idx", n(), n(), n(), f(), "dst", "labels", "dstLabels")
	Augment(&r, "src", "dst", n(), n(), n(), n(), n(), rng.IntN(2) == 1, rng.IntN(2) == 1, rng.Uint64(), rng.Uint64())
	Translate(&r, "src", "dst", n(), n(), n(), n(), n(), n(), rng.IntN(2) == 1)
	SGD(&r, "p", "g", "buf", n(), f(), f(), f(), rng.IntN(2) == 1)
	RMSprop(&r, "p", "g", "sq", "buf", n(), f(), f(), f(), f(), f())
	GELUFwd(&r, "x", "y", n())
	GELUBwd(&r, "x", "dy", "dx", n())
	Add(&r, "a", "b", "y", n(), rng.IntN(2) == 1)
	Axpby(&r, "x", "y", n(), f(), f())
	Dropout(&r, "x", "y", n(), f(), f(), rng.Uint64(), rng.Uint64())
	ChannelSum(&r, "x", "y", "mean", "invstd", "a", "out", n(), n(), n(), n(), SumTerm(rng.IntN(3)), f(), rng.IntN(3))
	BNInvStd(&r, "variance", "invstd", n(), f())
	BNFwd(&r, "x", "mean", "invstd", "gamma", "beta", "z", "y", n(), n(), n(), rng.IntN(3))
	BNBwd(&r, "x", "dz", "mean", "invstd", "gamma", "dgamma", "dbeta", "dx", n(), n(), n())
	StepBegin(&r, "ctr", "perm", n(), n(), "idx", "table", n(), "cur")
	StepEnd(&r, "ctr", n())
	AdamAt(&r, "p", "g", "m", "v", n(), "s", f(), f(), f())
	SGDAt(&r, "p", "g", "buf", n(), "lr", f(), f(), rng.IntN(2) == 1)
	RMSpropAt(&r, "p", "g", "sq", "buf", n(), "lr", f(), f(), f(), f())
	AxpbyAt(&r, "x", "y", n(), "s")
	AugmentAt(&r, "src", "dst", n(), n(), n(), n(), n(), rng.IntN(2) == 1, rng.IntN(2) == 1, rng.Uint64(), "step")
	DropoutAt(&r, "x", "y", n(), f(), f(), rng.Uint64(), "step")
	return r.got
}

// described records every launch function and checks that each kernel of
// Kernels is launched by exactly one of them, and that each passes its
// pointers in the parameters named like them.
func described(t *testing.T) map[string]launch {
	t.Helper()
	out := map[string]launch{}
	for _, l := range launchAll(rand.New(rand.NewPCG(1, 2))) {
		if _, dup := out[l.k.Name]; dup {
			t.Errorf("%s launched by two launch functions", l.k.Name)
		}
		out[l.k.Name] = l
		for _, a := range l.args {
			if a.Type.IsPtr() && a.Ptr != a.Name {
				t.Errorf("%s: parameter %s gets the caller's %s", l.k.Name, a.Name, a.Ptr)
			}
		}
	}
	for _, k := range Kernels {
		if _, ok := out[k.Name]; !ok {
			t.Errorf("%s has no launch function in launchAll", k.Name)
		}
	}
	if len(out) != len(Kernels) {
		t.Errorf("%d kernels launched, %d in Kernels", len(out), len(Kernels))
	}
	return out
}

func ptxType(c CType) string {
	switch {
	case c.IsPtr(), c == U64:
		return "u64"
	case c == Int:
		return "u32"
	case c == Float:
		return "f32"
	}
	return "?" + c.String()
}

// TestLaunchesMatchPTX: every launch function passes as many arguments as its
// .entry in kernels.ptx has parameters, each of the PTX type of its C type,
// and every .entry has a launch function.
func TestLaunchesMatchPTX(t *testing.T) {
	got := entries(t, PTX)
	for name, l := range described(t) {
		types, ok := got[name]
		if !ok {
			t.Errorf("%s has a launch function but no .entry in kernels.ptx", name)
			continue
		}
		if len(types) != len(l.args) {
			t.Errorf("%s: launch passes %d arguments, PTX has %d", name, len(l.args), len(types))
			continue
		}
		for i, a := range l.args {
			if w := ptxType(a.Type); types[i] != w {
				t.Errorf("%s param %d (%s %s): PTX .%s, launch passes .%s", name, i, a.Type, a.Name, types[i], w)
			}
		}
	}
	for _, k := range Kernels {
		if _, ok := got[k.Name]; !ok {
			t.Errorf("%s is in Kernels but not in kernels.ptx", k.Name)
		}
	}
	if len(got) != len(Kernels) {
		t.Errorf(".entry count %d, Kernels %d", len(got), len(Kernels))
	}
}

// TestLaunchesMatchSources checks each launch function against the prototype
// in its .cu file: same file, same parameter types and names in order.
func TestLaunchesMatchSources(t *testing.T) {
	proto := regexp.MustCompile(`extern "C" __global__ void (\w+)\(([^)]*)\)`)
	desc := described(t)
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
			l, ok := desc[name]
			if !ok {
				t.Errorf("%s (%s) has no launch function", name, path)
				continue
			}
			if l.k.File != path {
				t.Errorf("%s: Kernel.File says %s, defined in %s", name, l.k.File, path)
			}
			ps := make([]string, len(l.args))
			for i, a := range l.args {
				ps[i] = a.Type.String() + " " + a.Name
			}
			got := name + "(" + strings.Join(ps, ", ") + ")"
			if want := name + "(" + strings.Join(strings.Fields(string(m[2])), " ") + ")"; got != want {
				t.Errorf("signature mismatch:\nlaunch %s\nsource %s", got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := Sources.ReadFile("all.cu")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kernels {
		if !found[k.Name] {
			t.Errorf("%s is in Kernels but in no .cu file", k.Name)
		}
		if !bytes.Contains(all, []byte(`#include "`+k.File+`"`)) {
			t.Errorf("all.cu does not include %s", k.File)
		}
	}
}

// TestWorkRules: the work count each launch function passes equals its
// Kernel.Work formula evaluated on the arguments it passes, on random sizes.
func TestWorkRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		for _, l := range launchAll(rng) {
			vars := map[string]int{}
			for _, a := range l.args {
				if a.Type == Int {
					vars[a.Name] = a.Int()
				}
			}
			want, err := evalWork(l.k.Work, vars)
			if err != nil {
				t.Fatalf("%s: Work %q: %v", l.k.Name, l.k.Work, err)
			}
			if l.work != want {
				t.Fatalf("%s: launch passes work %d, Work %q is %d for %v", l.k.Name, l.work, l.k.Work, want, vars)
			}
		}
	}
}

// evalWork evaluates a Work formula: int parameters, integer constants, *,
// + and max(a, b).
func evalWork(s string, vars map[string]int) (int, error) {
	e, err := parser.ParseExpr(s)
	if err != nil {
		return 0, err
	}
	var eval func(ast.Expr) (int, error)
	eval = func(e ast.Expr) (int, error) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.INT {
				return strconv.Atoi(e.Value)
			}
		case *ast.Ident:
			v, ok := vars[e.Name]
			if !ok {
				return 0, fmt.Errorf("%s is no int parameter", e.Name)
			}
			return v, nil
		case *ast.BinaryExpr:
			x, err1 := eval(e.X)
			y, err2 := eval(e.Y)
			switch {
			case err1 != nil || err2 != nil:
				return 0, errors.Join(err1, err2)
			case e.Op == token.MUL:
				return x * y, nil
			case e.Op == token.ADD:
				return x + y, nil
			}
		case *ast.CallExpr:
			if f, ok := e.Fun.(*ast.Ident); ok && f.Name == "max" && len(e.Args) == 2 {
				x, err1 := eval(e.Args[0])
				y, err2 := eval(e.Args[1])
				return max(x, y), errors.Join(err1, err2)
			}
		}
		return 0, fmt.Errorf("cannot evaluate %T", e)
	}
	return eval(e)
}

// counter is a Launcher that only adds up what it is given.
type counter struct{ sum uint64 }

func (c *counter) Launch(k *Kernel, work int, a Args[uint64]) {
	for i := range a.Len() {
		c.sum += a.At(i).Ptr + a.At(i).Bits + uint64(work)
	}
}

type scratch uint64

func (s scratch) at(off, _ int) uint64 { return uint64(s) + uint64(4*off) }

// TestLaunchAllocatesNothing: building a launch's arguments and handing them
// to a Launcher makes no heap allocation (the GPU backend's training step
// must allocate nothing).
func TestLaunchAllocatesNothing(t *testing.T) {
	var c counter
	var l Launcher[uint64] = &c
	g := Conv{3, 32, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32}
	steps, _ := ChannelSumPlan(1, 64, 131072)
	var s scratch = 0x5000
	allocs := testing.AllocsPerRun(1000, func() {
		BiasGrad(l, 0x1000, 0x3000, 0x2000, 0x5000, 0x6000, 1, 64, 131072, 1)
		Im2Col(l, g, 0x1000, 0x2000)
		Adam(l, 1, 2, 3, 4, 1000, 1e-3, 0.9, 0.999, 1e-7, 1e-4, 1e-5)
		Augment(l, 1, 2, 3, 4, 5, 6, 7, true, false, 8, 9)
		ChannelSumPasses(l, steps, SumYXhat, 0x1000, 0x3000, 0x4000, 0x4100, 0, 0x2000, 0, 64, 131072, s.at)
		Dropout(l, 1, 2, 1000, 0.1, DropoutScale(0.1), 8, 9)
	})
	if allocs != 0 {
		t.Errorf("a launch allocates %v times", allocs)
	}
	if c.sum == 0 {
		t.Error("the launcher saw nothing")
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

func TestChannelSumPlan(t *testing.T) {
	for _, s := range [][3]int{{1, 64, 131072}, {128, 10, 1}, {1, 3, 257}, {2, 5, 300}, {1, 1, 1 << 24}, {7, 2, 1}, {64, 512, 1}, {1, 256, 64}} {
		outer, c, inner := s[0], s[1], s[2]
		steps, scratch := ChannelSumPlan(outer, c, inner)
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

// TestPTXFresh rebuilds the PTX from the sources with the installed nvcc
// (what scripts/check-ptx.sh does, here so that go test sees a forgotten
// rebuild). It runs with any nvcc that can target compute_70 and skips,
// saying why, without one. Two modes:
//
//   - every nvcc: the fresh PTX must have the same .entry names with the same
//     parameter lists (count and PTX types, names normalised to
//     <kernel>_param_<i>) as the committed one, and ptxas must assemble both
//     for sm_70. This proves that the committed PTX declares exactly the
//     kernels and signatures the sources do (a kernel added, removed or
//     changed in a .cu file and not rebuilt fails), and that it is valid PTX;
//     it cannot see a change inside a kernel body.
//   - the pinned release (the one named in the committed PTX's header, CUDA
//     11.8): the bytes must also be equal, which proves the committed PTX is
//     exactly what the sources compile to.
func TestPTXFresh(t *testing.T) {
	nvcc := tool("NVCC", "nvcc")
	if _, err := exec.LookPath(nvcc); err != nil {
		t.Skipf("%s not installed: the PTX freshness check needs the CUDA toolkit", nvcc)
	}
	ver, err := exec.Command(nvcc, "--version").Output()
	if err != nil {
		t.Skipf("%s --version: %v", nvcc, err)
	}
	if archs, err := exec.Command(nvcc, "--list-gpu-arch").Output(); err == nil && !bytes.Contains(archs, []byte("compute_70")) {
		t.Skipf("this nvcc cannot target compute_70 (its --list-gpu-arch lacks it): the PTX freshness check needs CUDA 11 or 12")
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
	have, now := entries(t, PTX), entries(t, fresh)
	for name, types := range now {
		if got, ok := have[name]; !ok {
			t.Errorf("kernels.ptx lacks .entry %s: run scripts/build-kernels.sh", name)
		} else if strings.Join(got, ",") != strings.Join(types, ",") {
			t.Errorf("kernels.ptx: %s(%s), the sources compile to %s(%s): run scripts/build-kernels.sh", name, strings.Join(got, ","), name, strings.Join(types, ","))
		}
	}
	for name := range have {
		if _, ok := now[name]; !ok {
			t.Errorf("kernels.ptx has .entry %s, which the sources no longer define: run scripts/build-kernels.sh", name)
		}
	}
	assemble(t, "kernels.ptx", PTX)
	assemble(t, "the fresh PTX", fresh)
	pinned := regexp.MustCompile(`(?m)^// Cuda compilation tools, (release [0-9.]+, V[0-9.]+)`).FindSubmatch(PTX)
	if pinned == nil || !bytes.Contains(ver, pinned[1]) {
		t.Logf("nvcc is not the pinned release (%s): entries and signatures compared, bytes not", pinned[1])
		return
	}
	if !bytes.Equal(fresh, PTX) {
		t.Fatal("kernels.ptx is stale: run scripts/build-kernels.sh and commit the result")
	}
}

// tool is the command named by the environment variable env, or def.
func tool(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// assemble runs ptxas for sm_70 on ptx (skipped, saying so, without ptxas).
func assemble(t *testing.T, what string, ptx []byte) {
	t.Helper()
	ptxas := tool("PTXAS", "ptxas")
	if _, err := exec.LookPath(ptxas); err != nil {
		t.Logf("%s not installed: %s not assembled", ptxas, what)
		return
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "k.ptx")
	if err := os.WriteFile(in, ptx, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(ptxas, "-arch=sm_70", in, "-o", filepath.Join(dir, "k.cubin")).CombinedOutput(); err != nil {
		t.Errorf("ptxas -arch=sm_70 on %s: %v\n%s", what, err, msg)
	}
}

// TestPTXVersion: the embedded PTX declares one .version and .target
// sm_70; its ISA version is at least 6.0 (the first with sm_70) and is read
// by drivers of the oldest CUDA release the README promises (DriverNeeded),
// so no CUDA 11 driver is refused.
func TestPTXVersion(t *testing.T) {
	lines := regexp.MustCompile(`(?m)^\.(version|target) (\S+)$`).FindAllSubmatch(PTX, -1)
	if len(lines) != 2 || string(lines[0][1]) != "version" || string(lines[1][1]) != "target" {
		t.Fatalf("PTX header: want one .version then one .target line, got %q", lines)
	}
	version, target := PTXHeader()
	if version != string(lines[0][2]) || target != string(lines[1][2]) {
		t.Errorf("PTXHeader = %q, %q; the PTX says %s, %s", version, target, lines[0][2], lines[1][2])
	}
	if target != "sm_70" {
		t.Errorf(".target %s, want sm_70 (build with -arch=compute_70)", target)
	}
	need, err := DriverNeeded(version)
	if err != nil {
		t.Fatal(err)
	}
	if floor, _ := DriverNeeded("6.0"); need < floor {
		t.Errorf(".version %s is older than 6.0, the first PTX ISA with sm_70", version)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`works with CUDA (\d+),`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md does not say which CUDA releases the binary works with")
	}
	oldest, _ := strconv.Atoi(string(m[1]))
	if need > oldest*1000 {
		t.Errorf("README.md promises CUDA %d drivers, but PTX ISA %s needs CUDA %d.%d", oldest, version, need/1000, need%1000/10)
	}
	t.Logf("PTX ISA %s for %s: drivers from CUDA %d.%d", version, target, need/1000, need%1000/10)
}

// TestDriverNeeded: later PTX ISA versions need later drivers.
func TestDriverNeeded(t *testing.T) {
	var vs []string
	for v := range ptxDrivers {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b string) int {
		var am, an, bm, bn int
		fmt.Sscanf(a, "%d.%d", &am, &an)
		fmt.Sscanf(b, "%d.%d", &bm, &bn)
		return cmp.Or(cmp.Compare(am, bm), cmp.Compare(an, bn))
	})
	for i := 1; i < len(vs); i++ {
		if ptxDrivers[vs[i]] <= ptxDrivers[vs[i-1]] {
			t.Errorf("PTX ISA %s needs CUDA %d, no later than %s's %d", vs[i], ptxDrivers[vs[i]], vs[i-1], ptxDrivers[vs[i-1]])
		}
	}
	if _, err := DriverNeeded("9.9"); err == nil {
		t.Error("an unknown version has no error")
	}
}

// TestBiasGradUnits: every channel length gets between 1 and 4096 units,
// and, below the cap, as many as 16 elements a lane (4096 a unit) need.
func TestBiasGradUnits(t *testing.T) {
	for _, l := range []int{1, 2, 255, 256, 257, 4095, 4096, 4097, 28800, 1 << 20, 1<<20 + 1, 4096 * 4096, 4096*4096 + 1, MaxElems} {
		u := BiasGradUnits(1, l)
		if u < 1 || u > 4096 {
			t.Fatalf("L %d: %d units", l, u)
		}
		if u < 4096 && (u*16*BiasGradLanes < l || (u-1)*16*BiasGradLanes >= l) {
			t.Errorf("L %d: %d units of %d elements", l, u, 16*BiasGradLanes)
		}
		if BiasGradUnits(l, 1) != u {
			t.Errorf("L %d: the units depend on how L splits into outer and inner", l)
		}
	}
}
