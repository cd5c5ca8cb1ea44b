#!/usr/bin/env python3
"""Training-step speed of a trainer model in PyTorch, with the data on the
device: the PyTorch side of scripts/gpu-vs-pytorch.sh.

    python3 scripts/torch_bench.py --model model/presets/seed.json --batch 32 \\
        --steps 1000 [--warmup 20] [--mode eager|graph|both] [--optimizer adam|sgd] \\
        [--device cuda|cpu] [--images 1024] [--seed 1]

The network is built from the trainer's model file by torch_model.py (a
"whiten" conv is initialised from the random images). The step is what
`trainer bench` times: gather a batch of --batch uint8 images from a
dataset of --images random images held on the device (index_select by a
slice of a random permutation, full batches, wrapping around), scale by
1/255, forward, cross-entropy, backward, the optimiser's update (adam:
Adam(lr 1e-3, eps 1e-7), Keras's, as the trainer's default; sgd: SGD(lr
1e-3, momentum 0.9, nesterov), as `trainer bench --optimizer sgd`), and the
epoch's loss sum and correct count accumulated on the device.

--mode eager runs the steps as PyTorch queues them. --mode graph (CUDA
only) captures one whole step with torch.cuda.graph after warm-up steps on
a side stream (PyTorch's "whole network capture": static index tensor,
gradients and optimiser state in the graph's memory, Adam with
capturable=True) and replays it: per step, one copy of the step's indices
into the static index tensor and one graph replay. Not torch.compile (it
needs a compiler toolchain on the device machine). --mode both runs eager,
then graph, each on a fresh copy of the network and optimiser, in one
process (one Python and CUDA start-up for the two).

On CUDA, cuDNN picks its fastest convolution algorithms (cudnn.benchmark;
the choice is made in the warm-up) and TF32 is off for convolutions and
matrix products (PyTorch's default lets cuDNN use TF32), so both sides
compute in float32, as `trainer bench` does without --tf32; --tf32 turns
it on.

Timing: --warmup untimed steps, then --steps steps queued back to back,
with torch.cuda.synchronize() before and after (time.perf_counter; on the
CPU no synchronisation is needed). Prints one JSON line per mode: {"mode",
"device", "model", "batch_size", "steps", "seconds", "ms_per_step",
"images_per_s", "torch", "gpu"}. Errors are one line on stderr, exit 1 (2 for bad flags).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402


class Fail(Exception):
    pass


def build_model(a, device, images):
    try:
        spec = torch_model.load_spec(a.model)
        torch.manual_seed(a.seed)
        net = torch_model.build(spec, (3, 32, 32),
                                warn=lambda m: print(f"torch_bench: {a.model}: {m}", file=sys.stderr))
    except (OSError, torch_model.ModelError) as e:
        raise Fail(f"--model {a.model}: {e}")
    if net._tm.output_shape is None or len(net._tm.output_shape) != 1:
        raise Fail(f"--model {a.model}: output {net._tm.output_shape}: want flat logits")
    if net._tm.whiten:
        torch_model.init_whitening(net, images[:min(len(images), 512)].float().mul_(1 / 255))
    return spec.get("name", os.path.basename(a.model)), net.to(device), net._tm.output_shape[0]


def make_optimizer(a, net, capturable):
    params = [p for p in net.parameters() if p.requires_grad]
    if a.optimizer == "adam":
        kw = {"capturable": True} if capturable else {}
        return torch.optim.Adam(params, lr=1e-3, eps=1e-7, **kw)
    return torch.optim.SGD(params, lr=1e-3, momentum=0.9, nesterov=True)


def make_step(net, opt, images, labels, stats, scale):
    """The training step on the batch idx (a long tensor on the device)."""
    def step(idx):
        x = images.index_select(0, idx).float().mul_(scale)
        y = labels.index_select(0, idx)
        out = net(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            stats[0] += loss.detach() * len(idx)
            stats[1] += (out.argmax(1) == y).sum()
    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_eager(a, device, step, opt, perm):
    per = len(perm) // a.batch

    def one(s):
        i = s % per
        opt.zero_grad(set_to_none=True)
        step(perm[i * a.batch:(i + 1) * a.batch])

    for s in range(a.warmup):
        one(s)
    sync(device)
    t0 = time.perf_counter()
    for s in range(a.warmup, a.warmup + a.steps):
        one(s)
    sync(device)
    return time.perf_counter() - t0


def run_graph(a, device, step, opt, perm):
    """Whole-step capture: warm-up on a side stream, capture, replay."""
    per = len(perm) // a.batch
    idx = perm[:a.batch].clone()  # the static index tensor the graph reads
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for s in range(max(a.warmup, 3)):  # creates the optimiser's state before the capture
            i = s % per
            idx.copy_(perm[i * a.batch:(i + 1) * a.batch])
            opt.zero_grad(set_to_none=True)
            step(idx)
    torch.cuda.current_stream(device).wait_stream(side)
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        step(idx)

    def one(s):
        i = s % per
        idx.copy_(perm[i * a.batch:(i + 1) * a.batch])
        g.replay()

    for s in range(3):
        one(s)
    sync(device)
    t0 = time.perf_counter()
    for s in range(a.steps):
        one(s)
    sync(device)
    return time.perf_counter() - t0


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a trainer model file, e.g. model/presets/seed.json")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000, help="timed steps")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    p.add_argument("--mode", choices=("eager", "graph", "both"), default="eager")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--images", type=int, default=1024, help="images in the on-device dataset (at least --batch)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 in convolutions and matrix products on CUDA")
    a = p.parse_args(argv)
    for flag, v, lo in (("--batch", a.batch, 1), ("--steps", a.steps, 1), ("--warmup", a.warmup, 0),
                        ("--images", a.images, 1), ("--threads", a.threads, 0)):
        if v < lo:
            p.error(f"{flag} {v}: must be at least {lo}")
    if a.images < a.batch:
        p.error(f"--images {a.images}: must hold at least one batch of --batch {a.batch}")
    return a


def main(argv):
    a = parse(argv)
    try:
        device = torch.device(a.device)
    except RuntimeError as e:
        raise Fail(f"--device {a.device}: {e}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Fail(f"--device {a.device}: PyTorch sees no CUDA device (use --device cpu to run on the CPU)")
    if a.mode in ("graph", "both") and device.type != "cuda":
        raise Fail(f"--mode {a.mode} needs --device cuda (CUDA graphs); --device {a.device} runs --mode eager only")
    if a.threads:
        torch.set_num_threads(a.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = a.tf32
    for mode in ("eager", "graph") if a.mode == "both" else (a.mode,):
        print(json.dumps(bench(a, device, mode)), flush=True)


def bench(a, device, mode):
    """Times one mode on a fresh network, optimiser and dataset."""
    gen = torch.Generator().manual_seed(a.seed)
    images = torch.randint(0, 256, (a.images, 3, 32, 32), dtype=torch.uint8, generator=gen)
    name, net, classes = build_model(a, device, images)
    images = images.to(device)
    labels = torch.randint(0, classes, (a.images,), generator=gen).to(device)
    perm = torch.randperm(a.images, generator=gen).to(device)
    stats = torch.zeros(2, device=device)
    opt = make_optimizer(a, net, mode == "graph")
    step = make_step(net, opt, images, labels, stats, 1 / 255)
    net.train()
    dt = (run_graph if mode == "graph" else run_eager)(a, device, step, opt, perm)
    if not torch.isfinite(stats).all():
        raise Fail(f"{mode}: the loss sum became {stats[0].item()}")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return {"mode": mode, "device": str(device), "model": name, "batch_size": a.batch, "steps": a.steps,
            "seconds": round(dt, 6), "ms_per_step": round(dt * 1000 / a.steps, 4),
            "images_per_s": round(a.steps * a.batch / dt, 1), "torch": torch.__version__, "gpu": gpu, "tf32": a.tf32}

if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Fail as e:
        print(f"torch_bench: {e}", file=sys.stderr)
        sys.exit(1)
