package cli

import (
	"fmt"
	"runtime"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/device/cpu"
	"github.com/trainer-go/trainer/device/gpu"
)

func devicesCommand() *ucli.Command {
	return &ucli.Command{
		Name:        "devices",
		Usage:       "list the compute devices and say why a GPU is or is not used",
		Description: "Example:\n   trainer devices",
		Action: func(c *ucli.Context) error {
			fmt.Fprintf(stdout, "cpu: %s, %d cores, %s/%s, SIMD: %s\n", cpu.CPUModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, strings.Join(cpu.Features(), " "))
			_, err := fmt.Fprintln(stdout, gpu.Report())
			return err
		},
	}
}
