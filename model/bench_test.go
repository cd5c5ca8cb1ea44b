package model

import (
	"fmt"
	"testing"
)

// BenchmarkTrainStep times one full CPU training step of the default model
// (gather, forward, loss, backward, Adam) and reports images/s; allocs/op
// must be 0.
func BenchmarkTrainStep(b *testing.B) {
	benchSteps(b, DefaultSpec, DefaultAdam, 32, 128)
}

// BenchmarkResNet20 is the same for resnet20 with SGD-Nesterov at batch 128.
func BenchmarkResNet20(b *testing.B) {
	benchSteps(b, "resnet20", OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true}, 128)
}

func benchSteps(b *testing.B, spec string, opt OptimConfig, batches ...int) {
	for _, bs := range batches {
		b.Run(fmt.Sprintf("batch%d", bs), func(b *testing.B) {
			be := newCPU(b, 0)
			net, err := Plan(spec, Shape{C: 3, H: 32, W: 32})
			if err != nil {
				b.Fatal(err)
			}
			if err := net.Build(be, bs, 1); err != nil {
				b.Fatal(err)
			}
			n := 4 * bs
			d := &Data{Images: make([]uint8, n*3072), Labels: make([]int32, n), N: n}
			for i := range d.Images {
				d.Images[i] = uint8(i * 7)
			}
			tr, err := NewTrainer(net, d, nil, TrainOptions{Batch: bs, Optim: opt})
			if err != nil {
				b.Fatal(err)
			}
			tr.Step(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.Step(i)
			}
			b.ReportMetric(float64(b.N*bs)/b.Elapsed().Seconds(), "images/s")
			b.ReportMetric(float64(b.N*bs)*net.FlopsPerImage()/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
