#!/usr/bin/env bash
# CPU scaling of one training step: `trainer bench --device cpu --threads T`
# beside PyTorch on the same network (scripts/torch_seed_bench.py, the seed
# CNN twin, torch.set_num_threads(T)), both on synthetic data, for each
# thread count T and batch size. Prints one row per (batch, T): img/s of
# each, the trainer's speed-up over its own 1-thread figure and its parallel
# efficiency (speed-up / T), and the ratio trainer/PyTorch.
#
#   [THREADS="1 2 4 8 16"] [BATCHES="32 128"] [IMAGES=6400] [RUNS=1] \
#   [TRAINER=path] [PYTHON=python3] scripts/cpu-scaling.sh
#
# IMAGES is the images timed per run (steps = IMAGES / batch, after 10
# warm-up steps); with RUNS > 1 each figure is the median of RUNS runs, the
# trainer and PyTorch alternating. TRAINER is the binary to run: default
# .gpu/trainer when present (the device machine has no Go), else one built
# here. PyTorch runs with OMP_WAIT_POLICY=PASSIVE (its spinning threads
# otherwise starve each other on a shared machine). A thread count above
# the machine's cores is run anyway and marked "oversubscribed".
# DRY_RUN=1 prints the commands instead of running them.
set -uo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-1 2 4 8 16}
batches=${BATCHES:-32 128}
images=${IMAGES:-6400}
runs=${RUNS:-1}
py=${PYTHON:-python3}
dry=${DRY_RUN:-0}
for v in $threads $batches $images $runs; do
  case $v in '' | *[!0-9]* | 0) echo "cpu-scaling: THREADS, BATCHES, IMAGES and RUNS want positive integers, got '$v'" >&2; exit 2 ;; esac
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
trainer=${TRAINER:-}
if [ -z "$trainer" ]; then
  if [ -x .gpu/trainer ]; then
    trainer=.gpu/trainer
  elif [ "$dry" = 1 ]; then
    trainer=./trainer
  else
    go build -o "$tmp/trainer" . || { echo "cpu-scaling: go build failed (or set TRAINER)" >&2; exit 1; }
    trainer=$tmp/trainer
  fi
fi
cores=$(nproc)
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { sed -nE 's/.*"images_per_s": ?([0-9.eE+-]+).*/\1/p' | tail -n 1; }
# one WHO T B: prints the img/s of one run (nothing if it failed, with the
# reason on stderr).
one() {
  local who=$1 t=$2 b=$3 steps=$(( (images + $3 - 1) / $3 )) out
  local -a cmd
  if [ "$who" = trainer ]; then
    cmd=(timeout 300 "$trainer" bench --device cpu --threads "$t" --batch-size "$b" --steps "$steps" --warmup 10 --json)
  else
    cmd=(timeout 300 env OMP_WAIT_POLICY=PASSIVE "$py" scripts/torch_seed_bench.py --threads "$t" --batch "$b" --steps "$steps" --warmup 10)
  fi
  if [ "$dry" = 1 ]; then
    printf 'dry run:' >&2; printf ' %q' "${cmd[@]}" >&2; printf '\n' >&2
    return 0
  fi
  if ! out=$("${cmd[@]}" 2>"$tmp/err"); then
    echo "cpu-scaling: $who --threads $t batch $b failed: $(tail -n 2 "$tmp/err")" >&2
    return 0
  fi
  printf '%s\n' "$out" | field
}
torchv="$py (dry run)"
[ "$dry" = 1 ] || torchv=$("$py" -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1)
echo "== CPU scaling: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $cores cores; trainer $trainer; $torchv"
uptime
printf '%-6s %-8s %12s %9s %7s %12s %9s\n' batch threads trainer speedup eff pytorch ratio
for b in $batches; do
  base=
  for t in $threads; do
    : > "$tmp/ours"; : > "$tmp/theirs"
    for _ in $(seq "$runs"); do
      one trainer "$t" "$b" >> "$tmp/ours"
      one pytorch "$t" "$b" >> "$tmp/theirs"
    done
    ours=$(median < "$tmp/ours") theirs=$(median < "$tmp/theirs")
    [ -z "$base" ] && [ "$ours" != - ] && base=$ours
    read -r sp eff ratio < <(awk -v o="$ours" -v p="$theirs" -v b="${base:--}" -v t="$t" 'BEGIN {
      sp = (o != "-" && b != "-") ? sprintf("%.2fx", o / b) : "-"
      eff = (o != "-" && b != "-") ? sprintf("%.0f%%", 100 * o / b / t) : "-"
      r = (o != "-" && p != "-" && p > 0) ? sprintf("%.2f", o / p) : "-"
      print sp, eff, r }')
    note=
    [ "$t" -gt "$cores" ] && note=" (oversubscribed: $cores cores)"
    printf '%-6s %-8s %12s %9s %7s %12s %9s%s\n' "$b" "$t" "$ours" "$sp" "$eff" "$theirs" "$ratio" "$note"
  done
done
uptime
