// Package codecheck holds tests about the source tree itself.
package codecheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxComplexity is the most cyclomatic complexity a function may have.
const maxComplexity = 25

// complexity is gocyclo's measure: 1, plus one for each if, for, range,
// non-default case of a switch or select, and each && or ||.
func complexity(fn ast.Node) int {
	c := 1
	ast.Inspect(fn, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt:
			c++
		case *ast.CaseClause:
			if n.List != nil {
				c++
			}
		case *ast.CommClause:
			if n.Comm != nil {
				c++
			}
		case *ast.BinaryExpr:
			if n.Op == token.LAND || n.Op == token.LOR {
				c++
			}
		}
		return true
	})
	return c
}

// funcName is "Recv.Name" for methods, "Name" for functions.
func funcName(f *ast.FuncDecl) string {
	if f.Recv == nil || len(f.Recv.List) == 0 {
		return f.Name.Name
	}
	t := f.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
			continue
		case *ast.IndexExpr:
			t = x.X
			continue
		case *ast.IndexListExpr:
			t = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + f.Name.Name
		}
		return f.Name.Name
	}
}

// moduleRoot is the folder holding go.mod, above this package.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = up
	}
}

// TestComplexity: no function in the module's Go files, tests included,
// is more complex than maxComplexity. Generated files are exempt.
func TestComplexity(t *testing.T) {
	root := moduleRoot(t)
	var over []string
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		files++
		rel, _ := filepath.Rel(root, path)
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
				if c := complexity(fn); c > maxComplexity {
					over = append(over, rel+": "+funcName(fn)+" has complexity "+itoa(c))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read only %d Go files under %s: the walk is broken", files, root)
	}
	sort.Strings(over)
	for _, o := range over {
		t.Errorf("%s (at most %d: split it)", o, maxComplexity)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestComplexityCounts checks the measure on hand-counted functions.
func TestComplexityCounts(t *testing.T) {
	src := `package p
func a() {}
func b(x int) int { if x > 0 && x < 5 || x == 9 { return 1 }; for i := 0; i < x; i++ {}; return 0 }
func c(x int, ch chan int) { switch x { case 1, 2: case 3: default: }; select { case <-ch: default: }; for range ch {} }
`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a": 1, "b": 5, "c": 5}
	for _, d := range f.Decls {
		fn := d.(*ast.FuncDecl)
		if got := complexity(fn); got != want[fn.Name.Name] {
			t.Errorf("complexity(%s) = %d, want %d", fn.Name.Name, got, want[fn.Name.Name])
		}
	}
}
