#!/usr/bin/env bash
# PyTorch interop check: trains the default model for one epoch, evaluates
# the checkpoint with `trainer eval --json` and with PyTorch
# (scripts/torch_eval.py, which reads the safetensors file by hand and loads
# it into the PyTorch network with strict=True), prints both and their
# difference, and fails if the accuracies differ by more than 0.1 percentage
# points (0.001). Installs python3-torch if missing.
#
#   scripts/torch-interop.sh [DATA_DIR]
#
# DATA_DIR is a cifar-10-batches-bin folder (data_batch_*.bin, test_batch.bin).
# If omitted, the CIFAR-10 sample beside the checkout is unpacked and used.
# DEVICE (default auto) picks the trainer's device; EPOCHS (default 1);
# MODEL (default: the seed CNN) is a --model value (a preset such as
# resnet20, or a model file); TRAIN_ARGS are more train flags (word-split).
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
data=${1:-}
if [ -z "$data" ]; then
  sample=../shared/data/cifar-10-sample.tar.gz
  [ -f "$sample" ] || { echo "torch-interop: $sample not found; give a DATA_DIR" >&2; exit 1; }
  tar -xzf "$sample" -C "$tmp"
  data=$tmp/cifar-10-batches-bin
fi
go build -o "$tmp/trainer" .
ck=$tmp/run/model.safetensors
model_args=()
[ -n "${MODEL:-}" ] && model_args=(--model "$MODEL")
# shellcheck disable=SC2086
"$tmp/trainer" train --device "${DEVICE:-auto}" --epochs "${EPOCHS:-1}" --data-dir "$data" --out "$ck" "${model_args[@]}" ${TRAIN_ARGS:-} 2> "$tmp/train.log" ||
  { cat "$tmp/train.log" >&2; exit 1; }
ours=$("$tmp/trainer" eval --device "${DEVICE:-auto}" --checkpoint "$ck" --data-dir "$data" --json 2> "$tmp/eval.log") ||
  { cat "$tmp/eval.log" >&2; exit 1; }
theirs=$(OMP_WAIT_POLICY=PASSIVE "$py" scripts/torch_eval.py --checkpoint "$ck" --data "$data")
echo "trainer eval: $ours"
echo "pytorch:      $theirs"
"$py" - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
if a["samples"] != b["samples"]:
    sys.exit(f"torch-interop: FAIL: {a['samples']} samples in trainer eval, {b['samples']} in PyTorch")
d_acc, d_loss = a["accuracy"] - b["accuracy"], a["loss"] - b["loss"]
print(f"difference:   accuracy {d_acc:+.6f} ({abs(d_acc) * a['samples']:.0f} of {a['samples']} images), loss {d_loss:+.2e}")
if abs(d_acc) > 0.001 + 1e-12:
    sys.exit("torch-interop: FAIL: accuracies differ by more than 0.001 (0.1 percentage points)")
print("torch-interop: OK: accuracies agree within 0.001")
PY
