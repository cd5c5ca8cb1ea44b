#!/usr/bin/env python3
"""Grad-CAM and input-gradient saliency of a trainer checkpoint in PyTorch:
the twin of model.Network.Explain (`trainer explain`), written from the
Grad-CAM paper and pytorch-grad-cam with autograd, in float64.

    /usr/bin/python3 scripts/torch_explain.py --checkpoint model.safetensors --cases cases.json [--ema]

The checkpoint must hold `model.json` in its metadata (every checkpoint
trainer writes does); the network is built by torch_model.py and loaded
with strict=True (with --ema from the ema.* tensors). cases.json is a list
of {"x": [C*H*W floats, the model's input], "class": K (-1: the most
likely), "layer": NAME}. For each case, in evaluation mode:

    score    = logits[class]                        (before the softmax)
    A        = output of the module NAME            (fused activation included)
    alpha_k  = mean over H, W of dscore/dA_k
    coarse   = relu(sum_k alpha_k A_k)
    cam      = F.interpolate(coarse, input H x W, bilinear, align_corners=False),
               scaled from its min (0) to its max (1); constant: all 0
    saliency = max over channels of |dscore/dx|, divided by its max

Prints one JSON list, one object per case, with class, logits, activations,
layer_grad, weights, coarse, cam, input_grad, saliency (flat, C-order).
Errors are one line on stderr, exit 1.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

import torch_model
from torch_eval import Fail, read_safetensors


def load(path, ema):
    """The checkpoint's network in float64, evaluation mode, and its input shape."""
    meta, tensors, _ = read_safetensors(path)
    if "model.json" not in meta:
        raise Fail(f"checkpoint {path}: no model.json in its metadata")
    try:
        shape = tuple(int(v) for v in meta.get("input", "").split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise Fail(f"checkpoint {path}: input {meta.get('input')!r} is not CxHxW")
    net = torch_model.build(json.loads(meta["model.json"]), shape)
    state = {}
    for name in net.state_dict():
        if name.endswith(".num_batches_tracked"):
            state[name] = torch.tensor(0, dtype=torch.int64)
            continue
        src = ("ema." if ema else "") + name
        if tensors.get(src) is None:
            raise Fail(f"checkpoint {path}: tensor {src} is missing")
        state[name] = torch.from_numpy(tensors[src])
    net.load_state_dict(state, strict=True)
    return net.double().eval(), shape


def explain(net, shape, x, cls, layer):
    x = torch.tensor(x, dtype=torch.float64).view(1, *shape).requires_grad_(True)
    try:
        mod = net.get_submodule(layer)
    except AttributeError:
        raise Fail(f"the model has no layer {layer!r}")
    seen = {}
    hook = mod.register_forward_hook(lambda m, i, o: seen.__setitem__("a", o))
    logits = net(x)[0]
    hook.remove()
    if cls < 0:
        cls = int(logits.argmax())
    a = seen["a"]
    ga, gx = torch.autograd.grad(logits[cls], [a, x], allow_unused=True)
    ga = torch.zeros_like(a) if ga is None else ga
    gx = torch.zeros_like(x) if gx is None else gx
    a, ga, gx = a[0], ga[0], gx[0]
    weights = ga.mean((1, 2))
    coarse = F.relu((weights[:, None, None] * a).sum(0))
    up = F.interpolate(coarse[None, None], size=shape[1:], mode="bilinear", align_corners=False)[0, 0]
    lo, hi = up.min(), up.max()
    cam = (up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)
    sal = gx.abs().amax(0)
    if sal.max() > 0:
        sal = sal / sal.max()
    flat = lambda t: t.detach().flatten().tolist()
    return {"class": cls, "logits": flat(logits), "activations": flat(a), "layer_grad": flat(ga),
            "weights": flat(weights), "coarse": flat(coarse), "cam": flat(cam),
            "input_grad": flat(gx), "saliency": flat(sal)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="safetensors file written by trainer")
    p.add_argument("--cases", required=True, help="JSON list of {x, class, layer}")
    p.add_argument("--ema", action="store_true", help="use the weight average (ema.* tensors)")
    a = p.parse_args()
    net, shape = load(a.checkpoint, a.ema)
    with open(a.cases, encoding="utf-8") as f:
        cases = json.load(f)
    print(json.dumps([explain(net, shape, c["x"], c["class"], c["layer"]) for c in cases]))


if __name__ == "__main__":
    try:
        main()
    except (Fail, torch_model.ModelError, OSError, ValueError) as e:
        print(f"torch_explain: error: {e}", file=sys.stderr)
        sys.exit(1)
