"""Issue 16, part 3: does the Hay cell's depth grow with data? One condition's data-scaling study.

For each training-set size (the first N trials of the grown training set), depths 1, 2, 3, 4 and 7 at width
16 (the width of the shipped Hay sweep's depth series), T = 77 ms, seeds 0 and 1, a budget of 5 steps per
training trial clipped to [1,000, 8,000] steps, early stopping on the condition's validation set, scored on
its test set with the paper's protocol (neurodepth_lib.studies.scaling). Resumable: finished runs are
skipped. When every size is done, the table is copied to data/lab/sweeps/hay_scaling_<condition>.csv with
its provenance (this command, the plan, versions, wall time).

    nohup nice -n 10 .venv/bin/python data/lab/scaling_study.py NMDA --sizes 100 200 400 800 1600 2000 \\
        > logs/scaling_nmda.log 2>&1 &
    nohup nice -n 10 .venv/bin/python data/lab/scaling_study.py AMPA --sizes 100 200 400 800 1000 \\
        > logs/scaling_ampa.log 2>&1 &

Sizes larger than the finished part of a growing training set are refused before any run: while the sets
grow, run the sizes that exist (the study resumes and adds the larger ones later). ``--ship-only`` trains
nothing and ships the sizes finished so far (its provenance says which), so chapter 06 can show a study that
is still running.

A study directory does not travel between machines (runs/ is not committed), but the shipped tables do: a
run that is in data/lab/sweeps/hay_scaling_<condition>.csv (the finished sizes) or in
hay_scaling_<condition>.unfinished.csv (the finished runs of sizes still running when it was last shipped),
made with the same plan on the same datasets (checked against the provenance and the checksums), is taken
from them, not trained again. So a size too long for one sitting is finished over several: ship what is done
(``--ship-only``) before the machine goes, and the next start trains only the missing runs. ``--retrain``
ignores the shipped tables.

``--steps N`` is the study's control for the budget: every size trains exactly N steps (the main study's
budget grows with the data, so there data and steps change together), ``--depths`` narrows the grid, and the
table ships beside the main one as ``hay_scaling_<condition>_steps<N>.csv`` (not an asset):

    nohup nice -n 10 .venv/bin/python data/lab/scaling_study.py NMDA --sizes 800 --depths 2 7 --steps 8000 \\
        > logs/scaling_nmda_steps8000.log 2>&1 &
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import neurodepth_lib as nd
from neurodepth_lib._io import Timer, atomic_write_json, atomic_write_text, file_sha256

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {"NMDA": "l5pc_nmda_train_2000", "AMPA": "l5pc_ampa_train_1000"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("condition", choices=sorted(TRAIN))
    p.add_argument("--sizes", type=int, nargs="+", required=True, help="training-set sizes in trials")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default=None, help="study directory (default runs/scaling_<condition>)")
    p.add_argument("--ship-only", action="store_true",
                   help="train nothing: ship the sizes the study directory has finished (while it runs on)")
    p.add_argument("--retrain", action="store_true",
                   help="train every size, also those the shipped table holds")
    p.add_argument("--depths", type=int, nargs="+", default=None, help="depths (default the study's 1 2 3 4 7)")
    p.add_argument("--steps", type=int, default=None,
                   help="train every size exactly this many steps (a control: the study's budget grows with the "
                        "data); ships to hay_scaling_<condition>_steps<N>.csv")
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        p.error(f"--steps must be a positive number of steps, got {args.steps}")
    cond = args.condition.lower()
    name = f"scaling_{cond}" + (f"_steps{args.steps}" if args.steps else "")
    out = Path(args.out or ROOT / "runs" / name)
    if args.ship_only:
        return ship(out, name, args.sizes, timer=None)
    data = {args.condition: (ROOT / "data" / "lab" / TRAIN[args.condition], ROOT / "data" / "lab" / f"l5pc_{cond}_test",
                             ROOT / "data" / "lab" / f"l5pc_{cond}_valid")}
    budget = {} if args.steps is None else {"min_steps": args.steps, "max_steps": args.steps}
    plan = nd.studies.ScalingPlan(sizes=tuple(args.sizes), **budget,
                                  **({} if args.depths is None else {"depths": tuple(args.depths)}))
    earlier = [] if args.retrain else shipped_rows(name, cond, plan, data[args.condition])
    with Timer() as timer:
        rows = nd.studies.run_scaling_study(out, data, plan, scale="lab", allow_incomplete=True,
                                            workers=args.workers, threads_per_run=1, progress=False,
                                            finished_rows=earlier)
    print(nd.studies.scaling_table(nd.studies.depth_by_size(rows)))
    return ship(out, name, args.sizes, timer)


def shipped_paths(name: str) -> tuple[Path, Path, Path]:
    """Where the study ``name`` (scaling_<condition>[_steps<N>]) ships its table (finished sizes), its
    provenance record beside it, and the table of the finished runs of unfinished sizes."""
    table = ROOT / "data" / "lab" / "sweeps" / f"hay_{name}.csv"
    return table, table.with_name(table.name + ".provenance.json"), table.with_suffix(".unfinished.csv")


def shipped_rows(name: str, cond: str, plan, datasets) -> list:
    """The shipped tables' rows if they were made with ``plan`` (any sizes) on the same datasets, else []."""
    shipped, provenance, unfinished = shipped_paths(name)
    if not (shipped.exists() and provenance.exists()):
        return []
    record = json.loads(provenance.read_text())
    made = record.get("plan", {})
    same_plan = ({k: v for k, v in made.get("plan", {}).items() if k != "sizes"}
                 == {k: v for k, v in json.loads(json.dumps(asdict(plan))).items() if k != "sizes"})
    same_data = [Path(d).name for d in made.get("data", {}).get(cond.upper(), [])] == [Path(d).name for d in datasets]
    same_files = (record.get("sha256") == file_sha256(shipped) and record.get("unfinished_sha256")
                  == (file_sha256(unfinished) if unfinished.exists() else None))
    if not (same_plan and same_data and made.get("scale") == "lab" and same_files):
        print(f"not resuming from {shipped}: another plan, other datasets or a changed file (it is retrained)")
        return []
    rows = nd.studies.read_scaling_csv(shipped)
    more = nd.studies.read_scaling_csv(unfinished) if unfinished.exists() else []
    print(f"resuming from {shipped.relative_to(ROOT)}: sizes {sorted({r['n_train_trials'] for r in rows})} and "
          f"{len(more)} finished runs of unfinished sizes are taken from the shipped tables "
          "(--retrain to train them again)")
    return rows + more


def ship(out: Path, name: str, planned: list, timer) -> int:
    """Copy the study's table (the sizes finished so far) to data/lab/sweeps/ with its provenance."""
    table = out / nd.studies.SCALING_CSV
    if not table.exists():
        print(f"nothing to ship: {table} does not exist (no size has finished)")
        return 1
    rows = nd.studies.read_scaling_csv(table)
    done = sorted({r["n_train_trials"] for r in rows})
    shipped, provenance, unfinished = shipped_paths(name)
    atomic_write_text(shipped, table.read_text())  # a reader never sees half a table
    more = nd.studies.unfinished_runs(out)   # runs of sizes still running: a later start need not retrain them
    if more:
        nd.studies.write_scaling_csv(more, unfinished)
    else:
        unfinished.unlink(missing_ok=True)
    complete = done == sorted(planned)
    record = {
        "made_by": made_by(out, planned),
        "shipped_by": ["python", "data/lab/scaling_study.py", *sys.argv[1:]],
        "sizes_planned": sorted(planned), "sizes_done": done, "rows": len(rows),
        "status": "complete" if complete else f"partial: sizes {done} of {sorted(planned)}; the study resumes",
        "sha256": file_sha256(shipped), "date": time.strftime("%Y-%m-%d"),
        "unfinished_runs": [f"{r['n_train_trials']}:{r['run_id']}" for r in more],
        "unfinished_sha256": file_sha256(unfinished) if more else None,
        "plan": json.loads((out / "scaling.json").read_text()), "versions": nd.nb.versions(),
        "hardware": nd.nb.hardware(),
        "train_time_s_total": round(sum(r.get("train_time_s") or 0 for r in rows), 1),
        "note": "trained at nice 19 on a 2-core machine shared with other work: train times are not comparable"}
    if timer is not None:
        record.update(wall_s_this_run=round(timer.wall_s, 1), cpu_s_this_run=round(timer.cpu_s, 1))
    atomic_write_json(provenance, record)
    print(f"table: {shipped} ({record['status']})")
    return 0


def made_by(out: Path, planned: list) -> list:
    """The command that makes the study in ``out`` from scratch (its condition, sizes, and any control flags)."""
    study = json.loads((out / "scaling.json").read_text())
    condition, plan = next(iter(study["data"])), study["plan"]
    argv = ["python", "data/lab/scaling_study.py", condition, "--sizes", *map(str, planned)]
    if list(plan["depths"]) != list(nd.studies.ScalingPlan().depths):
        argv += ["--depths", *map(str, plan["depths"])]
    if plan["min_steps"] == plan["max_steps"]:
        argv += ["--steps", str(plan["max_steps"])]
    return argv


if __name__ == "__main__":
    sys.exit(main())
