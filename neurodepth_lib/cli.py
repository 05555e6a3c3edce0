"""The ``neurodepth`` command: one sub-command per job, each argument parsing plus one call into the library.

    neurodepth generate --cell l5pc --condition NMDA --trials 64 --duration-ms 6000 --seed 1 --out data/nmda
    neurodepth notebooks --scale quick --out outputs
    neurodepth train data/nmda_train --valid data/nmda_valid --arch lab --scale lab --out runs/nmda_lab
    neurodepth evaluate runs/nmda_lab data/nmda_test --json runs/nmda_lab.test.json

Each sub-command lives in a ``_add_<name>(subparsers)`` function that registers its arguments and sets
``func`` (a function of the parsed arguments returning an exit code); :data:`SUBCOMMANDS` lists them. To add
one, write ``_add_<name>`` and append it there. A flag the user did not give is not forwarded, so the
library's defaults and checks apply (``neurodepth train``'s flags are named after the fields of
:class:`neurodepth_lib.fit.FitSpec`). Errors a user can fix (a malformed flag, or a library ``ValueError``,
``TypeError``, ``FileNotFoundError``, ``IntegrityError`` or ``BusyError``) print one line
``neurodepth COMMAND: error: ...`` and exit with 2, before anything is written; any other error is a bug: one
line saying so and where its full traceback was written, exit 1 (``NEURODEPTH_DEBUG=1`` raises it instead).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
import tempfile
import traceback

from . import __version__, _checks, _io, _parallel
from .scales import SCALES

# The library's layers load numpy, h5py, NEURON or torch (up to seconds): each sub-command imports the layer
# it calls inside its function, so that `neurodepth --help` stays fast.


class UsageError(Exception):
    """A malformed command line (raised by the parsers instead of printing usage and exiting)."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but a malformed command line is one line ``PROG: error: ...`` (no usage block)."""

    def error(self, message):
        raise UsageError(self.prog, message)


def _given(**kwargs) -> dict:
    """The keyword arguments whose flags were given (not None): the rest keep the library's defaults."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _flags(parser: argparse.ArgumentParser) -> dict:
    """``{dest: flag}`` of a sub-command, to name the flag when a library error names the field it sets."""
    return {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}


def _cluster(address):
    """The Dask client at ``--scheduler`` (closed when the block ends), or None to run locally."""
    return _parallel.dask_client(address) or contextlib.nullcontext()


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return values


def _set_threads(threads) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(_checks.positive_int(threads, "--threads"))


# ----------------------------------------------------------------------------------------------------
# neurodepth generate
# ----------------------------------------------------------------------------------------------------

def _add_generate(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="simulate a dataset of trials (resumable; local processes or Dask)",
        description="Simulate trials of a cell driven by the paper's random inputs into a dataset "
                    "directory (manifest.json + HDF5 shards). Rerunning the same command resumes an "
                    "interrupted run; finished shards are skipped.")
    p.add_argument("--cell", default="l5pc", help="registered cell: l5pc (default), iaf or teaching")
    p.add_argument("--condition", default=None,
                   help="L5PC condition: NMDA (default), AMPA or AMPA_SK; none for the I&F")
    p.add_argument("--trials", type=int, required=True, help="number of trials")
    p.add_argument("--duration-ms", type=int, default=None, help="trial length in ms (default 6000)")
    p.add_argument("--seed", type=int, default=None, help="dataset seed (default 0)")
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
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_run_generate, flags=_flags(p))


def _run_generate(args) -> int:
    from .data import generation

    simulation = _given(dt_ms=args.dt_ms, secondorder=args.secondorder, use_cvode=args.cvode or None)
    with _cluster(args.scheduler) as client:
        report = generation.generate_dataset(
            args.out, cell=args.cell, condition=args.condition, n_trials=args.trials, client=client,
            record_dendrites=args.record_dendrites, record_soma_0125ms=args.record_soma_0125ms,
            simulation=simulation or None, progress=args.progress,
            **_given(duration_ms=args.duration_ms, seed=args.seed, trials_per_shard=args.trials_per_shard,
                     workers=args.workers))
    with report.open() as ds:
        print(generation.format_summary(ds.summary(), report))
    return 0


def _add_reencode(subparsers) -> None:
    p = subparsers.add_parser(
        "reencode", help="rewrite a dataset in the current storage format (voltages to 0.01 mV, compressed)",
        description="Check every finished shard of DATASET (sha256 and each trial's output hash), then write the "
                    "same trials into --out in the current dataset format: the same plan and plan id, voltages "
                    "rounded to 0.01 mV and compressed; the result is byte for byte what 'neurodepth generate' "
                    "writes for that plan, so a resumed generation in --out continues it. Resumable.")
    p.add_argument("dataset", help="dataset directory (format 1 or 2)")
    p.add_argument("--out", required=True, help="new dataset directory")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_run_reencode, flags=_flags(p))


def _run_reencode(args) -> int:
    from . import data

    out = data.reencode_dataset(args.dataset, args.out, progress=args.progress)
    with data.open_dataset(out, allow_incomplete=True) as ds:
        print(data.format_summary(ds.summary()))
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
                    "in a receipt did not pass. Needs the notebooks extra: pip install \"neurodepth[notebooks]\".")
    p.add_argument("--scale", default=None,
                   help="quick, lab or paper (default: $NEURODEPTH_SCALE, else lab)")
    p.add_argument("--out", default="outputs", help="folder for executed notebooks and receipts")
    p.add_argument("--only", nargs="*", default=None,
                   help="notebook name prefixes to run (e.g. 00 01); default all")
    p.add_argument("--dir", default=None,
                   help="folder holding the notebooks (default: the source checkout's notebooks/)")
    p.set_defaults(func=_run_notebooks, flags=_flags(p))


def _run_notebooks(args) -> int:
    from . import nb

    notebooks = nb.list_notebooks(args.dir)
    if not notebooks:
        raise ValueError(f"no numbered notebooks (NN_name.ipynb) in {args.dir or nb.notebooks_dir()}")
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


# ----------------------------------------------------------------------------------------------------
# neurodepth train
# ----------------------------------------------------------------------------------------------------

def _auto_yes_no(text: str):
    try:
        return {"auto": None, "yes": True, "no": False}[text]
    except KeyError:
        raise argparse.ArgumentTypeError(f"choose auto, yes or no, got {text!r}") from None


def _add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a TCN on a dataset directory (resumable; writes a model file with its card)",
        description="Train a TCN on a dataset made by 'neurodepth generate' with the paper's targets, losses, "
                    "Nadam schedule, batch 8 and 400-ms windows (shorter schedules at quick and lab scale). "
                    "Writes OUT.pt + OUT.json (weights and model card: architecture, parameter count, the "
                    "dataset's manifest hash, the schedule, validation metrics) and, while training, a "
                    "checkpoint OUT.ckpt.pt: rerunning the same command after an interruption resumes.")
    # every dest below that is not 'dataset', 'out', 'threads' or 'evaluate' is a FitSpec field
    p.add_argument("dataset", help="training dataset directory")
    p.add_argument("--out", required=True, help="model prefix: writes OUT.pt, OUT.json, OUT.ckpt.pt, ...")
    p.add_argument("--valid", dest="valid_data", metavar="VALID", default=None,
                   help="validation dataset directory (default: hold out --valid-fraction of the training trials)")
    p.add_argument("--valid-fraction", type=float, default=None, help="held-out fraction (default 0.1)")
    p.add_argument("--arch", dest="architecture", metavar="ARCH", default=None,
                   help="architecture preset: large (7x128x153), small (1x128x43), fit_cnn (3x64x100, "
                        "default), lab (4x32x77) or tiny (2x8x23)")
    p.add_argument("--kernels", dest="kernel_sizes", metavar="KERNELS", type=_int_list, default=None,
                   help="every layer's kernel in ms, e.g. 45,19,19 (overrides the preset and --depth)")
    p.add_argument("--depth", type=int, default=None, help="number of hidden layers")
    p.add_argument("--kernel", dest="kernel_ms", metavar="KERNEL", type=int, default=None,
                   help="kernel (ms) of the layers (with --depth)")
    p.add_argument("--first-kernel", dest="first_kernel_ms", metavar="FIRST_KERNEL", type=int, default=None,
                   help="kernel (ms) of the first layer")
    p.add_argument("--width", dest="widths", metavar="WIDTH", type=_int_list, default=None,
                   help="filters per layer: one number, or one per layer (e.g. 128 or 64,32,32)")
    p.add_argument("--dendritic", type=_auto_yes_no, default=None, metavar="{auto,yes,no}",
                   help="train the dendritic head on PCA components of the dendritic voltages (auto, the "
                        "default: when the dataset recorded them)")
    p.add_argument("--spike-bias", default=None,
                   help="initial spike-head bias: data (log-odds of the training spike rate; default below "
                        "paper scale), paper (-2.0; default at paper scale) or a number")
    p.add_argument("--scale", default=None, help="quick, lab (default) or paper: the schedule's length")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (the scale's schedule, "
                                                           "compressed to this length)")
    p.add_argument("--lr-scale", type=float, default=None,
                   help="learning-rate multiplier of the compressed schedule (default: the scale's)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per step (default 8, the paper's)")
    p.add_argument("--window-ms", type=int, default=None, help="window length in ms (default 400, the paper's)")
    p.add_argument("--seed", type=int, default=None, help="initialisation and sampling seed (default 0)")
    p.add_argument("--split-seed", type=int, default=None, help="seed of the train/validation split (default 0)")
    p.add_argument("--device", default=None, help="auto (GPU when present; default), cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=int, default=None,
                   help="processes regenerating the inputs from their recipes (default 0: this one)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's; 1 is often fastest on a busy machine)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept a dataset still being generated (its finished shards; recorded in the card)")
    p.add_argument("--allow-mismatch", action="store_true", default=None,
                   help="accept a --valid dataset of another cell or condition (recorded in the card)")
    p.add_argument("--weights-dtype", default=None,
                   help="how OUT.pt stores the weights: float32 (default) or float16 (half the file, for shipping)")
    p.add_argument("--train-trials", dest="first_trials", metavar="N", type=int, default=None,
                   help="use only the first N trials of DATASET (default all; --valid-fraction is held out of "
                        "them): fixes the trials while a dataset is still growing")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start afresh even if OUT.ckpt.pt exists")
    p.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                   help="skip scoring the validation trials with the paper's protocol at the end")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=_run_train, flags=_flags(p))


def _run_train(args) -> int:
    from . import fit, nb, scoring

    _set_threads(args.threads)
    spec = _given(**{name: getattr(args, name) for name in fit.FitSpec.field_names() if hasattr(args, name)})
    result = fit.train_on_dataset(args.dataset, args.out, **spec, log=print,
                                  provenance={"argv": ["neurodepth", *args.argv], "versions": nb.versions()})
    if args.evaluate:
        scoring.score_validation(result, log=print)
    print(f"model written: {result.model_path}.pt and {result.model_path}.json")
    return 0


# ----------------------------------------------------------------------------------------------------
# neurodepth evaluate
# ----------------------------------------------------------------------------------------------------

def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a model on a held-out dataset with the paper's protocol",
        description="Run MODEL over every trial of DATASET in one causal pass and score it as the paper does: "
                    "t >= 500 ms, trials with 0-24 spikes, pooled ROC AUC, TP at 0.1 % and 0.25 % FP, AUC "
                    "at 1 % FP, explained variance / RMSE / MAE of the clipped soma voltage after the z-score "
                    "calibration (the headline, as the paper's) and as predicted, error bars from 12 random "
                    "subsets of 67 % of all trials (filtered inside each), and the temporal-precision "
                    "histogram, each computed as the authors' code does. Prints a table; --json writes every "
                    "number.")
    p.add_argument("model", help="model prefix or file (MODEL.pt + MODEL.json)")
    p.add_argument("dataset", help="dataset directory")
    p.add_argument("--trials", type=_trial_list, default=None,
                   help="trial indices to use, e.g. 0-49 or 3,5,8 (default all)")
    p.add_argument("--spike-range", type=_int_list, default=None,
                   help="keep trials with this many spikes, LOW,HIGH (default 0,24)")
    p.add_argument("--all-trials", action="store_true", help="no spike-count filter")
    p.add_argument("--start-ms", type=int, default=None, help="ignore bins before this time (default 500)")
    p.add_argument("--subsets", type=int, default=None, help="random subsets for error bars (default 12)")
    p.add_argument("--subset-fraction", type=float, default=None, help="size of each subset (default 0.67)")
    p.add_argument("--seed", type=int, default=None, help="seed of the subsets (default 0)")
    p.add_argument("--target-fpr", type=float, default=None,
                   help="ROC point thresholded for the temporal-precision histogram (default 0.002)")
    p.add_argument("--batch-size", type=int, default=None, help="trials per forward pass (default 4)")
    p.add_argument("--device", default="auto", help="auto (GPU when present; default), cpu, cuda, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes regenerating the inputs from their recipes (default 0: this one)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="accept a dataset still being generated (its finished shards)")
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    p.add_argument("--roc-points", type=int, default=1000,
                   help="ROC points in the JSON file, log-spaced in FP rate (default 1000; 0 none; -1 all)")
    p.add_argument("--record", default=None, metavar="KEY",
                   help="append the evaluation to the model card's metrics.history; an evaluation on every trial "
                        "of data of the model's own condition also becomes metrics.KEY (e.g. test)")
    p.add_argument("--allow-mismatch", action="store_true", default=None,
                   help="score data of another cell or condition than the model was trained on (recorded)")
    p.set_defaults(func=_run_evaluate, flags=_flags(p))


_MAX_LISTED_TRIALS = 10_000_000
_TRIAL_PART = re.compile(r"^(\d+)(?:-(\d+))?$")


def _trial_list(text: str | None):
    """``0-49`` or ``3,5,8`` (or both, comma-separated) as a list of indices >= 0."""
    if text is None:
        return None
    out = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = _TRIAL_PART.match(part)
        if not m:
            raise argparse.ArgumentTypeError(f"trial indices are whole numbers >= 0 such as 0-49 or 3,5,8, "
                                             f"got {text!r}")
        a, b = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if b < a:
            raise argparse.ArgumentTypeError(f"the range {part!r} ends before it starts")
        if b - a + 1 + len(out) > _MAX_LISTED_TRIALS:
            raise argparse.ArgumentTypeError(f"{text!r} lists more than {_MAX_LISTED_TRIALS:,} trials")
        out += range(a, b + 1)
    if not out:
        raise argparse.ArgumentTypeError(f"selects no trial: {text!r}")
    return out


def _run_evaluate(args) -> int:
    from . import scoring
    from .data import open_dataset

    _set_threads(args.threads)
    protocol = _given(start_ms=args.start_ms, spike_count_range=args.spike_range, n_subsets=args.subsets,
                      subset_fraction=args.subset_fraction, seed=args.seed)
    if args.all_trials:
        protocol["spike_count_range"] = None
    if args.json:  # a place the numbers cannot go fails now, not after the whole evaluation
        _io.check_output_path(args.json, "--json", directory=False)
    a = scoring.evaluate_model(
        args.model, open_dataset(args.dataset, allow_incomplete=args.allow_incomplete),
        config=scoring.EvaluationConfig(**protocol), trials=args.trials, device=args.device,
        **_given(target_fpr=args.target_fpr, batch_size=args.batch_size, workers=args.workers,
                 allow_mismatch=args.allow_mismatch))
    print(a.table())
    if args.json:
        roc = True if args.roc_points < 0 else args.roc_points
        _io.atomic_write_text(args.json, json.dumps(a.to_dict(include_roc=roc), indent=1, allow_nan=False))
        print(f"numbers written: {args.json}")
    if args.record:
        card = scoring.record_metrics(args.model, a, key=args.record, command=["neurodepth", *args.argv])
        if card["metrics"]["history"][-1]["headline"]:
            print(f"metrics recorded in the model card under metrics.{args.record} (and appended to metrics.history)")
        else:
            print(f"evaluation appended to metrics.history of the model card; metrics.{args.record} unchanged "
                  f"(a subset of trials or mismatched data is never the headline)")
    return 0


# ----------------------------------------------------------------------------------------------------
# neurodepth sweep / neurodepth how-deep
# ----------------------------------------------------------------------------------------------------

def _add_sweep(subparsers) -> None:
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
    p.set_defaults(func=_run_sweep, flags=_flags(p))


def _run_sweep(args) -> int:
    from . import studies

    data = {}
    for item in args.data:
        condition, sep, dirs = item.partition("=")
        parts = dirs.split(",")
        if not sep or len(parts) != 2:
            raise ValueError(f"--data must look like CONDITION=TRAIN_DIR,TEST_DIR, got {item!r}")
        data[condition] = tuple(parts)
    grid = studies.SweepGrid(**_given(depths=args.depths, widths=args.widths,
                                      receptive_fields_ms=args.receptive_fields_ms, seeds=args.seeds))
    with _cluster(args.scheduler) as client:
        res = studies.run_sweep(args.out, data, grid, client=client, allow_incomplete=args.allow_incomplete,
                                progress=args.progress,
                                **_given(steps=args.steps, scale=args.scale, workers=args.workers,
                                         threads_per_run=args.threads, train_trials=args.train_trials,
                                         allow_mismatch=args.allow_mismatch))
    print(f"{res.runs_made} runs made, {res.runs_skipped} already there ({res.executor}, {res.wall_s:.0f} s)")
    for condition in data:
        if any(r["condition"] == condition for r in res.rows):
            print(studies.depth_report(res.rows, condition).table())
    print(f"results: {res.csv_path}")
    return 0


def _add_how_deep(subparsers) -> None:
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
    p.set_defaults(func=_run_how_deep, flags=_flags(p))


def _float_pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    return lo, hi


def _run_how_deep(args) -> int:
    from . import studies

    simulation = _given(dt_ms=args.dt_ms, v_init_mV=args.v_init_mV, secondorder=args.secondorder)
    with _cluster(args.scheduler) as client:
        report = studies.how_deep(
            out_dir=args.out, client=client, progress=args.progress,
            **_given(cell=args.cell, condition=args.condition, n_train_trials=args.train_trials,
                     simulation=simulation or None, calibrate=args.calibrate, target_hz=args.target_hz,
                     n_test_trials=args.test_trials, duration_ms=args.duration_ms,
                     depths=None if args.depths is None else tuple(args.depths), width=args.width,
                     receptive_field_ms=args.receptive_field_ms,
                     seeds=None if args.seeds is None else tuple(args.seeds), steps=args.steps, scale=args.scale,
                     tolerance=args.tolerance, workers=args.workers))
    print(report.table())
    return 0


# ----------------------------------------------------------------------------------------------------
# neurodepth assets
# ----------------------------------------------------------------------------------------------------

def _add_assets(subparsers) -> None:
    p = subparsers.add_parser(
        "assets", help="list, verify, fetch or regenerate the lab assets (datasets, models, sweep results)",
        description="list: what is shipped, its state and size. verify: check every shipped byte against "
                    "its recorded sha256 (exit 1 on any mismatch). fetch NAME ... | --all: make assets "
                    "available here, downloading (and checking) into the cache what the data root lacks; "
                    "prints where each is. regenerate NAME: print and run the command that remakes an asset "
                    "(a dataset into its own directory resumes or repairs it; --out elsewhere rebuilds it from "
                    "scratch for comparison). registry: check the package's list of downloadable files "
                    "against the assets of this checkout (--write: rewrite it).")
    p.add_argument("action", choices=("list", "verify", "fetch", "regenerate", "registry"))
    p.add_argument("names", nargs="*", metavar="NAME", help="asset names (verify: default all; regenerate: one)")
    p.add_argument("--all", action="store_true", help="fetch: every downloadable asset")
    p.add_argument("--write", action="store_true", help="registry: rewrite neurodepth_lib/data/registry.txt")
    p.add_argument("--out", default=None, help="regenerate into this path instead of the asset's own")
    p.add_argument("--workers", type=int, default=None, help="generation processes (datasets)")
    p.add_argument("--dry-run", action="store_true", help="regenerate: print the command only")
    p.add_argument("--no-progress", action="store_true", help="fetch: no progress bars")
    p.set_defaults(func=_run_assets, flags=_flags(p))


def _run_assets(args) -> int:
    from .data import asset_records, assets

    for name in args.names:  # an unknown name is refused before anything is read or downloaded
        if name not in assets.ASSETS:
            raise ValueError(f"unknown asset {name!r}; known: {', '.join(sorted(assets.ASSETS))}")
    if args.action == "list":
        print(asset_records.describe())
        return 0
    if args.action == "verify":
        results = asset_records.verify(args.names or None)
        for r in results:
            print(r)
        failed = [r.name for r in results if r.failed]
        total = sum(r.size_bytes for r in results)
        print(f"{len(results)} assets, {total / 1e6:.1f} MB shipped; "
              + (f"FAILED: {', '.join(failed)}" if failed else "every shipped byte matches its sha256"))
        return 1 if failed else 0
    if args.action == "fetch":
        return _fetch_assets(assets, args)
    if args.action == "registry":
        return _check_registry(assets, args.write)
    if len(args.names) != 1:
        raise ValueError("regenerate needs one asset name (neurodepth assets list shows them)")
    name = args.names[0]
    argv = asset_records.regenerate_command(name, args.out)
    kind = assets.ASSETS[name].kind
    if kind != "dataset" and args.out is None and not args.dry_run:
        raise ValueError(f"give --out to regenerate {name!r} somewhere new: retraining does not overwrite "
                         f"a shipped {kind} (weights come out equal only on the same torch build and threads)")
    if args.workers is not None and kind == "dataset":
        argv += ["--workers", str(args.workers)]
    note = asset_records.regeneration_note(name)  # say so rather than let a partial remake pass for the whole
    if note:
        print(note)
    print(shlex.join(argv))
    if args.dry_run:
        return 0
    return main(argv[1:])


def _fetch_assets(assets, args) -> int:
    if args.all == bool(args.names):
        raise ValueError("fetch takes asset names or --all (not both, not neither)")
    for name in assets.downloadable() if args.all else args.names:
        where = assets.fetch(name, progress=not args.no_progress)
        print(f"{name:<22} {assets.used()[name]['source']:<10} {where}")
    return 0


def _check_registry(assets, write: bool) -> int:
    if write:
        print(f"wrote {assets.write_registry()}")
        return 0
    stale = assets.registry_differences()
    print("\n".join([f"differs: {rel}" for rel in stale] + [
        "the registry matches the assets" if not stale else "run `neurodepth assets registry --write`"]))
    return 1 if stale else 0


# ----------------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------------

SUBCOMMANDS = [_add_generate, _add_reencode, _add_notebooks, _add_train, _add_evaluate, _add_sweep, _add_how_deep, _add_assets]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="neurodepth",
        description="Reproduce Beniaguev, Segev & London (2021): single cortical neurons as deep networks.")
    parser.add_argument("--version", action="version", version=f"neurodepth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def _user_error(args, err: Exception) -> int:
    """One clear line, not a traceback; a library error that names a field (``FitSpecError.field``) shows
    the flag that sets it."""
    text, field = " ".join(str(err).split()) or type(err).__name__, getattr(err, "field", None)
    flag = args.flags.get(field) if field else None
    if flag and text.startswith(field):
        text = flag + text[len(field):]
    print(f"neurodepth {args.command}: error: {text}", file=sys.stderr)
    return 2


def _internal_error(command: str, err: BaseException) -> int:
    """A bug, not a user error: one line, and the full traceback in a file (its path printed)."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        fd, path = tempfile.mkstemp(prefix="neurodepth-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        where = f"full traceback in {path}"
    except OSError:  # pragma: no cover - no writable temp dir: the traceback goes to stderr after all
        where = "traceback:\n" + text
    message = str(err).splitlines()[0] if str(err) else ""
    print(f"neurodepth {command}: internal error: {type(err).__name__}: {message} ({where}; please report it)",
          file=sys.stderr)
    return 1


def main(argv=None) -> int:
    """Entry point of the ``neurodepth`` command; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as err:  # a malformed command line: one line, nothing run
        print(f"{err.prog}: error: {err}", file=sys.stderr)
        return 2
    args.argv = argv  # recorded in what the command makes (provenance)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # loaded only now (h5py, filelock), like every layer the command calls
    from .data.shards import IntegrityError

    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, IntegrityError, _io.BusyError) as err:  # bad arguments
        return _user_error(args, err)
    except UsageError as err:  # e.g. `assets regenerate` running a recorded command
        print(f"{err.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neurodepth {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("NEURODEPTH_DEBUG"):
            raise
        return _internal_error(args.command, err)


if __name__ == "__main__":
    sys.exit(main())
