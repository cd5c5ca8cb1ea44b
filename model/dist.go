package model

import (
	"context"
	"fmt"

	"github.com/trainer-go/trainer/device"
)

// Reducer is what data-parallel training needs from the other processes
// (package dist implements it over MPI): every rank calls the same methods
// in the same order. The model never sees how the ranks talk.
//
// With a Reducer a Trainer trains as PyTorch's DistributedDataParallel
// with a DistributedSampler does: every rank starts from rank 0's weights,
// takes the strided share indices[rank::world] of the epoch's one shuffled
// order (padded by repeating its start to a multiple of the world size, as
// DistributedSampler(drop_last=False) does), runs forward and backward on
// its own batch (BatchNorm with the batch statistics of that rank), and
// averages the gradients over the ranks before the one optimiser step that
// every rank then takes identically.
type Reducer interface {
	Rank() int
	Size() int
	// AllReduce replaces b[:n] on every rank by the sum over the ranks, or
	// with avg by the mean.
	AllReduce(b device.Buffer, n int, avg bool) error
	// Broadcast replaces b[:n] on every rank by rank 0's.
	Broadcast(b device.Buffer, n int) error
	// MaxHost replaces x on every rank by the element-wise maximum over the ranks.
	MaxHost(x []float64) error
}

// rankSalt keys a rank's random streams (augmentation crops, dropout
// masks) apart from the other ranks'; rank 0's are a single process's.
func rankSalt(rank int) uint64 { return uint64(rank) * 0x9E3779B97F4A7C15 }

// shardOf is rank's share of the shuffled order perm of a world of world
// ranks, DistributedSampler's: (padded perm)[rank::world], padded to
// world*ceil(n/world) by repeating perm from its start.
func shardOf(dst, perm []int32, rank, world int) {
	n := len(perm)
	for i := range dst {
		dst[i] = perm[(rank+i*world)%n]
	}
}

// shardLen is the number of images one rank trains on per epoch: ceil(n/world).
func shardLen(n, world int) int { return (n + world - 1) / world }

// distStep is TrainStep with the gradients averaged over the ranks between
// backward and the optimiser, and the batch's loss sum and correct count
// summed over the ranks into the epoch's statistics (so every rank holds
// the same, global, statistics).
func (t *Trainer) distStep(cnt int, lr float64) error {
	net, b := t.net, t.b
	b.Fill(t.stepStats, 2, 0)
	net.Loss(net.Forward(cnt, true), cnt, true, float32(t.opt.Smoothing), t.stepStats)
	net.Backward(cnt)
	if err := t.dist.AllReduce(net.Grads, net.trainEnd(), true); err != nil {
		return err
	}
	t.opt2.Step(net, lr)
	if err := t.dist.AllReduce(t.stepStats, 2, false); err != nil {
		return err
	}
	b.Axpby(t.stepStats, t.stats, 2, 1, 1)
	return nil
}

// agreeStop says whether any rank wants to stop (an interrupt there): all
// ranks stop after the same step.
func (t *Trainer) agreeStop(local bool) (bool, error) {
	if t.dist == nil {
		return local, nil
	}
	x := t.flag[:1]
	x[0] = 0
	if local {
		x[0] = 1
	}
	if err := t.dist.MaxHost(x); err != nil {
		return false, err
	}
	return x[0] > 0, nil
}

// SyncRanks makes every rank's state rank 0's: it checks that the ranks
// agree on the model and the data (the same flags everywhere), then
// broadcasts the parameters, the optimiser's state and the weight average.
// Call it once before training, after Restore. Without a Reducer it does
// nothing.
func (t *Trainer) SyncRanks() error {
	if t.dist == nil {
		return nil
	}
	mine := []float64{float64(t.net.FlatLen()), float64(t.train.n), float64(t.opt.Batch), float64(len(t.batchIdx)), float64(t.net.step), float64(t.epoch), float64(t.pos)}
	x := make([]float64, 2*len(mine))
	for i, v := range mine {
		x[i], x[len(mine)+i] = v, -v
	}
	if err := t.dist.MaxHost(x); err != nil {
		return err
	}
	names := []string{"parameter count", "training images", "batch size", "steps per epoch", "global step", "epoch", "step in the epoch"}
	for i, name := range names {
		if hi, lo := x[i], -x[len(mine)+i]; hi != lo {
			return fmt.Errorf("the ranks disagree on the %s (%g to %g; rank %d has %g): start every rank with the same flags and the same data", name, lo, hi, t.dist.Rank(), mine[i])
		}
	}
	return t.broadcastState()
}

// broadcastState copies rank 0's parameters (buffers included), optimiser
// state and weight average to every rank.
func (t *Trainer) broadcastState() error {
	n := t.net.FlatLen()
	for _, buf := range []device.Buffer{t.net.Params, t.net.M, t.net.V, t.net.EMA} {
		if buf == nil {
			continue
		}
		if err := t.dist.Broadcast(buf, n); err != nil {
			return err
		}
	}
	return nil
}

// World is the number of ranks training together (1 without a Reducer).
func (t *Trainer) World() int { return t.world }

// broadcastWeights copies rank 0's parameters and BatchNorm running
// statistics (and their average) to every rank before validation: the
// trained parameters agree already; the running statistics of each rank
// followed its own batches.
func (t *Trainer) broadcastWeights() error {
	for _, buf := range []device.Buffer{t.net.Params, t.net.EMA} {
		if buf == nil {
			continue
		}
		if err := t.dist.Broadcast(buf, t.net.FlatLen()); err != nil {
			return err
		}
	}
	return nil
}

// checkStop returns ctx's error, or context.Canceled when another rank was
// interrupted, before a step. With several ranks the ranks agree every
// check steps (every step on the CPU), so that all stop after the same one.
func (t *Trainer) checkStop(ctx context.Context, check int) error {
	if t.dist == nil {
		return ctx.Err()
	}
	if t.pos%check != 0 {
		return nil // a local interrupt waits for the ranks' next agreement
	}
	stop, err := t.agreeStop(ctx.Err() != nil)
	if err != nil {
		return err
	}
	if stop {
		if err := ctx.Err(); err != nil {
			return err
		}
		return context.Canceled
	}
	return nil
}
