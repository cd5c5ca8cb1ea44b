// Package export writes a trained network for other programs: as an ONNX
// model (the network in evaluation mode, for ONNX Runtime and the like)
// and as a safetensors file of the weights alone, named like the PyTorch
// state_dict of the same network. It reads a planned model.Network and a
// flat parameter vector; the command line picks the checkpoint and the
// weights (trained or EMA) and writes the bytes.
package export

import (
	"fmt"
	"strconv"

	"github.com/trainer-go/trainer/model"
)

// InputScale says what the exported network takes, in the words the
// command's help and the ONNX doc_string use: what trainer predict and
// training feed it.
const InputScale = "float32 [N, C, H, W] (N images, channels first), each value the 8-bit pixel divided by 255 " +
	"(0 to 1, RGB order for 3 channels), the image resized to H x W; no mean/std normalisation outside the " +
	"network (a normalize layer of the model is part of the exported graph)"

// Source is what an export needs.
type Source struct {
	Net     *model.Network // planned (it need not be built on a device)
	Flat    []float32      // its flat parameters and buffers: the trained ones or their EMA
	Weights string         // "ema" or "trained": which Flat holds (recorded in the metadata)
	Classes []string       // class names, Net.Classes of them (nil: numbered)
	Dataset string         // the dataset trained on ("" when unknown)
	// BatchesTracked is num_batches_tracked of each BatchNorm layer, by
	// layer name (0 when missing).
	BatchesTracked map[string]int64
}

// check refuses a Source whose parts disagree.
func (s *Source) check() error {
	if s.Net == nil {
		return fmt.Errorf("export: no network")
	}
	if len(s.Flat) != s.Net.FlatLen() {
		return fmt.Errorf("export: %d parameter values, the model needs %d", len(s.Flat), s.Net.FlatLen())
	}
	if s.Classes != nil && len(s.Classes) != s.Net.Classes {
		return fmt.Errorf("export: %d class names for a model with %d outputs", len(s.Classes), s.Net.Classes)
	}
	return nil
}

// classNames is Classes, or the class numbers when there are none.
func (s *Source) classNames() []string {
	if s.Classes != nil {
		return s.Classes
	}
	out := make([]string, s.Net.Classes)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}

// inputShape is the network's input as the checkpoint metadata writes it.
func (s *Source) inputShape() string {
	in := s.Net.Input
	return fmt.Sprintf("%dx%dx%d", in.C, in.H, in.W)
}
