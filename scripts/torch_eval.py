#!/usr/bin/env python3
"""Evaluate a trainer checkpoint in PyTorch: an independent check of the
checkpoint format and of `trainer eval`.

    /usr/bin/python3 scripts/torch_eval.py --checkpoint model.safetensors --data DIR [--tta none|flip|flip-translate]

Reads the safetensors file by hand (8-byte little-endian header length, JSON
header, raw little-endian data; no safetensors package needed).

A checkpoint whose metadata has `model.json` (the model file's canonical
JSON) is built as a PyTorch module by torch_model.py: the layer "a.b.c" is
the submodule at that path, so the file's tensor names are the module's
state_dict keys. Every tensor named LAYER.x for a layer of the model goes to
load_state_dict(strict=True) (num_batches_tracked stored as an integer or a
float is converted to int64); other tensors (optimizer state, ...) are
skipped and listed on stderr. The metadata's `input` (CxHxW), when present,
must be 3x32x32.

A checkpoint without `model.json` must hold the default model (spec
conv32k3,...,dense10): its parameters conv1..conv3, fc1, fc2 are mapped onto
the PyTorch network of the peer reference torch_seed_cnn.py (c1..c3, d1, d2).

Evaluates in eval mode on DIR/test_batch.bin (pixels * float32(1/255), as
the trainer) and prints one JSON line {"accuracy": ..., "loss": ...,
"samples": ...} (loss: mean cross-entropy of the logits). --tta flip
averages the logits of each image and its left-right mirror;
flip-translate is airbench94's infer_mirror_translate: 0.5 * flip(x) + 0.5 *
mean(flip(crop at (0,0)), flip(crop at (2,2))) of the image reflect-padded by
1. Errors are one line on stderr, exit 1.
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

import torch_model

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


DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1"}


def read_safetensors(path):
    """Returns (metadata dict, {name: numpy array}, {name: dtype}) of a
    safetensors file; a tensor of a dtype numpy lacks (BF16, ...) is None."""
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
    tensors, dtypes = {}, {}
    for name, e in header.items():
        start, end = e["data_offsets"]
        dtypes[name] = e["dtype"]
        if e["dtype"] not in DTYPES:
            tensors[name] = None  # not ours to read; parameters are F32
            continue
        dt = np.dtype(DTYPES[e["dtype"]])
        count = int(np.prod(e["shape"], dtype=np.int64))
        if not (0 <= start <= end <= len(data)) or end - start != dt.itemsize * count:
            raise Fail(f"checkpoint {path}: tensor {name}: byte range [{start},{end}) does not match shape {e['shape']}")
        tensors[name] = np.frombuffer(data[start:end], dtype=dt).reshape(e["shape"]).copy()
    return meta, tensors, dtypes


PARAM = re.compile(r"^(conv|fc)(\d+)\.(weight|bias)$")


def to_torch_names(tensors):
    """Maps conv<i>/fc<i> parameters onto c<i>/d<i>; skips everything else."""
    state, skipped = {}, []
    for name, v in tensors.items():
        m = PARAM.match(name)
        if not m or v is None or v.dtype != np.float32:
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
    x = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) * np.float32(1 / 255)
    return torch.from_numpy(x), torch.from_numpy(y)


def generic_model(path, meta, tensors, dtypes):
    """The torch_model network of meta["model.json"], loaded from tensors."""
    try:
        spec = json.loads(meta["model.json"])
    except ValueError as e:
        raise Fail(f"checkpoint {path}: metadata model.json is not JSON: {e}")
    inp = meta.get("input", "3x32x32")
    if inp != "3x32x32":
        raise Fail(f"checkpoint {path}: input {inp!r}; the CIFAR-10 test images are 3x32x32")
    warn = lambda msg: print(f"torch_eval: checkpoint {path}: model.json: {msg}", file=sys.stderr)
    try:
        model = torch_model.build(spec, (3, 32, 32), warn=warn)
    except torch_model.ModelError as e:
        raise Fail(f"checkpoint {path}: model.json: {e}")
    layers = model._tm.types
    state, skipped = {}, []
    for name, v in tensors.items():
        layer, _, _ = name.rpartition(".")
        if layer not in layers:
            skipped.append(name)
            continue
        if v is None:
            raise Fail(f"checkpoint {path}: tensor {name}: dtype {dtypes[name]} cannot be read here")
        if name.endswith(".num_batches_tracked"):
            if v.size != 1 or not np.isfinite(v).all() or float(v.flat[0]) != int(v.flat[0]) or v.flat[0] < 0:
                raise Fail(f"checkpoint {path}: tensor {name}: {v.tolist()} is not one whole count")
            state[name] = torch.tensor(int(v.flat[0]), dtype=torch.int64)
            continue
        if dtypes[name] != "F32":
            raise Fail(f"checkpoint {path}: tensor {name}: dtype {dtypes[name]}; parameters and statistics are F32")
        state[name] = torch.from_numpy(v)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise Fail(f"checkpoint {path} does not fit its model.json: {' '.join(str(e).split())}")
    return model, sorted(skipped)


def seed_model(path, meta, tensors):
    spec, inp = meta.get("model", ""), meta.get("input", "")
    if spec != DEFAULT_SPEC or inp != "3x32x32":
        raise Fail(f"checkpoint {path}: model {spec!r} on input {inp!r} and no model.json; "
                   f"without model.json this script has the default model only ({DEFAULT_SPEC} on 3x32x32)")
    state, skipped = to_torch_names(tensors)
    model = SeedCNN()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise Fail(f"checkpoint {path} does not fit the PyTorch model: {' '.join(str(e).split())}")
    return model, skipped


def infer_flip(model, x):
    return 0.5 * model(x) + 0.5 * model(x.flip(-1))


def infer(model, x, tta):
    """Logits of x under test-time augmentation tta (airbench94's infer)."""
    if tta == "none":
        return model(x)
    if tta == "flip":
        return infer_flip(model, x)
    logits = infer_flip(model, x)
    h, w = x.shape[2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [infer_flip(model, padded[:, :, 0:h, 0:w]), infer_flip(model, padded[:, :, 2:h + 2, 2:w + 2])]
    return 0.5 * logits + 0.5 * torch.stack(shifted).mean(0)


def evaluate(model, x, y, batch, tta="none"):
    """(accuracy, mean cross-entropy) of model on x, y in eval mode."""
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = infer(model, x[i:i + batch], tta)
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x), loss / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="safetensors file written by trainer train")
    p.add_argument("--data", required=True, help="folder holding test_batch.bin")
    p.add_argument("--batch", type=int, default=1000, help="evaluation batch (does not change the result)")
    p.add_argument("--tta", choices=("none", "flip", "flip-translate"), default="none",
                   help="test-time augmentation (airbench94's levels 0, 1, 2)")
    a = p.parse_args()
    if a.batch < 1:
        raise Fail(f"--batch {a.batch}: want at least 1")

    meta, tensors, dtypes = read_safetensors(a.checkpoint)
    if "model.json" in meta:
        model, skipped = generic_model(a.checkpoint, meta, tensors, dtypes)
    else:
        model, skipped = seed_model(a.checkpoint, meta, tensors)
    if skipped:
        print(f"torch_eval: skipping non-parameter tensors: {', '.join(skipped)}", file=sys.stderr)
    x, y = load_cifar_test(a.data)
    out = model._tm.output_shape if isinstance(model, torch_model.Net) else (10,)
    if len(out) != 1:
        raise Fail(f"checkpoint {a.checkpoint}: the model's output is {'x'.join(map(str, out))}, not a vector of logits")
    classes = out[0]
    if y.max().item() >= classes:
        raise Fail(f"{a.data}: label {y.max().item()} is beyond the model's {classes} outputs")
    accuracy, loss = evaluate(model, x, y, a.batch, a.tta)
    print(json.dumps({"accuracy": accuracy, "loss": loss, "samples": len(x)}))


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"torch_eval: error: {e}", file=sys.stderr)
        sys.exit(1)
