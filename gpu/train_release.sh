#!/usr/bin/env bash
# One lent-GPU session's training of the 128 px line: two recipes side by side on one GPU,
# for TRAIN_S seconds of training together; see gpu/README.md. Run from the repo root with the data packed
# into gpu_pack/ (gpu/pack_data.py). Results go to $OUT (the device tool's return folder) or ./gpu_out.
#
#   bash gpu/train_release.sh [TRAIN_S]
#   bash gpu/train_release.sh --extend SECONDS   # while the machine is warm: the same runs, SECONDS more, then back
#
# A first leg of CAL_S seconds measures each run's speed with both running; the second leg resumes each run
# with a schedule (--num-iters, its linear decay over the second half) sized to end at TRAIN_S.
# INIT=FOLDER starts the runs from a weights folder (G, D and G's average; fresh optimisers); its G and D must
# match the recipe (RECIPES=line128 INIT=... continues weights/stargan-studio-128).
# RECIPES="a b" runs only those of the recipes below (default: all).
# A CPU rehearsal: DEVICE=cpu LOG_EVERY=1 EXTRA='--g-conv-dim 8 --d-conv-dim 8' bash gpu/train_release.sh 60
set -uo pipefail
EXTEND_S=""
if [ "${1:-}" = "--extend" ]; then EXTEND_S=${2:?--extend SECONDS}; TRAIN_S=0; else TRAIN_S=${1:-420}; fi
CAL_S=${CAL_S:-60}
OUT=${OUT:-gpu_out}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" runs
# the pack travels as one tar (gpu_carry/): thousands of small files cost more than their bytes in transit
[ -d gpu_pack ] || tar -xzf gpu_carry/gpu_pack.tgz
LOG="runs/gpu_session.log"

DATA="--celeba-dir gpu_pack/celeba --expression-dir gpu_pack/expressions0 --expression-dir gpu_pack/expressions1"
# The 128 px line (recipes.py, line128: G 32/4 with its blocks at 16x16, residual head started at random, D 32/5
# with an 8x8 real/fake map on its own layers, the log loss with R1 on each image's score and D at 4e-4, the
# classification weight at 1, one edit per target, three quarters on the headline controls), the line every
# session advances; on a GPU in bf16 with a larger batch, exported once at the end.
COMMON="--recipe line128 $DATA --precision bf16 --device ${DEVICE:-cuda}
  --num-workers ${WORKERS:-6} --log-every ${LOG_EVERY:-20} --sample-every 0 --checkpoint-every 100000 --keep-checkpoints 1
  --export-every 0 ${INIT:+--init-from $INIT} ${EXTRA:-}"
# The line, and beside it the line at half the classification weight: on a CPU the two were within the realism
# measure's spread after 1.5 CPU hours each (benchmarks/HISTORY.md, "The judge's penalty on the 8x8 map's sum");
# thousands of GPU steps can separate them.
declare -A RECIPE=(
  [line128]="--seed 31"
  [line128_cls_half]="--lambda-cls 0.5 --seed 32"
)
read -r -a NAMES <<< "${RECIPES:-${!RECIPE[*]}}"
for name in "${NAMES[@]}"; do
  [ -n "${RECIPE[$name]+set}" ] || { echo "unknown recipe $name (have: ${!RECIPE[*]})" >&2; exit 2; }
done

{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
} 2>&1 | tee -a "$LOG"

# Resume every run with a schedule sized to end at END seconds of its own wall time ("+N": N seconds after where it
# stopped), measured from its metrics; DECAY "half": the learning rate decays over the schedule's second half,
# "all": over the whole resumed leg (an extension of a finished run, which ended at a rate of zero).
resume_to() {
  local end=$1 decay=$2 name plan iters steps minutes
  for name in "${NAMES[@]}"; do
    plan=$($PY - "runs/gpu_$name/metrics.jsonl" "$end" "$decay" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
first, last = rows[len(rows) // 3], rows[-1]  # skip the warm-up (cuDNN autotuning, first batches)
rate = (last["step"] - first["step"]) / (last["time"] - first["time"])
end = last["time"] + float(sys.argv[2][1:]) if sys.argv[2].startswith("+") else float(sys.argv[2])
iters = int(last["step"] + 0.97 * rate * (end - last["time"]))
decay = iters // 2 if sys.argv[3] == "half" else max(iters - last["step"], 1)
print(iters, decay, end / 60, f"step {last['step']} at {last['time']:.0f} s, {rate:.2f} steps/s")
EOF
)
    read -r iters steps minutes _ <<< "$plan"
    echo "$name: ${plan#* * * } -> --num-iters $iters --num-iters-decay $steps" | tee -a "$LOG"
    $PY train.py --resume --run-dir "runs/gpu_$name" --num-iters "$iters" --num-iters-decay "$steps" \
      --max-minutes "$minutes" --checkpoint-every 100000 >> "runs/gpu_$name.log" 2>&1 &
  done
  wait
}

if [ -n "$EXTEND_S" ]; then
  echo "== extended by ${EXTEND_S}s, a fresh linear decay" | tee -a "$LOG"
  resume_to "+$EXTEND_S" all
else
  echo "== leg 1: ${CAL_S}s to measure speed" | tee -a "$LOG"
  for name in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    $PY train.py $COMMON ${RECIPE[$name]} --run-dir "runs/gpu_$name" --num-iters 10000000 --num-iters-decay 1 \
      --max-minutes "$($PY -c "print($CAL_S / 60)")" > "runs/gpu_$name.log" 2>&1 &
  done
  wait
  echo "== leg 2: resumed to end at ${TRAIN_S}s" | tee -a "$LOG"
  resume_to "$TRAIN_S" half
fi

echo "== pack (fp16) and bring back" | tee -a "$LOG"
for name in "${NAMES[@]}"; do
  tail -n 3 "runs/gpu_$name.log" | tee -a "$LOG"
  $PY -m stargan.weights pack "runs/gpu_$name/export" "runs/packed_$name" >> "$LOG" 2>&1
done
date -u >> "$LOG"
# The tool brings back 8 files of at most 16 MiB: weights in 15 MiB parts, everything small in one tar.
for name in "${NAMES[@]}"; do  # the line's G and D in fp16 are 12 + 6 MB: every run's come back
  split -b 15M "runs/packed_$name/model.safetensors" "$OUT/$name.model.part"
  split -b 15M "runs/packed_$name/discriminator.safetensors" "$OUT/$name.discriminator.part"
done
(cd runs && sha256sum packed_*/*.safetensors > packed_sha256.txt)
tar -czf "$OUT/small.tgz" --exclude='*.safetensors' runs/packed_* runs/packed_sha256.txt runs/gpu_*.log \
  runs/gpu_*/metrics.jsonl runs/gpu_*/options.json "$LOG"
ls -l "$OUT"
