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
	fset := token.NewFileSet()
	str := func(n any) string {
		var b bytes.Buffer
		if err := printer.Fprint(&b, fset, n); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	// types keeps only the parameter and result types of a signature.
	types := func(fl *ast.FieldList) string {
		if fl == nil {
			return ""
		}
		var parts []string
		for _, f := range fl.List {
			n := max(len(f.Names), 1)
			for range n {
				parts = append(parts, str(f.Type))
			}
		}
		return strings.Join(parts, ", ")
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if !fileMatches(t, f, cgo) {
			continue
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				sig := "func " + d.Name.Name + "(" + types(d.Type.Params) + ") (" + types(d.Type.Results) + ")"
				if d.Recv != nil {
					sig = "method (" + types(d.Recv) + ") " + sig[len("func "):]
				}
				api = append(api, sig)
				if d.Doc == nil {
					undocumented = append(undocumented, sig)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							api = append(api, "type "+s.Name.Name)
							if d.Doc == nil && s.Doc == nil {
								undocumented = append(undocumented, "type "+s.Name.Name)
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								api = append(api, "value "+n.Name)
								if d.Doc == nil && s.Doc == nil && s.Comment == nil {
									undocumented = append(undocumented, n.Name)
								}
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(api)
	return api, undocumented
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

// TestStubHasTheSameAPI: a CGO_ENABLED=0 build must offer exactly the API of
// the cgo build, so that callers compile either way.
func TestStubHasTheSameAPI(t *testing.T) {
	inPackageDir(t)
	withCgo, undoc1 := exportedAPI(t, true)
	without, undoc2 := exportedAPI(t, false)
	for _, s := range withCgo {
		if !slices.Contains(without, s) {
			t.Errorf("missing from the !cgo stub: %s", s)
		}
	}
	for _, s := range without {
		if !slices.Contains(withCgo, s) {
			t.Errorf("only in the !cgo stub: %s", s)
		}
	}
	for _, s := range append(undoc1, undoc2...) {
		t.Errorf("exported without a doc comment: %s", s)
	}
	t.Logf("%d exported identifiers in both builds", len(withCgo))
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
