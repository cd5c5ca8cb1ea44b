#!/usr/bin/env python3
"""Tests of torch_airbench94.py, the PyTorch twin of airbench94, on the CPU
(PyTorch 1.13, one thread, a few seconds):

    /usr/bin/python3 scripts/test_torch_airbench94.py [-v] [-k PATTERN]

The pieces of the port against code copied from upstream's
legacy/airbench94.py (Keller Jordan, cifar10-airbench; marked "upstream"
below) or against an independent computation:

- the LambdaLR factors and the SGD groups' learning rates and decays, and
  their mean-loss equivalents in the README's airbench94 recipe;
- the lookahead decays 0.95^5*(step/steps)^3 and the update of every
  floating state_dict tensor;
- batch_crop against upstream's (both of its branches) and a per-image
  crop with the same draws; the loader's pre-flip, odd-epoch mirror,
  reflect-padded translation and dropped last batch;
- the whitening init: second moments of its outputs diag(l/(l+eps)), its
  filters' outer products (cov + eps)^-1, finite on degenerate data,
  channels_last input alike;
- TTA weights 1/4, 1/4 and 1/8 x4 over the six views, equal to upstream's
  infer and torch_eval.py's;
- the network: the preset's state_dict keys and shapes, the same seeded
  initial weights and the same function as torch_model.py's build of
  model/presets/airbench94.json; the frozen whitening bias left alone by
  SGD;
- the command line on a few random images.
"""
import json
import math
import os
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
import torch_airbench94 as ab  # noqa: E402
import torch_eval  # noqa: E402
import torch_model  # noqa: E402

torch.set_num_threads(1)
PRESET = os.path.join(HERE, "..", "model", "presets", "airbench94.json")


# ---- upstream code, as written in legacy/airbench94.py ---------------------

def up_get_lr_factory(total_train_steps):
    # The body of get_lr inside upstream's main().
    def get_lr(step):
        warmup_steps = int(total_train_steps * 0.23)
        warmdown_steps = total_train_steps - warmup_steps
        if step < warmup_steps:
            frac = step / warmup_steps
            return 0.2 * (1 - frac) + 1.0 * frac
        else:
            frac = (step - warmup_steps) / warmdown_steps
            return 1.0 * (1 - frac) + 0.07 * frac
    return get_lr


def up_batch_crop(images, crop_size):
    r = (images.size(-1) - crop_size)//2
    shifts = torch.randint(-r, r+1, size=(len(images), 2), device=images.device)
    images_out = torch.empty((len(images), 3, crop_size, crop_size), device=images.device, dtype=images.dtype)
    # The two cropping methods in this if-else produce equivalent results, but the second is faster for r > 2.
    if r <= 2:
        for sy in range(-r, r+1):
            for sx in range(-r, r+1):
                mask = (shifts[:, 0] == sy) & (shifts[:, 1] == sx)
                images_out[mask] = images[mask, :, r+sy:r+sy+crop_size, r+sx:r+sx+crop_size]
    else:
        images_tmp = torch.empty((len(images), 3, crop_size, crop_size+2*r), device=images.device, dtype=images.dtype)
        for s in range(-r, r+1):
            mask = (shifts[:, 0] == s)
            images_tmp[mask] = images[mask, :, r+s:r+s+crop_size, :]
        for s in range(-r, r+1):
            mask = (shifts[:, 1] == s)
            images_out[mask] = images_tmp[mask, :, :, r+s:r+s+crop_size]
    return images_out


def up_batch_crop_second_branch(images, crop_size):
    # Upstream's r > 2 method, forced for any r.
    r = (images.size(-1) - crop_size)//2
    shifts = torch.randint(-r, r+1, size=(len(images), 2), device=images.device)
    images_out = torch.empty((len(images), 3, crop_size, crop_size), device=images.device, dtype=images.dtype)
    images_tmp = torch.empty((len(images), 3, crop_size, crop_size+2*r), device=images.device, dtype=images.dtype)
    for s in range(-r, r+1):
        mask = (shifts[:, 0] == s)
        images_tmp[mask] = images[mask, :, r+s:r+s+crop_size, :]
    for s in range(-r, r+1):
        mask = (shifts[:, 1] == s)
        images_out[mask] = images_tmp[mask, :, :, r+s:r+s+crop_size]
    return images_out


class UpLookaheadState:
    def __init__(self, net):
        self.net_ema = {k: v.clone() for k, v in net.state_dict().items()}

    def update(self, net, decay):
        for ema_param, net_param in zip(self.net_ema.values(), net.state_dict().values()):
            if net_param.dtype in (torch.half, torch.float):
                ema_param.lerp_(net_param, 1-decay)
                net_param.copy_(ema_param)


def up_infer(model, loader, tta_level=0):
    def infer_basic(inputs, net):
        return net(inputs).clone()

    def infer_mirror(inputs, net):
        return 0.5 * net(inputs) + 0.5 * net(inputs.flip(-1))

    def infer_mirror_translate(inputs, net):
        logits = infer_mirror(inputs, net)
        pad = 1
        padded_inputs = F.pad(inputs, (pad,)*4, 'reflect')
        inputs_translate_list = [
            padded_inputs[:, :, 0:32, 0:32],
            padded_inputs[:, :, 2:34, 2:34],
        ]
        logits_translate_list = [infer_mirror(inputs_translate, net)
                                 for inputs_translate in inputs_translate_list]
        logits_translate = torch.stack(logits_translate_list).mean(0)
        return 0.5 * logits + 0.5 * logits_translate

    model.eval()
    test_images = loader.normalize(loader.images)
    infer_fn = [infer_basic, infer_mirror, infer_mirror_translate][tta_level]
    with torch.no_grad():
        return torch.cat([infer_fn(inputs, model) for inputs in test_images.split(2000)])


# ---- helpers ---------------------------------------------------------------

def rand_images(n, seed, size=32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


class Identity(nn.Module):
    """A "network" that returns its input, flattened: infer's output is then
    the weighted sum of the views it saw."""

    def forward(self, x):
        return x.flatten(1)


# ---- tests -----------------------------------------------------------------

class Schedule(unittest.TestCase):
    def test_lr_factors_are_upstreams(self):
        for total in (1, 2, 5, 9, 27, 100, 387):
            ours, up = ab.lr_lambda(total), up_get_lr_factory(total)
            for step in range(total + 1):
                self.assertEqual(ours(step), up(step), (total, step))

    def test_lr_factors_hand_worked(self):
        # 40,000 images, batch 1024, 9.9 epochs: 39 steps an epoch, 387 in all,
        # 89 of warm-up from 0.2 to 1, then down to 0.07 at step 387.
        total = math.ceil(40000 // 1024 * 9.9)
        self.assertEqual(total, 387)
        f = ab.lr_lambda(total)
        self.assertEqual(f(0), 0.2)
        self.assertAlmostEqual(f(44), 0.2 + 0.8 * 44 / 89, places=12)
        self.assertEqual(f(89), 1.0)
        self.assertAlmostEqual(f(387), 0.07, places=12)
        self.assertAlmostEqual(f(89 + 149), 1 - 0.93 * 149 / 298, places=12)

    def test_optimizer_groups_and_scheduled_rates(self):
        torch.manual_seed(0)
        net = ab.make_net(torch.device("cpu"))
        opt = ab.make_optimizer(net, 1024)
        total = 20
        sched = torch.optim.lr_scheduler.LambdaLR(opt, ab.lr_lambda(total))
        names = {id(p): k for k, p in net.named_parameters()}
        norm = [names[id(p)] for p in opt.param_groups[0]["params"]]
        other = [names[id(p)] for p in opt.param_groups[1]["params"]]
        self.assertEqual(norm, [f"{b}.norm{i}.bias" for b in (2, 3, 4) for i in (1, 2)])
        self.assertEqual(other, ["0.bias"] + [f"{b}.conv{i}.weight" for b in (2, 3, 4) for i in (1, 2)] + ["7.weight"])
        kilostep_scale = 1024 * (1 + 1 / (1 - 0.85))
        lr = 11.5 / kilostep_scale
        wd = 0.0153 * 1024 / kilostep_scale
        for g in opt.param_groups:
            self.assertEqual(g["momentum"], 0.85)
            self.assertTrue(g["nesterov"])
            self.assertEqual(g["dampening"], 0)
        self.assertAlmostEqual(opt.param_groups[0]["weight_decay"], wd / (64 * lr), places=15)
        self.assertAlmostEqual(opt.param_groups[1]["weight_decay"], wd / lr, places=15)
        up = up_get_lr_factory(total)
        for step in range(total):
            self.assertAlmostEqual(opt.param_groups[0]["lr"], 64 * lr * up(step), places=15)
            self.assertAlmostEqual(opt.param_groups[1]["lr"], lr * up(step), places=15)
            opt.step()
            sched.step()
        # The README's mean-loss recipe: lr 1.5, weight decay 0.00133 and
        # 2.08e-5 for the norm biases (the summed loss is batch x the mean).
        self.assertAlmostEqual(lr * 1024, 1.5, places=12)
        self.assertAlmostEqual(wd / lr / 1024, 0.00133, places=5)
        self.assertAlmostEqual(wd / (64 * lr) / 1024, 2.08e-5, places=7)

    def test_batch_size_scales_only_the_decay(self):
        torch.manual_seed(0)
        net = ab.make_net(torch.device("cpu"))
        a, b = ab.make_optimizer(net, 1024), ab.make_optimizer(net, 256)
        for ga, gb in zip(a.param_groups, b.param_groups):
            self.assertEqual(ga["lr"], gb["lr"])
            self.assertAlmostEqual(gb["weight_decay"] * 4, ga["weight_decay"], places=12)


class Lookahead(unittest.TestCase):
    def test_alpha_schedule(self):
        for total in (1, 9, 387):
            a = ab.alpha_schedule_of(total)
            up = 0.95**5 * (torch.arange(total+1) / total)**3
            self.assertTrue(torch.equal(a, up))
            self.assertEqual(a[0].item(), 0)
            self.assertAlmostEqual(a[-1].item(), 0.95**5, places=6)
            # The README's --lookahead 0.7738 is 0.95^5.
            self.assertAlmostEqual(0.95**5, 0.7738, places=4)
        a = ab.alpha_schedule_of(387)
        self.assertAlmostEqual(a[100].item(), 0.95**5 * (100 / 387)**3, places=6)

    def test_update_against_upstream_and_by_hand(self):
        torch.manual_seed(1)
        net = ab.make_net(torch.device("cpu"))
        ref = ab.make_net(torch.device("cpu"))
        ref.load_state_dict(net.state_dict())
        ours, up = ab.LookaheadState(net), UpLookaheadState(ref)
        start = {k: v.clone() for k, v in net.state_dict().items()}
        with torch.no_grad():
            for m in (net, ref):
                for k, v in m.state_dict().items():
                    if v.is_floating_point():
                        v.add_(torch.randn(v.shape, generator=torch.Generator().manual_seed(len(k))))
                    else:
                        v.add_(3)
        moved = {k: v.clone() for k, v in net.state_dict().items()}
        decay = 0.6
        ours.update(net, decay)
        up.update(ref, decay)
        for k, v in net.state_dict().items():
            self.assertTrue(torch.equal(v, ref.state_dict()[k]), k)
            if v.is_floating_point():
                # Running statistics too: every float tensor.
                want = decay * start[k] + (1 - decay) * moved[k]
                self.assertLess((v - want).abs().max().item(), 1e-5, k)
                self.assertTrue(torch.equal(ours.net_ema[k], v), k)
            else:
                self.assertTrue(torch.equal(v, moved[k]), k)  # num_batches_tracked untouched
        # decay 1: the weights become the average.
        with torch.no_grad():
            net.state_dict()["7.weight"].add_(1)
        ours.update(net, 1.0)
        self.assertTrue(torch.equal(net.state_dict()["7.weight"], ours.net_ema["7.weight"]))


class Crop(unittest.TestCase):
    def per_image(self, images, shifts, crop):
        r = (images.size(-1) - crop) // 2
        return torch.stack([images[i, :, r + sy:r + sy + crop, r + sx:r + sx + crop]
                            for i, (sy, sx) in enumerate(shifts.tolist())])

    def test_batch_crop_is_upstreams_and_a_per_image_crop(self):
        for r in (1, 2, 3):
            crop = 8
            images = rand_images(200, r, size=crop + 2 * r)
            torch.manual_seed(10 + r)
            ours = ab.batch_crop(images, crop)
            torch.manual_seed(10 + r)
            up = up_batch_crop(images, crop)
            torch.manual_seed(10 + r)
            second = up_batch_crop_second_branch(images, crop)
            torch.manual_seed(10 + r)
            shifts = torch.randint(-r, r + 1, size=(len(images), 2))
            want = self.per_image(images, shifts, crop)
            self.assertTrue(torch.equal(ours, up), r)
            self.assertTrue(torch.equal(ours, second), r)
            self.assertTrue(torch.equal(ours, want), r)
            self.assertEqual(set(shifts.flatten().tolist()), set(range(-r, r + 1)))

    def test_reflect_padded_crop_is_a_translation(self):
        x = rand_images(3, 4)
        padded = F.pad(x, (2,) * 4, "reflect")
        shifts = torch.tensor([[0, 0], [1, -2], [-1, 2]])
        out = self.per_image(padded, shifts, 32)
        self.assertTrue(torch.equal(out[0], x[0]))
        # shift (1, -2): rows move up by one, columns right by two.
        self.assertTrue(torch.equal(out[1][:, :31, 2:], x[1][:, 1:, :30]))
        self.assertTrue(torch.equal(out[1][:, 31, 2:], x[1][:, 30, :30]))  # reflected row
        self.assertTrue(torch.equal(out[1][:, :31, 0], x[1][:, 1:, 2]))    # reflected column

    def test_loader_flips_translates_and_drops_the_last_batch(self):
        images, labels = rand_images(10, 5), torch.arange(10)
        loader = ab.CifarLoader(images, labels, train=True, batch_size=4, aug={"flip": True}, shuffle=False)
        self.assertEqual(len(loader), 2)
        torch.manual_seed(6)
        e0 = list(loader)
        torch.manual_seed(6)
        flip = (torch.rand(10) < 0.5)  # the pre-flip draw, the first after the seed
        self.assertEqual([len(b[0]) for b in e0], [4, 4])
        norm = ab.normalize(images)
        want0 = torch.where(flip.view(-1, 1, 1, 1), norm.flip(-1), norm)
        self.assertTrue(torch.equal(torch.cat([b[0] for b in e0]), want0[:8]))
        e1 = list(loader)
        self.assertTrue(torch.equal(torch.cat([b[0] for b in e1]), want0[:8].flip(-1)))  # odd epoch: mirrored
        e2 = list(loader)
        self.assertTrue(torch.equal(torch.cat([b[0] for b in e2]), want0[:8]))
        # With translation: each epoch a crop of the pre-flipped padded images.
        loader = ab.CifarLoader(images, labels, train=True, batch_size=5, aug={"flip": True, "translate": 2})
        torch.manual_seed(7)
        x0, y0 = next(iter(loader))
        torch.manual_seed(7)
        flip = (torch.rand(10) < 0.5)
        shifts = torch.randint(-2, 3, size=(10, 2))
        perm = torch.randperm(10)
        pre = torch.where(flip.view(-1, 1, 1, 1), norm.flip(-1), norm)
        want = self.per_image(F.pad(pre, (2,) * 4, "reflect"), shifts, 32)
        self.assertTrue(torch.equal(y0, perm[:5]))
        self.assertTrue(torch.equal(x0, want[perm[:5]]))

    def test_normalize_is_torchvisions_arithmetic(self):
        x = rand_images(4, 8)
        want = (x - ab.CIFAR_MEAN.view(1, 3, 1, 1)) / ab.CIFAR_STD.view(1, 3, 1, 1)
        self.assertTrue(torch.equal(ab.normalize(x), want))
        self.assertTrue(torch.equal(x, rand_images(4, 8)))  # not in place
        cl = x.to(memory_format=torch.channels_last)
        self.assertTrue(ab.normalize(cl).is_contiguous(memory_format=torch.channels_last))

    def test_device_images(self):
        u8 = torch.tensor([0, 1, 128, 255], dtype=torch.uint8).repeat(3 * 256).view(1, 3, 32, 32)
        x = ab.device_images(u8, torch.device("cpu"))
        self.assertEqual(x.dtype, torch.float32)
        want = torch.tensor([0.0, 1.0, 128.0, 255.0]) / 255  # float32 arithmetic
        self.assertTrue(torch.equal(x[0, 0, 0, :4], want))
        self.assertEqual(x[0, 0, 0, 3].item(), 1.0)


class Whitening(unittest.TestCase):
    def fitted(self, images):
        torch.manual_seed(0)
        net = ab.make_net(torch.device("cpu"))
        ab.init_whitening_conv(net[0], images)
        return net[0]

    def test_covariance_property(self):
        # Patch statistics of real-looking data: smooth images, strongly
        # correlated neighbours (a wide eigenvalue spread).
        x = ab.normalize(F.interpolate(rand_images(40, 9, size=8), size=32, mode="bilinear", align_corners=False))
        conv = self.fitted(x)
        eps = 5e-4
        p = x.double().unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        cov = p.T @ p / len(p)
        lam = torch.linalg.eigvalsh(cov).flip(0)
        self.assertGreater(lam[0] / lam[-1], 100)
        w = conv.weight.double().reshape(24, 12)
        # (1) The first twelve outputs (no bias) have second moments diag(l/(l+eps)), largest first.
        z = p @ w[:12].T
        m = z.T @ z / len(z)
        self.assertLess((m - torch.diag(lam / (lam + eps))).abs().max().item(), 1e-5)
        # (2) Sign-free: the filters' outer products sum to (cov + eps I)^-1.
        inv = torch.linalg.inv(cov + eps * torch.eye(12, dtype=torch.float64))
        self.assertLess(((w[:12].T @ w[:12]) - inv).abs().max().item(), 1e-4 * inv.abs().max().item())
        # (3) The second half is the negation.
        self.assertTrue(torch.equal(conv.weight[12:], -conv.weight[:12]))
        self.assertFalse(conv.weight.requires_grad)

    def test_same_filters_as_torch_model(self):
        x = rand_images(30, 11)
        conv = self.fitted(ab.normalize(x))
        torch.manual_seed(0)
        ref = torch_model.build(torch_model.load_spec(PRESET))
        torch_model.init_whitening(ref, x)
        a, b = conv.weight.reshape(24, 12), ref.get_submodule("0").weight.reshape(24, 12)
        sign = torch.sign((a * b).sum(1, keepdim=True))  # an eigenvector's sign is arbitrary
        self.assertLess((a - sign * b).abs().max().item(), 1e-5 * a.abs().max().item())

    def test_finite_on_degenerate_data(self):
        # Constant images: a rank-one covariance, eleven zero eigenvalues.
        x = torch.ones(20, 3, 32, 32) * torch.tensor([0.1, -0.3, 0.7]).view(1, 3, 1, 1)
        conv = self.fitted(x)
        self.assertTrue(torch.isfinite(conv.weight).all())

    def test_channels_last_input_alike(self):
        x = ab.normalize(rand_images(10, 12))
        a = self.fitted(x).weight
        b = self.fitted(x.to(memory_format=torch.channels_last)).weight
        self.assertTrue(torch.equal(a, b))

    def test_non_finite_is_an_error(self):
        torch.manual_seed(0)
        net = ab.make_net(torch.device("cpu"))
        x = ab.normalize(rand_images(4, 13))
        with self.assertRaises(ab.Fail):
            ab.init_whitening_conv(net[0], x, eps=-10.0)


class TTA(unittest.TestCase):
    def loader(self, x):
        return ab.CifarLoader(x, torch.zeros(len(x), dtype=torch.int64), train=False, batch_size=2000)

    def test_view_weights(self):
        x = rand_images(5, 14)
        loader = self.loader(x)
        net = Identity()
        xn = ab.normalize(x)
        padded = F.pad(xn, (1,) * 4, "reflect")
        views = [xn, xn.flip(-1), padded[:, :, :32, :32], padded[:, :, :32, :32].flip(-1),
                 padded[:, :, 2:, 2:], padded[:, :, 2:, 2:].flip(-1)]
        weights = [1 / 4, 1 / 4, 1 / 8, 1 / 8, 1 / 8, 1 / 8]
        self.assertEqual(sum(weights), 1)
        want = sum(w * v.flatten(1) for w, v in zip(weights, views))
        got = ab.infer(net, loader, tta_level=2)
        self.assertLess((got - want).abs().max().item(), 1e-6)
        self.assertTrue(torch.equal(ab.infer(net, loader, tta_level=0), xn.flatten(1)))
        self.assertLess((ab.infer(net, loader, tta_level=1) - 0.5 * (views[0] + views[1]).flatten(1)).abs().max().item(), 1e-6)

    def test_against_upstream_and_torch_eval(self):
        torch.manual_seed(15)
        net = ab.make_net(torch.device("cpu"))
        ab.init_whitening_conv(net[0], ab.normalize(rand_images(20, 16)))
        x = rand_images(7, 17)
        loader = self.loader(x)
        for level, name in ((0, "none"), (1, "flip"), (2, "flip-translate")):
            ours = ab.infer(net, loader, level, split=3)
            up = up_infer(net, loader, level)
            with torch.no_grad():
                ev = torch_eval.infer(net, ab.normalize(x), name)
            self.assertLess((ours - up).abs().max().item(), 1e-5, name)
            self.assertLess((ours - ev).abs().max().item(), 1e-5, name)
        y = up.argmax(1)
        loader.labels = y
        self.assertEqual(ab.evaluate(net, loader, 2), 1.0)


class Network(unittest.TestCase):
    def test_state_dict_is_the_presets(self):
        net = ab.make_net(torch.device("cpu"))
        ab.check_against_preset(net, PRESET)
        spec = torch_model.load_spec(PRESET)
        self.assertEqual(sorted(net.state_dict()), sorted(torch_model.expected_keys(spec)))
        with self.assertRaises(ab.Fail):
            ab.check_against_preset(net, os.path.join(HERE, "..", "model", "presets", "resnet20.json"))

    def test_same_initial_weights_and_function_as_the_preset(self):
        torch.manual_seed(21)
        net = ab.make_net(torch.device("cpu"))
        torch.manual_seed(21)
        ref = torch_model.build(torch_model.load_spec(PRESET))
        for k, v in ref.state_dict().items():
            if k != "0.weight":  # airbench sets a dirac there too; the whitening init replaces both
                self.assertTrue(torch.equal(net.state_dict()[k], v), k)
        x = rand_images(6, 22)
        ab.init_whitening_conv(net[0], ab.normalize(x))
        ref.load_state_dict(net.state_dict())
        with torch.no_grad():
            net[0].bias.uniform_(-0.1, 0.1)
            ref.get_submodule("0").bias.copy_(net[0].bias)
        for mode in ("train", "eval"):
            net.train(mode == "train")
            ref.train(mode == "train")
            a, b = net(ab.normalize(x)), ref(x)
            self.assertLess((a - b).abs().max().item(), 1e-4 * (1 + b.abs().max().item()), mode)

    def test_frozen_whitening_bias_is_left_alone(self):
        torch.manual_seed(23)
        net = ab.make_net(torch.device("cpu"))
        ab.init_whitening_conv(net[0], ab.normalize(rand_images(8, 24)))
        opt = ab.make_optimizer(net, 8)
        with torch.no_grad():
            net[0].bias.fill_(0.5)
        x, y = ab.normalize(rand_images(8, 25)), torch.arange(8)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none")
        for trains in (True, False):
            net[0].bias.requires_grad = trains
            before, w0 = net[0].bias.clone(), net[0].weight.clone()
            loss = loss_fn(net(x), y).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.assertEqual(torch.equal(net[0].bias, before), not trains)
            self.assertTrue(torch.equal(net[0].weight, w0))  # the whitening weights never move

    def test_summed_smoothed_loss(self):
        logits, y = torch.randn(5, 10, generator=torch.Generator().manual_seed(26)), torch.arange(5)
        loss = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none")(logits, y).sum()
        lp = logits.log_softmax(1)
        want = -(0.8 * lp[torch.arange(5), y] + 0.2 * lp.mean(1)).sum()
        self.assertAlmostEqual(loss.item(), want.item(), places=4)


class TrainingLoop(unittest.TestCase):
    def test_steps_lookahead_and_whitening_bias_epochs(self):
        # 40 images, batch 8: 5 steps an epoch; 4.1 epochs: ceil(20.5) = 21 steps in
        # five epochs, the last one step long. Lookahead at steps 5, 10, 15, 20
        # with upstream's decays, then decay 1 at step 21; the whitening bias
        # trains in epochs 1-3 only.
        calls = []

        class Recorder(ab.LookaheadState):
            def update(self, net, decay):
                calls.append((decay, net[0].bias.requires_grad, net[0].bias.detach().clone()))
                super().update(net, decay)

        x, y = rand_images(40, 30), torch.arange(40) % 10
        a = type("Args", (), {"batch": 8, "epochs": 4.1})()
        lines = []
        saved = ab.LookaheadState
        ab.LookaheadState = Recorder
        try:
            torch.manual_seed(31)
            result, net = ab.train_run(a, torch.device("cpu"), (x, y), (x[:10], y[:10]), log=lines.append)
        finally:
            ab.LookaheadState = saved
        alpha = 0.95**5 * (torch.arange(22) / 21)**3
        self.assertEqual([c[0] for c in calls], [alpha[s].item() for s in (5, 10, 15, 20)] + [1.0])
        self.assertEqual([c[1] for c in calls], [True, True, True, False, False])
        self.assertTrue(torch.equal(calls[3][2], calls[4][2]))  # frozen from epoch 4 on
        self.assertFalse(torch.equal(calls[0][2], calls[2][2]))
        self.assertEqual([json.loads(s)["epoch"] for s in lines], [1, 2, 3, 4, 5])
        self.assertEqual(net.state_dict()["2.norm1.num_batches_tracked"].item(), 21)


def write_batches(folder, n_train, n_test, seed):
    gen = np.random.default_rng(seed)
    for i, n in enumerate(np.array_split(np.arange(n_train), 5)):
        rec = np.concatenate([gen.integers(0, 10, (len(n), 1)), gen.integers(0, 256, (len(n), 3072))], axis=1)
        rec.astype(np.uint8).tofile(os.path.join(folder, f"data_batch_{i + 1}.bin"))
    rec = np.concatenate([gen.integers(0, 10, (n_test, 1)), gen.integers(0, 256, (n_test, 3072))], axis=1)
    rec.astype(np.uint8).tofile(os.path.join(folder, "test_batch.bin"))


class CommandLine(unittest.TestCase):
    def run_twin(self, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, "torch_airbench94.py"), "--threads", "1", *args],
                              capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))

    def test_training_output(self):
        with tempfile.TemporaryDirectory() as d:
            write_batches(d, 40, 12, 27)
            # 40 images, batch 16: 2 steps an epoch; 1.5 epochs: 3 steps, 2 epochs.
            r = self.run_twin("--data", d, "--device", "cpu", "--epochs", "1.5", "--batch", "16")
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [json.loads(s) for s in r.stdout.splitlines()]
            self.assertEqual(len(lines), 3, r.stdout)
            for i, e in enumerate(lines[:2]):
                self.assertEqual(list(e), ["epoch", "train_loss", "train_acc", "val_acc", "seconds"])
                self.assertEqual(e["epoch"], i + 1)
                self.assertTrue(math.isfinite(e["train_loss"]))
            final = lines[2]
            self.assertEqual(list(final), ["val_acc", "tta_val_acc", "train_seconds", "total_seconds"])
            self.assertEqual(final["val_acc"], lines[1]["val_acc"])
            self.assertGreaterEqual(final["total_seconds"], final["train_seconds"])
            self.assertGreaterEqual(final["train_seconds"], lines[0]["seconds"] + lines[1]["seconds"])

    def test_errors(self):
        with tempfile.TemporaryDirectory() as d:
            write_batches(d, 10, 4, 28)
            for args, msg in ((["--device", "cpu", "--warmup-run"], "--warmup-run is for --device cuda"),
                              (["--device", "cpu", "--batch", "11"], "only 10 images"),
                              (["--device", "cpu", "--epochs", "0"], "--epochs 0.0")):
                r = self.run_twin("--data", d, *args)
                self.assertEqual(r.returncode, 1, args)
                self.assertIn(msg, r.stderr, args)
            with open(os.path.join(d, "data_batch_2.bin"), "ab") as f:
                f.write(b"x")
            r = self.run_twin("--data", d, "--device", "cpu")
            self.assertEqual(r.returncode, 1)
            self.assertIn("not a whole number of 3073-byte records", r.stderr)


if __name__ == "__main__":
    unittest.main()
