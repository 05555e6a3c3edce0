"""Merge the Hay-cell sweeps of every condition into the shipped table (the last step of make_hay_sweep.sh).

    python data/lab/merge_sweeps.py RUNS_DIR OUT_CSV

Reads ``RUNS_DIR/hay_sweep_<condition>/results.csv`` (and each sweep's ``sweep.json`` and
``commands.txt``), writes their rows to OUT_CSV (sorted by condition, then run id) and
``OUT_CSV.provenance.json``: the commands per condition (``argv``: the first one, for
``neurodepth assets regenerate``), each sweep's plan with the shards it saw, machine, versions and sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

from neurodepth_lib.nb import versions
from neurodepth_lib.studies import read_csv, write_csv


def main(runs_dir: str, out_csv: str) -> Path:
    sweeps = sorted(p for p in Path(runs_dir).glob("hay_sweep_*") if (p / "results.csv").exists())
    if not sweeps:
        raise SystemExit(f"no runs/hay_sweep_<condition>/results.csv under {runs_dir}")
    rows, record = [], {"commands": {}, "sweeps": {}, "wall_s_runs": {}, "train_s_total": {}}
    for d in sweeps:
        condition = d.name[len("hay_sweep_"):].upper()
        rows += read_csv(d / "results.csv")
        commands = [line.split() for line in (d / "commands.txt").read_text().splitlines() if line.strip()]
        record["commands"][condition] = commands
        record["sweeps"][condition] = json.loads((d / "sweep.json").read_text())
        # wall time of each run of make_hay_sweep.sh (a resumed sweep has several), and the training time of
        # every network in it (each run's result.json), which does not depend on how the runs were resumed
        wall = d / "wall_s_runs.txt"
        record["wall_s_runs"][condition] = ([int(x) for x in wall.read_text().split()] if wall.exists() else None)
        record["train_s_total"][condition] = round(sum(
            json.loads(r.read_text()).get("train_time_s", 0.0) for r in (d / "runs").glob("*/result.json")), 1)
    rows.sort(key=lambda r: (r["condition"], r["run_id"]))
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out)
    first = record["commands"].get("NMDA") or next(iter(record["commands"].values()))
    record.update(argv=first[0], made_by="data/lab/make_hay_sweep.sh NMDA|AMPA (TRAIN_TRIALS as in the commands)",
                  cores=os.cpu_count(), platform=platform.platform(), versions=versions(),
                  produces="results.csv in each --out directory, merged into " + out.name,
                  sha256=hashlib.sha256(out.read_bytes()).hexdigest(), n_rows=len(rows))
    Path(str(out) + ".provenance.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({len(rows)} runs: {', '.join(record['commands'])}) and its provenance")
    return out


if __name__ == "__main__":
    main(*sys.argv[1:3])
