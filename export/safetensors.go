package export

import (
	"strings"

	"github.com/trainer-go/trainer/checkpoint"
	"github.com/trainer-go/trainer/run/meta"
)

// SafeTensors encodes the weights alone as a safetensors file, tensor for
// tensor PyTorch's state_dict of the same network: each layer's weight and
// bias, BatchNorm's running_mean, running_var and num_batches_tracked
// (int64, as PyTorch has it). The chosen weights (trained or EMA) are
// under the plain names; there is no optimiser state and no "ema."
// duplicate. The metadata holds what trainer predict and eval need to load
// the file (format, model, model.json, input), the class names and the
// dataset, plus the checksum every trainer safetensors file carries.
func SafeTensors(s Source) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var ts []checkpoint.Tensor
	for _, t := range s.Net.Tensors(s.Flat) {
		ts = append(ts, checkpoint.F32(t.Name, t.Shape, t.Data))
	}
	for _, name := range s.Net.BatchNormNames() {
		ts = append(ts, checkpoint.I64(name+".num_batches_tracked", []int{}, []int64{s.BatchesTracked[name]}))
	}
	md := map[string]string{
		meta.Format:    meta.FormatV1,
		meta.Model:     s.Net.Spec,
		meta.ModelJSON: s.Net.Desc.JSON(),
		meta.Input:     s.inputShape(),
		meta.Classes:   strings.Join(s.classNames(), ","),
		meta.Weights:   s.Weights,
	}
	if s.Dataset != "" {
		md[meta.Dataset] = s.Dataset
	}
	return checkpoint.Encode(ts, md)
}
