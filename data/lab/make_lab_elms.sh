#!/usr/bin/env bash
# Trains, selects and scores the Branch-ELMs shipped in data/lab/models/ (issue 20): the 7.8k-parameter
# Branch-ELM of Spieler et al. (2024; preset branch_elm: 20 memory units, an MLP of 40, 45 branches of 100
# inputs) on the same data and by the same budget rules as the shipped TCNs (lab_models_common.sh: all training
# trials, the lab schedule compressed to STEPS steps (3,000 by default), batch 8 x 400 ms, seed 0, split seed 0, one thread).
# Resumable like make_lab_models.sh (a killed training continues from its checkpoint; a finished one is not redone).
#
#   VALID=data/lab/l5pc_nmda_valid nohup nice -n 5 bash data/lab/make_lab_elms.sh NMDA > logs/lab_elms_nmda.log 2>&1 &
#
# For CONDITION (NMDA or AMPA):
#   1. one Branch-ELM per learning-rate multiplier in LR_SCALES (--lr-scale: times the paper's rates; the lab
#      scale's own is 10, i.e. 1e-3 -> 1e-5) is trained; the ELM's few weights and slow recurrence take larger
#      steps than the TCNs' (a 1,000-step trial on 96 trials did best at 5x the lab rate);
#   2. select_model.py ships the candidate with the best validation AUC as l5pc_<condition>_branch_elm (the test
#      set plays no part; the candidates' numbers go into its card under "selection");
#   3. it is scored once on the condition's complete test set with the paper's protocol.
# The weights stay float32 (--weights-dtype): the file is 34 kB.
# The candidates read the regenerated inputs that the TCN candidates of make_lab_models.sh keep (INPUTS in
# lab_models_common.sh): run that script first. On a fresh cache the first PARALLEL (default 2) candidates,
# side by side, would each regenerate them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source data/lab/lab_models_common.sh "$@"   # COND, STEPS, VALID, TRAIN_TRIALS, train, score
LR_SCALES=${LR_SCALES:-10 50 100}       # 1x, 5x and 10x the lab learning rate
PARALLEL=${PARALLEL:-2}                 # candidates trained side by side, one thread each (a 2-core machine)
CAND=runs/lab_elm_candidates/$cond      # not shipped: the selection is recorded in the shipped card
mkdir -p "$OUT" "$CAND"
candidate() {  # lr-scale: one candidate, timed (wall and CPU) with the machine's load at start and end
  local s=$1
  echo "candidate lr$s: start $(date -Is), load $(cut -d' ' -f1-3 /proc/loadavg)"
  local TIMEFORMAT="candidate lr$s: %R s wall, %U s user + %S s system CPU"
  time train "$CAND/lr$s" --arch branch_elm --lr-scale "$s" --weights-dtype float32
  echo "candidate lr$s: end $(date -Is), load $(cut -d' ' -f1-3 /proc/loadavg)"
}
names=() pids=()
for s in $LR_SCALES; do
  while (( $(jobs -rp | wc -l) >= PARALLEL )); do wait -n; done
  candidate "$s" & pids+=($!)
  names+=("lr$s")
done
for p in "${pids[@]}"; do wait "$p"; done   # a failed candidate fails the script
if [[ ${TRAIN_ONLY:-} == 1 ]]; then exit 0; fi  # candidates only (e.g. one more, beside a running script)
.venv/bin/python data/lab/select_model.py "$CAND" "$OUT/l5pc_${cond}_branch_elm" "${names[@]}"
# the test set must be complete: the shipped numbers are on all of its trials
TIMEFORMAT="test scoring: %R s wall, %U s user + %S s system CPU"
time score "l5pc_${cond}_branch_elm"
