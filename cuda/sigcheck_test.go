//go:build cgo

package cuda

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// apiH is api.h, carried in the test binary so the check runs from any directory.
//
//go:embed api.h
var apiH string

// headerDir finds a directory holding cuda.h (the CUDA toolkit's), or "".
func headerDir() string {
	var dirs []string
	for _, env := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if v := os.Getenv(env); v != "" {
			dirs = append(dirs, filepath.Join(v, "include"))
		}
	}
	dirs = append(dirs, "/usr/local/cuda/include", "/usr/include")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "cuda.h")); err == nil {
			return d
		}
	}
	return ""
}

// publicName is the name a C program writes for an exported symbol: cuda.h
// and cublas_v2.h #define the public name to the _v2 symbol.
func publicName(sym string) string { return strings.TrimSuffix(sym, "_v2") }

// TestSignaturesMatchHeaders compiles api.h against the vendor headers, when
// installed, and checks for every entry of the Go symbol tables that
//   - our function-pointer type is the same type as the header's function,
//   - the public name maps to exactly the symbol we dlsym,
//
// and that the enum values and type sizes we hard-code are the header's.
func TestSignaturesMatchHeaders(t *testing.T) {
	inc := headerDir()
	if inc == "" {
		t.Skip("cuda.h is not installed (install the CUDA toolkit, e.g. Debian's nvidia-cuda-toolkit, to check the signatures)")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	_, errBlas := os.Stat(filepath.Join(inc, "cublas_v2.h"))
	haveBlas := errBlas == nil

	var b strings.Builder
	b.WriteString("#include <stdio.h>\n#include <string.h>\n#include <cuda.h>\n")
	if haveBlas {
		b.WriteString("#include <cublas_v2.h>\n")
	} else {
		// api.h still needs the cuBLAS type names.
		b.WriteString("typedef int cublasStatus_t; typedef int cublasOperation_t; typedef int cublasMath_t;\n" +
			"typedef int libraryPropertyType; typedef struct cublasContext *cublasHandle_t; typedef CUstream cudaStream_t;\n" +
			"typedef int cudaDataType; typedef int cublasComputeType_t; typedef int cublasGemmAlgo_t;\n")
	}
	b.WriteString(`#define TR_REAL_HEADERS
#include "api.h"
tr_cu_api tr_cu;
tr_blas_api tr_blas;
/* CUDA 12.8+ headers map cuEventElapsedTime to cuEventElapsedTime_v2 (same
   signature). Every driver still exports the original entry point with its
   original behaviour, and CUDA 11 drivers have no _v2, so we keep it. */
static int legacy_ok(const char *sym) { return strcmp(sym, "cuEventElapsedTime") == 0; }
#define STR(x) #x
#define XSTR(x) STR(x)
#define CHECK(pub, sym) \
	_Static_assert(__builtin_types_compatible_p(tr_pfn_##sym, __typeof__(&pub)), "api.h: tr_pfn_" #sym " differs from the header's " #pub); \
	if (strcmp(XSTR(pub), #sym) != 0 && !legacy_ok(#sym)) { printf("%s maps to %s but we load %s\n", #pub, XSTR(pub), #sym); bad = 1; }
#define VALUE(name, v) _Static_assert((name) == (v), #name " is not " #v);
int main(void) {
	int bad = 0;
	_Static_assert(sizeof(CUresult) == 4 && sizeof(CUdevice) == 4 && sizeof(CUdeviceptr) == 8, "type sizes");
	_Static_assert(sizeof(CUdevice_attribute) == sizeof(int) && sizeof(CUjit_option) == sizeof(int), "enum sizes");
	VALUE(CU_JIT_INFO_LOG_BUFFER, 3) VALUE(CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, 4)
	VALUE(CU_JIT_ERROR_LOG_BUFFER, 5) VALUE(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, 6)
`)
	fmt.Fprintf(&b, "\tVALUE(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, %d)\n", attrMultiprocessorCount)
	fmt.Fprintf(&b, "\tVALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, %d)\n", attrComputeCapMajor)
	fmt.Fprintf(&b, "\tVALUE(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, %d)\n", attrComputeCapMinor)
	for code, n := range cudaErrors {
		fmt.Fprintf(&b, "\tVALUE(%s, %d)\n", n[0], code)
	}
	for _, sym := range driverSymbolNames() {
		fmt.Fprintf(&b, "\tCHECK(%s, %s)\n", publicName(sym), sym)
	}
	// The optional graph entry points. cuGraphInstantiateWithFlags is in
	// the headers from CUDA 11.4; cuGraphInstantiate is cuGraphInstantiate_v2
	// up to CUDA 11.8 and cuGraphInstantiateWithFlags from 12.0 (whose
	// drivers still export _v2 for older programs).
	b.WriteString("\tVALUE(CU_STREAM_CAPTURE_MODE_GLOBAL, 0)\n")
	graphSyms, blasOpt := optionalSymbolNames()
	for _, sym := range graphSyms {
		switch sym {
		case "cuGraphInstantiateWithFlags":
			fmt.Fprintf(&b, "#if CUDA_VERSION >= 11040\n\tCHECK(%s, %s)\n#endif\n", sym, sym)
		case "cuGraphInstantiate_v2":
			fmt.Fprintf(&b, "#if CUDA_VERSION < 12000\n\tCHECK(%s, %s)\n#endif\n", publicName(sym), sym)
		default:
			fmt.Fprintf(&b, "\tCHECK(%s, %s)\n", publicName(sym), sym)
		}
	}
	if haveBlas {
		b.WriteString("\t_Static_assert(sizeof(cublasStatus_t) == 4 && sizeof(cublasOperation_t) == 4 && sizeof(cublasMath_t) == 4, \"cuBLAS enum sizes\");\n")
		fmt.Fprintf(&b, "\tVALUE(CUBLAS_OP_N, %d) VALUE(CUBLAS_OP_T, %d)\n", cublasOpN, cublasOpT)
		fmt.Fprintf(&b, "\tVALUE(CUBLAS_DEFAULT_MATH, %d) VALUE(CUBLAS_TF32_TENSOR_OP_MATH, %d)\n", cublasDefaultMath, cublasTF32TensorOpMath)
		b.WriteString("\tVALUE(MAJOR_VERSION, 0) VALUE(MINOR_VERSION, 1) VALUE(PATCH_LEVEL, 2)\n")
		b.WriteString("\t_Static_assert(sizeof(cudaDataType) == 4 && sizeof(cublasComputeType_t) == 4 && sizeof(cublasGemmAlgo_t) == 4, \"GemmEx enum sizes\");\n")
		fmt.Fprintf(&b, "\tVALUE(CUDA_R_32F, %d) VALUE(CUDA_R_16BF, %d)\n", cudaR32F, cudaR16BF)
		fmt.Fprintf(&b, "\tVALUE(CUBLAS_COMPUTE_32F, %d) VALUE(CUBLAS_GEMM_DEFAULT, %d)\n", cublasCompute32F, cublasGemmDefault)
		for code, n := range cublasStatuses {
			fmt.Fprintf(&b, "\tVALUE(%s, %d)\n", n[0], code)
		}
		for _, sym := range append(blasSymbolNames(), blasOpt...) {
			fmt.Fprintf(&b, "\tCHECK(%s, %s)\n", publicName(sym), sym)
		}
	}
	b.WriteString("\treturn bad;\n}\n")

	dir := t.TempDir()
	src := filepath.Join(dir, "sigcheck.c")
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api.h"), []byte(apiH), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sigcheck")
	cmd := exec.Command(gcc, "-std=gnu11", "-Wall", "-Werror", "-Wno-unused-function", "-I", dir, "-I", inc, src, "-o", bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("api.h does not match %s/cuda.h: %v\n%s", inc, err, out)
	}
	if out, err := exec.Command(bin).CombinedOutput(); err != nil {
		t.Fatalf("symbol names differ from the headers' mappings:\n%s", out)
	}
	checked := len(driverSymbolNames()) + len(graphSyms)
	if haveBlas {
		checked += len(blasSymbolNames()) + len(blasOpt)
	} else {
		t.Logf("cublas_v2.h not found in %s: cuBLAS signatures not checked", inc)
	}
	t.Logf("%d signatures match the headers in %s", checked, inc)
}

// TestSignatureCheckCatchesAMistake makes sure the check above can fail: a
// wrong parameter type must not compile.
func TestSignatureCheckCatchesAMistake(t *testing.T) {
	inc := headerDir()
	gcc, err := exec.LookPath("gcc")
	if inc == "" || err != nil {
		t.Skip("needs cuda.h and gcc")
	}
	src := filepath.Join(t.TempDir(), "bad.c")
	// cuMemAlloc_v2 takes size_t; an unsigned int would truncate sizes.
	code := "#include <cuda.h>\ntypedef CUresult (*wrong)(CUdeviceptr *, unsigned int);\n" +
		"_Static_assert(__builtin_types_compatible_p(wrong, __typeof__(&cuMemAlloc)), \"differs\");\n"
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gcc, "-std=gnu11", "-fsyntax-only", "-I", inc, src).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "differs") {
		t.Fatalf("a wrong signature compiled: %v\n%s", err, out)
	}
}
