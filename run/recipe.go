package run

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/trainer-go/trainer/model"
)

// Recipe is how a run trains, beyond the learning rate, schedule name and
// batch: the optimiser, regularisation, schedule shape, weight averaging
// and augmentation. Every field is a flag (its json name with - for _). A
// checkpoint stores it as JSON under meta key "recipe"; a resumed run takes
// it from there.
type Recipe struct {
	Optimizer       string   `json:"optimizer"`         // adam, adamw, sgd, rmsprop
	Momentum        float64  `json:"momentum"`          // sgd, rmsprop
	Nesterov        bool     `json:"nesterov"`          // sgd
	WeightDecay     *float64 `json:"weight_decay"`      // nil: the optimiser's default (0; adamw 0.01)
	BiasWeightDecay *float64 `json:"bias_weight_decay"` // nil: WeightDecay
	NormWeightDecay *float64 `json:"norm_weight_decay"` // nil: WeightDecay
	NormLRFactor    float64  `json:"norm_lr_factor"`    // 0: 1
	LabelSmoothing  float64  `json:"label_smoothing"`
	Warmup          float64  `json:"warmup"`          // linear/onecycle: a fraction of the run (< 1) or steps
	LRStartFactor   float64  `json:"lr_start_factor"` // linear: the warm-up starts at lr*this
	LREndFactor     float64  `json:"lr_end_factor"`   // linear: the last step's lr is lr*this
	EMA             float64  `json:"ema"`             // decay; 0: none
	EMAEvery        int      `json:"ema_every"`
	Lookahead       float64  `json:"lookahead"` // decay of airbench's lookahead; 0: none
	LookaheadEvery  int      `json:"lookahead_every"`
	AugmentPad      int      `json:"augment_pad"`
	AugmentPadding  string   `json:"augment_padding"` // zero or reflect
	AugmentFlip     bool     `json:"augment_flip"`
	DropLast        bool     `json:"drop_last"` // leave out an epoch's last, smaller batch
}

// DefaultRecipe is today's trainer: Keras's Adam, nothing else.
func DefaultRecipe() Recipe {
	return Recipe{Optimizer: "adam", AugmentPad: model.AugmentPad, AugmentPadding: "zero", AugmentFlip: true,
		EMAEvery: 1, LookaheadEvery: 5}
}

// RecipeFlags are the flag names of Recipe's fields, in field order.
func RecipeFlags() []string {
	t := reflect.TypeOf(Recipe{})
	var out []string
	for i := range t.NumField() {
		out = append(out, strings.ReplaceAll(t.Field(i).Tag.Get("json"), "_", "-"))
	}
	return out
}

// Optim is the optimiser's configuration.
func (r Recipe) Optim() model.OptimConfig {
	c := model.DefaultOptim(r.Optimizer)
	c.Kind = r.Optimizer // an unknown name stays unknown, for Check
	c.Momentum, c.Nesterov = r.Momentum, r.Nesterov
	if r.WeightDecay != nil {
		c.WeightDecay = *r.WeightDecay
	}
	c.BiasWeightDecay, c.NormWeightDecay, c.NormLRFactor = r.BiasWeightDecay, r.NormWeightDecay, r.NormLRFactor
	return c
}

// Augmentation is the augmentation of --augment.
func (r Recipe) Augmentation() model.Augmentation {
	return model.Augmentation{Pad: r.AugmentPad, Reflect: r.AugmentPadding == "reflect", NoFlip: !r.AugmentFlip}
}

// validate checks the recipe, naming flags.
func (r Recipe) validate() error {
	if err := r.Optim().Check(); err != nil {
		return fmt.Errorf("--%s", err)
	}
	if r.Optimizer == "adam" || r.Optimizer == "adamw" {
		if r.Momentum != 0 {
			return fmt.Errorf("--momentum %g: %s has no momentum setting (its betas are 0.9 and 0.999)", r.Momentum, r.Optimizer)
		}
	}
	checks := []struct {
		ok  bool
		msg string
	}{
		{r.LabelSmoothing >= 0 && r.LabelSmoothing < 1, fmt.Sprintf("--label-smoothing %g: must be at least 0 and below 1", r.LabelSmoothing)},
		{r.Warmup >= 0 && r.Warmup == math.Trunc(r.Warmup) || r.Warmup >= 0 && r.Warmup < 1, fmt.Sprintf("--warmup %g: give a fraction of the run below 1 (0.3) or a whole number of steps", r.Warmup)},
		{r.LRStartFactor >= 0 && r.LRStartFactor <= 1, fmt.Sprintf("--lr-start-factor %g: must be between 0 and 1", r.LRStartFactor)},
		{r.LREndFactor >= 0 && r.LREndFactor <= 1, fmt.Sprintf("--lr-end-factor %g: must be between 0 and 1", r.LREndFactor)},
		{r.EMA >= 0 && r.EMA < 1, fmt.Sprintf("--ema %g: give the decay, e.g. 0.999 (0: no average)", r.EMA)},
		{r.Lookahead >= 0 && r.Lookahead <= 1, fmt.Sprintf("--lookahead %g: give the decay, e.g. 0.7738 (0: none)", r.Lookahead)},
		{r.EMA == 0 || r.Lookahead == 0, "--ema and --lookahead: choose one"},
		{r.EMAEvery >= 1 && r.EMAEvery <= 1<<20, fmt.Sprintf("--ema-every %d: must be at least 1", r.EMAEvery)},
		{r.LookaheadEvery >= 1 && r.LookaheadEvery <= 1<<20, fmt.Sprintf("--lookahead-every %d: must be at least 1", r.LookaheadEvery)},
		{r.AugmentPad >= 0 && r.AugmentPad <= 64, fmt.Sprintf("--augment-pad %d: must be 0 to 64", r.AugmentPad)},
		{r.AugmentPadding == "zero" || r.AugmentPadding == "reflect", fmt.Sprintf("--augment-padding %q: use zero or reflect", r.AugmentPadding)},
	}
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("%s", c.msg)
		}
	}
	return nil
}

// checkImage checks what depends on the image size.
func (r Recipe) checkImage(h, w int) error {
	if r.AugmentPadding == "reflect" && (r.AugmentPad >= h || r.AugmentPad >= w) {
		return fmt.Errorf("--augment-pad %d: reflect padding must be smaller than the %dx%d images", r.AugmentPad, h, w)
	}
	return nil
}

// encode is the recipe's JSON for the checkpoint.
func (r Recipe) encode() string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// decodeRecipe reads a checkpoint's recipe; a checkpoint from before
// recipes trained with the default one.
func decodeRecipe(s string) (Recipe, error) {
	r := DefaultRecipe()
	if s == "" {
		return r, nil
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, fmt.Errorf("the recipe in its metadata does not parse: %v", err)
	}
	return r, nil
}

// mergeResumed takes the saved recipe, refusing flags given that
// contradict it.
func (r *Recipe) mergeResumed(saved Recipe, set func(string) bool, path string) error {
	have, old := reflect.ValueOf(r).Elem(), reflect.ValueOf(saved)
	for i, flag := range RecipeFlags() {
		a, b := have.Field(i).Interface(), old.Field(i).Interface()
		if set(flag) && !reflect.DeepEqual(a, b) {
			return fmt.Errorf("--%s %v: the run in %s was started with %v; a resumed run keeps its settings (start a new run with another --out instead)",
				flag, show(a), path, show(b))
		}
	}
	*r = saved
	return nil
}

func show(v any) any {
	if p, ok := v.(*float64); ok {
		if p == nil {
			return "the default"
		}
		return *p
	}
	return v
}
