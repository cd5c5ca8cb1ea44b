package cli

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/internal/testkit"
)

// The data-parallel tests run this test binary as the trainer (TestMain)
// under Open MPI's mpirun, 2 ranks on the CPU. CI installs Open MPI.

// distModel has no BatchNorm: with it, each rank normalises by its own
// batch's statistics (DDP's default), which differ from one process's at
// twice the batch, so the weights could not match. No dropout and no
// augmentation either: their random draws are keyed by the position in a
// rank's batch.
const distModel = "conv8k3,maxpool2,conv16k3,maxpool2,flatten,dense32,dense10"

// distTrain is the common part of the runs compared: 320 random CIFAR
// images, SGD with momentum (its update is linear in the gradient: the
// rounding differences of a 2-way average stay rounding; Adam divides by
// sqrt(v), which magnifies them for weights whose gradient is near 0).
const distTrain = "train --device cpu --threads 1 --model " + distModel + " --optimizer sgd --momentum 0.9 --lr 0.02 --keep 0"

func needMPI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun not installed (apt-get install openmpi-bin libopenmpi-dev; CI installs it): the data-parallel runs are not tested")
	}
	return p
}

// mpiCmd is mpirun starting np ranks of the trainer with args.
func mpiCmd(t *testing.T, np int, args string, env ...string) *exec.Cmd {
	mpirun := needMPI(t)
	cmd := exec.Command(mpirun, "-np", strconv.Itoa(np), "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
		"-x", "TRAINER_TEST_MAIN", "-x", "TRAINER_TEST_ARGS", "-x", "TRAINER_DIST_TIMEOUT", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"TRAINER_TEST_MAIN=1", "TRAINER_TEST_ARGS=" + args, "TRAINER_DIST_TIMEOUT=20"}, env...)...)
	return cmd
}

// mpiRun runs mpiCmd and returns the exit code and the combined output.
func mpiRun(t *testing.T, np int, args string) (int, string) {
	t.Helper()
	cmd := mpiCmd(t, np, args)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), b.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, b.String()
}

func randomCIFAR(t *testing.T, perFile int) string {
	dir := filepath.Join(t.TempDir(), "cifar")
	testkit.WriteRandomCIFAR(t, dir, perFile)
	return dir
}

func readCk(t *testing.T, path string) *checkpoint.File {
	t.Helper()
	f, err := checkpoint.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMPIMatchesOneProcess: 20 steps of 2 ranks at --batch-size 8 end with
// the weights of one process at 16, to 1e-5 relative: the two ranks'
// shares of each step are the single process's batch (the same examples
// in the same steps), and the averaged gradient is its gradient.
func TestMPIMatchesOneProcess(t *testing.T) {
	needMPI(t)
	data := randomCIFAR(t, 64) // 320 training images: 20 steps of 16
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one.safetensors"), filepath.Join(dir, "two.safetensors")
	common := distTrain + " --epochs 1 --data-dir " + data
	if code, _, e := child(t, nil, common+" --batch-size 16 --out "+one); code != 0 {
		t.Fatalf("one process: exit %d\n%s", code, e)
	}
	code, out := mpiRun(t, 2, common+" --batch-size 8 --out "+two)
	if code != 0 {
		t.Fatalf("mpirun -np 2: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "global_batch=16") || !strings.Contains(out, "world_size=2") {
		t.Fatalf("rank 0 does not log the global batch:\n%s", out)
	}
	a, b := readCk(t, one), readCk(t, two)
	if a.Meta["train.adam_step"] != "20" || b.Meta["train.adam_step"] != "20" || b.Meta["world_size"] != "2" {
		t.Fatalf("steps %s and %s (want 20), world_size %q", a.Meta["train.adam_step"], b.Meta["train.adam_step"], b.Meta["world_size"])
	}
	worst, n := 0.0, 0
	for name, ta := range a.Tensors {
		if strings.HasPrefix(name, "optimizer.") || ta.DType != checkpoint.DTypeF32 {
			continue
		}
		d := relDiff(ta.Float32s(), b.Tensors[name].Float32s())
		if d > 1e-5 {
			t.Fatalf("%s: 2 ranks and one process differ by %.2g of the tensor's largest value (more than 1e-5)", name, d)
		}
		worst = max(worst, d)
		n++
	}
	if n == 0 {
		t.Fatal("no weights compared")
	}
	t.Logf("%d tensors after 20 steps: largest difference %.2g of the tensor's largest value", n, worst)
	for _, k := range []string{"val_loss", "val_accuracy"} {
		x, _ := strconv.ParseFloat(a.Meta[k], 64)
		y, _ := strconv.ParseFloat(b.Meta[k], 64)
		if math.Abs(x-y) > 1e-5 {
			t.Fatalf("%s: one process %v, 2 ranks %v (validation split over the ranks and summed)", k, x, y)
		}
	}
}

// TestMPIResumeBitIdentical: a 2-rank run stopped mid-epoch (as by Ctrl-C,
// after step 27 of 40) and resumed on 2 ranks ends bit-identical to an
// uninterrupted one: every tensor, the optimiser's state and the epoch
// statistics. Resuming it as one process is refused.
func TestMPIResumeBitIdentical(t *testing.T) {
	needMPI(t)
	data := randomCIFAR(t, 64)
	dir := t.TempDir()
	full, cut := filepath.Join(dir, "full.safetensors"), filepath.Join(dir, "cut.safetensors")
	common := distTrain + " --epochs 2 --batch-size 8 --data-dir " + data
	if code, out := mpiRun(t, 2, common+" --out "+full); code != 0 {
		t.Fatalf("uninterrupted: exit %d\n%s", code, out)
	}
	code, out := mpiRun(t, 2, common+" --out "+cut+" --stop-after-steps 27")
	if code != ExitInterrupted || !strings.Contains(out, "resume with:") {
		t.Fatalf("stopped run: exit %d, want %d and the resume command:\n%s", code, ExitInterrupted, out)
	}
	if c := readCk(t, cut); c.Meta["train.adam_step"] != "27" {
		t.Fatalf("the interrupted run saved global step %s, want 27", c.Meta["train.adam_step"])
	}
	code, _, e := child(t, nil, "train --device cpu --resume "+cut+" --data-dir "+data)
	if code == 0 || !strings.Contains(e, "world size of 2") || !strings.Contains(e, "mpirun -np 2") {
		t.Fatalf("resuming a 2-rank run as one process: exit %d, want a refusal naming the world size:\n%s", code, e)
	}
	if code, out := mpiRun(t, 2, "train --device cpu --threads 1 --epochs 2 --resume "+cut+" --data-dir "+data); code != 0 {
		t.Fatalf("resumed: exit %d\n%s", code, out)
	}
	a, b := readCk(t, full), readCk(t, cut)
	if len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("%d tensors, resumed %d", len(a.Tensors), len(b.Tensors))
	}
	for name, ta := range a.Tensors {
		if !bytes.Equal(ta.Data, b.Tensors[name].Data) {
			t.Fatalf("%s differs between the uninterrupted and the resumed run", name)
		}
	}
	for _, k := range []string{"val_loss", "val_accuracy", "train.adam_step", "train.rng", "epoch"} {
		if a.Meta[k] != b.Meta[k] {
			t.Fatalf("%s: uninterrupted %q, resumed %q", k, a.Meta[k], b.Meta[k])
		}
	}
	ha, _ := os.ReadFile(filepath.Join(dir, "full.history.csv"))
	hb, _ := os.ReadFile(filepath.Join(dir, "cut.history.csv"))
	if !bytes.Equal(dropSeconds(ha), dropSeconds(hb)) {
		t.Fatalf("history differs:\n%s\nresumed:\n%s", ha, hb)
	}
}

// dropSeconds removes the timing columns (seconds, images_per_s) of a
// history CSV, which differ from run to run.
func dropSeconds(csv []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	head := strings.Split(lines[0], ",")
	var out []string
	for _, l := range lines {
		var keep []string
		for i, f := range strings.Split(l, ",") {
			if i < len(head) && (head[i] == "seconds" || head[i] == "images_per_s") {
				continue
			}
			keep = append(keep, f)
		}
		out = append(out, strings.Join(keep, ","))
	}
	return []byte(strings.Join(out, "\n"))
}

// TestMPIRankKilled kills rank 1 (SIGKILL) in the middle of a run, or
// stops it (SIGSTOP: a rank that hangs, which mpirun does not notice): the
// job must end within 30 s with a non-zero exit and a message saying what
// happened (mpirun's for the dead rank, rank 0's collective timing out for
// the hung one), and the last checkpoint rank 0 wrote must still load.
func TestMPIRankKilled(t *testing.T) {
	needMPI(t)
	data := randomCIFAR(t, 400) // 2,000 images: 125 steps an epoch
	for _, c := range []struct {
		sig  syscall.Signal
		want []string
	}{
		{syscall.SIGKILL, []string{"rank 1", "signal 9"}},
		{syscall.SIGSTOP, []string{"rank 0: MPI_Allreduce did not complete within 3s", "TRAINER_DIST_TIMEOUT"}},
	} {
		t.Run(c.sig.String(), func(t *testing.T) { killRank(t, data, c.sig, c.want) })
	}
}

func killRank(t *testing.T, data string, sig syscall.Signal, want []string) {
	out := filepath.Join(t.TempDir(), "m.safetensors")
	tag := fmt.Sprintf("TRAINER_TEST_TAG=%d", time.Now().UnixNano())
	cmd := mpiCmd(t, 2, distTrain+" --epochs 50 --batch-size 8 --save-every 5 --data-dir "+data+" --out "+out, tag, "TRAINER_DIST_TIMEOUT=3")
	cmd.Args = append(cmd.Args[:1], append([]string{"-x", "TRAINER_TEST_TAG"}, cmd.Args[1:]...)...)
	var b syncBuffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(out); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after 60 s:\n%s", b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := findRank(t, tag, 1)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	killed := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the job still runs 30 s after rank 1 was killed:\n%s", b.String())
	}
	code := cmd.ProcessState.ExitCode()
	t.Logf("mpirun exited %d, %.1f s after rank 1 got %v; its last lines:\n%s", code, time.Since(killed).Seconds(), sig, lastLines(b.String(), 8))
	if code == 0 {
		t.Fatalf("mpirun exit 0 after a rank was killed:\n%s", b.String())
	}
	for _, w := range want {
		if !strings.Contains(b.String(), w) {
			t.Fatalf("no message with %q:\n%s", w, b.String())
		}
	}
	f, err := checkpoint.Read(out)
	if err != nil {
		t.Fatalf("the last checkpoint does not load after the kill: %v", err)
	}
	if f.Meta["train.adam_step"] == "" {
		t.Fatal("the last checkpoint holds no training state")
	}
}

// findRank is the process id of the trainer rank whose environment holds
// tag and OMPI_COMM_WORLD_RANK=rank.
func findRank(t *testing.T, tag string, rank int) int {
	t.Helper()
	want := fmt.Sprintf("OMPI_COMM_WORLD_RANK=%d", rank)
	for range 100 {
		procs, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, p := range procs {
			env, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			vars := strings.Split(string(env), "\x00")
			if contains(vars, tag) && contains(vars, want) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				return pid
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no process with %s and %s", tag, want)
	return 0
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// relDiff is max|a-b| / max|a|: the difference relative to the tensor's scale.
func relDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		m = max(m, math.Abs(float64(a[i])))
	}
	if len(a) != len(b) || m == 0 {
		return math.Inf(1)
	}
	return d / m
}

// TestMPISignalOneRank sends SIGTERM to rank 1 alone: the ranks agree to
// stop after the same step, rank 0 saves once (a resumable checkpoint) and
// prints the resume command, and the job exits 130.
func TestMPISignalOneRank(t *testing.T) {
	needMPI(t)
	data := randomCIFAR(t, 400)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	tag := fmt.Sprintf("TRAINER_TEST_TAG=%d", time.Now().UnixNano())
	cmd := mpiCmd(t, 2, distTrain+" --epochs 50 --batch-size 8 --data-dir "+data+" --out "+out, tag)
	cmd.Args = append(cmd.Args[:1], append([]string{"-x", "TRAINER_TEST_TAG"}, cmd.Args[1:]...)...)
	var b syncBuffer // read while mpirun writes to it
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := findRank(t, tag, 1)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(b.String(), "training") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // some steps in
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM to rank 1:\n%s", b.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != ExitInterrupted {
		t.Fatalf("exit %d, want %d:\n%s", code, ExitInterrupted, b.String())
	}
	if strings.Count(b.String(), "resume with:") != 1 {
		t.Fatalf("want one resume command, from rank 0:\n%s", b.String())
	}
	f := readCk(t, out)
	if f.Meta["saved_because"] != "interrupt" || f.Meta["train.adam_step"] == "" {
		t.Fatalf("checkpoint saved because %q at step %q, want an interrupt save with the training state", f.Meta["saved_because"], f.Meta["train.adam_step"])
	}
	t.Logf("stopped at global step %s:\n%s", f.Meta["train.adam_step"], lastLines(b.String(), 4))
}

// TestDistOneRankMatchesPlain: a single process forced through the
// data-parallel path (TRAINER_DIST_FORCE=1: MPI's singleton world, every
// collective over one rank) writes the checkpoint of a plain run, bit for
// bit: the collectives add nothing and the sampler's one shard is the
// whole order.
func TestDistOneRankMatchesPlain(t *testing.T) {
	needMPI(t)
	data := randomCIFAR(t, 64)
	dir := t.TempDir()
	args := "train --device cpu --threads 1 --epochs 1 --batch-size 24 --keep 0 --data-dir " + data + " --out " + dir
	if code, _, e := child(t, nil, args+"/plain.safetensors"); code != 0 {
		t.Fatalf("plain: exit %d\n%s", code, e)
	}
	code, _, e := child(t, []string{"TRAINER_DIST_FORCE=1"}, args+"/forced.safetensors")
	if code != 0 || !strings.Contains(e, "MPI rank 0 of 1") {
		t.Fatalf("forced through MPI: exit %d (want 0 and the MPI world in the log)\n%s", code, e)
	}
	a, b := readCk(t, dir+"/plain.safetensors"), readCk(t, dir+"/forced.safetensors")
	for name, ta := range a.Tensors {
		if !bytes.Equal(ta.Data, b.Tensors[name].Data) {
			t.Fatalf("%s differs between the plain and the one-rank data-parallel run", name)
		}
	}
	for k, v := range a.Meta {
		if k != "train.seconds" && k != "sha256" && b.Meta[k] != v {
			t.Fatalf("metadata %s: plain %q, one rank %q", k, v, b.Meta[k])
		}
	}
}

// TestDistLauncherErrors: a launch that cannot work says what to do.
func TestDistLauncherErrors(t *testing.T) {
	data := randomCIFAR(t, 8)
	args := "train --device cpu --epochs 1 --data-dir " + data + " --out " + t.TempDir() + "/m.safetensors"
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"RANK=0", "WORLD_SIZE=2", "LOCAL_RANK=0"}, "on the CPU needs MPI"},
		{[]string{"PMI_RANK=0", "PMI_SIZE=2"}, "MPICH is not supported yet"},
		{[]string{"RANK=2", "WORLD_SIZE=2"}, "RANK=2 is not below WORLD_SIZE=2"},
	} {
		code, _, e := child(t, c.env, args)
		if code == 0 || !strings.Contains(e, c.want) || !strings.Contains(e, "mpirun") && !strings.Contains(e, "RANK=2") {
			t.Errorf("%v: exit %d, want an error with %q:\n%s", c.env, code, c.want, e)
		}
	}
}

// syncBuffer is a bytes.Buffer that a test may read while a child writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
