package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/trainer-go/trainer/model"
	trainrun "github.com/trainer-go/trainer/run"
)

func summaryCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "summary",
		Usage: "print the layers, output shapes and parameter counts of a model",
		Description: "Examples:\n   trainer summary --model resnet20\n   trainer summary --model my-net.yaml\n" +
			"   trainer summary --model conv32k3,maxpool2,flatten,dense10 --input 3x32x32\n   trainer summary --model resnet20 --json   (the canonical model file)\n\n" +
			"--model takes a preset (" + strings.Join(model.Presets(), ", ") + "), a model file (.json, .yaml; see the README) or a layer spec.\n\n" + model.SpecGrammar,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "model", Value: model.DefaultSpec, Usage: "preset, model file or layer spec"},
			&ucli.BoolFlag{Name: "json", Usage: "print the model's canonical JSON description (every default filled in) instead of the table"},
			&ucli.StringFlag{Name: "input", Value: "3x32x32", Usage: "input shape CxHxW"},
		},
		Action: func(c *ucli.Context) error {
			var in model.Shape
			if _, err := fmt.Sscanf(c.String("input"), "%dx%dx%d", &in.C, &in.H, &in.W); err != nil || in.C < 1 || in.H < 1 || in.W < 1 {
				return fmt.Errorf("--input %q: give CxHxW, e.g. 3x32x32", c.String("input"))
			}
			net, err := model.Plan(c.String("model"), in)
			if err != nil {
				return trainrun.FlagError(err)
			}
			if c.Bool("json") {
				_, err := fmt.Fprintln(stdout, net.Desc.JSON())
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "#\tlayer\ttype\tinput\toutput\tparams")
			fmt.Fprintf(w, "\tinput\t\t\t%s\t\n", in)
			for i, r := range net.Summary() {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, r.Name, r.Type, r.Input, r.Output, comma(r.Params))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "total parameters: %s\ntraining cost: %.1f MFLOP per image\n", comma(net.NumParams()), net.FlopsPerImage()/1e6)
			return err
		},
	}
}

func comma(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
