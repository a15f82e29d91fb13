#!/usr/bin/env bash
# The distillation table that 2 CPU cores could not finish (BENCHMARKS.md section 4, issue "GPUs and many
# processes"): on ml-1m and amazon-beauty, the methods that paid on MovieLens (param_init, ced, dllm2rec) and the
# best combination (rrd,param_init) against the plain student, 3 seeds, patience 30 under a 300-epoch cap (the
# ml-1m students hit the 100-epoch cap on the CPU).
#
#   DEVICE=cuda bash benchmarks/kd_table.sh            # then: .venv/bin/python benchmarks/render.py distill
#
# Resumable as a whole: run it again after an interruption. Each teacher continues from its last epoch (its
# folder's checkpoints), and benchmarks/distill.py reads back every finished student from its run cache
# (~/.cache/distillrec/bench-distill/) and continues an unfinished one from its last epoch. Settings by
# environment: DEVICE (auto: a CUDA GPU when torch sees one), SEEDS (0,1,2), DATASETS ("ml-1m amazon-beauty"),
# TEACHERS (the folder for the teachers). Not run yet: no GPU has been at hand (BENCHMARKS.md section 7).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-auto}
SEEDS=${SEEDS:-0,1,2}
DATASETS=${DATASETS:-ml-1m amazon-beauty}
TEACHERS=${TEACHERS:-$HOME/.cache/distillrec/bench-teacher}
KD="param_init;ced;dllm2rec;rrd,param_init"
PY=${PY:-.venv/bin/python}
DISTILLREC=${DISTILLREC:-.venv/bin/distillrec}

for dataset in $DATASETS; do
  case $dataset in
    amazon-beauty) shape='"max_len": 50, "dropout": 0.5, ' teacher_args=(--max-len 50 --dropout 0.5) ;;
    *) shape='' teacher_args=() ;;
  esac
  teacher=$TEACHERS/$dataset-$DEVICE
  "$DISTILLREC" teacher "$dataset" --out "$teacher" "${teacher_args[@]}" --device "$DEVICE"
  "$PY" benchmarks/distill.py "$dataset" --teacher "$teacher" --student sasrec --seeds "$SEEDS" \
    --params "{\"dim\": 32, ${shape}\"max_epochs\": 300, \"patience\": 30, \"device\": \"$DEVICE\"}" \
    --tag "sasrec-dim32-patience30-$DEVICE" --kd "$KD"
done
