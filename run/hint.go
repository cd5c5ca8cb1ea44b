package run

import (
	"fmt"
	"strconv"
	"strings"
)

// ResumeCommand is the command line that continues the run whose checkpoint
// is out: the program as it was invoked (cfg.Program), the global arguments (cfg.Global), train --resume out,
// then the settings that differ from Default and that the checkpoint does
// not fix (the model, batch, learning rate and schedule, seed and
// augmentation come from it; --out, --force and the test hook do not
// apply). Arguments are quoted for a POSIX shell.
func ResumeCommand(cfg Config, out string) string {
	prog := cfg.Program
	if prog == "" {
		prog = "trainer"
	}
	args := append([]string{prog}, cfg.Global...)
	args = append(args, "train", "--resume", out)
	args = append(args, changedFlags(cfg)...)
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// changedFlags lists, as flags, the settings of cfg that a resumed run
// still takes from the command line and that differ from Default.
func changedFlags(cfg Config) []string {
	d := Default()
	var args []string
	add := func(name string, v, def any) {
		if fmt.Sprint(v) != fmt.Sprint(def) {
			args = append(args, "--"+name, fmt.Sprint(v))
		}
	}
	flag := func(name string, v bool) {
		if v {
			args = append(args, "--"+name)
		}
	}
	add("epochs", cfg.Epochs, d.Epochs)
	add("save-every", cfg.SaveEvery, d.SaveEvery)
	add("keep", cfg.Keep, d.Keep)
	add("early-stop", cfg.EarlyStop, d.EarlyStop)
	flag("quiet", cfg.Quiet)
	add("dataset", cfg.Data.Kind, d.Data.Kind)
	add("data-dir", cfg.Data.Dir, d.Data.Dir)
	add("val-dir", cfg.Data.ValDir, d.Data.ValDir)
	if cfg.Data.ValSplit != d.Data.ValSplit {
		args = append(args, "--val-split", strconv.FormatFloat(cfg.Data.ValSplit, 'g', -1, 64))
	}
	add("image-size", cfg.Data.ImageSize, d.Data.ImageSize)
	add("device", cfg.Device.Name, d.Device.Name)
	add("threads", cfg.Device.Threads, d.Device.Threads)
	add("precision", cfg.Device.Precision, d.Device.Precision)
	return args
}

// shellQuote quotes a for a POSIX shell unless every byte is one that no
// shell treats specially (letters, digits and @%+=:,./_-), or a is empty.
func shellQuote(a string) string {
	safe := a != ""
	for _, c := range []byte(a) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("@%+=:,./_-", c) >= 0) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
