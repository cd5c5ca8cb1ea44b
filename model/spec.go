package model

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DefaultSpec is the CIFAR-10 CNN of the Keras tutorial: 122,570 parameters
// on 3x32x32 input.
const DefaultSpec = "conv32k3,maxpool2,conv64k3,maxpool2,conv64k3,flatten,dense64,dense10"

// SpecGrammar documents the model spec grammar for help texts and the README.
const SpecGrammar = `A model is a comma-separated list of layers, input first:
  conv<F>k<K>[s<S>][same|valid][linear]  convolution, F filters, KxK kernel, stride S (1),
                                          padding valid (default) or same; ReLU unless "linear"
  maxpool<K>[s<S>]                        max pooling, KxK window, stride S (default K), valid
  avgpool<K>[s<S>]                        average pooling, same options
  relu                                    a ReLU on its own
  flatten                                 CHW -> one vector (PyTorch order); needed before dense
  dense<U>[linear]                        fully connected, U units; ReLU unless "linear",
                                          except the last layer, which always gives logits
Example (the default): ` + DefaultSpec

// LayerSpec is one parsed token of a model spec.
type LayerSpec struct {
	Kind  string // conv, maxpool, avgpool, relu, flatten, dense
	Token string // the text it came from
	Units int    // conv filters or dense units
	K, S  int    // kernel/window and stride
	Same  bool   // conv padding "same"
	ReLU  bool   // conv/dense followed by ReLU
}

var (
	reConv  = regexp.MustCompile(`^conv(\d+)k(\d+)(?:s(\d+))?(same|valid)?(linear)?$`)
	rePool  = regexp.MustCompile(`^(max|avg)pool(\d+)(?:s(\d+))?$`)
	reDense = regexp.MustCompile(`^dense(\d+)(linear)?$`)
)

// ParseSpec parses a model spec (see SpecGrammar).
func ParseSpec(spec string) ([]LayerSpec, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, &SpecError{Msg: "empty model spec\n" + SpecGrammar}
	}
	var out []LayerSpec
	toks := strings.Split(spec, ",")
	for i, raw := range toks {
		t := strings.ToLower(strings.TrimSpace(raw))
		bad := func(why string) error {
			return &SpecError{Layer: i + 1, Msg: fmt.Sprintf("layer %d %q: %s", i+1, raw, why)}
		}
		num := func(s string, what string, lo, hi int) (int, error) {
			if s == "" {
				return 0, nil
			}
			v, err := strconv.Atoi(s)
			if err != nil || v < lo || v > hi {
				return 0, bad(fmt.Sprintf("%s %s must be between %d and %d", what, s, lo, hi))
			}
			return v, nil
		}
		var l LayerSpec
		l.Token = t
		switch {
		case reConv.MatchString(t):
			m := reConv.FindStringSubmatch(t)
			var err error
			l.Kind = "conv"
			if l.Units, err = num(m[1], "filter count", 1, 1<<16); err != nil {
				return nil, err
			}
			if l.K, err = num(m[2], "kernel size", 1, 64); err != nil {
				return nil, err
			}
			if l.S, err = num(m[3], "stride", 1, 64); err != nil {
				return nil, err
			}
			if l.S == 0 {
				l.S = 1
			}
			l.Same = m[4] == "same"
			l.ReLU = m[5] == ""
		case rePool.MatchString(t):
			m := rePool.FindStringSubmatch(t)
			var err error
			l.Kind = m[1] + "pool"
			if l.K, err = num(m[2], "window", 1, 64); err != nil {
				return nil, err
			}
			if l.S, err = num(m[3], "stride", 1, 64); err != nil {
				return nil, err
			}
			if l.S == 0 {
				l.S = l.K
			}
		case reDense.MatchString(t):
			m := reDense.FindStringSubmatch(t)
			var err error
			l.Kind = "dense"
			if l.Units, err = num(m[1], "unit count", 1, 1<<20); err != nil {
				return nil, err
			}
			l.ReLU = m[2] == ""
		case t == "relu" || t == "flatten":
			l.Kind = t
		default:
			return nil, bad("unknown layer; expected conv<F>k<K>, maxpool<K>, avgpool<K>, relu, flatten or dense<U>")
		}
		out = append(out, l)
	}
	last := &out[len(out)-1]
	if last.Kind != "dense" {
		return nil, &SpecError{Msg: fmt.Sprintf("the last layer must be dense<classes> (the logits), got %q", last.Token)}
	}
	last.ReLU = false
	return out, nil
}
