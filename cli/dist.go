package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/dist"
	"github.com/trainer-go/trainer/model"
	trainrun "github.com/trainer-go/trainer/run"
)

// envDistForce=1 runs a single process through the data-parallel path
// (its collectives over one rank): the GPU check compares that with a
// plain run.
const envDistForce = "TRAINER_DIST_FORCE"

// world is this rank's membership of a data-parallel job: MPI (CPU
// collectives, and the bootstrap of NCCL under mpirun) and/or NCCL (GPU
// collectives).
type world struct {
	l    dist.Launch
	mpi  *dist.Comm
	nccl *dist.NCCL
}

// joinWorld reads the launcher's environment and, when this process is one
// of several ranks, joins the job: MPI now where the launcher is Open
// MPI's (or srun's, with an Open MPI built for Slurm), NCCL once the GPU
// backend is open. It sets env.Dist and d.Index (the GPU: the local rank),
// and quietens the ranks other than 0 (warnings and errors only, no
// progress bar). It returns nil for a single process.
func joinWorld(env *trainrun.Env, d *trainrun.Device) (*world, error) {
	l, err := dist.FromEnv()
	if err != nil {
		return nil, err
	}
	if !l.Distributed() && os.Getenv(envDistForce) != "1" {
		return nil, nil
	}
	if l.Launcher == dist.LauncherPMI {
		return nil, fmt.Errorf("%s: MPICH is not supported yet: launch with Open MPI's mpirun -np %d", l, l.Size)
	}
	w := &world{l: l}
	var mpiErr error
	// srun's ranks, and a forced single process (MPI's singleton), may
	// have no MPI: a GPU run then bootstraps NCCL by itself.
	if l.Launcher == dist.LauncherOpenMPI || l.Launcher == dist.LauncherSlurm || l.Launcher == dist.LauncherNone {
		if w.mpi, mpiErr = dist.OpenMPI(l, 0); mpiErr != nil && l.Launcher == dist.LauncherOpenMPI {
			return nil, fmt.Errorf("rank %d of %d (%s): %w", l.Rank, l.Size, l.Launcher, mpiErr)
		}
	}
	d.Index = l.LocalRank
	log = log.With().Int("rank", l.Rank).Logger()
	if l.Rank != 0 {
		log = log.Level(max(log.GetLevel(), zerolog.WarnLevel))
		env.Progress = nil
	}
	env.Log = log
	env.Dist = &trainrun.Dist{Rank: l.Rank, Size: l.Size, Reducer: func(b device.Backend) (model.Reducer, error) { return w.reducer(b, mpiErr) }}
	return w, nil
}

// reducer picks the collectives for the opened backend: NCCL on a GPU, MPI
// on the CPU.
func (w *world) reducer(b device.Backend, mpiErr error) (model.Reducer, error) {
	l := w.l
	if b.Name() == "gpu" {
		id := ""
		if w.mpi == nil && l.Size > 1 {
			var err error
			if id, err = dist.CommID(l, os.LookupEnv); err != nil {
				return nil, err
			}
		}
		n, err := dist.OpenNCCL(l, b, w.mpi, id)
		if err != nil {
			return nil, fmt.Errorf("rank %d of %d: %w", l.Rank, l.Size, err)
		}
		w.nccl = n
		log.Info().Msgf("data-parallel: %s", n.Describe())
		return n, nil
	}
	if w.mpi == nil {
		why := "torchrun starts no MPI world"
		if mpiErr != nil {
			why = mpiErr.Error()
		}
		return nil, fmt.Errorf("%s: data-parallel training on the CPU needs MPI (%s): launch with Open MPI's mpirun -np %d trainer train ...", l, why, l.Size)
	}
	log.Info().Msgf("data-parallel: %s", w.mpi.Describe())
	return w.mpi.Reducer(b), nil
}

// leave ends this rank's part: after a finished or interrupted run (every
// rank stops at the same step) it closes the communicators; after an error
// that may be this rank's alone it prints the error and ends the whole
// job (MPI_Abort; without MPI, this process, which NCCL's peers notice),
// so that the other ranks do not wait for it.
func (w *world) leave(err error) error {
	var ie *trainrun.InterruptedError
	if err == nil || errors.As(err, &ie) {
		var cerr error // the NCCL communicator was closed with the backend (run.Train)
		if w.mpi != nil {
			cerr = w.mpi.Close()
		}
		if cerr != nil && err == nil {
			return cerr
		}
		return err
	}
	code := exitCode(err)
	printError(logStderrOr(), userError(fmt.Errorf("rank %d: %w", w.l.Rank, err)), code)
	if w.mpi != nil {
		w.mpi.Abort(code)
	}
	os.Exit(code)
	return err // not reached
}
