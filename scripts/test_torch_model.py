#!/usr/bin/env python3
"""Tests of torch_model.py and torch_eval.py's model.json path, without the
Go side (PyTorch 1.13 on the CPU, one thread, about half a minute):

    /usr/bin/python3 scripts/test_torch_model.py [-v] [-k PATTERN]

- the presets model/presets/resnet20.json and airbench94.json build with the expected parameter
  counts, and their state_dict keys are exactly what the naming rule gives
  from the JSON alone (NAME.weight, NAME.bias, the BatchNorm statistics);
- each loads, strict, into an independent hand-written PyTorch network of
  the same architecture (the usual CIFAR ResNet-20 with projection
  shortcuts; airbench94's make_net), and both give the same logits in eval
  and train mode and the same gradients;
- TF "same" padding on hand-worked cases, the other layer types against
  plain PyTorch, the inits, input references and the errors of bad files;
- torch_eval.py on hand-written safetensors files: the logits of the
  reference network, --tta flip and flip-translate against airbench94's
  infer code, num_batches_tracked as int64 or float, skipped optimizer
  tensors, and the errors for missing, unexpected and mis-typed tensors;
- torch_resnet20.py's augmentation against a per-image crop and flip, its
  pixel arithmetic, batching, OneCycle settings, and its command line
  (training and --json-bench) on a few random images.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_model  # noqa: E402

torch.set_num_threads(1)


# ---- independent reference networks ----------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != c:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """The usual CIFAR ResNet-20 (He et al. 2016, section 4.2) with
    projection shortcuts where the shape changes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin, layers = 16, []
        for c, stride in ((16, 1), (32, 2), (64, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, c, stride), BasicBlock(c, c, 1), BasicBlock(c, c, 1)))
            cin = c
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size(3)).flatten(1)
        return self.linear(out)


# airbench94's network (Keller Jordan, airbench94.py), as written there.
class AbBatchNorm(nn.BatchNorm2d):
    def __init__(self, num_features, momentum, eps=1e-12, weight=False, bias=True):
        super().__init__(num_features, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad = weight
        self.bias.requires_grad = bias


class AbConv(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size=3, padding="same", bias=False):
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, padding=padding, bias=bias)


class AbConvGroup(nn.Module):
    def __init__(self, channels_in, channels_out, batchnorm_momentum):
        super().__init__()
        self.conv1 = AbConv(channels_in, channels_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = AbBatchNorm(channels_out, batchnorm_momentum)
        self.conv2 = AbConv(channels_out, channels_out)
        self.norm2 = AbBatchNorm(channels_out, batchnorm_momentum)
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.conv1(x)
        x = self.pool(x)
        x = self.norm1(x)
        x = self.activ(x)
        x = self.conv2(x)
        x = self.norm2(x)
        x = self.activ(x)
        return x


class AbMul(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


CIFAR_MEAN = torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1)
CIFAR_STD = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)


class Airbench94(nn.Module):
    """make_net() of airbench94 behind its loader's normalisation."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            AbConv(3, 24, kernel_size=2, padding=0, bias=True), nn.GELU(),
            AbConvGroup(24, 64, 0.6), AbConvGroup(64, 256, 0.6), AbConvGroup(256, 256, 0.6),
            nn.MaxPool2d(3), nn.Flatten(), nn.Linear(256, 10, bias=False), AbMul(1 / 9))

    def forward(self, x):
        return self.net((x - CIFAR_MEAN) / CIFAR_STD)


# ---- helpers ---------------------------------------------------------------

def spec_of(name):
    return torch_model.load_spec(os.path.join(HERE, "..", "model", "presets", name))


def randomize_stats(net, gen):
    """Random running statistics and BatchNorm affine, so eval mode tests them."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.num_batches_tracked.fill_(7)


def compare(test, ours, ref, x, tol=1e-5):
    """Same logits in eval and train mode, same gradients and running stats."""
    ref.load_state_dict(ours.state_dict(), strict=True)
    for mode in ("eval", "train"):
        getattr(ours, mode)()
        getattr(ref, mode)()
        ours.zero_grad()
        ref.zero_grad()
        a, b = ours(x), ref(x)
        test.assertLess((a - b).abs().max().item(), tol * (1 + b.abs().max().item()), mode)
        if mode == "train":
            y = torch.arange(len(x)) % 10
            F.cross_entropy(a, y).backward()
            F.cross_entropy(b, y).backward()
            pa, pb = dict(ours.named_parameters()), dict(ref.named_parameters())
            test.assertEqual(set(pa), set(pb))
            for k in pa:
                ga, gb = pa[k].grad, pb[k].grad
                test.assertEqual(ga is None, gb is None, k)
                if ga is not None:
                    scale = 1 + gb.abs().max().item()
                    test.assertLess((ga - gb).abs().max().item(), tol * scale, k)
            sa, sb = ours.state_dict(), ref.state_dict()
            for k in sa:
                test.assertTrue(torch.allclose(sa[k].double(), sb[k].double(), rtol=1e-5, atol=1e-6), k)


class Wrap(nn.Module):
    """net as the submodule "net", to line up with Airbench94's keys."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def write_safetensors(path, tensors, meta):
    """A safetensors file: tensors {name: (dtype, numpy array)}."""
    header, blobs, off = {}, [], 0
    for name, (dt, v) in tensors.items():
        b = np.ascontiguousarray(v).tobytes()
        header[name] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def checkpoint_tensors(net, nbt_dtype="I64"):
    out = {}
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            if nbt_dtype == "I64":
                out[k] = ("I64", v.numpy().astype("<i8"))
            else:
                out[k] = ("F32", v.numpy().astype("<f4").reshape(1))
        else:
            out[k] = ("F32", v.numpy().astype("<f4"))
    return out


def write_test_batch(folder, n, gen):
    y = torch.randint(0, 10, (n,), generator=gen).numpy().astype(np.uint8)
    x = torch.randint(0, 256, (n, 3 * 32 * 32), generator=gen).numpy().astype(np.uint8)
    raw = np.concatenate([y[:, None], x], axis=1)
    raw.tofile(os.path.join(folder, "test_batch.bin"))
    return torch.from_numpy(x.reshape(n, 3, 32, 32).astype(np.float32) * np.float32(1 / 255)), torch.from_numpy(y.astype(np.int64))


def run_eval(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "torch_eval.py"), *args],
                          capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))


# airbench94's infer(), levels 1 and 2, as written there.
def ab_infer_mirror(inputs, net):
    return 0.5 * net(inputs) + 0.5 * net(inputs.flip(-1))


def ab_infer_mirror_translate(inputs, net):
    logits = ab_infer_mirror(inputs, net)
    pad = 1
    padded_inputs = F.pad(inputs, (pad,) * 4, "reflect")
    inputs_translate_list = [padded_inputs[:, :, 0:32, 0:32], padded_inputs[:, :, 2:34, 2:34]]
    logits_translate_list = [ab_infer_mirror(inputs_translate, net) for inputs_translate in inputs_translate_list]
    logits_translate = torch.stack(logits_translate_list).mean(0)
    return 0.5 * logits + 0.5 * logits_translate


# ---- tests -----------------------------------------------------------------

class Presets(unittest.TestCase):
    def test_resnet20(self):
        spec = spec_of("resnet20.json")
        torch.manual_seed(1)
        net = torch_model.build(spec)
        self.assertEqual(torch_model.count_params(net), 272474)
        self.assertEqual(list(net.state_dict()), list(ResNet20().state_dict()))
        self.assertEqual(sorted(net.state_dict()), sorted(torch_model.expected_keys(spec)))
        randomize_stats(net, torch.Generator().manual_seed(2))
        compare(self, net, ResNet20(), torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(3)))

    def test_resnet20_default_init(self):
        # PyTorch's defaults (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and
        # biases; BatchNorm weight 1, bias 0), drawn in file order, which is
        # the reference's construction order: the same numbers.
        torch.manual_seed(5)
        net = torch_model.build(spec_of("resnet20.json"))
        torch.manual_seed(5)
        ref = ResNet20()
        for k, v in ref.state_dict().items():
            self.assertTrue(torch.equal(net.state_dict()[k], v), k)
        w = net.state_dict()["linear.weight"]
        self.assertLessEqual(w.abs().max().item(), 1 / 8)
        self.assertGreater(w.abs().max().item(), 0.9 / 8)
        self.assertTrue(torch.equal(net.state_dict()["layer2.0.bn1.weight"], torch.ones(32)))

    def test_airbench94(self):
        spec = spec_of("airbench94.json")
        torch.manual_seed(1)
        net = torch_model.build(spec)
        self.assertEqual(torch_model.count_params(net), 1972792)
        self.assertEqual(sum(p.numel() for p in net.parameters() if p.requires_grad), 1972792 - 288 - 1152)
        ref = Airbench94()
        ref.net[0].weight.requires_grad_(False)  # as airbench94 freezes it
        self.assertEqual(sorted(net.state_dict()), sorted(ref.net.state_dict()))
        self.assertEqual(sorted(net.state_dict()), sorted(torch_model.expected_keys(spec)))
        for k, v in ref.net.state_dict().items():
            self.assertEqual(net.state_dict()[k].shape, v.shape, k)
        randomize_stats(net, torch.Generator().manual_seed(2))
        compare(self, Wrap(net), ref, torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(3)), tol=1e-4)

    def test_airbench94_inits(self):
        spec = spec_of("airbench94.json")
        torch.manual_seed(1)
        net = torch_model.build(spec)
        # dirac: the first in-channels filters pass their channel through.
        w = net.get_submodule("3.conv1").weight
        self.assertEqual(w[:64].sum().item(), 64)
        self.assertEqual(w[5, 5, 1, 1].item(), 1)
        self.assertFalse(net.get_submodule("0").weight.requires_grad)
        self.assertFalse(net.get_submodule("2.norm1").weight.requires_grad)
        self.assertTrue(net.get_submodule("2.norm1").bias.requires_grad)
        # whiten: the first half of the conv's outputs have second moments
        # diag(lambda / (lambda + eps)) over the patches it was fitted on.
        images = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(4))
        torch_model.init_whitening(net, images)
        conv = net.get_submodule("0")
        self.assertTrue(torch.equal(conv.bias, torch.zeros(24)))
        with torch.no_grad():
            z = conv(net.get_submodule("normalize")(images)).double()
        z = z[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
        m = z.T @ z / len(z)
        x = ((images.double() - CIFAR_MEAN.double()) / CIFAR_STD.double())
        p = x.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        lam = torch.linalg.eigvalsh(p.T @ p / len(p)).flip(0)
        self.assertLess((m - torch.diag(lam / (lam + 5e-4))).abs().max().item(), 1e-4)
        self.assertTrue(torch.equal(conv.weight[12:], -conv.weight[:12]))


class Layers(unittest.TestCase):
    def build(self, layers, shape=(3, 8, 8), init="torch"):
        return torch_model.build({"name": "t", "init": init, "layers": layers}, shape)

    def test_same_padding_hand_worked(self):
        # One channel of ones, a kernel of ones: each output is the sum of
        # the window, so the padding shows in the borders.
        for size, k, s, pads in ((5, 3, 2, (1, 1)), (6, 3, 2, (0, 1)), (4, 2, 2, (0, 0)), (5, 2, 1, (0, 1)),
                                 (7, 4, 3, (1, 2)), (3, 5, 1, (2, 2))):
            self.assertEqual(torch_model.same_pads(size, k, s), pads, (size, k, s))
            net = self.build([{"name": "c", "type": "conv", "filters": 1, "kernel": k, "stride": s,
                               "padding": "same", "bias": False}], (1, size, size))
            with torch.no_grad():
                net.c.weight.fill_(1)
                x = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size)
                y = net(x)[0, 0]
            out = -(-size // s)
            self.assertEqual(tuple(y.shape), (out, out))
            xp = F.pad(x[0, 0], (pads[0], pads[1], pads[0], pads[1]))
            for i in range(out):
                for j in range(out):
                    self.assertEqual(y[i, j].item(), xp[i * s:i * s + k, j * s:j * s + k].sum().item())

    def test_same_matches_pytorch_same_at_stride_1(self):
        for k in (1, 2, 3, 4, 5):
            net = self.build([{"name": "c", "type": "conv", "filters": 4, "kernel": k, "padding": "same"}])
            ref = nn.Conv2d(3, 4, k, padding="same")
            ref.load_state_dict(net.c.state_dict())
            x = torch.randn(2, 3, 8, 8)
            self.assertTrue(torch.allclose(net(x), ref(x), atol=1e-6), k)

    def test_every_type_against_plain_pytorch(self):
        layers = [
            {"name": "norm", "type": "normalize", "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.25, 2.0]},
            {"name": "c1", "type": "conv", "filters": 5, "kernel": 3, "stride": 1, "padding": "valid", "act": "gelu"},
            {"name": "b.n", "type": "batchnorm", "momentum": 0.3, "eps": 1e-3, "act": "relu"},
            {"name": "p", "type": "avgpool", "kernel": 2},
            {"name": "c2", "type": "conv", "filters": 5, "kernel": 1, "input": "p", "act": "relu"},
            {"name": "sum", "type": "add", "inputs": ["c2", "p"], "act": "gelu"},
            {"name": "mp", "type": "maxpool", "kernel": 2, "stride": 1},
            {"name": "r", "type": "relu"},
            {"name": "flat", "type": "flatten"},
            {"name": "d1", "type": "dense", "units": 6, "act": "gelu", "scale": 0.5},
            {"name": "bn1d", "type": "batchnorm"},
            {"name": "g", "type": "gelu"},
            {"name": "drop", "type": "dropout", "p": 0.25},
            {"name": "d2", "type": "dense", "units": 4, "bias": False},
        ]
        torch.manual_seed(0)
        net = self.build(layers, (3, 10, 10))
        self.assertEqual(set(net.state_dict()), set(torch_model.expected_keys({"layers": layers})))
        c1, bn, c2 = nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5, eps=1e-3, momentum=0.3), nn.Conv2d(5, 5, 1)
        d1, bn1d, d2 = nn.Linear(5 * 3 * 3, 6), nn.BatchNorm1d(6), nn.Linear(6, 4, bias=False)
        ref = nn.ModuleDict({"c1": c1, "bn": bn, "c2": c2, "d1": d1, "bn1d": bn1d, "d2": d2})
        mapping = {"c1": "c1", "b.n": "bn", "c2": "c2", "d1": "d1", "bn1d": "bn1d", "d2": "d2"}
        sd = {}
        for k, v in net.state_dict().items():
            layer, _, t = k.rpartition(".")
            sd[f"{mapping[layer]}.{t}"] = v
        ref.load_state_dict(sd, strict=True)
        mean, std = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1), torch.tensor([0.5, 0.25, 2.0]).view(1, 3, 1, 1)

        def forward(x):
            x = (x - mean) / std
            x = F.relu(bn(F.gelu(c1(x))))
            p = F.avg_pool2d(x, 2)
            x = F.gelu(F.relu(c2(p)) + p)
            x = F.relu(F.max_pool2d(x, 2, 1)).flatten(1)
            x = F.gelu(F.linear(x, d1.weight) * 0.5 + d1.bias)
            x = F.gelu(bn1d(x))
            return d2(x)

        x = torch.randn(4, 3, 10, 10)
        for mode in ("train", "eval"):
            getattr(net, mode)()
            getattr(ref, mode)()
            if mode == "train":
                # dropout is random in training: compare with p 0 semantics by
                # checking the scaling instead
                net.get_submodule("drop").p = 0.0
            a, b = net(x), forward(x)
            self.assertLess((a - b).abs().max().item(), 1e-5, mode)
        # running statistics moved the same way
        self.assertTrue(torch.allclose(net.get_submodule("b.n").running_var, bn.running_var))
        net.train()
        drop = net.get_submodule("drop")
        drop.p = 0.25
        y = drop(torch.ones(10000))
        kept = y[y != 0]
        self.assertTrue(torch.allclose(kept, torch.full_like(kept, 1 / 0.75)))
        self.assertAlmostEqual(len(kept) / len(y), 0.75, delta=0.03)
        self.assertFalse(any(k.startswith("norm") for k in net.state_dict()))

    def test_gelu_is_exact(self):
        net = self.build([{"name": "g", "type": "gelu"}], (1, 1, 5))
        x = torch.tensor([[[[-3.0, -1.0, 0.0, 0.5, 2.0]]]], dtype=torch.float32)
        want = [0.5 * v * (1 + math.erf(v / 2 ** 0.5)) for v in x.flatten().tolist()]
        self.assertTrue(np.allclose(net(x).flatten().tolist(), want, atol=1e-6))

    def test_input_references(self):
        layers = [
            {"name": "a", "type": "conv", "filters": 3, "kernel": 1, "bias": False},
            {"name": "b", "type": "relu"},
            {"name": "c", "type": "add", "inputs": ["input", "a"]},
            {"name": "d", "type": "conv", "filters": 3, "kernel": 1, "input": "input", "bias": False},
            {"name": "e", "type": "add", "inputs": ["c", "b"]},
            {"name": "f", "type": "add", "inputs": ["e", "d"]},
        ]
        net = self.build(layers)
        x = torch.randn(2, 3, 8, 8)
        a = net.a(x)
        want = (x + a) + F.relu(a) + net.d(x)
        self.assertTrue(torch.allclose(net(x), want, atol=1e-6))

    def test_glorot_and_kaiming(self):
        torch.manual_seed(0)
        net = self.build([{"name": "c", "type": "conv", "filters": 64, "kernel": 3},
                          {"name": "f", "type": "flatten"},
                          {"name": "d", "type": "dense", "units": 50, "init": "kaiming_normal"}], init="glorot")
        lim = (6 / (3 * 9 + 64 * 9)) ** 0.5
        w = net.c.weight
        self.assertLessEqual(w.abs().max().item(), lim)
        self.assertGreater(w.abs().max().item(), 0.95 * lim)
        self.assertEqual(net.c.bias.abs().max().item(), 0)
        self.assertAlmostEqual(net.d.weight.std().item(), (2 / (64 * 36)) ** 0.5, delta=0.05 * (2 / (64 * 36)) ** 0.5)
        self.assertEqual(net.d.bias.abs().max().item(), 0)

    def test_errors(self):
        conv = {"name": "c", "type": "conv", "filters": 4, "kernel": 3}
        cases = [
            ([{"name": "d", "type": "dense", "units": 3}], "flat input"),
            ([conv, dict(conv)], "used twice"),
            ([conv, {"name": "x", "type": "add", "inputs": ["c", "nope"]}], "earlier layer"),
            ([conv, {"name": "x", "type": "add", "inputs": ["c", "input"]}], "must match"),
            ([dict(conv, name="input")], "network's input"),
            ([dict(conv, name="a..b")], "name"),
            ([dict(conv, name="train")], "PyTorch submodule name"),
            ([conv, dict(conv, name="c.x")], "is a layer"),
            ([dict(conv, name="a.b"), dict(conv, name="a", input="input")], "container"),
            ([dict(conv, padding="full")], "padding"),
            ([dict(conv, filters=0)], "filters"),
            ([dict(conv, act="tanh")], "act"),
            ([dict(conv, init="whiten")], "2*C*K*K"),
            ([{"name": "n", "type": "normalize", "mean": [0, 0], "std": [1, 1]}], "3 numbers"),
            ([{"name": "p", "type": "maxpool", "kernel": 9}], "leaves nothing"),
            ([{"name": "z", "type": "softmax"}], "type"),
            ([{"name": "c", "type": "conv", "kernel": 3}], "needs filters"),
        ]
        for layers, want in cases:
            with self.assertRaises(torch_model.ModelError, msg=str(layers)) as cm:
                self.build(layers)
            self.assertIn(want, str(cm.exception), str(layers))

    def test_empty_fields_of_other_types_are_ignored(self):
        warned = []
        layers = [{"name": "c", "type": "conv", "filters": 4, "kernel": 3, "units": 0, "input": "",
                   "inputs": None, "momentum": 0, "mean": None, "act": "none"},
                  {"name": "r", "type": "relu", "act": "none", "init": None, "filters": 7}]
        torch_model.build({"layers": layers}, (3, 8, 8), warn=warned.append)
        self.assertEqual(len(warned), 1)
        self.assertIn("filters=7", warned[0])


class Eval(unittest.TestCase):
    """torch_eval.py on hand-written checkpoints."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.x, cls.y = write_test_batch(cls.dir, 40, torch.Generator().manual_seed(9))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def checkpoint(self, name, spec, tensors, meta=None):
        path = os.path.join(self.dir, name)
        m = {"format": "trainer/1", "model": spec.get("name", ""), "input": "3x32x32", "model.json": json.dumps(spec)}
        m.update(meta or {})
        write_safetensors(path, tensors, m)
        return path

    def net(self, file, seed):
        spec = spec_of(file)
        torch.manual_seed(seed)
        net = torch_model.build(spec)
        randomize_stats(net, torch.Generator().manual_seed(seed))
        return spec, net

    def want(self, ref, infer=lambda x, net: net(x)):
        ref.eval()
        with torch.no_grad():
            out = infer(self.x, ref)
        return (out.argmax(1) == self.y).sum().item() / len(self.y), F.cross_entropy(out, self.y).item()

    def check(self, path, want, *extra):
        r = run_eval("--checkpoint", path, "--data", self.dir, "--batch", "16", *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        self.assertEqual(got["samples"], 40)
        self.assertAlmostEqual(got["accuracy"], want[0], places=9)
        self.assertAlmostEqual(got["loss"], want[1], delta=1e-4 * (1 + want[1]))
        return r

    def test_resnet20_and_tta(self):
        spec, net = self.net("resnet20.json", 11)
        ts = checkpoint_tensors(net, "I64")
        ts["optimizer.momentum"] = ("F32", np.zeros(5, np.float32))
        path = self.checkpoint("r20.safetensors", spec, ts)
        ref = ResNet20()
        ref.load_state_dict(net.state_dict(), strict=True)
        r = self.check(path, self.want(ref))
        self.assertIn("optimizer.momentum", r.stderr)
        self.check(path, self.want(ref, ab_infer_mirror), "--tta", "flip")
        self.check(path, self.want(ref, ab_infer_mirror_translate), "--tta", "flip-translate")

    def test_airbench94_float_counts(self):
        spec, net = self.net("airbench94.json", 12)
        path = self.checkpoint("ab.safetensors", spec, checkpoint_tensors(net, "F32"))
        ref = Airbench94()
        ref.net.load_state_dict(net.state_dict(), strict=True)
        self.check(path, self.want(ref))
        self.check(path, self.want(ref, ab_infer_mirror_translate), "--tta", "flip-translate")

    def test_errors(self):
        spec, net = self.net("resnet20.json", 13)
        good = checkpoint_tensors(net)
        cases = []
        missing = dict(good)
        del missing["layer3.2.bn2.running_var"]
        cases.append((missing, "Missing key(s)", None))
        extra = dict(good)
        extra["conv1.bias"] = ("F32", np.zeros(16, np.float32))
        cases.append((extra, "Unexpected key(s)", None))
        shape = dict(good)
        shape["linear.weight"] = ("F32", np.zeros((10, 32), np.float32))
        cases.append((shape, "size mismatch", None))
        f64 = dict(good)
        f64["linear.bias"] = ("F64", np.zeros(10, np.float64))
        cases.append((f64, "dtype F64", None))
        frac = dict(good)
        frac["bn1.num_batches_tracked"] = ("F32", np.array(1.5, np.float32))
        cases.append((frac, "whole count", None))
        cases.append((good, "3x32x32", {"input": "1x28x28"}))
        cases.append((good, "not JSON", {"model.json": "{"}))
        cases.append((good, "must match", {"model.json": json.dumps(
            {"layers": [{"name": "a", "type": "conv", "filters": 4, "kernel": 3},
                        {"name": "b", "type": "add", "inputs": ["a", "input"]}]})}))
        for i, (ts, want, meta) in enumerate(cases):
            path = self.checkpoint(f"bad{i}.safetensors", spec, ts, meta)
            r = run_eval("--checkpoint", path, "--data", self.dir)
            self.assertEqual(r.returncode, 1, want)
            self.assertIn(want, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertEqual(r.stdout, "")


class Twin(unittest.TestCase):
    """The pieces of torch_resnet20.py, and its command line on tiny data."""

    def test_augment_is_crop_then_flip(self):
        import torch_resnet20 as twin
        x = torch.rand(16, 3, 32, 32)
        got = twin.augment(x, torch.Generator().manual_seed(3))
        gen = torch.Generator().manual_seed(3)
        dy, dx = torch.randint(0, 9, (16,), generator=gen), torch.randint(0, 9, (16,), generator=gen)
        flip = torch.randint(0, 2, (16,), generator=gen)
        for i in range(16):
            want = F.pad(x[i], (4, 4, 4, 4))[:, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
            if flip[i]:
                want = want.flip(-1)
            self.assertTrue(torch.equal(got[i], want), i)
        self.assertGreater(flip.sum().item(), 0)
        self.assertLess(flip.sum().item(), 16)

    def test_pixels_as_the_trainer(self):
        import torch_resnet20 as twin
        u8 = torch.arange(256, dtype=torch.uint8)
        want = u8.numpy().astype(np.float32) * np.float32(1 / 255)
        self.assertTrue(np.array_equal(twin.to_float(u8).numpy(), want))

    def test_batches_keep_the_last_partial_one(self):
        import torch_resnet20 as twin
        sizes = [len(b) for b in twin.batches(10, 4, torch.Generator().manual_seed(0))]
        self.assertEqual(sizes, [4, 4, 2])
        got = torch.cat(list(twin.batches(10, 4, torch.Generator().manual_seed(0))))
        self.assertEqual(sorted(got.tolist()), list(range(10)))
        self.assertEqual([len(b) for b in twin.batches(10, 4, torch.Generator(), full_only=True)], [4, 4])

    def test_onecycle(self):
        import torch_resnet20 as twin
        a = type("A", (), dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, lr_schedule="onecycle"))
        opt, sched = twin.optimizer(a, nn.Linear(2, 2), 100)
        lrs = []
        for _ in range(100):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        self.assertAlmostEqual(lrs[0], 0.1 / 25)
        self.assertAlmostEqual(max(lrs), 0.1)
        self.assertIn(lrs.index(max(lrs)), (29, 30))
        self.assertAlmostEqual(lrs[-1], 0.1 / 25 / 1e4)  # the last batch runs at the floor
        self.assertEqual(opt.param_groups[0]["momentum"], 0.9)
        self.assertTrue(opt.param_groups[0]["nesterov"])

    def test_command_line(self):
        with tempfile.TemporaryDirectory() as d:
            gen = torch.Generator().manual_seed(1)
            write_test_batch(d, 12, gen)
            os.rename(os.path.join(d, "test_batch.bin"), os.path.join(d, "data_batch_1.bin"))
            write_test_batch(d, 8, gen)
            cmd = [sys.executable, os.path.join(HERE, "torch_resnet20.py"), "--data", d, "--threads", "1", "--batch", "5"]
            r = subprocess.run(cmd + ["--epochs", "2", "--augment", "--nesterov"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [json.loads(line) for line in r.stdout.splitlines()]
            self.assertEqual([line["epoch"] for line in lines], [1, 2])
            self.assertEqual(set(lines[0]), {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds",
                                             "images_per_s"})
            self.assertIn("272474 parameters", r.stderr)
            r = subprocess.run(cmd + ["--json-bench", "--steps", "2", "--warmup", "1"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r'"images_per_s": [0-9.]+')
            r = subprocess.run(cmd + ["--steps", "2"], capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertIn("--json-bench", r.stderr)


if __name__ == "__main__":
    unittest.main()
