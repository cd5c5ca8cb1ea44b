package cpu

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
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

// HostMemory is the memory available for new allocations and the total, in
// bytes: /proc/meminfo's MemAvailable and MemTotal, each capped by a cgroup
// v2 limit (memory.max less memory.current) when one is set. It fails where
// /proc/meminfo does not exist.
func HostMemory() (avail, total uint64, err error) {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("reading the host's memory size: %w", err)
	}
	avail, total = meminfoField(string(raw), "MemAvailable"), meminfoField(string(raw), "MemTotal")
	if total == 0 {
		return 0, 0, fmt.Errorf("reading the host's memory size: no MemTotal in /proc/meminfo")
	}
	if limit, ok := cgroupValue("/sys/fs/cgroup/memory.max"); ok && limit < total {
		used, _ := cgroupValue("/sys/fs/cgroup/memory.current")
		total = limit
		avail = min(avail, limit-min(used, limit))
	}
	return avail, total, nil
}

// meminfoField is the value of a "Key:   123 kB" line in bytes, 0 if absent.
func meminfoField(meminfo, key string) uint64 {
	for line := range strings.Lines(meminfo) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		return n
	}
	return 0
}

// cgroupValue reads a cgroup v2 number; "max" or an unreadable file is no
// value.
func cgroupValue(path string) (uint64, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	return n, err == nil
}
