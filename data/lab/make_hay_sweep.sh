#!/usr/bin/env bash
# The Hay-cell sweep that notebook 06 plots (issue 9): depth 1-7 at width 16, then widths 8 and 32 at depth 4,
# two seeds each, every network with a 77-ms receptive field and the same training budget, trained on the
# NMDA training set (finished trials) and scored on the NMDA test set with the paper's protocol. Resumable:
# finished runs are skipped. The table is copied to sweeps/hay_sweep.csv with its provenance.
#
#   nohup nice -n 10 bash data/lab/make_hay_sweep.sh > logs/hay_sweep.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=runs/hay_sweep
STEPS=${STEPS:-1000}
DATA=NMDA=data/lab/l5pc_nmda_train,data/lab/l5pc_nmda_test
common=(--out "$OUT" --data "$DATA" --T 77 --seeds 0 1 --steps "$STEPS" --scale lab --workers "${WORKERS:-1}" --threads 1
        --allow-incomplete --no-progress)
start=$(date +%s)
depth_cmd=(neurodepth sweep --depths 1 2 3 4 5 6 7 --widths 16 "${common[@]}")
width_cmd=(neurodepth sweep --depths 4 --widths 8 32 "${common[@]}")
.venv/bin/"${depth_cmd[@]}"
.venv/bin/"${width_cmd[@]}"
mkdir -p data/lab/sweeps
cp "$OUT/results.csv" data/lab/sweeps/hay_sweep.csv
.venv/bin/python - "$OUT" "$(( $(date +%s) - start ))" "${depth_cmd[*]}" "${width_cmd[*]}" <<'EOF'
import hashlib, json, os, platform, sys
from pathlib import Path
from neurodepth_lib.nb import versions
out, wall, depth_cmd, width_cmd = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
csv = Path("data/lab/sweeps/hay_sweep.csv")
record = {"argv": depth_cmd, "commands": [depth_cmd, width_cmd],
          "produces": "results.csv in the --out directory (copied to data/lab/sweeps/hay_sweep.csv)",
          "sweep": json.loads((out / "sweep.json").read_text()), "wall_s_this_run": wall,
          "cores": os.cpu_count(), "platform": platform.platform(), "versions": versions(),
          "sha256": hashlib.sha256(csv.read_bytes()).hexdigest()}
Path(str(csv) + ".provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
print(f"wrote {csv} and its provenance")
EOF
