# Shared by make_lab_models.sh (the TCNs) and make_lab_elms.sh (the Branch-ELMs): the condition, the data, the
# training budget and the scoring of the shipped lab models, so that every shipped model is made by the same
# rules. Source it from the repository root with the condition as $1:
#
#   source data/lab/lab_models_common.sh "$@"
#
# Environment: STEPS (3,000), VALID=DIR (validate on that dataset, e.g. the condition's shipped validation set,
# instead of holding out VALID_FRACTION (0.15) of the training trials), TRAIN_TRIALS=N (train on the first N
# training trials only, so that every candidate sees the same trials while the training set is still growing),
# TRAIN=DIR (the training set; default the condition's grown set of issue 16, l5pc_nmda_train_2000 or
# l5pc_ampa_train_1000; each shipped model's card records the set and the command that made it), INPUTS=DIR
# (where the regenerated inputs are kept, shared by every candidate of both scripts: the first candidate
# regenerates them on WORKERS (2) processes, about 0.6 CPU seconds a 6-s trial, and every later one reads them;
# a sweep's input_cache/ on the same trials serves as well).
COND=${1:?usage: $(basename "$0") NMDA|AMPA}
cond=${COND,,}
case $cond in nmda|ampa) ;; *) echo "condition must be NMDA or AMPA, got '$COND'" >&2; exit 2 ;; esac
STEPS=${STEPS:-3000}
VALID_FRACTION=${VALID_FRACTION:-0.15}
VALID=${VALID:-}
TRAIN_TRIALS=${TRAIN_TRIALS:-}
declare -A GROWN=([nmda]=l5pc_nmda_train_2000 [ampa]=l5pc_ampa_train_1000)
TRAIN=${TRAIN:-data/lab/${GROWN[$cond]}}
INPUTS=${INPUTS:-runs/lab_inputs/$cond}
WORKERS=${WORKERS:-2}
TEST=data/lab/l5pc_${cond}_test
OUT=data/lab/models
nd() { .venv/bin/neurodepth "$@"; }
data_args=()
if [[ -n $VALID ]]; then data_args+=(--valid "$VALID"); else data_args+=(--valid-fraction "$VALID_FRACTION"); fi
if [[ -n $TRAIN_TRIALS ]]; then data_args+=(--train-trials "$TRAIN_TRIALS"); fi
# train OUT ARGS...: the shipped models' budget (the lab schedule compressed to STEPS steps, batch 8 x 400 ms,
# seed 0, split seed 0, one thread); ARGS choose the architecture (and anything else, e.g. --lr-scale)
train() {
  local out=$1; shift
  nd train "$TRAIN" --allow-incomplete "${data_args[@]}" --split-seed 0 --seed 0 \
    --scale lab --steps "$STEPS" --threads 1 --no-progress --input-cache "$INPUTS" --workers "$WORKERS" \
    --out "$out" "$@"
}
# score NAME...: each shipped model data/lab/models/NAME scored once on the condition's complete test set with
# the paper's protocol (the numbers go into its card, metrics.test, and NAME.test.json)
score() {
  local m
  for m in "$@"; do
    nd evaluate "$OUT/$m" "$TEST" --threads 1 --record test --json "$OUT/$m.test.json"
  done
}
