// Package meta defines every metadata key trainer writes into a checkpoint,
// in one place, and the typed Meta that encodes to and decodes from the
// checkpoint's string map.
//
// It is a leaf package (strconv and the checkpoint format only) so that both
// model, which writes the network and training-state keys, and run, which
// writes the run's settings and results, use the same definitions without an
// import cycle (run imports model). run re-exports Meta as run.Meta.
package meta

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/trainer-go/trainer/checkpoint"
)

// Keys of a checkpoint's metadata.
const (
	// Written by model for every checkpoint.
	Format    = "format"     // FormatV1
	Model     = "model"      // what --model said: preset, file or comma spec
	ModelJSON = "model.json" // the canonical model description (model.Desc)
	Input     = "input"      // CxHxW

	// The run's settings (train).
	BatchSize  = "batch_size"
	EvalBatch  = "eval_batch" // the validation batch, which eval reuses
	LR         = "lr"
	LRSchedule = "lr_schedule"
	Seed       = "seed"
	Augment    = "augment"
	Dataset    = "dataset"
	ValSplit   = "val_split"  // folder datasets only
	DataDir    = "data_dir"   // folder datasets only, absolute
	Classes    = "classes"    // comma-separated class names
	Recipe     = "recipe"     // run.Recipe as JSON
	Optimizer  = "optimizer"  // the optimiser kind, which names its state tensors
	WorldSize  = "world_size" // data-parallel ranks (absent: 1); batch_size is per rank

	// Written by trainer export: which weights an export holds, "ema" or
	// "trained".
	Weights = "weights"

	// The run's results so far (train).
	Epoch           = "epoch"
	ValAccuracy     = "val_accuracy"
	ValLoss         = "val_loss"
	BestValAccuracy = "best_val_accuracy"
	BestValLoss     = "best_val_loss"
	BadEpochs       = "bad_epochs" // epochs since val_loss last improved
	SavedBecause    = "saved_because"

	// The training state of a resumable checkpoint (model).
	TrainEpoch    = "train.epoch"
	TrainPos      = "train.pos"
	TrainAdamStep = "train.adam_step"
	TrainRNG      = "train.rng"   // hex
	TrainStats    = "train.stats" // two float32 bit patterns, hex
	TrainSeconds  = "train.seconds"

	// Checksum is added by the checkpoint package on write.
	Checksum = checkpoint.MetaChecksum
)

// FormatV1 is the value of Format.
const FormatV1 = "trainer/1"

// TrainState is the training position saved with a resumable checkpoint
// (the optimiser moments are tensors, not metadata).
type TrainState struct {
	Epoch, Pos, AdamStep int
	RNG                  []byte
	Stats                [2]float32
	Seconds              float64
}

// Encode adds the train.* keys to m.
func (s TrainState) Encode(m map[string]string) {
	m[TrainEpoch] = strconv.Itoa(s.Epoch)
	m[TrainPos] = strconv.Itoa(s.Pos)
	m[TrainAdamStep] = strconv.Itoa(s.AdamStep)
	m[TrainRNG] = hex.EncodeToString(s.RNG)
	m[TrainStats] = fmt.Sprintf("%08x%08x", math.Float32bits(s.Stats[0]), math.Float32bits(s.Stats[1]))
	m[TrainSeconds] = strconv.FormatFloat(s.Seconds, 'g', -1, 64)
}

// HasTrainState says whether m holds a training state.
func HasTrainState(m map[string]string) bool {
	_, ok := m[TrainAdamStep]
	return ok
}

// DecodeTrainState reads the train.* keys of m. On a malformed value it
// returns the key's short name (epoch, pos, adam_step, rng, stats) and
// false. train.seconds is informational: a malformed one reads as 0.
func DecodeTrainState(m map[string]string) (TrainState, string, bool) {
	var s TrainState
	for _, f := range []struct {
		key string
		dst *int
	}{{TrainEpoch, &s.Epoch}, {TrainPos, &s.Pos}, {TrainAdamStep, &s.AdamStep}} {
		v, err := strconv.Atoi(m[f.key])
		if err != nil || v < 0 {
			return s, strings.TrimPrefix(f.key, "train."), false
		}
		*f.dst = v
	}
	var err error
	if s.RNG, err = hex.DecodeString(m[TrainRNG]); err != nil || len(s.RNG) == 0 {
		return s, "rng", false
	}
	var a, b uint32
	if _, err := fmt.Sscanf(m[TrainStats], "%08x%08x", &a, &b); err != nil {
		return s, "stats", false
	}
	s.Stats = [2]float32{math.Float32frombits(a), math.Float32frombits(b)}
	s.Seconds, _ = strconv.ParseFloat(m[TrainSeconds], 64)
	return s, "", true
}

// Meta is a checkpoint's metadata, typed. Decode is lenient (a missing or
// malformed value reads as the zero value, or as noted), as checkpoints of
// weights only or of older trainers lack most keys; Encode writes every run
// key, so Decode(m).Encode() == m for a checkpoint written by train.
type Meta struct {
	Format, Model, Input string

	BatchSize, EvalBatch int
	LR                   float64
	LRSchedule           string // "" in checkpoints that predate schedules
	Seed                 uint64
	Augment              bool
	Dataset              string
	ValSplit             float64 // Dataset "folder" only
	DataDir              string  // Dataset "folder" only
	Classes              []string
	ModelJSON            string // the canonical model description (written by model)
	Optimizer            string
	Recipe               string // run.Recipe as JSON
	WorldSize            int    // data-parallel ranks; 1 when absent

	Epoch                int
	ValAccuracy, ValLoss float64
	BestValAccuracy      float64 // -1 when absent
	BestValLoss          float64 // +Inf when absent
	BadEpochs            int
	SavedBecause         string
	Train                *TrainState // nil: weights only
	Extra                map[string]string
}

var known = map[string]bool{Format: true, Model: true, Input: true, BatchSize: true, EvalBatch: true, LR: true, LRSchedule: true,
	Seed: true, Augment: true, Dataset: true, ValSplit: true, DataDir: true, Classes: true, Epoch: true, ValAccuracy: true,
	ValLoss: true, BestValAccuracy: true, BestValLoss: true, BadEpochs: true, SavedBecause: true, TrainEpoch: true,
	TrainPos: true, TrainAdamStep: true, TrainRNG: true, TrainStats: true, TrainSeconds: true, Checksum: true,
	ModelJSON: true, Optimizer: true, Recipe: true, WorldSize: true}

// Encode returns the metadata map (without the checksum, which the
// checkpoint package adds).
func (m Meta) Encode() map[string]string {
	out := map[string]string{Format: m.Format, Model: m.Model, Input: m.Input}
	for k, v := range m.Extra {
		out[k] = v
	}
	out[BatchSize] = strconv.Itoa(m.BatchSize)
	out[EvalBatch] = strconv.Itoa(m.EvalBatch)
	out[LR] = strconv.FormatFloat(m.LR, 'g', -1, 64)
	out[LRSchedule] = m.LRSchedule
	out[Seed] = strconv.FormatUint(m.Seed, 10)
	out[Augment] = strconv.FormatBool(m.Augment)
	out[Dataset] = m.Dataset
	if m.Dataset == "folder" {
		out[ValSplit] = fmt.Sprint(m.ValSplit)
		if m.DataDir != "" {
			out[DataDir] = m.DataDir
		}
	}
	out[Classes] = strings.Join(m.Classes, ",")
	for k, v := range map[string]string{ModelJSON: m.ModelJSON, Optimizer: m.Optimizer, Recipe: m.Recipe} {
		if v != "" {
			out[k] = v
		}
	}
	if m.WorldSize > 1 {
		out[WorldSize] = strconv.Itoa(m.WorldSize) // a single process's checkpoints are as they were
	}
	out[Epoch] = strconv.Itoa(m.Epoch)
	out[ValAccuracy] = strconv.FormatFloat(m.ValAccuracy, 'f', -1, 64)
	out[ValLoss] = strconv.FormatFloat(m.ValLoss, 'f', -1, 64)
	out[BestValAccuracy] = strconv.FormatFloat(m.BestValAccuracy, 'f', -1, 64)
	out[BestValLoss] = strconv.FormatFloat(m.BestValLoss, 'g', -1, 64)
	out[BadEpochs] = strconv.Itoa(m.BadEpochs)
	out[SavedBecause] = m.SavedBecause
	if m.Train != nil {
		m.Train.Encode(out)
	}
	return out
}

// Decode reads a checkpoint's metadata map.
func Decode(in map[string]string) Meta {
	m := Meta{Format: in[Format], Model: in[Model], Input: in[Input], LRSchedule: in[LRSchedule], Dataset: in[Dataset],
		DataDir: in[DataDir], SavedBecause: in[SavedBecause], Augment: in[Augment] == "true",
		ModelJSON: in[ModelJSON], Optimizer: in[Optimizer], Recipe: in[Recipe],
		BestValAccuracy: -1, BestValLoss: math.Inf(1)}
	m.BatchSize, _ = strconv.Atoi(in[BatchSize])
	m.EvalBatch, _ = strconv.Atoi(in[EvalBatch])
	m.LR, _ = strconv.ParseFloat(in[LR], 64)
	m.Seed, _ = strconv.ParseUint(in[Seed], 10, 64)
	fmt.Sscan(in[ValSplit], &m.ValSplit)
	if in[Classes] != "" {
		m.Classes = strings.Split(in[Classes], ",")
	}
	m.Epoch, _ = strconv.Atoi(in[Epoch])
	if m.WorldSize, _ = strconv.Atoi(in[WorldSize]); m.WorldSize < 1 {
		m.WorldSize = 1
	}
	m.ValAccuracy, _ = strconv.ParseFloat(in[ValAccuracy], 64)
	m.ValLoss, _ = strconv.ParseFloat(in[ValLoss], 64)
	if v, err := strconv.ParseFloat(in[BestValAccuracy], 64); err == nil {
		m.BestValAccuracy = v
	}
	if v, err := strconv.ParseFloat(in[BestValLoss], 64); err == nil {
		m.BestValLoss = v
	}
	m.BadEpochs, _ = strconv.Atoi(in[BadEpochs])
	if HasTrainState(in) {
		if s, _, ok := DecodeTrainState(in); ok {
			m.Train = &s
		}
	}
	for k, v := range in {
		if !known[k] {
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[k] = v
		}
	}
	return m
}
