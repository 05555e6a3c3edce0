#!/usr/bin/env bash
# Trains, selects and scores the models shipped in data/lab/models/ (issue 9). Every command is resumable
# (a killed training continues from its checkpoint; a finished one is not redone).
#
#   nohup nice -n 10 bash data/lab/make_lab_models.sh NMDA > logs/lab_models_nmda.log 2>&1 &
#
# For CONDITION (NMDA or AMPA):
#   1. a depth-1 network and two deeper candidates, all with a 77-ms receptive field, are trained on the
#      condition's training set, holding out VALID_FRACTION of its trials (split seed 0) for validation, or
#      validated on VALID;
#   2. the deeper candidate with the best validation AUC becomes l5pc_<condition>_tcn (model selection sees
#      the validation trials only; the candidates' numbers go into its card under "selection");
#   3. both shipped models are scored once on the condition's test set with the paper's protocol, and the
#      numbers go into their model cards (metrics.test) and <model>.test.json.
# Sizes are chosen to ship: the first layer (1,278 inputs x width x first kernel) holds almost every weight,
# so widths are 24-32 rather than the paper's 128, and the weights are stored as float16 (3-5 MB a model).
# While the datasets are still being generated the finished trials are used (--allow-incomplete); the model
# cards name the shards each model saw.
set -euo pipefail
cd "$(dirname "$0")/../.."
COND=${1:?usage: make_lab_models.sh NMDA|AMPA}
cond=${COND,,}
STEPS=${STEPS:-3000}
VALID_FRACTION=${VALID_FRACTION:-0.15}
# VALID=DIR validates on that dataset (e.g. the condition's shipped validation set) instead of holding out
# VALID_FRACTION of the training trials; TRAIN_TRIALS=N trains on the first N training trials only, so that
# every candidate sees the same trials while the training set is still growing.
VALID=${VALID:-}
TRAIN_TRIALS=${TRAIN_TRIALS:-}
TRAIN=data/lab/l5pc_${cond}_train
TEST=data/lab/l5pc_${cond}_test
OUT=data/lab/models
CAND=runs/lab_candidates/$cond          # not shipped: the selection is recorded in the shipped card
mkdir -p "$OUT" "$CAND"
nd() { .venv/bin/neurodepth "$@"; }
data_args=()
if [[ -n $VALID ]]; then data_args+=(--valid "$VALID"); else data_args+=(--valid-fraction "$VALID_FRACTION"); fi
if [[ -n $TRAIN_TRIALS ]]; then data_args+=(--train-trials "$TRAIN_TRIALS"); fi
train() {  # out arch-args...
  local out=$1; shift
  nd train "$TRAIN" --allow-incomplete "${data_args[@]}" --split-seed 0 --seed 0 \
    --scale lab --steps "$STEPS" --threads 1 --weights-dtype float16 --no-progress --out "$out" "$@"
}
train "$CAND/d1" --depth 1 --kernel 77 --width 24                      # 1 x 24, T = 77 ms
train "$CAND/d4" --arch lab                                             # 4 x 32, kernels 35/15/15/15
train "$CAND/d7" --kernels 35,8,8,8,8,8,8 --width 32                    # 7 x 32, T = 77 ms
cp "$CAND/d1.pt" "$OUT/l5pc_${cond}_fcn.pt"
cp "$CAND/d1.json" "$OUT/l5pc_${cond}_fcn.json"
.venv/bin/python data/lab/select_model.py "$CAND" "$OUT/l5pc_${cond}_tcn" d4 d7
# the test set must be complete: the shipped numbers are on all of its trials
for m in fcn tcn; do
  nd evaluate "$OUT/l5pc_${cond}_$m" "$TEST" --threads 1 --record test --json "$OUT/l5pc_${cond}_$m.test.json"
done
