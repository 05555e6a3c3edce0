#!/usr/bin/env bash
# Generates (or resumes) the Hay-cell lab datasets shipped in data/lab/ (issue 9). Every command is
# resumable: rerunning it skips finished shards, so this script can be started again after any stop.
# Seeds are fixed per dataset; the test sets are never used for training or model selection.
#
#   nohup nice -n 19 bash data/lab/make_lab_datasets.sh > logs/lab_datasets.log 2>&1 &
#
# WORKERS (default 1) processes per dataset.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${WORKERS:-1}
gen() {  # condition split trials seed
  .venv/bin/neurodepth generate --cell l5pc --condition "$1" --trials "$3" --duration-ms 6000 \
    --seed "$4" --out "data/lab/l5pc_${1,,}_$2" --workers "$W" --trials-per-shard 8
}
# Two chains of commands run side by side (CHAINS=A or CHAINS=B runs one, leaving a core free).
# Order: test sets first (every shipped model is scored on a complete held-out set), then the AMPA training
# set (the AMPA condition had no data at all), then validation sets and the rest of the NMDA training set.
# The 200-trial AMPA training set (gen AMPA train 200 4000) was retired on 2026-12-06: its trials are the
# first 200 of l5pc_ampa_train_1000 below; `gen AMPA train 200 4000` remakes it, byte for byte, if wanted.
CHAINS=${CHAINS:-AB}
if [[ $CHAINS == *A* ]]; then ( gen NMDA test 100 3000; gen AMPA test 50 6000 ) & fi
if [[ $CHAINS == *B* ]]; then ( gen AMPA valid 25 5000; gen NMDA valid 50 2000; gen NMDA train 400 1000 ) & fi
wait
# Issue 16: the training sets grown five-fold at the same seeds (trial i depends only on the seed and i, so
# their first 400 / 200 trials are the trials of l5pc_nmda_train / the retired l5pc_ampa_train). GROW=1 continues them;
# they are resumable like the others (about 33 CPU s per trial).
if [[ ${GROW:-0} == 1 ]]; then
  grow() {  # condition trials seed
    .venv/bin/neurodepth generate --cell l5pc --condition "$1" --trials "$2" --duration-ms 6000 --seed "$3" \
      --out "data/lab/l5pc_${1,,}_train_$2" --workers "$W" --trials-per-shard 8
  }
  if [[ $CHAINS == *A* ]]; then grow AMPA 1000 4000 & fi
  if [[ $CHAINS == *B* ]]; then grow NMDA 2000 1000 & fi
  wait
fi
