#!/usr/bin/env bash
# Training speed of `trainer bench --device=cpu` against the PyTorch reference
# (the same network in PyTorch 1.13 from Debian, oneDNN, all cores), run
# alternately on the same machine, three times each, at batch 32 and 128;
# prints every run and the median ratio. Installs python3-torch if missing.
#
#   scripts/bench-vs-pytorch.sh [DATA_DIR]
#
# DATA_DIR holds data_batch_*.bin and test_batch.bin (PyTorch's script reads
# real data; the trainer's bench uses synthetic images of the same shape). If
# omitted, the CIFAR-10 sample beside the checkout is unpacked and used.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${PEER:-../shared/peers/torch_seed_cnn.py}
runs=${RUNS:-3}
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
data=${1:-}
if [ -z "$data" ]; then
  tar -xzf ../shared/data/cifar-10-sample.tar.gz -C "$tmp"
  data=$tmp/cifar-10-batches-bin
fi
go build -o "$tmp/trainer" .
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for bs in 32 128; do
  steps=$((12800 / bs))
  : > "$tmp/ratios.$bs"
  for i in $(seq "$runs"); do
    ours=$("$tmp/trainer" bench --device=cpu --batch-size "$bs" --steps "$steps" --warmup 10 --json 2>/dev/null |
      sed -E 's/.*"images_per_s":([0-9.]+).*/\1/')
    theirs=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$peer" --data "$data" --steps "$steps" --batch "$bs" 2>/dev/null |
      sed -E 's/.*"images_per_s": ([0-9.]+).*/\1/')
    ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "%.3f", a/b}')
    echo "batch $bs run $i: trainer $ours img/s, pytorch $theirs img/s, ratio $ratio"
    echo "$ratio" >> "$tmp/ratios.$bs"
  done
  echo "batch $bs: median ratio trainer/pytorch $(median < "$tmp/ratios.$bs")"
done
