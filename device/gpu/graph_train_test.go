//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/model"
)

// Training and evaluation with captured steps against the same runs op by
// op, on the GPU backend over the emulator (whose captures record and
// replay launches as the driver does) and, under cuda, on a GPU: the
// weights, optimiser state, weight average, statistics, losses and
// accuracies after several epochs are bit for bit the same.

// emuGraphs is the GPU backend on the emulator with graphs on or off.
func emuGraphs(t *testing.T, on bool) *Backend { return emuGraphsAt(t, on, device.PrecisionFP32) }

// emuGraphsAt is emuGraphs computing its GEMMs in precision prec.
func emuGraphsAt(t *testing.T, on bool, prec device.Precision) *Backend {
	b := newEmuBackendAt(t, prec)
	m := device.GraphsAuto
	if !on {
		m = device.GraphsOff
	}
	if err := b.setGraphs(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// gpuGraphs is the GPU with graphs on or off, or a skip (a failure under
// TRAINER_REQUIRE_GPU=1) where there is none.
func gpuGraphs(t *testing.T, on bool) *Backend {
	m := device.GraphsAuto
	if !on {
		m = device.GraphsOff
	}
	b, err := New(device.Options{Graphs: m})
	if err != nil {
		if requireGPUSet() {
			t.Fatalf("%s=1 but no usable GPU: %v", envRequireGPU, err)
		}
		t.Skipf("no usable GPU: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// graphRun is one training run's settings and its data.
type graphRun struct {
	file       string
	in         model.Shape
	train, val *model.Data
	opt        model.TrainOptions
	epochs     int
}

// newGraphRun is residualNet (every layer kind) on 26 random 16x16 images
// in batches of 6: four full batches and a last one of 2.
func newGraphRun(t *testing.T, opt model.TrainOptions) *graphRun {
	file := filepath.Join(t.TempDir(), "net.json")
	os.WriteFile(file, []byte(residualNet), 0o644)
	rng := rand.New(rand.NewPCG(11, 11))
	data := func(n int) *model.Data {
		d := &model.Data{Images: make([]uint8, n*3*16*16), Labels: make([]int32, n), N: n}
		for i := range d.Images {
			d.Images[i] = uint8(rng.IntN(256))
		}
		for i := range d.Labels {
			d.Labels[i] = int32(rng.IntN(10))
		}
		return d
	}
	opt.Batch = 6
	return &graphRun{file: file, in: model.Shape{C: 3, H: 16, W: 16}, train: data(26), val: data(15), opt: opt, epochs: 3}
}

// trainer builds the network and a trainer on b.
func (r *graphRun) trainer(t *testing.T, b device.Backend, opt model.TrainOptions) (*model.Network, *model.Trainer) {
	t.Helper()
	net, err := model.Plan(r.file, r.in)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(b, opt.Batch, 7); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(net.Close)
	tr, err := model.NewTrainer(net, r.train, r.val, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	if _, err := tr.WarmUp(); err != nil {
		t.Fatal(err)
	}
	return net, tr
}

// outcome is what a run ends with.
type outcome struct {
	state   *model.State
	results []model.EpochResult
	status  model.GraphStatus
}

// run trains the epochs on b; with stopAt > 0 it stops after that global
// step and continues in a new trainer restored from the state (a resume).
func (r *graphRun) run(t *testing.T, b device.Backend, stopAt int) outcome {
	t.Helper()
	opt := r.opt
	if stopAt > 0 {
		opt.OnStep = func(tr *model.Trainer) error {
			if tr.TotalSteps() == stopAt {
				return errStop
			}
			return nil
		}
	}
	net, tr := r.trainer(t, b, opt)
	var out outcome
	for tr.Epoch() < r.epochs {
		res, err := tr.RunEpoch(context.Background())
		if errors.Is(err, errStop) {
			st, err := tr.State()
			if err != nil {
				t.Fatal(err)
			}
			tr.Close()
			net.Close()
			_, tr = r.trainer(t, b, r.opt)
			if err := tr.Restore(st); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out.results = append(out.results, res)
	}
	st, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	out.state, out.status = st, tr.Graphs()
	return out
}

var errStop = errors.New("stop here")

// sameRun fails unless two outcomes are bit for bit the same.
func sameRun(t *testing.T, what string, got, want outcome) {
	t.Helper()
	if len(got.results) != len(want.results) {
		t.Fatalf("%s: %d epochs, want %d", what, len(got.results), len(want.results))
	}
	for i, g := range got.results {
		w := want.results[i]
		if g.Loss != w.Loss || g.Accuracy != w.Accuracy || g.ValLoss != w.ValLoss || g.ValAccuracy != w.ValAccuracy {
			t.Fatalf("%s: epoch %d: loss %v acc %v val %v %v, want %v %v %v %v", what, i+1,
				g.Loss, g.Accuracy, g.ValLoss, g.ValAccuracy, w.Loss, w.Accuracy, w.ValLoss, w.ValAccuracy)
		}
	}
	gs, ws := got.state, want.state
	if gs.AdamStep != ws.AdamStep || gs.Epoch != ws.Epoch || gs.Pos != ws.Pos {
		t.Fatalf("%s: at epoch %d step %d (global %d), want %d %d (%d)", what, gs.Epoch, gs.Pos, gs.AdamStep, ws.Epoch, ws.Pos, ws.AdamStep)
	}
	for _, v := range []struct {
		name      string
		got, want []float32
	}{{"parameters", gs.Params, ws.Params}, {"first moments", gs.M, ws.M}, {"second moments", gs.V, ws.V}, {"weight average", gs.EMA, ws.EMA}} {
		sameBits(t, what+": "+v.name, v.got, v.want)
	}
}

// graphCases are the runs compared: every optimiser, a schedule changing
// the rate at every step, both augmentations, label smoothing, an average
// updated every other step and airbench's lookahead.
func graphCases() map[string]model.TrainOptions {
	sched := func(epoch, s, steps int) float64 { return 0.02 * float64(1+epoch*steps+s) / 10 }
	return map[string]model.TrainOptions{
		"sgd": {LR: 0.05, Seed: 4, Smoothing: 0.1, Schedule: sched,
			Optim: model.OptimConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
			EMA:   model.EMAOptions{Decay: 0.8, Every: 2}, Augment: true, Augmentation: model.Augmentation{Pad: 2, Reflect: true}},
		"adamw": {LR: 2e-3, Seed: 5, Schedule: sched, Optim: model.DefaultOptim("adamw"),
			EMA:     model.EMAOptions{Decay: 0.7, Every: 3, Lookahead: true, TotalSteps: 15},
			Augment: true, Augmentation: model.Augmentation{Pad: 2, NoFlip: true}},
		"adam": {LR: 1e-3, Seed: 6, Optim: model.DefaultAdam},
		"rmsprop": {LR: 1e-3, Seed: 7, Optim: model.OptimConfig{Kind: "rmsprop", Alpha: 0.99, Eps: 1e-8, Momentum: 0.5, WeightDecay: 1e-3,
			NormLRFactor: 2}},
	}
}

// TestGraphTrainingMatchesEager: three epochs (with a partial last batch)
// with captured steps give bit for bit what they give op by op, and so
// does a run stopped in the middle of the second epoch and resumed in a
// new trainer; the captured steps were used.
func TestGraphTrainingMatchesEager(t *testing.T) {
	for name, opt := range graphCases() {
		t.Run(name, func(t *testing.T) {
			r := newGraphRun(t, opt)
			eager := r.run(t, emuGraphs(t, false), 0)
			if eager.status.Used {
				t.Fatal("graphs used with --cuda-graphs off")
			}
			g := emuGraphs(t, true)
			before := g.Launches()
			graphed := r.run(t, g, 0)
			if !graphed.status.Used || graphed.status.Off != "" {
				t.Fatalf("graphs not used: %+v", graphed.status)
			}
			// 15 steps: the first of each batch size op by op, the rest one launch each.
			if n := g.Launches().Sub(before).Graphs; n < 12 {
				t.Errorf("%d graph launches in training", n)
			}
			sameRun(t, "graphs", graphed, eager)
			sameRun(t, "graphs, resumed at step 7", r.run(t, emuGraphs(t, true), 7), eager)
		})
	}
}

// TestGraphTrainingBF16: with --precision bf16 (the weights' bfloat16 copy
// made by a conversion kernel at the start of every forward pass, inside
// the captured step) captured steps give bit for bit what they give op by
// op, for the adamw case (a schedule, augmentation, lookahead).
func TestGraphTrainingBF16(t *testing.T) {
	r := newGraphRun(t, graphCases()["adamw"])
	eager := r.run(t, emuGraphsAt(t, false, device.PrecisionBF16), 0)
	graphed := r.run(t, emuGraphsAt(t, true, device.PrecisionBF16), 0)
	if !graphed.status.Used {
		t.Fatalf("graphs not used: %+v", graphed.status)
	}
	sameRun(t, "graphs in bf16", graphed, eager)
	fp32 := r.run(t, emuGraphs(t, false), 0)
	if slices.Equal(fp32.state.Params, eager.state.Params) {
		t.Fatal("bf16 training gave float32's parameters: the precision was not applied")
	}
}

// TestGraphTrainingOnGPU: the same on the GPU with its driver's graphs
// (skips without one): the sgd case, bit for bit.
func TestGraphTrainingOnGPU(t *testing.T) {
	r := newGraphRun(t, graphCases()["sgd"])
	eager := r.run(t, gpuGraphs(t, false), 0)
	g := gpuGraphs(t, true)
	if !g.Caps().Graphs {
		t.Skipf("no CUDA graphs here: %v", g.graphs)
	}
	graphed := r.run(t, g, 0)
	if !graphed.status.Used {
		t.Fatalf("graphs not used: %+v", graphed.status)
	}
	sameRun(t, "graphs on the GPU", graphed, eager)
	sameRun(t, "graphs on the GPU, resumed", r.run(t, g, 7), eager)
}

// TestGraphEvalMatchesEager: EvaluateReport with captured batches (plain
// and with flip TTA, 15 images in batches of 6) equals it op by op: loss,
// accuracy and confusion matrix.
func TestGraphEvalMatchesEager(t *testing.T) {
	r := newGraphRun(t, graphCases()["adam"])
	report := func(b *Backend, tta model.TTA) (*model.Report, device.Launches) {
		net, _ := r.trainer(t, b, r.opt)
		before := b.Launches()
		rep, err := model.EvaluateReport(net, r.val, 4, tta)
		if err != nil {
			t.Fatal(err)
		}
		return rep, b.Launches().Sub(before)
	}
	for _, tta := range []model.TTA{model.TTANone, model.TTAFlip} {
		want, _ := report(emuGraphs(t, false), tta)
		got, l := report(emuGraphs(t, true), tta)
		if l.Graphs < 2 {
			t.Errorf("TTA %v: %d graph launches for 4 batches", tta, l.Graphs)
		}
		if got.Loss != want.Loss || got.Accuracy != want.Accuracy || fmt.Sprint(got.Confusion) != fmt.Sprint(want.Confusion) {
			t.Fatalf("TTA %v: graphs %v %v %v, op by op %v %v %v", tta, got.Loss, got.Accuracy, got.Confusion, want.Loss, want.Accuracy, want.Confusion)
		}
	}
}

// TestGraphCaptureFailureFallsBack: when a capture fails, training goes on
// op by op, says why in a debug message, and ends as an eager run does.
func TestGraphCaptureFailureFallsBack(t *testing.T) {
	r := newGraphRun(t, graphCases()["sgd"])
	r.epochs = 1
	eager := r.run(t, emuGraphs(t, false), 0)
	g := emuGraphs(t, true)
	g.d.(*emuDev).failCapture = errors.New("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED (injected)")
	var debug []string
	r.opt.Debugf = func(format string, args ...any) { debug = append(debug, fmt.Sprintf(format, args...)) }
	got := r.run(t, g, 0)
	if got.status.Used || !strings.Contains(got.status.Off, "injected") || len(debug) == 0 {
		t.Fatalf("status %+v, debug %q", got.status, debug)
	}
	for _, m := range debug { // one for training, one for validation
		if !strings.HasPrefix(m, "CUDA graphs off, steps run op by op: ") || !strings.Contains(m, "injected") {
			t.Errorf("debug message %q", m)
		}
	}
	sameRun(t, "after a failed capture", got, eager)
}

// TestGraphLaunchesSeed: the seed CNN's training step at batch 32, op by op
// and captured: the kernels and GEMMs an eager step queues, and the single
// graph launch of a captured one, whose graph holds the same GEMMs and the
// same kernels plus the two step-counter kernels.
func TestGraphLaunchesSeed(t *testing.T) {
	const bs, n = 32, 64
	g := emuGraphs(t, true)
	net, err := model.Plan(model.DefaultSpec, model.Shape{C: 3, H: 32, W: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Build(g, bs, 1); err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	rng := rand.New(rand.NewPCG(3, 3))
	d := &model.Data{Images: make([]uint8, n*3072), Labels: make([]int32, n), N: n}
	for i := range d.Images {
		d.Images[i] = uint8(rng.IntN(256))
	}
	tr, err := model.NewTrainer(net, d, nil, model.TrainOptions{Batch: bs, LR: 1e-3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var per [3]Launches
	for s := range per {
		before := g.Launches()
		if err := tr.Step(s); err != nil {
			t.Fatal(err)
		}
		per[s] = g.Launches().Sub(before)
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	eager, replay, nodes := per[0], per[2], tr.Graphs().Nodes
	if eager.Graphs != 0 || replay != (Launches{Graphs: 1}) {
		t.Fatalf("step 1 queued %+v, step 3 %+v: want kernels and GEMMs, then one graph launch", eager, replay)
	}
	if nodes.Gemms != eager.Gemms || nodes.Kernels != eager.Kernels+2 {
		t.Fatalf("the graph holds %+v, an eager step queues %+v: want the same GEMMs and 2 more kernels", nodes, eager)
	}
	t.Logf("seed CNN, batch %d, per training step: op by op %d kernel launches + %d cuBLAS GEMMs = %d calls; captured: %d graph launch (%d kernels + %d GEMMs inside)",
		bs, eager.Kernels, eager.Gemms, eager.Calls(), replay.Calls(), nodes.Kernels, nodes.Gemms)
}

// TestAsyncLossChecks: on the GPU backend the loss checks inside an epoch
// read without waiting (ReadLater, collected at the next check): each
// progress report is the epoch's exact running loss and accuracy after the
// step it names, as reads that wait give them; a loss that becomes NaN is
// reported with the range of steps it arose in.
func TestAsyncLossChecks(t *testing.T) {
	r := newGraphRun(t, graphCases()["adam"])
	r.epochs = 1
	// The reference: the running statistics after every step, read waiting.
	ref := map[int][2]float64{}
	r.opt.OnStep = func(tr *model.Trainer) error {
		st, err := tr.State()
		if err != nil {
			return err
		}
		done := float64(min(tr.Position()*6, 26))
		ref[tr.Position()] = [2]float64{float64(st.Stats[0]) / done, float64(st.Stats[1]) / done}
		return nil
	}
	var seen []model.Progress
	r.opt.CheckEvery, r.opt.ProgressEvery = 1, 1
	r.opt.OnProgress = func(p model.Progress) { seen = append(seen, p) }
	r.run(t, emuGraphs(t, true), 0)
	if len(seen) < 2 {
		t.Fatalf("%d progress reports in 5 steps", len(seen))
	}
	for _, p := range seen {
		if w, ok := ref[p.Step]; !ok || p.Loss != w[0] || p.Accuracy != w[1] {
			t.Fatalf("progress after step %d: loss %v acc %v, want %v", p.Step, p.Loss, p.Accuracy, w)
		}
	}

	// A rate that makes the loss NaN within the epoch.
	r = newGraphRun(t, model.TrainOptions{LR: 1e30, Seed: 3, Optim: model.OptimConfig{Kind: "sgd"}, CheckEvery: 2})
	_, tr := r.trainer(t, emuGraphs(t, true), r.opt)
	_, err := tr.RunEpoch(context.Background())
	var d *model.DivergedError
	if !errors.As(err, &d) || !strings.Contains(d.Where, "between steps") {
		t.Fatalf("RunEpoch: %v", err)
	}
	t.Logf("%v", err)
}

// TestGraphStepAllocatesNothing: a steady-state captured training step
// makes no Go allocation on the host, as the op-by-op step does not
// (TestStepAllocatesNothing): on the GPU the whole step; on the emulator
// the trainer's and the backend's part (the emulator's replay itself
// allocates, so it is switched off for the count).
func TestGraphStepAllocatesNothing(t *testing.T) {
	for _, kind := range []string{"cuda", "emu"} {
		t.Run(kind, func(t *testing.T) {
			var g *Backend
			if kind == "emu" {
				g = emuGraphs(t, true)
			} else if g = gpuGraphs(t, true); !g.Caps().Graphs {
				t.Skipf("no CUDA graphs here: %v", g.graphs)
			}
			net, err := model.Plan("conv4k3,maxpool2,flatten,dense10", model.Shape{C: 3, H: 8, W: 8})
			if err != nil {
				t.Fatal(err)
			}
			if err := net.Build(g, 4, 1); err != nil {
				t.Fatal(err)
			}
			defer net.Close()
			d := &model.Data{Images: make([]uint8, 64*192), Labels: make([]int32, 64), N: 64}
			tr, err := model.NewTrainer(net, d, nil, model.TrainOptions{Batch: 4, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			s := 0
			for ; s < 3; s++ {
				tr.Step(s)
			}
			if e, ok := g.d.(*emuDev); ok {
				e.skipReplay = true
			}
			allocs := testing.AllocsPerRun(20, func() { tr.Step(s); s++ })
			if err := g.Sync(); err != nil {
				t.Fatal(err)
			}
			if !tr.Graphs().Used || allocs != 0 {
				t.Fatalf("graphs used %v; a captured step allocates %v times", tr.Graphs().Used, allocs)
			}
		})
	}
}
