#!/usr/bin/env python3
"""Tests of torch_bench.py on the CPU (PyTorch 1.13, no GPU needed; about a
minute on two cores):

    /usr/bin/python3 scripts/test_torch_bench.py [-v] [-k PATTERN]

- one training step of torch_bench (gather, scale, forward, loss, backward,
  update, statistics) on the seed CNN with SGD and with Adam equals the same
  step written out by hand on a copy of the network: the gathered batch,
  the updated weights (the hand-written Nesterov and Keras-eps Adam
  updates), the loss sum and the correct count;
- the command line runs the seed CNN, resnet20 and airbench94 (a whiten
  conv initialised from data) on the CPU and prints one JSON line with the
  fields gpu-vs-pytorch.sh reads; --mode graph on the CPU and bad flags are
  refused with a message, not a traceback.
"""
import copy
import json
import os
import subprocess
import sys
import unittest

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import torch_bench  # noqa: E402
import torch_model  # noqa: E402

torch.set_num_threads(1)


def preset(name):
    return os.path.join(ROOT, "model", "presets", name + ".json")


class StepTest(unittest.TestCase):
    def setup(self, optimizer):
        a = torch_bench.parse(["--model", preset("seed"), "--device", "cpu", "--optimizer", optimizer,
                               "--batch", "6", "--images", "20"])
        gen = torch.Generator().manual_seed(3)
        images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=gen)
        _, net, classes = torch_bench.build_model(a, torch.device("cpu"), images)
        labels = torch.randint(0, classes, (20,), generator=gen)
        ref = copy.deepcopy(net)
        stats = torch.zeros(2)
        opt = torch_bench.make_optimizer(a, net, False)
        step = torch_bench.make_step(net, opt, images, labels, stats, 1 / 255)
        idx = torch.tensor([5, 0, 19, 7, 7, 11])
        return net, ref, step, idx, images, labels, stats

    def reference(self, ref, idx, images, labels):
        x = torch.stack([images[i].float() * (1 / 255) for i in idx.tolist()])
        y = torch.tensor([labels[i].item() for i in idx.tolist()])
        out = ref(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        return loss.item(), int((out.argmax(1) == y).sum())

    def check_stats(self, stats, loss, correct):
        self.assertAlmostEqual(stats[0].item(), loss * 6, places=4)
        self.assertEqual(stats[1].item(), correct)

    def test_sgd_step(self):
        net, ref, step, idx, images, labels, stats = self.setup("sgd")
        step(idx)
        loss, correct = self.reference(ref, idx, images, labels)
        for (name, p), q in zip(net.named_parameters(), ref.parameters()):
            # Nesterov's first step: buf = g, update g + 0.9*buf.
            want = q.detach() - 1e-3 * (q.grad + 0.9 * q.grad)
            self.assertTrue(torch.allclose(p.detach(), want, rtol=1e-5, atol=1e-7), name)
        self.check_stats(stats, loss, correct)

    def test_adam_step(self):
        net, ref, step, idx, images, labels, stats = self.setup("adam")
        step(idx)
        loss, correct = self.reference(ref, idx, images, labels)
        for (name, p), q in zip(net.named_parameters(), ref.parameters()):
            g = q.grad
            m, v = 0.1 * g, 0.001 * g * g
            mhat, vhat = m / 0.1, v / 0.001
            want = q.detach() - 1e-3 * mhat / (vhat.sqrt() + 1e-7)
            self.assertTrue(torch.allclose(p.detach(), want, rtol=1e-4, atol=1e-6), name)
        self.check_stats(stats, loss, correct)


def run(*args):
    p = subprocess.run([sys.executable, os.path.join(HERE, "torch_bench.py"), *args], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    return p.returncode, p.stdout, p.stderr


class CommandLineTest(unittest.TestCase):
    def test_presets(self):
        for name, opt in (("seed", "adam"), ("resnet20", "sgd"), ("airbench94", "sgd")):
            code, out, err = run("--model", preset(name), "--device", "cpu", "--batch", "4", "--images", "8",
                                 "--steps", "2", "--warmup", "1", "--optimizer", opt, "--threads", "1")
            self.assertEqual(code, 0, err)
            r = json.loads(out)
            self.assertEqual((r["mode"], r["device"], r["model"], r["batch_size"], r["steps"]), ("eager", "cpu", name, 4, 2))
            self.assertGreater(r["images_per_s"], 0)
            self.assertAlmostEqual(r["ms_per_step"], r["seconds"] * 1000 / 2, places=2)

    def test_refusals(self):
        for args, want, code in (
                (["--mode", "graph", "--device", "cpu"], "--mode graph needs --device cuda", 1),
                (["--mode", "both", "--device", "cpu"], "--mode both needs --device cuda", 1),
                (["--batch", "9", "--images", "8", "--device", "cpu"], "--images 8: must hold at least one batch", 2),
                (["--steps", "0", "--device", "cpu"], "--steps 0: must be at least 1", 2)):
            got, _, err = run("--model", preset("seed"), *args)
            self.assertEqual(got, code, err)
            self.assertIn(want, err)
            self.assertNotIn("Traceback", err)


if __name__ == "__main__":
    unittest.main()
