package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/trainer-go/trainer/device"
)

// Data is a labelled image set in host memory: N images of Shape, uint8,
// channel-major, as read from the dataset files.
type Data struct {
	Images []uint8
	Labels []int32
	N      int
}

// deviceData is a Data resident on the backend.
type deviceData struct {
	images, labels device.Buffer
	n              int
}

// adopter is implemented by backends that can use host memory in place
// (the CPU backend): the dataset is then not copied a second time.
type adopter interface {
	Adopt([]uint8) device.Buffer
	AdoptI32([]int32) device.Buffer
}

func upload(b device.Backend, d *Data, what string) (*deviceData, error) {
	if a, ok := b.(adopter); ok {
		return &deviceData{images: a.Adopt(d.Images), labels: a.AdoptI32(d.Labels), n: d.N}, nil
	}
	im, err := b.Alloc(what+" images", device.U8, len(d.Images))
	if err != nil {
		return nil, err
	}
	lb, err := b.Alloc(what+" labels", device.I32, len(d.Labels))
	if err != nil {
		return nil, err
	}
	if err := b.UploadU8(im, 0, d.Images); err != nil {
		return nil, err
	}
	if err := b.UploadI32(lb, 0, d.Labels); err != nil {
		return nil, err
	}
	return &deviceData{images: im, labels: lb, n: d.N}, nil
}

// EpochResult is what one epoch reports, under Keras's metric names.
type EpochResult struct {
	Epoch       int     `json:"epoch"`
	Loss        float64 `json:"loss"`
	Accuracy    float64 `json:"accuracy"`
	ValLoss     float64 `json:"val_loss"`
	ValAccuracy float64 `json:"val_accuracy"`
	Seconds     float64 `json:"seconds"`
	ImagesPerS  float64 `json:"images_per_s"`
}

// Progress is a look at a running epoch.
type Progress struct {
	Epoch, Step, Steps int
	Loss, Accuracy     float64 // running means over the epoch so far
	ImagesPerS         float64
	Elapsed            time.Duration
}

// TrainOptions configure a Trainer.
type TrainOptions struct {
	Batch int
	Adam  Config
	Seed  uint64
	// ProgressEvery is how often OnProgress is called (0: never). Reading the
	// running loss waits for the device, so keep it to seconds, not steps.
	ProgressEvery time.Duration
	OnProgress    func(Progress)
}

// Trainer runs epochs of a network over a training set.
type Trainer struct {
	net        *Network
	b          device.Backend
	train, val *deviceData
	opt        TrainOptions
	rng        *rand.Rand
	perm       []int32
	permBuf    device.Buffer   // shuffled indices of the training set
	batchIdx   []device.Buffer // views of permBuf, one per step, made once
	iotaBuf    device.Buffer   // 0..n-1 for evaluation
	stats      device.Buffer   // F32 [2]: loss sum, correct count
	host       []float32       // 2 floats, its own allocation: backends may hand it to C
	epoch      int
}

// NewTrainer puts the datasets on the network's backend.
func NewTrainer(net *Network, train, val *Data, opt TrainOptions) (*Trainer, error) {
	b := net.Backend()
	if opt.Batch < 1 || opt.Batch > net.MaxBatch() {
		return nil, fmt.Errorf("batch size %d: must be between 1 and %d", opt.Batch, net.MaxBatch())
	}
	t := &Trainer{net: net, b: b, opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, 0xda7a)), host: make([]float32, 2)}
	var err error
	if t.train, err = upload(b, train, "training set"); err != nil {
		return nil, err
	}
	if val != nil {
		if t.val, err = upload(b, val, "validation set"); err != nil {
			return nil, err
		}
	}
	t.perm = make([]int32, train.N)
	if t.permBuf, err = b.Alloc("shuffled indices", device.I32, train.N); err != nil {
		return nil, err
	}
	for i := range t.perm {
		t.perm[i] = int32(i)
	}
	if err := b.UploadI32(t.permBuf, 0, t.perm); err != nil {
		return nil, err
	}
	for off := 0; off < train.N; off += opt.Batch {
		t.batchIdx = append(t.batchIdx, b.View(t.permBuf, off, min(opt.Batch, train.N-off)))
	}
	nIota := train.N
	if val != nil {
		nIota = max(nIota, val.N)
	}
	if t.iotaBuf, err = b.Alloc("evaluation indices", device.I32, nIota); err != nil {
		return nil, err
	}
	iota := make([]int32, nIota)
	for i := range iota {
		iota[i] = int32(i)
	}
	if err := b.UploadI32(t.iotaBuf, 0, iota); err != nil {
		return nil, err
	}
	if t.stats, err = b.Alloc("loss statistics", device.F32, 2); err != nil {
		return nil, err
	}
	return t, nil
}

// Epoch is the number of epochs completed.
func (t *Trainer) Epoch() int { return t.epoch }

func (t *Trainer) readStats(n int) (loss, acc float64, err error) {
	if err := t.b.DownloadF32(t.stats, 0, t.host); err != nil {
		return 0, 0, err
	}
	return float64(t.host[0]) / float64(n), float64(t.host[1]) / float64(n), nil
}

// RunEpoch shuffles the training set, trains on every batch (the last one
// may be smaller), then evaluates on the validation set. Losses accumulate
// on the device and are read once at the end (and at progress reports).
// A cancelled ctx stops between steps with ctx's error.
func (t *Trainer) RunEpoch(ctx context.Context) (EpochResult, error) {
	t.epoch++
	r := EpochResult{Epoch: t.epoch}
	n, bs := t.train.n, t.opt.Batch
	for i := range t.perm {
		t.perm[i] = int32(i)
	}
	t.rng.Shuffle(n, func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	if err := t.b.UploadI32(t.permBuf, 0, t.perm); err != nil {
		return r, err
	}
	t.b.Fill(t.stats, 2, 0)
	start := time.Now()
	next := start.Add(t.opt.ProgressEvery)
	steps := (n + bs - 1) / bs
	for s := 0; s < steps; s++ {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		off := s * bs
		cnt := min(bs, n-off)
		t.net.LoadBatch(t.train.images, t.train.labels, t.batchIdx[s], cnt)
		t.net.TrainStep(cnt, t.opt.Adam, t.stats)
		if t.opt.OnProgress != nil && t.opt.ProgressEvery > 0 && time.Now().After(next) {
			done := off + cnt
			l, a, err := t.readStats(done)
			if err != nil {
				return r, err
			}
			el := time.Since(start)
			t.opt.OnProgress(Progress{Epoch: t.epoch, Step: s + 1, Steps: steps, Loss: l, Accuracy: a,
				ImagesPerS: float64(done) / el.Seconds(), Elapsed: el})
			next = time.Now().Add(t.opt.ProgressEvery)
		}
	}
	var err error
	if r.Loss, r.Accuracy, err = t.readStats(n); err != nil {
		return r, err
	}
	r.Seconds = time.Since(start).Seconds()
	r.ImagesPerS = float64(n) / r.Seconds
	if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) {
		return r, fmt.Errorf("epoch %d: the training loss became %v (diverged); try a lower --lr (now %g)", t.epoch, r.Loss, t.opt.Adam.LR)
	}
	if t.val != nil {
		if r.ValLoss, r.ValAccuracy, err = t.Validate(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Step trains on batch s (modulo the number of batches) of the current
// order, without shuffling; the benchmark's unit of work.
func (t *Trainer) Step(s int) {
	idx := t.batchIdx[s%len(t.batchIdx)]
	t.net.LoadBatch(t.train.images, t.train.labels, idx, idx.Len())
	t.net.TrainStep(idx.Len(), t.opt.Adam, t.stats)
}

// Validate evaluates the network on the validation set.
func (t *Trainer) Validate() (loss, acc float64, err error) {
	if t.val == nil || t.val.n == 0 {
		return 0, 0, fmt.Errorf("no validation data")
	}
	return evaluate(t.net, t.val, t.iotaBuf, t.opt.Batch, t.stats, t.readStats)
}

func evaluate(net *Network, dd *deviceData, iota device.Buffer, bs int, stats device.Buffer, read func(int) (float64, float64, error)) (float64, float64, error) {
	b := net.Backend()
	b.Fill(stats, 2, 0)
	for off := 0; off < dd.n; off += bs {
		cnt := min(bs, dd.n-off)
		net.LoadBatch(dd.images, dd.labels, b.View(iota, off, cnt), cnt)
		net.Loss(net.Forward(cnt), cnt, false, stats)
	}
	return read(dd.n)
}

// Evaluate runs net over d in batches of bs (at most net.MaxBatch()) and
// returns the mean loss and accuracy.
func Evaluate(net *Network, d *Data, bs int) (loss, acc float64, err error) {
	b := net.Backend()
	if bs < 1 || bs > net.MaxBatch() {
		return 0, 0, fmt.Errorf("evaluation batch %d: must be between 1 and %d", bs, net.MaxBatch())
	}
	dd, err := upload(b, d, "evaluation set")
	if err != nil {
		return 0, 0, err
	}
	iota, err := b.Alloc("evaluation indices", device.I32, d.N)
	if err != nil {
		return 0, 0, err
	}
	defer b.Free(iota)
	idx := make([]int32, d.N)
	for i := range idx {
		idx[i] = int32(i)
	}
	if err := b.UploadI32(iota, 0, idx); err != nil {
		return 0, 0, err
	}
	stats, err := b.Alloc("loss statistics", device.F32, 2)
	if err != nil {
		return 0, 0, err
	}
	defer b.Free(stats)
	var host [2]float32
	return evaluate(net, dd, iota, bs, stats, func(n int) (float64, float64, error) {
		if err := b.DownloadF32(stats, 0, host[:]); err != nil {
			return 0, 0, err
		}
		return float64(host[0]) / float64(n), float64(host[1]) / float64(n), nil
	})
}
