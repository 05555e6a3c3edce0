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
source data/lab/lab_models_common.sh "$@"   # COND, STEPS, VALID, TRAIN_TRIALS, train, score
CAND=runs/lab_candidates/$cond          # not shipped: the selection is recorded in the shipped card
mkdir -p "$OUT" "$CAND"
train "$CAND/d1" --weights-dtype float16 --depth 1 --kernel 77 --width 24            # 1 x 24, T = 77 ms
train "$CAND/d4" --weights-dtype float16 --arch lab                                   # 4 x 32, kernels 35/15/15/15
train "$CAND/d7" --weights-dtype float16 --kernels 35,8,8,8,8,8,8 --width 32          # 7 x 32, T = 77 ms
cp "$CAND/d1.pt" "$OUT/l5pc_${cond}_fcn.pt"
cp "$CAND/d1.json" "$OUT/l5pc_${cond}_fcn.json"
.venv/bin/python data/lab/select_model.py "$CAND" "$OUT/l5pc_${cond}_tcn" d4 d7
# the test set must be complete: the shipped numbers are on all of its trials
score "l5pc_${cond}_fcn" "l5pc_${cond}_tcn"
