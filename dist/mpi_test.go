//go:build cgo

package dist

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/device/cpu"
)

// TestMain: with TRAINER_DIST_CHILD set, the test binary is one rank of the
// mpirun job that TestMPICollectives starts.
func TestMain(m *testing.M) {
	if os.Getenv("TRAINER_DIST_CHILD") == "bench" {
		if err := childBench(); err != nil {
			fmt.Fprintf(os.Stderr, "child rank failed: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("TRAINER_DIST_CHILD") == "1" {
		if err := childRank(); err != nil {
			fmt.Fprintf(os.Stderr, "child rank failed: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// mpirunArgs is how the tests start a 2-rank job on one machine, as root
// or not, with more ranks than cores allowed.
func mpirunArgs(n int) []string {
	return []string{"-np", fmt.Sprint(n), "--oversubscribe", "--allow-run-as-root", "--bind-to", "none"}
}

// TestMPICollectives runs this test binary as 2 ranks under mpirun: each
// checks the collectives against sums it computes itself from every rank's
// (seeded) data.
func TestMPICollectives(t *testing.T) {
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun not installed (apt-get install openmpi-bin libopenmpi-dev; CI installs it): the MPI collectives are not tested")
	}
	args := append(mpirunArgs(2), "-x", "TRAINER_DIST_CHILD=1", os.Args[0], "-test.run=^$")
	cmd := exec.Command(mpirun, args...)
	cmd.Env = append(os.Environ(), "TRAINER_DIST_CHILD=1", "TRAINER_DIST_TIMEOUT=60")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	if strings.Count(string(out), "rank ok") != 2 {
		t.Fatalf("want both ranks to report ok:\n%s", out)
	}
	t.Logf("%s", out)
}

// rankData is rank r's random vector of n floats.
func rankData(r, n int) []float32 {
	rng := rand.New(rand.NewPCG(uint64(r), 99))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// childRank is one rank's side of TestMPICollectives.
func childRank() error {
	l, err := FromEnv()
	if err != nil {
		return err
	}
	c, err := OpenMPI(l, 0)
	if err != nil {
		return err
	}
	if c.Rank() != l.Rank || c.Size() != 2 {
		return fmt.Errorf("rank %d size %d, launcher said %+v", c.Rank(), c.Size(), l)
	}
	maxCount = 7 // every call below is cut into pieces
	b, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		return err
	}
	defer b.Close()
	r := c.Reducer(b)
	for _, avg := range []bool{false, true} {
		if err := checkAllReduce(b, r, avg); err != nil {
			return err
		}
	}
	if err := checkBroadcast(b, r); err != nil {
		return err
	}
	id := make([]byte, 128) // an NCCL unique id's size
	for i := range id {
		id[i] = byte(i*7 + 100*c.Rank())
	}
	if err := c.BroadcastBytes(id); err != nil {
		return err
	}
	for i, v := range id {
		if v != byte(i*7) {
			return fmt.Errorf("BroadcastBytes[%d] = %d, want rank 0's %d", i, v, byte(i*7))
		}
	}
	x := []float64{float64(c.Rank()), -float64(c.Rank()), 3}
	if err := r.MaxHost(x); err != nil || x[0] != 1 || x[1] != 0 || x[2] != 3 {
		return fmt.Errorf("MaxHost: %v, %v", x, err)
	}
	if err := c.Close(); err != nil {
		return err
	}
	fmt.Printf("rank ok %d\n", c.Rank())
	return nil
}

// upload puts x into a new buffer of b, one element longer: the last one
// (a sentinel) must survive reductions of the first len(x).
func upload(b device.Backend, x []float32) (device.Buffer, error) {
	buf, err := b.Alloc("x", device.F32, len(x)+1)
	if err != nil {
		return nil, err
	}
	if err := b.UploadF32(buf, 0, append(append([]float32(nil), x...), 42)); err != nil {
		return nil, err
	}
	return buf, nil
}

// checkAllReduce: sum (or mean) of both ranks' data, exactly as float32
// arithmetic gives it for two terms.
func checkAllReduce(b device.Backend, r *HostReducer, avg bool) error {
	const n = 100
	x0, x1 := rankData(0, n), rankData(1, n)
	mine := x0
	if r.Rank() == 1 {
		mine = x1
	}
	buf, err := upload(b, mine)
	if err != nil {
		return err
	}
	defer b.Free(buf)
	if err := r.AllReduce(buf, n, avg); err != nil {
		return err
	}
	got := make([]float32, n+1)
	if err := b.DownloadF32(buf, 0, got); err != nil {
		return err
	}
	for i := range n {
		want := x0[i] + x1[i]
		if avg {
			want /= 2
		}
		if got[i] != want {
			return fmt.Errorf("AllReduce(avg %v)[%d] = %g, want %g", avg, i, got[i], want)
		}
	}
	if got[n] != 42 {
		return fmt.Errorf("AllReduce wrote past n: %g", got[n])
	}
	return nil
}

// checkBroadcast: every rank ends with rank 0's data.
func checkBroadcast(b device.Backend, r *HostReducer) error {
	const n = 50
	buf, err := upload(b, rankData(10+r.Rank(), n))
	if err != nil {
		return err
	}
	defer b.Free(buf)
	if err := r.Broadcast(buf, n); err != nil {
		return err
	}
	got := make([]float32, n)
	if err := b.DownloadF32(buf, 0, got); err != nil {
		return err
	}
	for i, w := range rankData(10, n) {
		if got[i] != w {
			return fmt.Errorf("Broadcast[%d] = %g, want rank 0's %g", i, got[i], w)
		}
	}
	return nil
}

// TestLoadMPIErrors: a missing library and one that is not Open MPI's are
// errors that say what to install or set.
func TestLoadMPIErrors(t *testing.T) {
	_, _, err := loadMPI([]string{"libmpi-does-not-exist.so.40"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install openmpi-bin libopenmpi-dev") || !strings.Contains(err.Error(), EnvLibMPI) {
		t.Fatalf("missing library: %v", err)
	}
	_, _, err = loadMPI([]string{"libm.so.6"})
	if err == nil || !strings.Contains(err.Error(), "lacks MPI_Init_thread") {
		t.Fatalf("a library without MPI: %v", err)
	}
}

// TestMPIAPIHeader compiles mpi_api.h's constants against Open MPI's mpi.h
// where it is installed.
func TestMPIAPIHeader(t *testing.T) {
	out, err := exec.Command("mpicc", "--showme:incdirs").Output()
	if err != nil {
		t.Skip("mpicc not installed (libopenmpi-dev): mpi_api.h is not checked against mpi.h")
	}
	src := filepath.Join(t.TempDir(), "check.c")
	code := `#include <mpi.h>
#include "mpi_api.h"
_Static_assert(TR_MPI_SUCCESS == MPI_SUCCESS, "MPI_SUCCESS");
_Static_assert(TR_MPI_THREAD_FUNNELED == MPI_THREAD_FUNNELED, "MPI_THREAD_FUNNELED");
_Static_assert(TR_MPI_IN_PLACE == MPI_IN_PLACE, "MPI_IN_PLACE");
_Static_assert(TR_MPI_MAX_ERROR_STRING >= MPI_MAX_ERROR_STRING, "MPI_MAX_ERROR_STRING");
_Static_assert(TR_MPI_MAX_LIBRARY_VERSION_STRING >= MPI_MAX_LIBRARY_VERSION_STRING, "MPI_MAX_LIBRARY_VERSION_STRING");
_Static_assert(sizeof(MPI_Comm) == sizeof(tr_MPI_Comm) && sizeof(MPI_Op) == sizeof(tr_MPI_Op) && sizeof(MPI_Datatype) == sizeof(tr_MPI_Datatype), "handles are pointers");
// The handles the loader takes by name are mpi.h's own (MPI_COMM_WORLD is
// &ompi_mpi_comm_world, and so on).
static void *handles[] = {&ompi_mpi_comm_world, &ompi_mpi_float, &ompi_mpi_double, &ompi_mpi_byte, &ompi_mpi_op_sum, &ompi_mpi_op_max, &ompi_mpi_errors_return};
// The function types match mpi.h's prototypes once handles are pointers.
static tr_MPI_Init_thread_t f1 = MPI_Init_thread;
static tr_MPI_Get_library_version_t f2 = MPI_Get_library_version;
static tr_MPI_Error_string_t f3 = MPI_Error_string;
static tr_MPI_Finalize_t f4 = MPI_Finalize;
int main(void) {
	return !(handles[0] && f1 && f2 && f3 && f4);
}
`
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-std=gnu11", "-Wall", "-Werror", "-fsyntax-only", "-I", "."}
	for _, d := range strings.Fields(string(out)) {
		args = append(args, "-I", d)
	}
	if msg, err := exec.Command("gcc", append(args, src)...).CombinedOutput(); err != nil {
		t.Fatalf("mpi_api.h disagrees with mpi.h: %v\n%s", err, msg)
	}
}

// TestLoadNCCLErrors: a missing NCCL and a library that is not NCCL are
// errors that say how to install it or what to set.
func TestLoadNCCLErrors(t *testing.T) {
	_, _, err := loadNCCL([]string{"libnccl-does-not-exist.so.2"})
	if err == nil || !strings.Contains(err.Error(), "libnccl2") || !strings.Contains(err.Error(), EnvLibNCCL) {
		t.Fatalf("missing library: %v", err)
	}
	_, _, err = loadNCCL([]string{"libm.so.6"})
	if err == nil || !strings.Contains(err.Error(), "lacks ncclGetVersion") {
		t.Fatalf("a library without NCCL: %v", err)
	}
}

// BenchmarkMPIAllReduce times the gradient all-reduce of the seed CNN
// (122,570 floats) and resnet20 (272,474) between 2 ranks of this machine
// under mpirun, as HostReducer does it on the CPU backend (download,
// MPI_Allreduce in place, divide, upload). Each rank prints microseconds
// per call; the benchmark reports rank 0's.
func BenchmarkMPIAllReduce(b *testing.B) {
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		b.Skip("mpirun not installed")
	}
	cmd := exec.Command(mpirun, append(mpirunArgs(2), "-x", "TRAINER_DIST_CHILD", os.Args[0], "-test.run=^$")...)
	cmd.Env = append(os.Environ(), "TRAINER_DIST_CHILD=bench")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("mpirun: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var rank, n int
		var us float64
		if _, err := fmt.Sscanf(line, "allreduce rank %d n %d us %g", &rank, &n, &us); err == nil && rank == 0 {
			b.ReportMetric(us, fmt.Sprintf("us/allreduce-%d", n))
		}
	}
	b.Logf("%s", out)
}

func childBench() error {
	l, err := FromEnv()
	if err != nil {
		return err
	}
	c, err := OpenMPI(l, 0)
	if err != nil {
		return err
	}
	bk, err := cpu.New(device.Options{Threads: 1})
	if err != nil {
		return err
	}
	defer bk.Close()
	r := c.Reducer(bk)
	for _, n := range []int{122570, 272474} {
		buf, err := upload(bk, rankData(c.Rank(), n))
		if err != nil {
			return err
		}
		const reps = 200
		r.AllReduce(buf, n, true) // warm up
		start := time.Now()
		for range reps {
			if err := r.AllReduce(buf, n, true); err != nil {
				return err
			}
		}
		fmt.Printf("allreduce rank %d n %d us %.1f\n", c.Rank(), n, float64(time.Since(start).Microseconds())/reps)
	}
	return c.Close()
}
