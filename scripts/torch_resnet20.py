#!/usr/bin/env python3
"""PyTorch twin of the trainer's ResNet-20 recipe on CIFAR-10 (binary layout).

    /usr/bin/python3 scripts/torch_resnet20.py --data DIR [--model model/presets/resnet20.json]
        [--epochs 10] [--batch 128] [--lr 0.1] [--momentum 0.9] [--nesterov]
        [--weight-decay 5e-4] [--lr-schedule onecycle|none] [--label-smoothing 0.1]
        [--augment] [--seed 0] [--threads N]
    /usr/bin/python3 scripts/torch_resnet20.py --data DIR --json-bench --steps 100 [--warmup 10] [--batch 128]

The network is built from the model file by torch_model.py (the module
torch_eval.py uses), with PyTorch's default init (conv and linear U(+-1/
sqrt(fan_in)), BatchNorm weight 1, bias 0) under torch.manual_seed(seed); a
model named resnet20 must have 272,474 parameters.

Data: DIR/data_batch_*.bin for training, DIR/test_batch.bin for validation,
pixels * float32(1/255) (the trainer's arithmetic), no mean/std
normalisation. Each epoch trains on a fresh random permutation (a
torch.Generator seeded by seed), keeping the last partial batch. --augment:
per image, a random 32x32 crop of the image zero-padded by 4 and a random
left-right flip (same generator).

Optimizer: SGD(lr, momentum, nesterov, weight_decay on every parameter),
CrossEntropyLoss(label_smoothing). onecycle: OneCycleLR(max_lr=lr,
total_steps=epochs*steps_per_epoch, pct_start=0.3, anneal_strategy="cos",
div_factor=25, final_div_factor=1e4, cycle_momentum=False), stepped after
every batch; none: constant lr.

Prints one JSON line per epoch: {"epoch", "loss" (mean smoothed training
loss), "accuracy" (training, on the augmented batches), "val_loss" (plain
cross-entropy), "val_accuracy", "seconds" (training time of the epoch,
without validation, as the trainer's history), "images_per_s" (training
images / seconds)}.

--json-bench: --warmup untimed steps, then --steps timed training steps of
--batch images (full batches of the permuted training set, wrapping around),
and one JSON line {"steps", "batch", "seconds", "images_per_s", "threads"};
no validation. Errors are one line on stderr, exit 1.
"""
import argparse
import glob
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import torch_model

RECORD = 1 + 3 * 32 * 32
RESNET20_PARAMS = 272474


class Fail(Exception):
    pass


def read_records(paths):
    """(uint8 images [N, 3, 32, 32], int64 labels [N]) of CIFAR-10 binary files."""
    parts = []
    for p in paths:
        raw = np.fromfile(p, dtype=np.uint8)
        if raw.size == 0 or raw.size % RECORD:
            raise Fail(f"{p}: {raw.size} bytes is not a whole number of {RECORD}-byte records")
        parts.append(raw.reshape(-1, RECORD))
    raw = np.concatenate(parts)
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))


def load_data(folder, need_val=True):
    train = sorted(glob.glob(os.path.join(folder, "data_batch_*.bin")),
                   key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))
    if not train:
        raise Fail(f"{folder}: no data_batch_*.bin (give --data a cifar-10-batches-bin folder)")
    val = os.path.join(folder, "test_batch.bin")
    if need_val and not os.path.isfile(val):
        raise Fail(f"{val}: not found")
    return read_records(train), read_records([val]) if need_val else None


SCALE = np.float32(1 / 255)


def to_float(u8):
    return u8.float().mul_(float(SCALE))


def augment(x, gen, pad=4):
    """Random crop of the zero-padded images and random left-right flip, one
    draw per image, by one gather."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.randint(0, 2, (n,), generator=gen).bool()
    rows = dy[:, None] + torch.arange(h)
    cols = torch.arange(w).expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]
    i = torch.arange(n)[:, None, None, None]
    c = torch.arange(x.shape[1])[None, :, None, None]
    return padded[i, c, rows[:, None, :, None], cols[:, None, None, :]]


def batches(n, batch, gen, full_only=False):
    perm = torch.randperm(n, generator=gen)
    end = n - n % batch if full_only else n
    for i in range(0, end, batch):
        yield perm[i:i + batch]


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(to_float(x[i:i + batch]))
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return loss / len(x), correct / len(x)


def build(a):
    try:
        spec = torch_model.load_spec(a.model)
        torch.manual_seed(a.seed)
        model = torch_model.build(spec, (3, 32, 32),
                                  warn=lambda m: print(f"torch_resnet20: {a.model}: {m}", file=sys.stderr))
    except (OSError, torch_model.ModelError) as e:
        raise Fail(f"--model {a.model}: {e}")
    if model._tm.whiten:
        raise Fail(f"--model {a.model}: whiten layers ({', '.join(model._tm.whiten)}) need data; this twin has none")
    params = torch_model.count_params(model)
    if spec.get("name") == "resnet20" and params != RESNET20_PARAMS:
        raise Fail(f"--model {a.model}: resnet20 has {params} parameters, want {RESNET20_PARAMS}")
    if model._tm.output_shape != (10,):
        raise Fail(f"--model {a.model}: output {model._tm.output_shape}, want 10 logits for CIFAR-10")
    print(f"torch_resnet20: {spec.get('name', '?')}: {params} parameters, {a.threads} threads", file=sys.stderr)
    return model


def optimizer(a, model, total_steps):
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.nesterov,
                          weight_decay=a.weight_decay)
    sched = None
    if a.lr_schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=a.lr, total_steps=total_steps, pct_start=0.3, anneal_strategy="cos",
            div_factor=25, final_div_factor=1e4, cycle_momentum=False)
    return opt, sched


def step(a, model, opt, sched, crit, x, y, gen):
    """One training step; returns (summed loss, correct) of the batch."""
    x = to_float(x)
    if a.augment:
        x = augment(x, gen)
    out = model(x)
    loss = crit(out, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()
    return loss.item() * len(y), (out.argmax(1) == y).sum().item()


def bench(a, model, xtr, ytr, gen, crit):
    n = len(xtr)
    if n < a.batch:
        raise Fail(f"--batch {a.batch}: the training set has only {n} images")
    opt, sched = optimizer(a, model, a.warmup + a.steps)
    model.train()

    def indices():
        while True:
            yield from batches(n, a.batch, gen, full_only=True)

    it = indices()
    for _ in range(a.warmup):
        idx = next(it)
        step(a, model, opt, sched, crit, xtr[idx], ytr[idx], gen)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        idx = next(it)
        step(a, model, opt, sched, crit, xtr[idx], ytr[idx], gen)
    dt = time.perf_counter() - t0
    print(json.dumps({"steps": a.steps, "batch": a.batch, "seconds": round(dt, 3),
                      "images_per_s": round(a.steps * a.batch / dt, 1), "threads": a.threads}), flush=True)


def train(a, model, xtr, ytr, xte, yte, gen, crit):
    n = len(xtr)
    steps_per_epoch = -(-n // a.batch)
    opt, sched = optimizer(a, model, a.epochs * steps_per_epoch)
    model.train()
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for idx in batches(n, a.batch, gen):
            l, c = step(a, model, opt, sched, crit, xtr[idx], ytr[idx], gen)
            loss_sum += l
            correct += c
        dt = time.perf_counter() - t0
        vl, va = evaluate(model, xte, yte)
        print(json.dumps({"epoch": ep + 1, "loss": round(loss_sum / n, 6), "accuracy": round(correct / n, 6),
                          "val_loss": round(vl, 6), "val_accuracy": round(va, 6), "seconds": round(dt, 3),
                          "images_per_s": round(n / dt, 1)}), flush=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="cifar-10-batches-bin folder (data_batch_*.bin, test_batch.bin)")
    p.add_argument("--model", default=os.path.join(here, "..", "model", "presets", "resnet20.json"), help="model file (default: the trainer's resnet20 preset, model/presets/resnet20.json)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (onecycle: its max_lr)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--lr-schedule", choices=("onecycle", "none"), default="onecycle")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--augment", action="store_true", help="random crop (zero padding 4) and left-right flip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json-bench", action="store_true", help="time --steps training steps, print images/s")
    p.add_argument("--steps", type=int, default=None, help="timed steps of --json-bench (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before --json-bench's timing")
    a = p.parse_args()
    if a.steps is not None and not a.json_bench:
        raise Fail("--steps is for --json-bench (training runs whole epochs)")
    a.steps = 100 if a.steps is None else a.steps
    for flag, v, lo in (("--epochs", a.epochs, 1), ("--batch", a.batch, 1), ("--threads", a.threads, 1),
                        ("--steps", a.steps, 1), ("--warmup", a.warmup, 0)):
        if v < lo:
            raise Fail(f"{flag} {v}: want at least {lo}")
    if a.nesterov and a.momentum <= 0:
        raise Fail("--nesterov needs --momentum > 0")
    if not 0 <= a.label_smoothing < 1:
        raise Fail(f"--label-smoothing {a.label_smoothing}: want 0 <= eps < 1")
    torch.set_num_threads(a.threads)

    model = build(a)
    (xtr, ytr), val = load_data(a.data, need_val=not a.json_bench)
    if max(ytr.max().item(), val[1].max().item() if val else 0) >= 10:
        raise Fail(f"{a.data}: labels beyond 9")
    gen = torch.Generator().manual_seed(a.seed)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    if a.json_bench:
        bench(a, model, xtr, ytr, gen, crit)
    else:
        train(a, model, xtr, ytr, *val, gen, crit)


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"torch_resnet20: error: {e}", file=sys.stderr)
        sys.exit(1)
