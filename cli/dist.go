package cli

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/trainer-go/trainer/device"
	"github.com/trainer-go/trainer/dist"
	"github.com/trainer-go/trainer/model"
	trainrun "github.com/trainer-go/trainer/run"
)

// joinWorld reads the launcher's environment and, when this process is one
// of several ranks, joins their MPI world, sets env.Dist, and quietens the
// ranks other than 0 (warnings and errors only, no progress bar). It
// returns nil for a single process.
func joinWorld(env *trainrun.Env, d trainrun.Device) (*dist.Comm, error) {
	l, err := dist.FromEnv()
	if err != nil {
		return nil, err
	}
	if !l.Distributed() {
		return nil, nil
	}
	switch l.Launcher {
	case dist.LauncherTorchrun:
		return nil, fmt.Errorf("%s: torchrun starts no MPI world, and data-parallel training over NCCL (GPUs) is not in this build: launch with Open MPI's mpirun -np %d (or srun with Open MPI)", l, l.Size)
	case dist.LauncherPMI:
		return nil, fmt.Errorf("%s: MPICH is not supported yet: launch with Open MPI's mpirun -np %d", l, l.Size)
	}
	comm, err := dist.OpenMPI(l, 0)
	if err != nil {
		return nil, fmt.Errorf("rank %d of %d (%s): %w", l.Rank, l.Size, l.Launcher, err)
	}
	log = log.With().Int("rank", l.Rank).Logger()
	if l.Rank != 0 {
		log = log.Level(max(log.GetLevel(), zerolog.WarnLevel))
		env.Progress = nil
	}
	env.Log = log
	log.Info().Str("device", d.Name).Msgf("data-parallel: %s", comm.Describe())
	env.Dist = &trainrun.Dist{Rank: l.Rank, Size: l.Size,
		Reducer: func(b device.Backend) (model.Reducer, error) { return comm.Reducer(b), nil }}
	return comm, nil
}

// leaveWorld ends this rank's part: after a finished or interrupted run
// (every rank stops at the same step) it finalises MPI; after an error
// that may be this rank's alone it prints the error and aborts the whole
// job (MPI_Abort), so that the other ranks do not wait for it.
func leaveWorld(comm *dist.Comm, err error) error {
	var ie *trainrun.InterruptedError
	if err == nil || errors.As(err, &ie) {
		if cerr := comm.Close(); cerr != nil && err == nil {
			return cerr
		}
		return err
	}
	code := exitCode(err)
	printError(logStderrOr(), userError(fmt.Errorf("rank %d: %w", comm.Rank(), err)), code)
	comm.Abort(code)
	return err // not reached
}
