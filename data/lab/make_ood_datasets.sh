#!/usr/bin/env bash
# Generates (or resumes) the Hay-cell NMDA out-of-distribution test sets (issue 20 part 3): trials whose input
# statistics lie outside the training ranges, for scoring models trained on the paper's inputs. The settings
# are named in neurodepth_lib/inputs/ (OODOptions in ood.py, cell_ood_settings in settings.py); what each set changes:
#
#   l5pc_nmda_test_ood_clustered_sync  input on 1-19 of 64 spatial clusters of segments per trial (K-means on
#                                      the segments' 3-D centres; the authors clustered voltage correlations),
#                                      every rate times 1 + sin(2 pi t / T + phi), T ~ U(15, 300) ms per trial
#   l5pc_nmda_test_ood_clustered_no_inhibition  the same clusters, no inhibitory input at all
#   l5pc_nmda_test_ood_high_rate       excitation 800-1200 spikes per tree per 100 ms (training: 0-800);
#                                      inhibition by the training rule on the new excitation
# (the paper's OOD set: every trial clustered, half of them synchronous, half without inhibition; Fig. 6)
#
# All use the in-distribution test set's seed (3000, l5pc_nmda_test): trial i of each draws the same
# rate-change interval, smoothing width, per-interval totals and noise as trial i of l5pc_nmda_test (high_rate:
# the same uniform variates, mapped onto 800-1200; the OOD draws come from streams of their own), so the sets
# are paired trial by trial with it. Never used for training or model selection. Every command is resumable:
# rerunning it skips finished shards.
#
#   nohup nice -n 15 bash data/lab/make_ood_datasets.sh > logs/ood_datasets.log 2>&1 &
#
# WORKERS (default 1) processes per dataset; SETS (default "clustered_sync clustered_no_inhibition high_rate"):
# which sets to make, side by side; TRIALS (default 28) trials per set (an L5PC trial costs about 35 CPU s).
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${WORKERS:-1}
N=${TRIALS:-28}
# The sets were first made through the library (generate_dataset with inputs.cell_ood_settings); `neurodepth
# generate --ood` builds the same recipe, and its plan ids equal the shipped manifests' (tests/test_cli.py), so
# this command resumes or remakes them (`neurodepth assets regenerate NAME --dry-run` prints it too).
ood() {  # set-name settings (comma-separated names of inputs.OOD_KINDS)
  .venv/bin/neurodepth generate --cell l5pc --condition NMDA --trials "$N" --duration-ms 6000 --seed 3000 \
    --trials-per-shard 4 --workers "$W" --ood "$2" --no-progress --out "data/lab/l5pc_nmda_test_ood_$1"
}
declare -A KINDS=([clustered_sync]="clustered,synchronous" [clustered_no_inhibition]="clustered,no_inhibition"
                  [high_rate]="high_rate" [no_inhibition]="no_inhibition" [clustered]="clustered"
                  [synchronous]="synchronous")
pids=()
for set in ${SETS:-clustered_sync clustered_no_inhibition high_rate}; do
  [[ -n ${KINDS[$set]:-} ]] || { echo "unknown set $set; known: ${!KINDS[*]}" >&2; exit 2; }
  ood "$set" "${KINDS[$set]}" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done   # a failed set fails the script
