package cuda

import (
	"bytes"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// inPackageDir skips tests that read the package's sources when the test
// binary runs elsewhere (go test always runs it in the package directory).
func inPackageDir(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("cuda_nocgo.go"); err != nil {
		t.Skip("the package sources are not in the working directory (a prebuilt test binary?)")
	}
}

// exportedAPI lists the exported functions, methods and types of the
// package's non-test files that a build with or without cgo compiles, as
// printable signatures, and reports exported identifiers without a doc comment.
func exportedAPI(t *testing.T, cgo bool) (api []string, undocumented []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	c := &apiCollector{t: t, fset: token.NewFileSet()}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(c.fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if !fileMatches(t, f, cgo) {
			continue
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				c.fun(d)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					c.spec(d, s)
				}
			}
		}
	}
	slices.Sort(c.api)
	return c.api, c.undocumented
}

// apiCollector gathers exportedAPI's lists.
type apiCollector struct {
	t                 *testing.T
	fset              *token.FileSet
	api, undocumented []string
}

func (c *apiCollector) add(sig string, documented bool) {
	c.api = append(c.api, sig)
	if !documented {
		c.undocumented = append(c.undocumented, sig)
	}
}

func (c *apiCollector) str(n any) string {
	var b bytes.Buffer
	if err := printer.Fprint(&b, c.fset, n); err != nil {
		c.t.Fatal(err)
	}
	return b.String()
}

// types keeps only the parameter and result types of a signature.
func (c *apiCollector) types(fl *ast.FieldList) string {
	if fl == nil {
		return ""
	}
	var parts []string
	for _, f := range fl.List {
		for range max(len(f.Names), 1) {
			parts = append(parts, c.str(f.Type))
		}
	}
	return strings.Join(parts, ", ")
}

func (c *apiCollector) fun(d *ast.FuncDecl) {
	if !d.Name.IsExported() {
		return
	}
	sig := "func " + d.Name.Name + "(" + c.types(d.Type.Params) + ") (" + c.types(d.Type.Results) + ")"
	if d.Recv != nil {
		sig = "method (" + c.types(d.Recv) + ") " + sig[len("func "):]
	}
	c.add(sig, d.Doc != nil)
}

func (c *apiCollector) spec(d *ast.GenDecl, s ast.Spec) {
	switch s := s.(type) {
	case *ast.TypeSpec:
		if s.Name.IsExported() {
			c.add("type "+s.Name.Name, d.Doc != nil || s.Doc != nil)
		}
	case *ast.ValueSpec:
		for _, n := range s.Names {
			if n.IsExported() {
				c.add("value "+n.Name, d.Doc != nil || s.Doc != nil || s.Comment != nil)
			}
		}
	}
}

// fileMatches evaluates the file's //go:build line for a linux/amd64 build
// with or without cgo.
func fileMatches(t *testing.T, f *ast.File, cgo bool) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				t.Fatal(err)
			}
			return expr.Eval(func(tag string) bool {
				return tag == "cgo" && cgo || tag == "linux" || tag == "amd64"
			})
		}
	}
	return true
}

// TestNoCgoAPI: a CGO_ENABLED=0 build offers a subset of the cgo build's
// API (Probe and its report; nothing it has is a stub of its own), and every
// exported identifier of either build is documented.
func TestNoCgoAPI(t *testing.T) {
	inPackageDir(t)
	withCgo, undoc1 := exportedAPI(t, true)
	without, undoc2 := exportedAPI(t, false)
	for _, s := range without {
		if !slices.Contains(withCgo, s) {
			t.Errorf("only in the !cgo build: %s", s)
		}
	}
	for _, s := range []string{"func Probe() (Report)", "type Report", "value StepNoCgo", "value ErrNoCgo"} {
		if !slices.Contains(without, s) {
			t.Errorf("the !cgo build lacks %s", s)
		}
	}
	for _, s := range slices.Compact(slices.Sorted(slices.Values(append(undoc1, undoc2...)))) {
		t.Errorf("exported without a doc comment: %s", s)
	}
	t.Logf("%d exported identifiers with cgo, %d without", len(withCgo), len(without))
	if len(withCgo) < 60 {
		t.Errorf("only %d exported identifiers found: is the parser looking at the right files?", len(withCgo))
	}
}

// TestNoMachinePaths keeps machine-specific paths out of the sources.
func TestNoMachinePaths(t *testing.T) {
	inPackageDir(t)
	files, _ := filepath.Glob("*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, dir := range []string{"home", "work", "root"} {
			bad := "/" + dir + "/"
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s mentions %s", name, bad)
			}
		}
	}
}
