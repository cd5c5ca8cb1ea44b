//go:build cgo

package gpu

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/cuda"
	"github.com/trainer-go/trainer/kernels"
	"github.com/trainer-go/trainer/kernels/emu"
)

// TestMain also checks, after a full run (no -run filter), that the tests
// launched every kernel through the Backend's own launch code on the
// emulator (emuDev), so each kernel's packing in this package was checked
// against its C signature at least once.
func TestMain(m *testing.M) {
	code := m.Run()
	if f := flag.Lookup("test.run"); code == 0 && (f == nil || f.Value.String() == "") {
		got := emu.Launched()
		for _, k := range kernels.Kernels {
			if got[k.Name] == 0 {
				fmt.Fprintf(os.Stderr, "FAIL: kernel %s was never launched through the GPU backend on the emulator\n", k.Name)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// TestPackingChecked: a launch packed in the wrong order, with a wrong
// type or a missing argument is refused before it runs, naming the
// parameter; the right packing runs.
func TestPackingChecked(t *testing.T) {
	d := &emuDev{t: t}
	defer d.Close()
	x, err := d.MemAlloc(64, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer d.MemFree(x)
	a := cuda.NewArgs()
	defer a.Free()
	for _, c := range []struct {
		pack func(*cuda.Args)
		want string // "" runs
	}{
		{func(a *cuda.Args) { a.Ptr(x).I32(16).F32(1) }, ""},                     // fill_f32(float* x, int n, float v)
		{func(a *cuda.Args) { a.Ptr(x).F32(1).I32(16) }, "parameter 1 is int"},   // order
		{func(a *cuda.Args) { a.Ptr(x).I64(16).F32(1) }, "parameter 1 is int"},   // size
		{func(a *cuda.Args) { a.Ptr(x).I32(16).I32(1) }, "parameter 2 is float"}, // type
		{func(a *cuda.Args) { a.Ptr(x).I32(16) }, "takes 3 arguments, the Backend packed 2"},
	} {
		c.pack(a.Reset())
		err := d.Launch(kernels.FillKernel, 1, 32, a)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("packing %d arguments: err = %v, want %q", a.Len(), err, c.want)
		}
	}
	if got := f32s(x, 16); got[15] != 1 {
		t.Errorf("the right packing did not run: %v", got)
	}
}
