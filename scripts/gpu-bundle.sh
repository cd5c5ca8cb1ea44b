#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a GPU machine that has no Go
# toolchain: the trainer binary and the test binaries of the GPU packages, in
# .gpu/ (git-ignored). Pass a CIFAR-10 JPEG archive (as in shared/data) to
# add a real training run to the check.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
flags=(-trimpath -ldflags=-s\ -w)
go build "${flags[@]}" -o .gpu/trainer .
go test -c "${flags[@]}" -o .gpu/cuda.test ./cuda
go test -c "${flags[@]}" -o .gpu/gpu.test ./device/gpu
if [ $# -ge 1 ]; then
  cp "$1" .gpu/cifar10-train-jpeg.tar.xz
  if [ $# -ge 2 ]; then (cd "$2" && go build -trimpath -ldflags='-s -w' -o "$OLDPWD/.gpu/jpeg2cifar" .); fi
fi
du -sh .gpu/*
