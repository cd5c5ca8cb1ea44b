package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vaddPTX is a hand-written kernel: c[i] = (a[i] + b[i]) * scale for i < n.
// PTX ISA 6.0 for sm_50 is accepted by every driver since CUDA 9 and is JIT
// compiled for whatever GPU runs it.
const vaddPTX = `
.version 6.0
.target sm_50
.address_size 64

.visible .entry vadd(
	.param .u64 vadd_a,
	.param .u64 vadd_b,
	.param .u64 vadd_c,
	.param .u32 vadd_n,
	.param .f32 vadd_scale
)
{
	.reg .pred  %p<2>;
	.reg .b32   %r<6>;
	.reg .f32   %f<5>;
	.reg .b64   %rd<11>;

	ld.param.u64    %rd1, [vadd_a];
	ld.param.u64    %rd2, [vadd_b];
	ld.param.u64    %rd3, [vadd_c];
	ld.param.u32    %r1, [vadd_n];
	ld.param.f32    %f1, [vadd_scale];
	mov.u32         %r2, %ctaid.x;
	mov.u32         %r3, %ntid.x;
	mov.u32         %r4, %tid.x;
	mad.lo.s32      %r5, %r2, %r3, %r4;
	setp.ge.u32     %p1, %r5, %r1;
	@%p1 bra        DONE;
	cvta.to.global.u64  %rd4, %rd1;
	cvta.to.global.u64  %rd5, %rd2;
	cvta.to.global.u64  %rd6, %rd3;
	mul.wide.u32    %rd7, %r5, 4;
	add.s64         %rd8, %rd4, %rd7;
	add.s64         %rd9, %rd5, %rd7;
	add.s64         %rd10, %rd6, %rd7;
	ld.global.f32   %f2, [%rd8];
	ld.global.f32   %f3, [%rd9];
	add.f32         %f4, %f2, %f3;
	mul.f32         %f4, %f4, %f1;
	st.global.f32   [%rd10], %f4;
DONE:
	ret;
}
`

// badPTX does not assemble: the JIT log must say where.
const badPTX = `
.version 6.0
.target sm_50
.address_size 64
.visible .entry broken()
{
	this_is_not_an_instruction %r1;
	ret;
}
`

// TestPTXAssembles checks the test kernels offline with ptxas, where the CUDA
// toolkit is installed, so a typo in them shows up without a GPU.
func TestPTXAssembles(t *testing.T) {
	ptxas, err := exec.LookPath("ptxas")
	if err != nil {
		t.Skip("ptxas not found (install the CUDA toolkit to check the PTX without a GPU)")
	}
	dir := t.TempDir()
	for name, src := range map[string]string{"vadd": vaddPTX, "broken": badPTX} {
		in := filepath.Join(dir, name+".ptx")
		if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		// sm_80: CUDA 11.8 and CUDA 13 ptxas both have it (CUDA 13 dropped sm_70).
		out, err := exec.Command(ptxas, "-arch=sm_80", in, "-o", filepath.Join(dir, name+".cubin")).CombinedOutput()
		if name == "vadd" && err != nil {
			t.Errorf("vadd PTX does not assemble: %v\n%s", err, out)
		}
		if name == "broken" && (err == nil || !strings.Contains(string(out), "error")) {
			t.Errorf("broken PTX assembled: %v\n%s", err, out)
		}
	}
}
