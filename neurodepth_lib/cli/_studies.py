"""``neurodepth sweep`` and ``how-deep``: architecture sweeps and "how deep is my neuron?"
(:mod:`neurodepth_lib.studies`)."""
from __future__ import annotations

import argparse

from ..scales import SCALES
from ._shell import cluster, flags, given


def add_sweep(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="train and evaluate a grid of architectures x conditions x seeds (resumable)",
        description="Every (condition, depth, width, T, seed) is one run: a TCN trained for --steps steps on "
                    "the condition's training dataset and scored on its test dataset with the paper's "
                    "protocol. Finished runs are skipped on a rerun; results.csv is rewritten as runs finish.")
    p.add_argument("--out", required=True, help="sweep directory (created)")
    p.add_argument("--data", action="append", required=True, metavar="CONDITION=TRAIN_DIR,TEST_DIR",
                   help="a condition's datasets, e.g. NMDA=data/nmda_train,data/nmda_test (repeatable)")
    p.add_argument("--depths", type=int, nargs="+", default=None, help="(default 1 2 3 4)")
    p.add_argument("--widths", type=int, nargs="+", default=None, help="(default 16)")
    p.add_argument("--T", dest="receptive_fields_ms", type=int, nargs="+", default=None,
                   help="receptive fields in ms (kernels share T - 1 evenly; default 41)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="(default 0 1 2)")
    p.add_argument("--steps", type=int, default=None, help="training steps of every run (default 600)")
    p.add_argument("--scale", default=None, choices=SCALES,
                   help="schedule shape and learning-rate multiplier (default lab)")
    p.add_argument("--workers", type=int, default=None, help="local processes (default: cores; 0 = here)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (default: 1 with several workers, else torch's)")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler to run the runs on")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept a dataset still being generated (its finished shards, frozen at the first run)")
    p.add_argument("--train-trials", type=int, default=None,
                   help="train on the first N trials of each training set (default all), e.g. equal data for "
                        "every condition")
    p.add_argument("--allow-mismatch", action="store_true", default=None,
                   help="accept datasets whose condition is not the CONDITION they are given for (recorded)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_run_sweep, flags=flags(p))


def _run_sweep(args) -> int:
    from .. import studies

    data = {}
    for item in args.data:
        condition, sep, dirs = item.partition("=")
        parts = dirs.split(",")
        if not sep or len(parts) != 2:
            raise ValueError(f"--data must look like CONDITION=TRAIN_DIR,TEST_DIR, got {item!r}")
        data[condition] = tuple(parts)
    grid = studies.SweepGrid(**given(depths=args.depths, widths=args.widths,
                                      receptive_fields_ms=args.receptive_fields_ms, seeds=args.seeds))
    with cluster(args.scheduler) as client:
        res = studies.run_sweep(args.out, data, grid, client=client, allow_incomplete=args.allow_incomplete,
                                progress=args.progress,
                                **given(steps=args.steps, scale=args.scale, workers=args.workers,
                                         threads_per_run=args.threads, train_trials=args.train_trials,
                                         allow_mismatch=args.allow_mismatch))
    print(f"{res.runs_made} runs made, {res.runs_skipped} already there ({res.executor}, {res.wall_s:.0f} s)")
    for condition in data:
        if any(r["condition"] == condition for r in res.rows):
            print(studies.depth_report(res.rows, condition).table())
    print(f"results: {res.csv_path}")
    return 0


def add_how_deep(subparsers) -> None:
    p = subparsers.add_parser(
        "how-deep", help="how deep is my neuron? generate data, sweep depth, report the depth needed",
        description="Generate training and test data for a cell, sweep TCN depth at a fixed "
                    "width, receptive field and training budget over several seeds, and report the "
                    "smallest depth whose mean AUC is within --tolerance of the best (\"at least N\" when N is "
                    "the deepest tried), with the uncertainty from seeds and test spikes and what makes the "
                    "answer weak. A published model's inputs are calibrated first. Resumable.")
    p.add_argument("--cell", default=None,
                   help="a registered cell (teaching, the default; l5pc, iaf), a published model's spec file "
                        "(path/to/cell.toml) or package.module:factory returning a CellModel")
    p.add_argument("--condition", default=None, help="one of the cell's own conditions (default: its first)")
    p.add_argument("--out", required=True, help="output directory (data/ and sweep/ inside)")
    p.add_argument("--train-trials", type=int, default=None, help="(default 64)")
    p.add_argument("--test-trials", type=int, default=None, help="(default 16)")
    p.add_argument("--duration-ms", type=int, default=None, help="(default 6000)")
    p.add_argument("--depths", type=int, nargs="+", default=None, help="(default 1 2 3 4)")
    p.add_argument("--width", type=int, default=None, help="(default 16)")
    p.add_argument("--T", dest="receptive_field_ms", type=int, default=None, help="receptive field in ms (default 41)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="(default 0 1 2)")
    p.add_argument("--steps", type=int, default=None, help="(default 600)")
    p.add_argument("--scale", default=None, choices=SCALES, help="(default lab)")
    p.add_argument("--tolerance", type=float, default=None, help="AUC tolerance (default 0.005)")
    p.add_argument("--dt-ms", type=float, default=None, help="integration step in ms (default: the cell's)")
    p.add_argument("--v-init-mV", dest="v_init_mV", type=float, default=None,
                   help="initial membrane potential in mV (default: the cell's)")
    p.add_argument("--secondorder", type=int, default=None,
                   help="0 backward Euler, 2 Crank-Nicolson (default: the cell's)")
    p.add_argument("--calibrate", dest="calibrate", action="store_true", default=None,
                   help="fit the input rate factor first (default: only for a cell whose rates are uncalibrated)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false", default=None)
    p.add_argument("--target-hz", type=_float_pair, default=None, metavar="LOW,HIGH",
                   help="output rate the calibration aims for, in Hz (default 0.8,2.5)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--scheduler", default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_run_how_deep, flags=flags(p))


def _float_pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    return lo, hi


def _run_how_deep(args) -> int:
    from .. import studies

    simulation = given(dt_ms=args.dt_ms, v_init_mV=args.v_init_mV, secondorder=args.secondorder)
    with cluster(args.scheduler) as client:
        report = studies.how_deep(
            out_dir=args.out, client=client, progress=args.progress,
            **given(cell=args.cell, condition=args.condition, n_train_trials=args.train_trials,
                     simulation=simulation or None, calibrate=args.calibrate, target_hz=args.target_hz,
                     n_test_trials=args.test_trials, duration_ms=args.duration_ms,
                     depths=None if args.depths is None else tuple(args.depths), width=args.width,
                     receptive_field_ms=args.receptive_field_ms,
                     seeds=None if args.seeds is None else tuple(args.seeds), steps=args.steps, scale=args.scale,
                     tolerance=args.tolerance, workers=args.workers))
    print(report.table())
    return 0
