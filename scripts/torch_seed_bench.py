"""Training speed of the seed CNN in PyTorch on the CPU, on synthetic data,
as `trainer bench` measures it: 1,024 random images (uint8) and labels in
memory; each step gathers a batch, scales it to [0,1], runs forward,
cross-entropy, backward and Adam(lr=1e-3, eps=1e-7). The network is the twin
of the seed preset (the peer script torch_seed_cnn.py, which trains on real
CIFAR-10): conv32k3, maxpool2, conv64k3, maxpool2, conv64k3, dense64, dense10,
Glorot-uniform weights, zero biases.

For each thread count in --threads (torch.set_num_threads), after --warmup
untimed steps, times --steps steps and prints one JSON line:
{"threads": T, "batch": B, "steps": S, "seconds": s, "images_per_s": x}.
"""
import argparse, json, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SeedCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3)
        self.c2 = nn.Conv2d(32, 64, 3)
        self.c3 = nn.Conv2d(64, 64, 3)
        self.d1 = nn.Linear(64 * 4 * 4, 64)
        self.d2 = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.relu(self.c3(x))
        x = torch.flatten(x, 1)
        return self.d2(F.relu(self.d1(x)))


def bench(threads, batch, steps, warmup, images, labels):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SeedCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    n = len(images)
    gen = torch.Generator().manual_seed(1)
    t0 = None
    for s in range(warmup + steps):
        if s == warmup:
            t0 = time.perf_counter()
        idx = torch.randint(0, n, (batch,), generator=gen)
        x = images[idx].float().div_(255.0)
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    return {"threads": threads, "batch": batch, "steps": steps, "seconds": round(dt, 4),
            "images_per_s": round(steps * batch / dt, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2,4,8,16")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    a = p.parse_args()
    try:
        counts = [int(t) for t in a.threads.split(",")]
    except ValueError:
        p.error(f"--threads {a.threads!r}: want comma-separated positive integers")
    if any(t < 1 for t in counts) or a.batch < 1 or a.steps < 1 or a.warmup < 0:
        p.error("--threads, --batch and --steps must be positive, --warmup not negative")
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (1024, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (1024,), generator=g)
    for t in counts:
        print(json.dumps(bench(t, a.batch, a.steps, a.warmup, images, labels)), flush=True)


if __name__ == "__main__":
    main()
