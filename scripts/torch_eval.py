#!/usr/bin/env python3
"""Evaluate a trainer checkpoint in PyTorch: an independent check of the
checkpoint format and of `trainer eval`.

    /usr/bin/python3 scripts/torch_eval.py --checkpoint model.safetensors --data DIR

Reads the safetensors file by hand (8-byte little-endian header length, JSON
header, raw little-endian data; no safetensors package needed), maps the
trainer's state_dict names (conv1..conv3, fc1, fc2) onto the PyTorch network
of the default model (c1..c3, d1, d2, as in the peer reference
torch_seed_cnn.py), loads them with load_state_dict(strict=True), evaluates
on DIR/test_batch.bin (pixels / 255) and prints one JSON line
{"accuracy": ..., "loss": ..., "samples": ...}. Tensors that are not model
parameters (optimizer state, ...) are skipped. Errors are one line on stderr,
exit 1.
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_SPEC = "conv32k3,maxpool2,conv64k3,maxpool2,conv64k3,flatten,dense64,dense10"
RECORD = 1 + 3 * 32 * 32


class SeedCNN(nn.Module):
    """The default trainer model, as in the peer reference script."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3)
        self.c2 = nn.Conv2d(32, 64, 3)
        self.c3 = nn.Conv2d(64, 64, 3)
        self.d1 = nn.Linear(64 * 4 * 4, 64)
        self.d2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.c3(x))
        x = torch.flatten(x, 1)
        return self.d2(F.relu(self.d1(x)))


class Fail(Exception):
    pass


def read_safetensors(path):
    """Returns (metadata dict, {name: numpy array}) of a safetensors file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Fail(f"checkpoint {path}: {e.strerror}")
    if len(raw) < 8:
        raise Fail(f"checkpoint {path}: {len(raw)} bytes is too short for a safetensors header")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if hlen > len(raw) - 8:
        raise Fail(f"checkpoint {path}: header length {hlen} does not fit a file of {len(raw)} bytes")
    try:
        header = json.loads(raw[8:8 + hlen])
    except ValueError as e:
        raise Fail(f"checkpoint {path}: header is not JSON: {e}")
    data = memoryview(raw)[8 + hlen:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, e in header.items():
        start, end = e["data_offsets"]
        if e["dtype"] != "F32":
            tensors[name] = None  # not ours to read; parameters are always F32
            continue
        count = int(np.prod(e["shape"], dtype=np.int64))
        if not (0 <= start <= end <= len(data)) or end - start != 4 * count:
            raise Fail(f"checkpoint {path}: tensor {name}: byte range [{start},{end}) does not match shape {e['shape']}")
        tensors[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(e["shape"]).copy()
    return meta, tensors


PARAM = re.compile(r"^(conv|fc)(\d+)\.(weight|bias)$")


def to_torch_names(tensors):
    """Maps conv<i>/fc<i> parameters onto c<i>/d<i>; skips everything else."""
    state, skipped = {}, []
    for name, v in tensors.items():
        m = PARAM.match(name)
        if not m:
            skipped.append(name)
            continue
        prefix = "c" if m.group(1) == "conv" else "d"
        state[f"{prefix}{m.group(2)}.{m.group(3)}"] = torch.from_numpy(v)
    return state, sorted(skipped)


def load_cifar_test(data_dir):
    path = os.path.join(data_dir, "test_batch.bin")
    if not os.path.isfile(path):
        raise Fail(f"{path}: not found (give --data a cifar-10-batches-bin folder)")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise Fail(f"{path}: {raw.size} bytes is not a whole number of {RECORD}-byte records")
    raw = raw.reshape(-1, RECORD)
    y = raw[:, 0].astype(np.int64)
    x = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="safetensors file written by trainer train")
    p.add_argument("--data", required=True, help="folder holding test_batch.bin")
    p.add_argument("--batch", type=int, default=1000, help="evaluation batch (does not change the result)")
    a = p.parse_args()

    meta, tensors = read_safetensors(a.checkpoint)
    spec, inp = meta.get("model", ""), meta.get("input", "")
    if spec != DEFAULT_SPEC or inp != "3x32x32":
        raise Fail(f"checkpoint {a.checkpoint}: model {spec!r} on input {inp!r}; "
                   f"this script has the default model only ({DEFAULT_SPEC} on 3x32x32)")
    state, skipped = to_torch_names(tensors)
    if skipped:
        print(f"torch_eval: skipping non-parameter tensors: {', '.join(skipped)}", file=sys.stderr)
    model = SeedCNN()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise Fail(f"checkpoint {a.checkpoint} does not fit the PyTorch model: {' '.join(str(e).split())}")
    x, y = load_cifar_test(a.data)
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), a.batch):
            out = model(x[i:i + a.batch])
            loss += F.cross_entropy(out, y[i:i + a.batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + a.batch]).sum().item()
    print(json.dumps({"accuracy": correct / len(x), "loss": loss / len(x), "samples": len(x)}))


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"torch_eval: error: {e}", file=sys.stderr)
        sys.exit(1)
