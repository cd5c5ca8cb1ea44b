package model

import (
	"fmt"

	"github.com/trainer-go/trainer/device"
)

// Report is an evaluation in depth: the loss and accuracy the device
// computed (the same figures as validation during training) and the
// confusion matrix from the logits' first maxima.
type Report struct {
	Loss, Accuracy float64
	Samples        int
	// Confusion[t][p] counts images of true class t predicted as p.
	Confusion [][]int
}

// ClassAccuracy is the fraction of each class's images predicted right
// (NaN-free: a class without images gets 0).
func (r *Report) ClassAccuracy() []float64 {
	out := make([]float64, len(r.Confusion))
	for t, row := range r.Confusion {
		n := 0
		for _, v := range row {
			n += v
		}
		if n > 0 {
			out[t] = float64(row[t]) / float64(n)
		}
	}
	return out
}

// EvaluateReport runs net over d in batches of bs like validation (with the
// test-time augmentation tta), and also downloads each batch's logits to
// build the confusion matrix.
func EvaluateReport(net *Network, d *Data, bs int, tta TTA) (*Report, error) {
	b := net.Backend()
	if bs < 1 || bs > net.MaxBatch() {
		return nil, fmt.Errorf("evaluation batch %d: must be between 1 and %d", bs, net.MaxBatch())
	}
	if err := checkLabels(d, net.Classes, "evaluation set"); err != nil {
		return nil, err
	}
	dd, err := upload(b, d, "evaluation set")
	if err != nil {
		return nil, err
	}
	defer dd.free(b)
	iota, err := uploadIota(b, d.N)
	if err != nil {
		return nil, err
	}
	defer b.Free(iota)
	stats, err := b.Alloc("loss statistics", device.F32, 2)
	if err != nil {
		return nil, err
	}
	defer b.Free(stats)
	k := net.Classes
	r := &Report{Samples: d.N, Confusion: make([][]int, k)}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, k)
	}
	logits := make([]float32, bs*k)
	eg, err := newEvalGraphs(b, bs, nil)
	if err != nil {
		return nil, err
	}
	defer eg.close()
	err = evalPass(net, dd, iota, bs, stats, tta, eg, func(off, cnt int, out device.Buffer) error {
		if err := b.DownloadF32(out, 0, logits[:cnt*k]); err != nil {
			return err
		}
		for i := 0; i < cnt; i++ {
			row := logits[i*k : (i+1)*k]
			p := 0
			for j, v := range row {
				if v > row[p] {
					p = j
				}
			}
			if t := int(d.Labels[off+i]); t >= 0 && t < k {
				r.Confusion[t][p]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	host := make([]float32, 2)
	if err := b.DownloadF32(stats, 0, host); err != nil {
		return nil, err
	}
	r.Loss, r.Accuracy = float64(host[0])/float64(d.N), float64(host[1])/float64(d.N)
	return r, nil
}
