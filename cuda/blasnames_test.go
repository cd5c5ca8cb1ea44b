package cuda

import (
	"fmt"
	"testing"
)

// TestBlasNames: the search list for a CUDA N driver starts with
// libcublas.so.N, goes down one major at a time to 11, never names a major
// above N, and ends with libcublas.so; an unknown driver version tries
// every supported major, newest first.
func TestBlasNames(t *testing.T) {
	for _, major := range []int{11, 12, 13, 14} {
		names := blasNames(major)
		if len(names) != major-oldestBlas+2 {
			t.Errorf("driver %d: %v", major, names)
			continue
		}
		for i, m := 0, major; m >= oldestBlas; i, m = i+1, m-1 {
			if want := fmt.Sprintf("libcublas.so.%d", m); names[i] != want {
				t.Errorf("driver %d: names[%d] = %s, want %s (%v)", major, i, names[i], want, names)
			}
		}
		if names[len(names)-1] != "libcublas.so" {
			t.Errorf("driver %d: %v does not end with libcublas.so", major, names)
		}
	}
	if got := blasNames(0); fmt.Sprint(got) != fmt.Sprint(defaultBlasNames) {
		t.Errorf("unknown driver: %v, want %v", got, defaultBlasNames)
	}
	t.Setenv(EnvLibCUBLAS, "/x/libcublas.so.12")
	if got := libNames(EnvLibCUBLAS, blasNames(13)); len(got) != 1 || got[0] != "/x/libcublas.so.12" {
		t.Errorf("with %s set: %v", EnvLibCUBLAS, got)
	}
}
