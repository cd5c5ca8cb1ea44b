#!/usr/bin/env bash
# The project's test command: formatting, vet, both builds, the PTX check
# (when nvcc and ptxas are installed), every test, the CPU packages' tests
# again under the race detector, then every fuzz target for FUZZ_SECONDS
# (10) seconds.
# The end-to-end training test runs on the 800 CIFAR-10 images shipped in
# data/testdata/cifar10-mini. Set TRAINER_CIFAR_SAMPLE to a larger CIFAR-10
# sample archive (a .tar.gz of cifar-10-batches-bin) to add a run on it and
# the PyTorch interop check (they skip and say so otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^device/cpu/sgemm/_asm/'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
go build -o /dev/null .
CGO_ENABLED=0 go build -o /dev/null .
if command -v nvcc >/dev/null && command -v ptxas >/dev/null; then
  bash scripts/check-ptx.sh
else
  echo "note: nvcc/ptxas not installed: the PTX freshness and ptxas checks are skipped (CI installs them)"
fi
go test -count=1 -timeout 30m ./...
# The race detector over the CPU packages (the GPU packages need a GPU for
# anything concurrent, and their emulator tests are single-threaded C).
go test -race -count=1 -timeout 30m ./internal/... ./device/cpu/... ./model/... ./run/... ./checkpoint/... ./data/... ./cli/...
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
# The PyTorch twins, where PyTorch is installed (CI installs Debian's):
# the module builder against hand-written PyTorch networks, the airbench94
# port's pieces against upstream's code, gpu-vs-pytorch.sh's PyTorch side
# (torch_bench.py) on the CPU, and a resnet20
# checkpoint evaluated by PyTorch to the trainer's accuracy (0.1 point).
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/test_torch_model.py
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/test_torch_airbench94.py
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/test_torch_bench.py
  if [ -n "${TRAINER_CIFAR_SAMPLE:-}" ]; then
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    tar -xzf "$TRAINER_CIFAR_SAMPLE" -C "$tmp"
    DEVICE=cpu MODEL=resnet20 TRAIN_ARGS="--batch-size 64 --optimizer sgd --lr 0.05 --momentum 0.9 --nesterov --weight-decay 5e-4 --label-smoothing 0.1 --augment --lr-schedule onecycle" \
      bash scripts/torch-interop.sh "$tmp/cifar-10-batches-bin"
  fi
else
  echo "note: PyTorch (python3-torch) not installed: the PyTorch twin checks are skipped (CI installs it)"
fi
