#!/usr/bin/env bash
# Issue 14's last candidates, each alone, as fine-tunes of the shipped model at equal CPU time (RESULTS.md,
# "Size, depth, upsampling, loss and the D_cls warm-up, each alone"): one thread each, the same seed, data
# order and constant learning rate, compared by each process's own CPU time. Usage:
#   bash benchmarks/finetune_race.sh RUNS_DIR MINUTES [NAME ...]    (default: control size96 depth6 logr1 resize)
# CORES lists the cores each named run is pinned to, in order (default "0 0 1 1 0,1").
# Needs the prepared expression folders (python -m stargan.prepare ..., see the README's training section).
set -euo pipefail
runs=${1:?usage: finetune_race.sh RUNS_DIR MINUTES}; minutes=${2:?usage: finetune_race.sh RUNS_DIR MINUTES}
mkdir -p "$runs"
data=${DATA:-../shared/data}; prepared=${PREPARED:-/work/prepared}
common=(--recipe cpu --init-from weights/stargan-studio --celeba-dir "$data/celeba_hq_128"
        --expression-dir "$prepared/expressions_posed.soft/train" --expression-dir "$prepared/expressions.soft/train"
        --lambda-teacher 10 --lambda-colour-noise 100 --precision fp32 --num-workers 0 --seed 11
        --num-iters 100000 --num-iters-decay 0 --checkpoint-every 100 --keep-checkpoints 40 --sample-every 200
        --max-minutes "$minutes")
declare -A extra=(
  [control]=""                                                   # the shipped recipe, trained on
  [size96]="--image-size 96 --colour-noise-sigma 3"              # the same noise scale in face terms
  [depth6]="--g-repeat-num 6"                                    # two more residual blocks, started as identity
  [logr1]="--adv-loss log --r1-gamma 1 --gp-every 4"             # StarGAN v2's loss, lazy R1 every 4th D step
  [resize]="--g-upsample resize"                                 # the deconv kernels less their checkerboard
  [hair]="--hair-target-share 0.5"                               # half the targets get a uniform hair colour (gray ~14%)
)
names=("${@:3}"); [ ${#names[@]} -gt 0 ] || names=(control size96 depth6 logr1 resize)
read -r -a core <<< "${CORES:-0 0 1 1 0,1}"; i=0
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 taskset -c "${core[$i]}" python train.py "${common[@]}" ${extra[$name]} \
    --run-dir "$runs/$name" > "$runs/$name.log" 2>&1 &
  i=$((i + 1))
done
wait
