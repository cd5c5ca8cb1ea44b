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
			"step time (waiting for the device after each step) and the achieved GFLOP/s of the\n" +
			"GEMM work; then the same steps again in a loop that waits only at its end, as an\n" +
			"epoch does (ms_per_step_loop). On a GPU it also says whether the steps ran as CUDA\n" +
			"graphs (--cuda-graphs) and counts the launches of one step: kernels and cuBLAS\n" +
			"calls op by op (the first step always is), and as a graph (the steady state).\n\n" +
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
	// The same steps run back to back, waiting only at the end.
	ImagesPerSLoop float64 `json:"images_per_s_loop"`
	MsPerStepLoop  float64 `json:"ms_per_step_loop"`
	// CUDAGraphs: the steady-state steps ran as captured graphs;
	// GraphsOff says why not where the device has graphs.
	CUDAGraphs bool   `json:"cuda_graphs"`
	GraphsOff  string `json:"cuda_graphs_off,omitempty"`
	// What one step queued, on a backend that counts: op by op (the first
	// step) and in the steady state (one graph launch with graphs).
	LaunchesEager  *StepLaunches `json:"launches_per_step_eager,omitempty"`
	LaunchesSteady *StepLaunches `json:"launches_per_step,omitempty"`
}

// StepLaunches is what one training step hands the device.
type StepLaunches struct {
	Kernels int `json:"kernels"`      // kernel launches
	Gemms   int `json:"cublas_calls"` // cuBLAS GEMM calls
	Graphs  int `json:"graphs"`       // graph launches
	Calls   int `json:"calls"`        // the three together: what the host pays per step
	// In a graph launch: the kernels and GEMMs the graph holds.
	GraphKernels int `json:"graph_kernels,omitempty"`
	GraphGemms   int `json:"graph_cublas_calls,omitempty"`
}

func stepLaunches(l device.Launches, nodes device.Launches) *StepLaunches {
	s := &StepLaunches{Kernels: l.Kernels, Gemms: l.Gemms, Graphs: l.Graphs, Calls: l.Calls()}
	if l.Graphs > 0 {
		s.GraphKernels, s.GraphGemms = nodes.Kernels, nodes.Gemms
	}
	return s
}

// String is the launches in words.
func (s *StepLaunches) String() string {
	if s.Graphs > 0 {
		return fmt.Sprintf("%d graph launch(es) (%d kernels + %d cuBLAS calls inside) and %d other calls", s.Graphs, s.GraphKernels, s.GraphGemms, s.Kernels+s.Gemms)
	}
	return fmt.Sprintf("%d kernel launches + %d cuBLAS calls = %d calls", s.Kernels, s.Gemms, s.Calls)
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
	b, err := openDevice(c)
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
	return printBench(r)
}

// printBench prints a BenchResult for people.
func printBench(r BenchResult) error {
	fmt.Fprintf(stdout, "device %s (%s), precision %s, batch %d, %d steps\n", r.Device, r.Describe, r.Precision, r.BatchSize, r.Steps)
	fmt.Fprintf(stdout, "%.1f images/s, %.3f ms/step median, %.3f ms/step p90, %.1f GFLOP/s\n",
		r.ImagesPerS, r.MsPerStepMedian, r.MsPerStepP90, r.GFLOPS)
	fmt.Fprintf(stdout, "in a loop: %.1f images/s, %.3f ms/step\n", r.ImagesPerSLoop, r.MsPerStepLoop)
	switch {
	case r.CUDAGraphs:
		fmt.Fprintln(stdout, "CUDA graphs: on")
	case r.GraphsOff != "":
		fmt.Fprintf(stdout, "CUDA graphs: off (%s)\n", r.GraphsOff)
	}
	if r.LaunchesEager != nil {
		fmt.Fprintf(stdout, "per step: op by op %v; steady state %v\n", r.LaunchesEager, r.LaunchesSteady)
	}
	return nil
}

// Bench trains net on b on synthetic data and times each step, then the
// same number of steps back to back.
func Bench(b device.Backend, net *model.Network, bs, steps, warm int, opt model.OptimConfig) (BenchResult, error) {
	if err := net.Build(b, bs, 1); err != nil {
		return BenchResult{}, err
	}
	defer net.Close()
	nImages := max(1024, bs) // at least one full batch
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
	lc, counts := b.(device.LaunchCounter)
	launches := func() device.Launches {
		if counts {
			return lc.Launches()
		}
		return device.Launches{}
	}
	times := make([]time.Duration, 0, steps)
	var total time.Duration
	var first, last device.Launches
	for s := 0; s < warm+steps; s++ {
		before := launches()
		t0 := time.Now()
		if err := tr.Step(s); err != nil {
			return BenchResult{}, err
		}
		if err := b.Sync(); err != nil {
			return BenchResult{}, err
		}
		dt := time.Since(t0)
		last = launches().Sub(before)
		if s == 0 {
			first = last
		}
		if s >= warm {
			times = append(times, dt)
			total += dt
		}
	}
	loop, err := benchLoop(b, tr, warm+steps, steps)
	if err != nil {
		return BenchResult{}, err
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	ips := float64(steps*bs) / total.Seconds()
	gs := tr.Graphs()
	r := BenchResult{
		Device: b.Name(), Describe: b.Describe(), Precision: b.Caps().Precision.String(), BatchSize: bs, Steps: steps,
		ImagesPerS:      round(ips, 1),
		MsPerStepMedian: ms(times[len(times)/2]),
		MsPerStepP90:    ms(times[min(len(times)-1, len(times)*9/10)]),
		GFLOPS:          round(ips*net.FlopsPerImage()/1e9, 2),
		ImagesPerSLoop:  round(float64(steps*bs)/loop.Seconds(), 1),
		MsPerStepLoop:   round(loop.Seconds()*1000/float64(steps), 4),
		CUDAGraphs:      gs.Used, GraphsOff: gs.Off,
	}
	if counts {
		r.LaunchesEager, r.LaunchesSteady = stepLaunches(first, gs.Nodes), stepLaunches(last, gs.Nodes)
	}
	return r, nil
}

// benchLoop times steps training steps from step from on, queued back to
// back and waited for once at the end, as in an epoch.
func benchLoop(b device.Backend, tr *model.Trainer, from, steps int) (time.Duration, error) {
	t0 := time.Now()
	for s := from; s < from+steps; s++ {
		if err := tr.Step(s); err != nil {
			return 0, err
		}
	}
	if err := b.Sync(); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}
