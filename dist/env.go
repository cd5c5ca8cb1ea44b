// Package dist is data-parallel training across processes: which rank this
// process is (read from the launcher's environment: mpirun, srun, torchrun,
// MPICH's PMI) and the collectives that average gradients across the ranks
// (Open MPI on the CPU, loaded at run time like the CUDA libraries).
//
// A world of one process is the trainer as it always was: nothing is loaded
// and no collective runs.
package dist

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Launcher names.
const (
	LauncherNone     = ""         // started directly: a world of one
	LauncherOpenMPI  = "openmpi"  // mpirun / mpiexec of Open MPI
	LauncherTorchrun = "torchrun" // torchrun --no-python (or any launcher setting RANK and WORLD_SIZE)
	LauncherPMI      = "pmi"      // MPICH's Hydra (mpiexec) and others speaking PMI
	LauncherSlurm    = "slurm"    // srun
)

// Launch is where this process stands in the world its launcher started.
type Launch struct {
	Launcher  string // one of the Launcher constants
	Rank      int    // 0 .. Size-1
	Size      int    // the world size, 1 without a launcher
	LocalRank int    // the rank among the processes on this machine (the GPU index)
	// LocalSize is the number of ranks on this machine (0: not given).
	LocalSize int
	// MasterAddr and MasterPort are torchrun's rendezvous (MASTER_ADDR, MASTER_PORT).
	MasterAddr, MasterPort string
	// Vars names the environment variables the rank and size were read from.
	Vars string
}

// Distributed says whether there is more than one rank.
func (l Launch) Distributed() bool { return l.Size > 1 }

// Primary says whether this is rank 0, the one that writes files.
func (l Launch) Primary() bool { return l.Rank == 0 }

// String describes the launch for humans, as `trainer devices` prints it.
func (l Launch) String() string {
	if l.Launcher == LauncherNone {
		return "launcher: none (a single process; start several with mpirun, srun or torchrun --no-python for data-parallel training)"
	}
	return fmt.Sprintf("launcher: %s (%s): rank %d of %d, local rank %d", l.Launcher, l.Vars, l.Rank, l.Size, l.LocalRank)
}

// scheme is one launcher's variables.
type scheme struct {
	launcher          string
	rank, size, local string // local may be ""
	localSize         string
}

// schemes in order of precedence: a launcher's own per-process variables
// first, because a launcher started inside another's job inherits the
// outer one's (mpirun or torchrun in an sbatch script sees SLURM_PROCID=0
// and SLURM_NTASKS of the allocation in every process).
var schemes = []scheme{
	{LauncherOpenMPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
	{LauncherTorchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
	{LauncherPMI, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
	{LauncherSlurm, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
}

// FromEnv reads the launch from the process environment.
func FromEnv() (Launch, error) { return FromLookup(os.LookupEnv) }

// FromLookup reads the launch from an environment given as a lookup
// function. The first launcher whose rank variable is set decides; its
// size must be set too, and the rank must lie inside it. Without any, the
// world is this one process.
func FromLookup(lookup func(string) (string, bool)) (Launch, error) {
	for _, s := range schemes {
		if _, ok := lookup(s.rank); !ok {
			continue
		}
		return s.read(lookup)
	}
	return Launch{Size: 1}, nil
}

// read parses one scheme's variables.
func (s scheme) read(lookup func(string) (string, bool)) (Launch, error) {
	l := Launch{Launcher: s.launcher, Vars: s.rank + ", " + s.size}
	get := func(name string, min int, need bool) (int, error) {
		v, ok := lookup(name)
		if !ok {
			if need {
				return 0, fmt.Errorf("%s is set but %s is not: the %s launcher sets both; set %s to the number of processes", s.rank, name, s.launcher, name)
			}
			return -1, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < min {
			return 0, fmt.Errorf("%s=%q: want a whole number of at least %d (set by the %s launcher)", name, v, min, s.launcher)
		}
		return n, nil
	}
	var err error
	if l.Rank, err = get(s.rank, 0, true); err != nil {
		return l, err
	}
	if l.Size, err = get(s.size, 1, true); err != nil {
		return l, err
	}
	if l.Rank >= l.Size {
		return l, fmt.Errorf("%s=%d is not below %s=%d: the launcher's variables disagree (a stale variable from another job?)", s.rank, l.Rank, s.size, l.Size)
	}
	if l.LocalRank, err = get(s.local, 0, false); err != nil {
		return l, err
	}
	if l.LocalRank < 0 {
		l.LocalRank = l.Rank // one machine: the local rank is the rank
	}
	// Slurm's SLURM_NTASKS_PER_NODE may read "2(x3)": only a plain number counts.
	if ls, ok := lookup(s.localSize); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(ls)); err == nil && n > 0 {
			l.LocalSize = n
		}
	}
	if s.launcher == LauncherTorchrun {
		l.MasterAddr, _ = lookup("MASTER_ADDR")
		l.MasterPort, _ = lookup("MASTER_PORT")
	}
	return l, nil
}
