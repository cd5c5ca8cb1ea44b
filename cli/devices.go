package cli

import (
	"fmt"
	"runtime"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/device/gpu"
	"github.com/trainer-go/trainer/dist"
)

func devicesCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "devices",
		Usage:       "list the compute devices and say why a GPU is or is not used",
		Description: "Example:\n   trainer devices",
		Action: func(c *ucli.Context) error {
			fmt.Fprintf(stdout, "cpu: %s, %d cores, %s/%s, SIMD: %s\n", cpu.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, strings.Join(cpu.Features(), " "))
			if _, err := fmt.Fprintln(stdout, gpu.Report()); err != nil {
				return err
			}
			return printLaunch()
		},
	}
}

// printLaunch says which rank this process is (from the launcher's
// environment) and whether MPI and NCCL, which data-parallel training
// needs on the CPU and on GPUs, load.
func printLaunch() error {
	l, err := dist.FromEnv()
	if err != nil {
		fmt.Fprintf(stdout, "launcher: %v\n", err)
	} else {
		fmt.Fprintln(stdout, l)
	}
	if path, version, err := dist.LoadMPI(); err != nil {
		fmt.Fprintf(stdout, "MPI: not available (needed for data-parallel training on the CPU): %v\n", err)
	} else {
		fmt.Fprintf(stdout, "MPI: %s (%s)\n", version, path)
	}
	if path, v, err := dist.LoadNCCL(); err != nil {
		fmt.Fprintf(stdout, "NCCL: not available (needed for data-parallel training on GPUs): %v\n", err)
	} else {
		fmt.Fprintf(stdout, "NCCL: %s (%s)\n", dist.NCCLVersionString(v), path)
	}
	return nil
}
