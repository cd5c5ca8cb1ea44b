package cuda

import (
	"fmt"
	"slices"
	"strings"
)

// CUDA graphs. A graph is the work queued on a stream between BeginCapture
// and EndCapture, recorded instead of run, then instantiated once and
// launched as one unit as often as needed: one driver call per launch
// instead of one per kernel. Each kernel node keeps the argument values it
// was captured with, so what changes between launches must live in device
// memory that the kernels read.
//
// The entry points are optional: the loader resolves them where the driver
// has them (every driver for CUDA 11.0 and newer: cuGraphInstantiate_v2;
// from CUDA 11.4 cuGraphInstantiateWithFlags, preferred), and a driver
// without them still runs everything, only without graphs. cuBLAS must let
// the caller set its workspace (cublasSetWorkspace_v2, cuBLAS 11.0 and
// newer): a GEMM captured without one would allocate inside the capture.

// The driver entry points CUDA graphs need, besides an instantiate function.
var graphEntryPoints = []string{"cuStreamBeginCapture_v2", "cuStreamEndCapture", "cuGraphLaunch", "cuGraphExecDestroy", "cuGraphDestroy"}

// graphSupport says whether a driver and cuBLAS that lack the optional
// entry points listed in drvMissing and blasMissing can run CUDA graphs:
// nil, or why not and what to do, naming the libraries and the symbols.
func graphSupport(driverPath string, drvMissing []string, blasPath string, blasMissing []string) error {
	var lack []string
	for _, n := range graphEntryPoints {
		if slices.Contains(drvMissing, n) {
			lack = append(lack, n)
		}
	}
	if slices.Contains(drvMissing, "cuGraphInstantiateWithFlags") && slices.Contains(drvMissing, "cuGraphInstantiate_v2") {
		lack = append(lack, "cuGraphInstantiateWithFlags (or cuGraphInstantiate_v2)")
	}
	if len(lack) > 0 {
		return fmt.Errorf("the CUDA driver %s lacks %s, which CUDA graphs need (drivers for CUDA 11.0 and newer have them): update the NVIDIA driver; until then each step runs kernel by kernel",
			driverPath, strings.Join(lack, ", "))
	}
	if slices.Contains(blasMissing, "cublasSetWorkspace_v2") {
		return fmt.Errorf("cuBLAS %s lacks cublasSetWorkspace_v2, which CUDA graphs need (cuBLAS 11.0 and newer have it): install a newer cuBLAS or point %s at one; until then each step runs kernel by kernel",
			blasPath, EnvLibCUBLAS)
	}
	return nil
}

// instantiateEntry is the instantiate function a driver lacking drvMissing
// is used with.
func instantiateEntry(drvMissing []string) string {
	if slices.Contains(drvMissing, "cuGraphInstantiateWithFlags") {
		return "cuGraphInstantiate_v2"
	}
	return "cuGraphInstantiateWithFlags"
}
