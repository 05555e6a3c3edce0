"""The ``neurodepth`` command: one sub-command per job.

    neurodepth generate --cell l5pc --condition NMDA --trials 64 --duration-ms 6000 --seed 1 --out data/nmda
    neurodepth notebooks --scale quick --out outputs

Each sub-command lives in a ``_add_<name>(subparsers)`` function that registers its arguments and sets
``func`` (a function of the parsed arguments returning an exit code); :data:`SUBCOMMANDS` lists them. To add
one, write ``_add_<name>`` and append it there. Heavy modules are imported inside the sub-command, so
``neurodepth --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys


# ----------------------------------------------------------------------------------------------------
# neurodepth generate
# ----------------------------------------------------------------------------------------------------

def _add_generate(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="simulate a dataset of trials (resumable; local processes or Dask)",
        description="Simulate trials of a cell driven by the paper's random inputs into a dataset "
                    "directory (manifest.json + HDF5 shards). Rerunning the same command resumes an "
                    "interrupted run; finished shards are skipped.")
    p.add_argument("--cell", default="l5pc", help="registered cell: l5pc (default) or iaf")
    p.add_argument("--condition", default=None,
                   help="L5PC condition: NMDA (default), AMPA or AMPA_SK; none for the I&F")
    p.add_argument("--trials", type=int, required=True, help="number of trials")
    p.add_argument("--duration-ms", type=int, default=6000, help="trial length in ms (default 6000)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--out", required=True, help="dataset directory (created)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: all cores; 0 = in this process)")
    p.add_argument("--trials-per-shard", type=int, default=None,
                   help="trials per shard and task (default: 8 for the L5PC, 100 for the I&F)")
    p.add_argument("--scheduler", default=None,
                   help="address of a Dask scheduler (e.g. tcp://host:8786) to run the tasks on")
    p.add_argument("--record-dendrites", action="store_true",
                   help="also store every dendritic segment's voltage (float16; large)")
    p.add_argument("--record-soma-0125ms", action="store_true", help="also store the 0.125-ms soma trace")
    p.add_argument("--dt-ms", type=float, default=None,
                   help="fixed integration step of NEURON cells (the pipeline uses 0.05 ms)")
    p.add_argument("--secondorder", type=int, choices=(0, 1, 2), default=None,
                   help="NEURON's secondorder (the pipeline uses 2, Crank-Nicolson; 0 is backward Euler)")
    p.add_argument("--cvode", action="store_true", help="integrate NEURON cells with CVODE (the authors' way)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_generate)


def _run_generate(args) -> int:
    from . import generation

    simulation = {}
    if args.dt_ms is not None:
        simulation["dt_ms"] = args.dt_ms
    if args.secondorder is not None:
        simulation["secondorder"] = args.secondorder
    if args.cvode:
        simulation["use_cvode"] = True
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        report = generation.generate_dataset(
            args.out, cell=args.cell, condition=args.condition, n_trials=args.trials,
            duration_ms=args.duration_ms, seed=args.seed, trials_per_shard=args.trials_per_shard,
            workers=args.workers, client=client, record_dendrites=args.record_dendrites,
            record_soma_0125ms=args.record_soma_0125ms, simulation=simulation or None,
            progress=not args.no_progress)
    finally:
        if client is not None:
            client.close()
    with report.open() as ds:
        print(generation.format_summary(ds.summary(), report))
    return 0


# ----------------------------------------------------------------------------------------------------
# neurodepth notebooks
# ----------------------------------------------------------------------------------------------------

def _add_notebooks(subparsers) -> None:
    p = subparsers.add_parser(
        "notebooks", help="run every notebook headless (papermill) and summarise their receipts",
        description="Execute the numbered notebooks of a source checkout with papermill at one scale, "
                    "writing the executed copies and their JSON receipts into --out, then print one "
                    "summary line per notebook. Exits non-zero when a notebook fails or a self-check "
                    "in a receipt did not pass.")
    p.add_argument("--scale", default=None,
                   help="quick, lab or paper (default: $NEURODEPTH_SCALE, else lab)")
    p.add_argument("--out", default="outputs", help="folder for executed notebooks and receipts")
    p.add_argument("--only", nargs="*", default=None,
                   help="notebook name prefixes to run (e.g. 00 01); default all")
    p.set_defaults(func=_run_notebooks)


def _run_notebooks(args) -> int:
    from . import nb

    notebooks = nb.list_notebooks()
    if args.only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in args.only)]
        if not notebooks:
            raise ValueError(f"no notebook matches {args.only}")
    receipts = nb.run_all(args.out, scale=args.scale, notebooks=notebooks)
    failed = [r.get("notebook", "?") for r in receipts
              if not r or not all(c["passed"] for c in r.get("checks", []))]
    if failed:
        print(f"self-checks failed or no receipt: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


SUBCOMMANDS = [_add_generate, _add_notebooks]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurodepth",
        description="Reproduce Beniaguev, Segev & London (2021): single cortical neurons as deep networks.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"neurodepth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``neurodepth`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        # bad arguments: one clear line, not a traceback
        print(f"neurodepth {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neurodepth {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


# ----------------------------------------------------------------------------------------------------
# neurodepth sweep / neurodepth how-deep
# ----------------------------------------------------------------------------------------------------

def _dask_client(address):
    if not address:
        return None
    from distributed import Client

    return Client(address)


def _add_sweep(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="train and evaluate a grid of architectures x conditions x seeds (resumable)",
        description="Every (condition, depth, width, T, seed) is one run: a TCN trained for --steps steps on "
                    "the condition's training dataset and scored on its test dataset with the paper's "
                    "protocol. Finished runs are skipped on a rerun; results.csv is rewritten as runs finish.")
    p.add_argument("--out", required=True, help="sweep directory (created)")
    p.add_argument("--data", action="append", required=True, metavar="CONDITION=TRAIN_DIR,TEST_DIR",
                   help="a condition's datasets, e.g. NMDA=data/nmda_train,data/nmda_test (repeatable)")
    p.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--widths", type=int, nargs="+", default=[16])
    p.add_argument("--T", dest="receptive_fields_ms", type=int, nargs="+", default=[41],
                   help="receptive fields in ms (kernels share T - 1 evenly)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=600, help="training steps of every run (default 600)")
    p.add_argument("--scale", default="lab", choices=("quick", "lab", "paper"),
                   help="schedule shape and learning-rate multiplier (default lab)")
    p.add_argument("--workers", type=int, default=None, help="local processes (default: cores; 0 = here)")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler to run the runs on")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_sweep)


def _run_sweep(args) -> int:
    from . import sweeps

    data = {}
    for item in args.data:
        condition, sep, dirs = item.partition("=")
        parts = dirs.split(",")
        if not sep or len(parts) != 2:
            raise ValueError(f"--data must look like CONDITION=TRAIN_DIR,TEST_DIR, got {item!r}")
        data[condition] = tuple(parts)
    grid = sweeps.SweepGrid(depths=tuple(args.depths), widths=tuple(args.widths),
                            receptive_fields_ms=tuple(args.receptive_fields_ms), seeds=tuple(args.seeds))
    client = _dask_client(args.scheduler)
    try:
        res = sweeps.run_sweep(args.out, data, grid, steps=args.steps, scale=args.scale, workers=args.workers,
                               client=client, progress=not args.no_progress)
    finally:
        if client is not None:
            client.close()
    print(f"{res.runs_made} runs made, {res.runs_skipped} already there ({res.executor}, {res.wall_s:.0f} s)")
    for condition in data:
        if any(r["condition"] == condition for r in res.rows):
            print(sweeps.depth_report(res.rows, condition).table())
    print(f"results: {res.csv_path}")
    return 0


def _add_how_deep(subparsers) -> None:
    p = subparsers.add_parser(
        "how-deep", help="how deep is my neuron? generate data, sweep depth, report the depth needed",
        description="Generate training and test data for a registered cell, sweep TCN depth at a fixed "
                    "width, receptive field and training budget over several seeds, and report the "
                    "smallest depth whose mean AUC is within --tolerance of the best. Resumable.")
    p.add_argument("--cell", default="teaching", help="registered cell (teaching, l5pc, iaf, or your own)")
    p.add_argument("--condition", default=None, help="the cell's condition (default: its first)")
    p.add_argument("--out", required=True, help="output directory (data/ and sweep/ inside)")
    p.add_argument("--train-trials", type=int, default=64)
    p.add_argument("--test-trials", type=int, default=16)
    p.add_argument("--duration-ms", type=int, default=6000)
    p.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--T", dest="receptive_field_ms", type=int, default=41)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--scale", default="lab", choices=("quick", "lab", "paper"))
    p.add_argument("--tolerance", type=float, default=0.005, help="AUC tolerance (default 0.005)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--scheduler", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_how_deep)


def _run_how_deep(args) -> int:
    from . import sweeps

    client = _dask_client(args.scheduler)
    try:
        report = sweeps.how_deep(
            args.cell, args.out, condition=args.condition, n_train_trials=args.train_trials,
            n_test_trials=args.test_trials, duration_ms=args.duration_ms, depths=tuple(args.depths),
            width=args.width, receptive_field_ms=args.receptive_field_ms, seeds=tuple(args.seeds),
            steps=args.steps, scale=args.scale, tolerance=args.tolerance, workers=args.workers, client=client,
            progress=not args.no_progress)
    finally:
        if client is not None:
            client.close()
    print(report.table())
    return 0


SUBCOMMANDS += [_add_sweep, _add_how_deep]


if __name__ == "__main__":
    sys.exit(main())
