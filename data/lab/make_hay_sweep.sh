#!/usr/bin/env bash
# The Hay-cell sweep that notebook 06 plots (issue 9), for one condition (NMDA or AMPA): depth 1-7 at width 16,
# then widths 8 and 32 at depth 4 and widths 32 and 64 at depth 1 (is a one-layer network short of depth or only
# of units? the paper's had 128; SWEEP_WIDTHS=no skips both), two seeds each, every network with a 77-ms
# receptive field and the same training budget, trained on the condition's training set (its finished trials)
# and scored on its test set with the paper's protocol. Resumable: finished runs are skipped. Then every
# condition's table (runs/hay_sweep_<condition>/results.csv) is merged into sweeps/hay_sweep.csv, with its
# provenance.
#
#   nohup nice -n 10 bash data/lab/make_hay_sweep.sh NMDA > logs/hay_sweep_nmda.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
COND=${1:?usage: make_hay_sweep.sh NMDA|AMPA}
cond=${COND,,}
OUT=runs/hay_sweep_$cond
STEPS=${STEPS:-1000}
# TRAIN=DIR: the training set (default l5pc_<condition>_train; for AMPA, whose 200-trial set was retired on
# 2026-12-06, the grown l5pc_ampa_train_1000, whose first 200 trials (TRAIN_TRIALS=200) are the same trials)
declare -A DEFAULT_TRAIN=([nmda]=l5pc_nmda_train [ampa]=l5pc_ampa_train_1000)
TRAIN=${TRAIN:-data/lab/${DEFAULT_TRAIN[$cond]}}
DATA=$COND=$TRAIN,data/lab/l5pc_${cond}_test
common=(--out "$OUT" --data "$DATA" --T 77 --seeds 0 1 --steps "$STEPS" --scale lab --workers "${WORKERS:-1}" --threads 1
        --allow-incomplete --no-progress)
# TRAIN_TRIALS=N trains every run on the first N training trials, so that both conditions see equal data
if [[ -n ${TRAIN_TRIALS:-} ]]; then common+=(--train-trials "$TRAIN_TRIALS"); fi
start=$(date +%s)
depth_cmd=(neurodepth sweep --depths 1 2 3 4 5 6 7 --widths 16 "${common[@]}")
width_cmd=(neurodepth sweep --depths 4 --widths 8 32 "${common[@]}")
wide1_cmd=(neurodepth sweep --depths 1 --widths 32 64 "${common[@]}")
.venv/bin/"${depth_cmd[@]}"
if [[ ${SWEEP_WIDTHS:-yes} != no ]]; then
  .venv/bin/"${width_cmd[@]}"
  .venv/bin/"${wide1_cmd[@]}"
else
  width_cmd=(); wide1_cmd=()
fi
mkdir -p "$OUT"
printf '%s\n' "${depth_cmd[*]}" "${width_cmd[*]}" "${wide1_cmd[*]}" > "$OUT/commands.txt"
echo "$(( $(date +%s) - start ))" >> "$OUT/wall_s_runs.txt"     # one line per run of this script (resumes add up)
.venv/bin/python data/lab/merge_sweeps.py runs data/lab/sweeps/hay_sweep.csv
