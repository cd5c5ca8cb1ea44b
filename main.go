// Command trainer trains convolutional image classifiers on NVIDIA GPUs and
// on the CPU. See README.md.
package main

import (
	"os"

	"github.com/trainer-go/trainer/cli"
)

func main() { os.Exit(cli.Run(os.Args)) }
