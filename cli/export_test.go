package cli

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/internal/testkit"
	"github.com/trainer-go/trainer/model"
)

// exportModel has BatchNorm (running statistics and num_batches_tracked),
// a conv without bias, "same" padding with stride 2, gelu and a dense.
const exportModel = `{"name": "export-test", "layers": [
 {"name": "conv1", "type": "conv", "filters": 4, "kernel": 3, "padding": "same", "bias": false},
 {"name": "bn1", "type": "batchnorm", "act": "relu"},
 {"name": "pool", "type": "maxpool", "kernel": 2},
 {"name": "conv2", "type": "conv", "filters": 6, "kernel": 3, "stride": 2, "padding": "same", "act": "gelu"},
 {"name": "gap", "type": "globalavgpool"},
 {"name": "fc", "type": "dense", "units": 10}
]}`

// trainedCheckpoint trains exportModel for one epoch with --ema on random
// CIFAR-10 files (32 images each) and returns the checkpoint (with
// optimizer state and the EMA) and the data folder.
func trainedCheckpoint(t *testing.T) (ck, data string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "cifar")
	testkit.WriteRandomCIFAR(t, data, 32)
	mf := filepath.Join(dir, "net.json")
	if err := os.WriteFile(mf, []byte(exportModel), 0o644); err != nil {
		t.Fatal(err)
	}
	ck = filepath.Join(dir, "model.safetensors")
	code, _, logs := run(t, "train", "--device", "cpu", "--threads", "1", "--data-dir", data, "--model", mf,
		"--epochs", "1", "--batch-size", "8", "--lr", "0.01", "--ema", "0.5", "--out", ck, "--keep", "0", "--quiet")
	if code != 0 {
		t.Fatalf("train exit %d:\n%s", code, logs)
	}
	return ck, data
}

// stFile is a safetensors file read by the format itself (8-byte
// little-endian header length, JSON header, data), not by package
// checkpoint.
type stFile struct {
	meta    map[string]string
	tensors map[string]stTensor
}

type stTensor struct {
	dtype string
	shape []int
	data  []byte
}

func readST(t *testing.T, path string) stFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	f := stFile{tensors: map[string]stTensor{}}
	data := b[8+n:]
	for name, raw := range hdr {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw, &f.meta); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var e struct {
			DType   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		f.tensors[name] = stTensor{e.DType, e.Shape, data[e.Offsets[0]:e.Offsets[1]]}
	}
	return f
}

// TestExportSafetensors exports a trained checkpoint's weights (EMA by
// default, then --no-ema) and compares them, read by the format itself,
// with the checkpoint's tensors: the same state_dict names, shapes and
// bytes, num_batches_tracked as int64, no optimizer or ema. tensors. eval
// reads the export to the checkpoint's loss and accuracy, and so does
// PyTorch (scripts/torch_eval.py, a strict load_state_dict) where Debian's
// python3-torch is installed.
func TestExportSafetensors(t *testing.T) {
	ck, data := trainedCheckpoint(t)
	src := readST(t, ck)
	dir := t.TempDir()
	differ := 0
	for _, weights := range []string{"ema", "trained"} {
		out := filepath.Join(dir, weights+".safetensors")
		args := []string{"export", "--checkpoint", ck, "--format", "safetensors", "--out", out}
		if weights == "trained" {
			args = append(args, "--no-ema")
		}
		if code, _, errs := run(t, args...); code != 0 {
			t.Fatalf("export %s: exit %d: %s", weights, code, errs)
		}
		differ += compareExport(t, src, readST(t, out), weights)
	}
	if differ == 0 {
		t.Fatalf("the EMA and the trained weights are the same: the test cannot tell which one an export holds")
	}
	want := evalJSON(t, ck, data)
	got := evalJSON(t, filepath.Join(dir, "ema.safetensors"), data)
	if got != want {
		t.Fatalf("eval of the export: %+v; of the checkpoint (EMA weights): %+v", got, want)
	}
	torchEval(t, filepath.Join(dir, "ema.safetensors"), data, want)
}

// compareExport checks an export against the checkpoint it came from and
// returns how many float tensors differ between the EMA and trained weights.
func compareExport(t *testing.T, ck, ex stFile, weights string) int {
	t.Helper()
	var wantNames []string
	for name := range ck.tensors {
		if !strings.HasPrefix(name, "optimizer.") && !strings.HasPrefix(name, model.EMAPrefix) {
			wantNames = append(wantNames, name)
		}
	}
	var names []string
	for name := range ex.tensors {
		names = append(names, name)
	}
	slices.Sort(wantNames)
	slices.Sort(names)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("%s export holds %v, want the checkpoint's state_dict %v", weights, names, wantNames)
	}
	differ := 0
	for _, name := range names {
		got, plain := ex.tensors[name], ck.tensors[name]
		want := plain
		if weights == "ema" && got.dtype == "F32" {
			want = ck.tensors[model.EMAPrefix+name]
		}
		if got.dtype != want.dtype || !slices.Equal(got.shape, want.shape) || !bytes.Equal(got.data, want.data) {
			t.Errorf("%s export: %s is %s %v, want the checkpoint's %s %v (or its values differ)", weights, name, got.dtype, got.shape, want.dtype, want.shape)
		}
		if strings.HasSuffix(name, ".num_batches_tracked") && (got.dtype != "I64" || len(got.shape) != 0) {
			t.Errorf("%s is %s %v, want a scalar I64 as in PyTorch", name, got.dtype, got.shape)
		}
		if got.dtype == "F32" && !bytes.Equal(ck.tensors[model.EMAPrefix+name].data, plain.data) {
			differ++
		}
	}
	for _, k := range []string{"model.json", "classes", "input", "model"} {
		if ex.meta[k] == "" || ex.meta[k] != ck.meta[k] {
			t.Errorf("metadata %q = %q, want the checkpoint's %q", k, ex.meta[k], ck.meta[k])
		}
	}
	if ex.meta["weights"] != weights {
		t.Errorf("metadata weights = %q, want %q", ex.meta["weights"], weights)
	}
	for k := range ex.meta {
		if strings.HasPrefix(k, "train.") || k == "optimizer" {
			t.Errorf("the export's metadata keeps the training key %q", k)
		}
	}
	return differ
}

type evalResult struct {
	Loss, Accuracy float64
	Samples        int
}

func evalJSON(t *testing.T, ck, data string) evalResult {
	t.Helper()
	// One batch size for both files: the export does not keep the
	// checkpoint's eval_batch, and the loss's summation order follows it.
	code, out, errs := run(t, "eval", "--device", "cpu", "--threads", "1", "--batch-size", "16", "--checkpoint", ck, "--data-dir", data, "--json")
	if code != 0 {
		t.Fatalf("eval %s: exit %d: %s", ck, code, errs)
	}
	var r evalResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("eval printed %q: %v", out, err)
	}
	return r
}

// torchEval evaluates the export in PyTorch, when installed: every tensor
// must load by load_state_dict(strict=True) (none skipped), and the loss
// and accuracy must be trainer eval's.
func torchEval(t *testing.T, path, data string, want evalResult) {
	t.Helper()
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import torch").Run() != nil {
		t.Log("PyTorch (python3-torch) is not installed: the export is not loaded by PyTorch")
		return
	}
	cmd := exec.Command(py, filepath.Join("..", "scripts", "torch_eval.py"), "--checkpoint", path, "--data", data)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE")
	var errs bytes.Buffer
	cmd.Stderr = &errs
	out, err := cmd.Output()
	if err != nil || errs.Len() > 0 {
		t.Fatalf("torch_eval.py on the export: %v: %s", err, errs.String())
	}
	var got evalResult
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("torch_eval.py printed %q: %v", out, err)
	}
	t.Logf("PyTorch on the export: loss %.6f accuracy %.4f; trainer eval: loss %.6f accuracy %.4f", got.Loss, got.Accuracy, want.Loss, want.Accuracy)
	if got.Samples != want.Samples || math.Abs(got.Loss-want.Loss) > 1e-4 || got.Accuracy != want.Accuracy {
		t.Fatalf("PyTorch: %+v; trainer eval: %+v", got, want)
	}
}

// TestExportONNX exports a trained checkpoint as ONNX, with the EMA weights
// and with --no-ema, and runs both with ONNX Runtime: each must give the
// logits of the CPU backend with the weights it names.
func TestExportONNX(t *testing.T) {
	ort := testkit.NeedONNXRuntime(t)
	ck, _ := trainedCheckpoint(t)
	c, net, trained, err := model.Open(ck)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasEMA(net) {
		t.Fatal("the checkpoint has no EMA")
	}
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 3
	if err := net.Build(b, n, 1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, n*net.Input.Size())
	for i := range x {
		x[i] = float32(rng.IntN(256)) / 255
	}
	var logits [2][]float32
	for i, weights := range []string{"ema", "trained"} {
		flat, path := trained, filepath.Join(t.TempDir(), "m.onnx")
		args := []string{"export", "--checkpoint", ck, "--format", "onnx", "--out", path}
		if weights == "ema" {
			flat = c.FlatEMA(net)
		} else {
			args = append(args, "--no-ema")
		}
		if code, _, errs := run(t, args...); code != 0 {
			t.Fatalf("export: exit %d: %s", code, errs)
		}
		if err := net.SetParams(flat); err != nil {
			t.Fatal(err)
		}
		want, err := net.Logits(x, n)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ort.Run(t, path, x, [4]int{n, net.Input.C, net.Input.H, net.Input.W})
		diff, at := testkit.MaxDiff(got, want)
		t.Logf("%s weights: max |ONNX Runtime - CPU| = %.3g", weights, diff)
		if !(diff <= 1e-4) {
			t.Fatalf("%s weights: logit %d: ONNX Runtime %g, CPU %g", weights, at, got[at], want[at])
		}
		logits[i] = want
	}
	if d, _ := testkit.MaxDiff(logits[0], logits[1]); !(d > 1e-3) {
		t.Fatalf("the EMA and trained weights give the same logits (max difference %g): the test cannot tell them apart", d)
	}
}

// TestExportErrors: each bad use is exit 1 and one error line naming the
// flag or file and what to do; --out is never overwritten without --force
// and never when it is the checkpoint.
func TestExportErrors(t *testing.T) {
	ck := tinyCheckpoint(t, model.Shape{C: 3, H: 8, W: 8}, testClasses)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.onnx")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "m.onnx")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--checkpoint", filepath.Join(dir, "missing.safetensors"), "--format", "onnx", "--out", out}, []string{"missing.safetensors", "not found", "trainer train --out"}},
		{[]string{"--checkpoint", ck, "--format", "pdf", "--out", out}, []string{`--format "pdf"`, "onnx or safetensors"}},
		{[]string{"--checkpoint", ck, "--out", out}, []string{"--format is missing"}},
		{[]string{"--checkpoint", ck, "--format", "onnx"}, []string{"--out is missing"}},
		{[]string{"--checkpoint", ck, "--format", "onnx", "--out", existing}, []string{existing, "already exists", "--force"}},
		{[]string{"--checkpoint", ck, "--format", "onnx", "--out", dir}, []string{dir, "is a folder"}},
		{[]string{"--checkpoint", ck, "--format", "safetensors", "--out", ck, "--force"}, []string{ck, "is the checkpoint itself"}},
		{[]string{"--checkpoint", ck, "--format", "onnx", "--out", out, "extra"}, []string{"no arguments", "extra"}},
	} {
		code, stdout, errs := run(t, append([]string{"export"}, tc.args...)...)
		if code != ExitError || strings.Count(strings.TrimSpace(errs), "\n") != 0 || stdout != "" {
			t.Errorf("export %v: exit %d, stdout %q, stderr %q: want exit 1 and one error line", tc.args, code, stdout, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("export %v: error %q does not say %q", tc.args, errs, w)
			}
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatalf("an existing --out was changed without --force")
	}
	if _, err := checkpoint.Read(ck); err != nil {
		t.Fatalf("the checkpoint was damaged: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("a failed export left %s", out)
	}
	code, stdout, errs := run(t, "export", "--checkpoint", ck, "--format", "onnx", "--out", existing, "--force")
	if b, _ := os.ReadFile(existing); code != 0 || string(b) == "keep me" || !strings.Contains(stdout, "wrote "+existing) {
		t.Fatalf("export --force: exit %d, stdout %q, stderr %q: the file was not replaced", code, stdout, errs)
	}
}
