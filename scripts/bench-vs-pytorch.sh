#!/usr/bin/env bash
# Training speed of `trainer bench --device=cpu` against the PyTorch reference
# (the same network in PyTorch 1.13 from Debian, oneDNN, all cores), run
# alternately on the same machine, RUNS (3) times each; prints every run and
# the median ratio trainer/PyTorch. Installs python3-torch if missing.
#
#   [MODELS="seed resnet20"] scripts/bench-vs-pytorch.sh [DATA_DIR]
#
# Sections (MODELS, default both, in the order given):
#   seed      the default model at batch 32 and 128 (12,800 images per run),
#             against the peer script torch_seed_cnn.py (PEER to override);
#   resnet20  `trainer bench --model resnet20` at batch 128, STEPS_RESNET20
#             (40) timed steps after WARMUP_RESNET20 (5), against
#             scripts/torch_resnet20.py --json-bench (the same network built
#             from model/presets/resnet20.json, SGD, the same step counts).
#
# The trainer runs with its Winograd convolutions; TRAINER_CPU_NOWINOGRAD=1
# in the environment (passed on to it) measures it with im2col only.
#
# DATA_DIR holds data_batch_*.bin and test_batch.bin (PyTorch's scripts read
# real data; the trainer's bench uses synthetic images of the same shape). If
# omitted, the CIFAR-10 sample beside the checkout is unpacked and used.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${PEER:-../shared/peers/torch_seed_cnn.py}
runs=${RUNS:-3}
models=${MODELS:-seed resnet20}
for m in $models; do
  case $m in seed|resnet20) ;; *) echo "bench-vs-pytorch: MODELS: unknown section '$m' (want seed, resnet20)" >&2; exit 2 ;; esac
done
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
# ips WHO CMD...: runs CMD and prints the number of its last "images_per_s"
# field; a failure or a missing field stops the script, naming WHO.
ips() {
  local who=$1 out v
  shift
  if ! out=$("$@" 2> "$tmp/stderr"); then
    echo "bench-vs-pytorch: $who failed: $(tail -n 3 "$tmp/stderr")" >&2
    return 1
  fi
  v=$(printf '%s\n' "$out" | sed -nE 's/.*"images_per_s": ?([0-9.eE+-]+).*/\1/p' | tail -n 1)
  if [ -z "$v" ]; then
    echo "bench-vs-pytorch: $who printed no images_per_s: $out $(tail -n 3 "$tmp/stderr")" >&2
    return 1
  fi
  echo "$v"
}
torch_env=(env OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 /usr/bin/python3)
# compare LABEL OURS_CMD -- THEIRS_CMD: RUNS alternating runs and the median ratio.
compare() {
  local label=$1 ours theirs ratio
  shift
  local -a a=() b=()
  while [ "$1" != -- ]; do a+=("$1"); shift; done
  shift
  b=("$@")
  : > "$tmp/ratios"
  for i in $(seq "$runs"); do
    ours=$(ips trainer "${a[@]}")
    theirs=$(ips pytorch "${b[@]}")
    ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "%.3f", a/b}')
    echo "$label run $i: trainer $ours img/s, pytorch $theirs img/s, ratio $ratio"
    echo "$ratio" >> "$tmp/ratios"
  done
  echo "$label: median ratio trainer/pytorch $(median < "$tmp/ratios")"
}
for m in $models; do
  case $m in
  seed)
    for bs in 32 128; do
      steps=$((12800 / bs))
      compare "seed batch $bs" "$tmp/trainer" bench --device=cpu --batch-size "$bs" --steps "$steps" --warmup 10 --json \
        -- "${torch_env[@]}" "$peer" --data "$data" --steps "$steps" --batch "$bs"
    done
    ;;
  resnet20)
    steps=${STEPS_RESNET20:-40} warm=${WARMUP_RESNET20:-5}
    compare "resnet20 batch 128" "$tmp/trainer" bench --device=cpu --model resnet20 --optimizer sgd --batch-size 128 --steps "$steps" --warmup "$warm" --json \
      -- "${torch_env[@]}" scripts/torch_resnet20.py --data "$data" --model model/presets/resnet20.json \
      --json-bench --batch 128 --steps "$steps" --warmup "$warm"
    ;;
  esac
done
