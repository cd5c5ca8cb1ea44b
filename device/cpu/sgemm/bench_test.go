package sgemm

import (
	"math/rand"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchShapes are the GEMMs of the CIFAR CNN at batch 32 (forward, weight
// gradients, input gradients) plus a square one.
var benchShapes = []struct {
	name string
	s    shape
}{
	{"fwd_conv1", shape{false, false, 32, 28800, 27}},
	{"fwd_conv2", shape{false, false, 64, 5408, 288}},
	{"fwd_conv3", shape{false, false, 64, 512, 576}},
	{"fwd_fc1", shape{false, true, 32, 64, 1024}},
	{"fwd_fc2", shape{false, true, 32, 10, 64}},
	{"wgrad_conv1", shape{false, true, 32, 27, 28800}},
	{"wgrad_conv2", shape{false, true, 64, 288, 5408}},
	{"wgrad_conv3", shape{false, true, 64, 576, 512}},
	{"wgrad_fc1", shape{true, false, 64, 1024, 32}},
	{"wgrad_fc2", shape{true, false, 10, 64, 32}},
	{"dgrad_conv2", shape{true, false, 288, 5408, 64}},
	{"dgrad_conv3", shape{true, false, 576, 512, 64}},
	{"dgrad_fc1", shape{false, false, 32, 1024, 64}},
	{"dgrad_fc2", shape{false, false, 32, 64, 10}},
	{"square1024", shape{false, false, 1024, 1024, 1024}},
}

func benchSgemm(b *testing.B, e *Engine, s shape) {
	rng := rand.New(rand.NewSource(1))
	p := newProblem(rng, s, 1, 0, 0)
	e.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
	b.ResetTimer()
	t0 := cpuTime()
	for i := 0; i < b.N; i++ {
		e.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
	}
	cpu := cpuTime() - t0
	flop := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	// Flops per CPU-second of this process: the per-core efficiency, less
	// sensitive than wall time to other load on a shared machine.
	if cpu > 0 {
		b.ReportMetric(flop/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkSgemm runs every shape on an engine with runtime.NumCPU() threads.
func BenchmarkSgemm(b *testing.B) {
	e := NewEngine(0)
	defer e.Close()
	for _, bs := range benchShapes {
		b.Run(bs.name, func(b *testing.B) { benchSgemm(b, e, bs.s) })
	}
}

// BenchmarkSgemm1 is BenchmarkSgemm on one thread.
func BenchmarkSgemm1(b *testing.B) {
	e := NewEngine(1)
	defer e.Close()
	for _, bs := range benchShapes {
		b.Run(bs.name, func(b *testing.B) { benchSgemm(b, e, bs.s) })
	}
}

// resnetShapes are the GEMMs of ResNet-20 on CIFAR at batch 128 in CNHW
// im2col form, one stage each: forward W[OC, C*9] x col[C*9, N*OH*OW],
// weight gradient dy x col^T (k = N*OH*OW), data gradient W^T x dy (k = OC).
var resnetShapes = []struct {
	name string
	s    shape
}{
	{"fwd_s0", shape{false, false, 16, 131072, 27}},
	{"fwd_s1", shape{false, false, 16, 131072, 144}},
	{"fwd_s2", shape{false, false, 32, 32768, 288}},
	{"fwd_s3", shape{false, false, 64, 8192, 576}},
	{"wgrad_s1", shape{false, true, 16, 144, 131072}},
	{"wgrad_s2", shape{false, true, 32, 288, 32768}},
	{"wgrad_s3", shape{false, true, 64, 576, 8192}},
	{"dgrad_s1", shape{true, false, 144, 131072, 16}},
	{"dgrad_s2", shape{true, false, 288, 32768, 32}},
	{"dgrad_s3", shape{true, false, 576, 8192, 64}},
}

// BenchmarkResNet20 runs the ResNet-20 shapes on runtime.NumCPU() threads.
func BenchmarkResNet20(b *testing.B) {
	e := NewEngine(0)
	defer e.Close()
	for _, bs := range resnetShapes {
		b.Run(bs.name, func(b *testing.B) { benchSgemm(b, e, bs.s) })
	}
}

// BenchmarkSgemmGeneric is BenchmarkSgemm with the portable kernel.
func BenchmarkSgemmGeneric(b *testing.B) {
	e := NewEngineGeneric(0)
	defer e.Close()
	for _, bs := range benchShapes {
		b.Run(bs.name, func(b *testing.B) { benchSgemm(b, e, bs.s) })
	}
}
