package cli

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
	trainrun "github.com/trainer-go/trainer/run"
)

func benchCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "bench",
		Usage: "measure training speed on synthetic data (no download)",
		Description: "Runs full training steps (gather, forward, loss, backward, Adam) on random images\n" +
			"and labels, excludes the warm-up steps, and reports images/s, the median and p90\n" +
			"step time and the achieved GFLOP/s of the GEMM work.\n\n" +
			"Examples:\n   trainer bench --device=cpu --batch-size 32 --steps 200 --json\n   trainer bench --model resnet20 --optimizer sgd --batch-size 128",
		Flags: append([]ucli.Flag{
			&ucli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per step"},
			&ucli.IntFlag{Name: "steps", Value: 200, Usage: "timed steps"},
			&ucli.IntFlag{Name: "warmup", Value: 10, Usage: "untimed steps first"},
			&ucli.StringFlag{Name: "model", Value: model.DefaultSpec, Usage: "preset (" + strings.Join(model.Presets(), ", ") + "), model file or layer spec"},
			&ucli.StringFlag{Name: "optimizer", Value: "adam", Usage: "adam, adamw, sgd (with momentum 0.9, Nesterov) or rmsprop"},
			&ucli.BoolFlag{Name: "json", Usage: "print one JSON object on stdout"},
		}, deviceFlags()...),
		Action: runBench,
	}
}

// BenchResult is what bench prints with --json.
type BenchResult struct {
	Device          string  `json:"device"`
	Describe        string  `json:"hardware"`
	Precision       string  `json:"precision"`
	BatchSize       int     `json:"batch_size"`
	Steps           int     `json:"steps"`
	ImagesPerS      float64 `json:"images_per_s"`
	MsPerStepMedian float64 `json:"ms_per_step_median"`
	MsPerStepP90    float64 `json:"ms_per_step_p90"`
	GFLOPS          float64 `json:"gflops"`
}

func runBench(c *ucli.Context) error {
	bs, steps, warm := c.Int("batch-size"), c.Int("steps"), c.Int("warmup")
	if bs < 1 || bs > 65536 {
		return fmt.Errorf("--batch-size %d: must be between 1 and 65536", bs)
	}
	if steps < 1 || warm < 0 {
		return fmt.Errorf("--steps %d / --warmup %d: need at least one timed step", steps, warm)
	}
	opt := model.DefaultOptim(c.String("optimizer"))
	opt.Kind = c.String("optimizer")
	if opt.Kind == "sgd" {
		opt.Momentum, opt.Nesterov = 0.9, true
	}
	if err := opt.Check(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	in := model.Shape{C: 3, H: 32, W: 32}
	net, err := model.Plan(c.String("model"), in)
	if err != nil {
		return trainrun.FlagError(err)
	}
	b, err := openDeviceFlags(c)
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := Bench(b, net, bs, steps, warm, opt)
	if err != nil {
		return trainrun.WithBatchHint(err, b, net)
	}
	if c.Bool("json") {
		return json.NewEncoder(stdout).Encode(r)
	}
	fmt.Fprintf(stdout, "device %s (%s), precision %s, batch %d, %d steps\n", r.Device, r.Describe, r.Precision, r.BatchSize, r.Steps)
	_, err = fmt.Fprintf(stdout, "%.1f images/s, %.3f ms/step median, %.3f ms/step p90, %.1f GFLOP/s\n",
		r.ImagesPerS, r.MsPerStepMedian, r.MsPerStepP90, r.GFLOPS)
	return err
}

// Bench trains net on b on synthetic data and times each step.
func Bench(b device.Backend, net *model.Network, bs, steps, warm int, opt model.OptimConfig) (BenchResult, error) {
	if err := net.Build(b, bs, 1); err != nil {
		return BenchResult{}, err
	}
	defer net.Close()
	const nImages = 1024
	rng := rand.New(rand.NewPCG(1, 2))
	d := &model.Data{Images: make([]uint8, nImages*net.Input.Size()), Labels: make([]int32, nImages), N: nImages}
	for i := range d.Images {
		d.Images[i] = uint8(rng.IntN(256))
	}
	for i := range d.Labels {
		d.Labels[i] = int32(rng.IntN(net.Classes))
	}
	tr, err := model.NewTrainer(net, d, nil, model.TrainOptions{Batch: bs, LR: 1e-3, Optim: opt, Seed: 1})
	if err != nil {
		return BenchResult{}, err
	}
	defer tr.Close()
	times := make([]time.Duration, 0, steps)
	var total time.Duration
	for s := 0; s < warm+steps; s++ {
		t0 := time.Now()
		tr.Step(s)
		if err := b.Sync(); err != nil {
			return BenchResult{}, err
		}
		if s >= warm {
			dt := time.Since(t0)
			times = append(times, dt)
			total += dt
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	ips := float64(steps*bs) / total.Seconds()
	return BenchResult{
		Device: b.Name(), Describe: b.Describe(), Precision: b.Caps().Precision.String(), BatchSize: bs, Steps: steps,
		ImagesPerS:      round(ips, 1),
		MsPerStepMedian: ms(times[len(times)/2]),
		MsPerStepP90:    ms(times[min(len(times)-1, len(times)*9/10)]),
		GFLOPS:          round(ips*net.FlopsPerImage()/1e9, 2),
	}, nil
}
