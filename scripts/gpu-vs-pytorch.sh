#!/usr/bin/env bash
# Training-step speed on one GPU: `trainer bench` against PyTorch eager and
# PyTorch with the whole step captured as a CUDA graph (scripts/torch_bench.py),
# on the same card in the same run, alternating, RUNS rounds each; prints
# every run, the medians and the ratios trainer/PyTorch.
#
#   [BIN=.gpu] [PYTHON=python3] [RUNS=3] [CASES="seed:32 seed:128 resnet20:128 airbench94:1024"] \
#     [BUDGET=300] [DRY_RUN=1] bash scripts/gpu-vs-pytorch.sh
#
# Run from the repository root on a machine with an NVIDIA GPU, after
# scripts/gpu-bundle.sh built $BIN/trainer (or with TRAINER=path). Each case
# is MODEL:BATCH, MODEL a preset (model/presets/MODEL.json: seed, resnet20,
# airbench94); seed trains with Adam (Keras's eps 1e-7), the others with
# SGD (momentum 0.9, Nesterov), as `trainer bench --optimizer`.
#
# A round of a case runs, in an order that alternates from round to round:
#   trainer      `trainer bench --device gpu --json`: its back-to-back loop
#                (images_per_s_loop: the steps queued without waiting, as in
#                an epoch), CUDA graphs as --cuda-graphs auto gives them;
#   trainer-off  the same with --cuda-graphs off (op by op);
#   torch        torch_bench.py --mode both: eager, then the captured graph,
#                each on a fresh network, in one process.
# All with the data on the device, random uint8 images gathered per step,
# float32 (no TF32). Steps per run: STEPS_<MODEL> (seed 1000, resnet20
# 300, airbench94 60) after 20 warm-up steps.
#
# BUDGET (seconds) bounds the whole script: no new round starts after it,
# and the summary covers the rounds that ran. CMD_TIMEOUT (150) bounds each
# command. LOG (default $OUT/gpu-vs-pytorch, else a new temporary folder)
# keeps every run's JSON (runs.jsonl) and stderr.
#
# The summary's lines start with "vs-torch " (scripts/gpu-check.sh turns
# them into rows of its table):
#   vs-torch seed b32 | trainer 350000 img/s (0.091 ms/step, graphs), off 90000 | torch eager 60000, graph 200000 | trainer/eager 5.83x, trainer/graph 1.75x
# DRY_RUN=1 prints the commands instead of running them.
set -u
BIN=${BIN:-.gpu}
TRAINER=${TRAINER:-$BIN/trainer}
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-3}
CASES=${CASES:-seed:32 seed:128 resnet20:128 airbench94:1024}
BUDGET=${BUDGET:-300}
CMD_TIMEOUT=${CMD_TIMEOUT:-150}
DRY_RUN=${DRY_RUN:-0}
LOG=${LOG:-${OUT:+$OUT/gpu-vs-pytorch}}
[ -n "$LOG" ] || LOG=$(mktemp -d)
case $DRY_RUN in 0|1) ;; *) echo "gpu-vs-pytorch: DRY_RUN=$DRY_RUN: want 0 or 1" >&2; exit 2 ;; esac
case $RUNS in ''|*[!0-9]*|0) echo "gpu-vs-pytorch: RUNS=$RUNS: want a positive number" >&2; exit 2 ;; esac
for c in $CASES; do
  m=${c%%:*} b=${c#*:}
  if [ ! -f "model/presets/$m.json" ] || [ "$m" = "$c" ] || [ -z "$b" ] || [ -n "${b//[0-9]/}" ]; then
    echo "gpu-vs-pytorch: CASES: '$c': want MODEL:BATCH with MODEL a preset in model/presets (run from the repository root)" >&2
    exit 2
  fi
done
mkdir -p "$LOG"
runs=$LOG/runs.jsonl
: >"$runs"
start=$(date +%s)

# run CMD...: runs CMD (bounded by CMD_TIMEOUT), or with DRY_RUN=1 prints it.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf 'dry run:'; printf ' %q' "$@"; printf '\n'
    return 0
  fi
  timeout -k 10 "$CMD_TIMEOUT" "$@"
}

# record WHO CASE ROUND < JSON lines: appends each line to runs.jsonl with
# who/case/round fields added (a torch line's mode names it torch-MODE).
record() {
  local who=$1 case=$2 round=$3 line
  while IFS= read -r line; do
    case $line in
      '{'*) ;;
      'dry run:'*) echo "$line"; continue ;;
      *) continue ;;
    esac
    printf '{"who":"%s","case":"%s","round":%s,"run":%s}\n' "$who" "$case" "$round" "$line" >>"$runs"
    printf '  %-12s %s\n' "$who" "$line"
  done
}

steps_of() {
  case $1 in
    seed) echo "${STEPS_SEED:-1000}" ;;
    resnet20) echo "${STEPS_RESNET20:-300}" ;;
    airbench94) echo "${STEPS_AIRBENCH94:-60}" ;;
    *) echo "${STEPS:-100}" ;;
  esac
}

have_torch=1
if [ "$DRY_RUN" = 0 ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>"$LOG/python.err"; then
  have_torch=0
  echo "gpu-vs-pytorch: $PYTHON has no PyTorch that sees the GPU ($(tail -1 "$LOG/python.err")): trainer only"
fi
if [ "$DRY_RUN" = 0 ] && [ ! -x "$TRAINER" ]; then
  echo "gpu-vs-pytorch: $TRAINER not found: run scripts/gpu-bundle.sh first (or set TRAINER)" >&2
  exit 1
fi
[ "$DRY_RUN" = 0 ] && "$PYTHON" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' 2>/dev/null

for c in $CASES; do
  m=${c%%:*} b=${c#*:}
  steps=$(steps_of "$m")
  opt=sgd
  [ "$m" = seed ] && opt=adam
  tag="$m b$b"
  echo "== $tag ($steps steps, $opt)"
  trainer_cmd=("$TRAINER" bench --device gpu --model "$m" --batch-size "$b" --steps "$steps" --warmup 20 --optimizer "$opt" --json)
  torch_cmd=(env PYTHONUNBUFFERED=1 "$PYTHON" scripts/torch_bench.py --model "model/presets/$m.json" --device cuda
    --batch "$b" --steps "$steps" --warmup 20 --optimizer "$opt" --images "$((b > 1024 ? b : 1024))" --mode both)
  for round in $(seq "$RUNS"); do
    if [ "$DRY_RUN" = 0 ] && [ $(($(date +%s) - start)) -ge "$BUDGET" ]; then
      echo "gpu-vs-pytorch: BUDGET=$BUDGET s spent: no more rounds"
      break 2
    fi
    contestants=(trainer trainer-off torch)
    [ $((round % 2)) = 0 ] && contestants=(torch trainer-off trainer)
    for who in "${contestants[@]}"; do
      err=$LOG/$m-$b-$round-$who.err
      case $who in
        trainer) run "${trainer_cmd[@]}" 2>"$err" | record trainer "$tag" "$round" ;;
        trainer-off) run "${trainer_cmd[@]}" --cuda-graphs off 2>"$err" | record trainer-off "$tag" "$round" ;;
        torch)
          if [ "$have_torch" = 1 ]; then
            run "${torch_cmd[@]}" 2>"$err" | record torch "$tag" "$round"
          fi
          ;;
      esac
      if [ "$DRY_RUN" = 0 ] && [ -s "$err" ] && ! grep -q "\"who\":\"$who\",\"case\":\"$tag\",\"round\":$round," "$runs"; then
        echo "  $who failed: $(tail -2 "$err" | tr '\n' ' ')"
      fi
    done
  done
done

[ "$DRY_RUN" = 1 ] && exit 0
echo
echo "== medians over the rounds (images/s; ratios of the medians)"
"$PYTHON" - "$runs" "$CASES" <<'PY'
import json, statistics, sys

runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cases = [f"{c.split(':')[0]} b{c.split(':')[1]}" for c in sys.argv[2].split()]

def who(r):
    return "torch-" + r["run"]["mode"] if r["who"] == "torch" else r["who"]

def ips(r):  # the trainer's back-to-back loop, torch's loop
    return r["run"]["images_per_s_loop"] if r["who"].startswith("trainer") else r["run"]["images_per_s"]

def med(case, w, f):
    v = [f(r) for r in runs if r["case"] == case and who(r) == w]
    return statistics.median(v) if v else None

def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"

for case in cases:
    t, off = med(case, "trainer", ips), med(case, "trainer-off", ips)
    e, g = med(case, "torch-eager", ips), med(case, "torch-graph", ips)
    if t is None and e is None:
        print(f"vs-torch {case} | no run finished")
        continue
    ms = med(case, "trainer", lambda r: r["run"]["ms_per_step_loop"])
    last = [r["run"] for r in runs if r["case"] == case and r["who"] == "trainer"]
    graphs = "graphs" if last and last[-1].get("cuda_graphs") else "no graphs"
    calls = ""
    if last and last[-1].get("launches_per_step_eager"):
        le, ls = last[-1]["launches_per_step_eager"], last[-1]["launches_per_step"]
        calls = f", {le['calls']} calls/step op by op, {ls['calls']} in the steady state"
    n = len({r["round"] for r in runs if r["case"] == case})
    fmt = lambda x: f"{x:.0f}" if x else "n/a"
    print(f"vs-torch {case} | trainer {fmt(t)} img/s ({ms} ms/step, {graphs}{calls}), graphs off {fmt(off)}"
          f" | torch eager {fmt(e)}, torch graph {fmt(g)} | trainer/eager {ratio(t, e)}, trainer/graph {ratio(t, g)},"
          f" graphs on/off {ratio(t, off)} ({n} rounds)")
PY
