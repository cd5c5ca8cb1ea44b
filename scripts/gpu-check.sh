#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU and no Go toolchain,
# from the repository root, after scripts/gpu-bundle.sh has built .gpu/.
# It runs the cuda and GPU-backend test binaries (the conformance suite on
# the GPU, subtests <Test>/cuda, and on the kernel emulator, <Test>/emu;
# CPU/GPU parity; zero-allocation step), `trainer bench` on the GPU and the CPU at
# batch 32 and 128 and, when .gpu/ holds the CIFAR-10 JPEG archive and the
# converter, a real 10-epoch training run on the GPU; then prints a table.
set -u
BIN=${BIN:-.gpu}
LOG=${LOG:-${OUT:-/tmp}/gpu-check}
mkdir -p "$LOG"
rows=()
row() { rows+=("$(printf '%-34s %s' "$1" "$2")"); }

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
"$BIN/trainer" devices

BIN=$(cd "$BIN" && pwd)
for t in cuda:cuda gpu:device/gpu; do
  dir=${t#*:}; t=${t%%:*}
  echo "== $t tests"
  # Test binaries run in their package folder, as go test runs them.
  (cd "$dir" && TRAINER_REQUIRE_GPU=1 timeout 300 "$BIN/$t.test" -test.v -test.count=1) >"$LOG/$t-test.log" 2>&1
  rc=$?
  grep -E '^ *(--- (PASS|FAIL|SKIP)|PASS|FAIL|ok)|loss cpu|OOM message' "$LOG/$t-test.log" | tail -80
  pass=$(grep -c -- '--- PASS' "$LOG/$t-test.log"); fail=$(grep -c -- '--- FAIL' "$LOG/$t-test.log"); skip=$(grep -c -- '--- SKIP' "$LOG/$t-test.log")
  row "$t tests (exit $rc)" "$pass passed, $fail failed, $skip skipped"
done

bench() { # device batch steps
  local out
  out=$(timeout 300 "$BIN/trainer" bench --device="$1" --batch-size "$2" --steps "$3" --json 2>"$LOG/bench-$1-$2.err")
  echo "$out"
  if [ -n "$out" ]; then
    row "bench $1 batch $2" "$(echo "$out" | sed -E 's/.*"images_per_s":([0-9.]+).*"ms_per_step_median":([0-9.]+).*"ms_per_step_p90":([0-9.]+).*"gflops":([0-9.]+).*/\1 img\/s, median \2 ms, p90 \3 ms, \4 GFLOP\/s/')"
  else
    row "bench $1 batch $2" "failed: $(tail -1 "$LOG/bench-$1-$2.err")"
  fi
}
echo "== bench"
bench gpu 32 2000
bench gpu 128 1000
bench gpu 32 2000
bench cpu 32 30
bench cpu 128 10

if [ -f "$BIN/cifar10-train-jpeg.tar.xz" ] && [ -x "$BIN/jpeg2cifar" ]; then
  echo "== CIFAR-10 on the GPU"
  d=$(mktemp -d)
  mkdir -p "$d/jpeg" "$d/cifar-10-batches-bin"
  tar -xJf "$BIN/cifar10-train-jpeg.tar.xz" -C "$d/jpeg"
  "$BIN/jpeg2cifar" -src "$d/jpeg" -dst "$d/cifar-10-batches-bin" -devsplit
  for aug in "" --augment; do
    tag=train${aug:+-augment}
    timeout 200 "$BIN/trainer" --log-format json train --device gpu --data-dir "$d/cifar-10-batches-bin" \
      --epochs "${EPOCHS:-10}" --out "$d/$tag/model.safetensors" $aug 2>"$LOG/$tag.log"
    grep '"val_accuracy"' "$LOG/$tag.log" | grep '"seconds"' | tee "$LOG/$tag.jsonl"
    last=$(tail -1 "$LOG/$tag.jsonl")
    row "$tag gpu, last epoch" "$(echo "$last" | sed -E 's/.*"epoch":([0-9]+).*"val_accuracy":([0-9.]+).*/epoch \1 val_accuracy \2/')"
    row "$tag gpu, epoch seconds" "$(sed -E 's/.*"seconds":([0-9.]+).*/\1/' "$LOG/$tag.jsonl" | tr '\n' ' ')"
    ev=$("$BIN/trainer" eval --device gpu --checkpoint "$d/$tag/model.safetensors" --data-dir "$d/cifar-10-batches-bin" --json 2>>"$LOG/$tag.log" | sed -E 's/,"classes".*/}/')
    row "eval gpu ($tag)" "$ev"
  done
  echo "== out of memory on purpose"
  oom=$("$BIN/trainer" train --device gpu --data-dir "$d/cifar-10-batches-bin" --epochs 1 --batch-size 4096 \
    --model conv512k3same,conv512k3same,flatten,dense10 --out "$d/oom/model.safetensors" 2>&1 | tail -1)
  echo "$oom"
  row "train gpu, batch too large" "$(echo "$oom" | grep -o 'out of GPU memory allocating [^:]*\|--batch-size [0-9]* would fit' | tr '\n' ' ')"
fi

echo
echo "== summary"
printf '%s\n' "${rows[@]}"
