package cpu

import (
	"bufio"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/cpu"
)

// CPUModel is the processor's model name, from /proc/cpuinfo where there is one.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH + " CPU"
}

// Features lists the SIMD features that matter for the kernels.
func Features() []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	switch runtime.GOARCH {
	case "amd64":
		add(cpu.X86.HasSSE41, "sse4.1")
		add(cpu.X86.HasAVX, "avx")
		add(cpu.X86.HasAVX2, "avx2")
		add(cpu.X86.HasFMA, "fma")
		add(cpu.X86.HasAVX512F, "avx512f")
	case "arm64":
		add(cpu.ARM64.HasASIMD, "neon")
		add(cpu.ARM64.HasFPHP, "fp16")
		add(cpu.ARM64.HasSVE, "sve")
	}
	return out
}
