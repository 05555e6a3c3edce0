#!/usr/bin/env bash
# Generates (or resumes) the teaching-cell datasets chapter 06 uses at lab scale with SEED = 0 (issue 22: they
# ship so that the chapter's lab run stays within 10 minutes on 2 cores; any other SEED or size simulates its
# own). The plans equal the chapter's: 96 training and 48 test trials of 6 s per condition, seeds 2*SEED+1 and
# 2*SEED+2, 4 trials per shard. Resumable like every generation.
#
#   nohup nice -n 19 bash data/lab/make_teaching_datasets.sh > logs/teaching_datasets.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
for condition in NMDA AMPA; do
  for split in "train 96 1" "test 48 2"; do
    set -- $split
    .venv/bin/neurodepth generate --cell teaching --condition "$condition" --trials "$2" --duration-ms 6000 \
      --seed "$3" --out "data/lab/teaching_${condition,,}_$1" --workers "${WORKERS:-1}" --trials-per-shard 4
  done
done
