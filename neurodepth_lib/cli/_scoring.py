"""``neurodepth evaluate``: a model scored on a held-out dataset with the paper's protocol
(:func:`neurodepth_lib.scoring.evaluate_model`)."""
from __future__ import annotations

import argparse
import json
import re

from .. import _io
from ._shell import flags, given, int_list, set_threads


def add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a model on a held-out dataset with the paper's protocol",
        description="Run MODEL over every trial of DATASET in one causal pass and score it as the paper does: "
                    "t >= 500 ms, trials with 0-24 spikes per 6 s (the paper's filter, scaled to the trials' length), pooled ROC AUC, TP at 0.1 % and 0.25 % FP, AUC "
                    "at 1 % FP, explained variance / RMSE / MAE of the clipped soma voltage after the z-score "
                    "calibration (the headline, as the paper's) and as predicted, error bars from 12 random "
                    "subsets of 67 % of all trials (filtered inside each), and the temporal-precision "
                    "histogram, each computed as the authors' code does. Prints a table; --json writes every "
                    "number.")
    p.add_argument("model", help="model prefix or file (MODEL.pt + MODEL.json)")
    p.add_argument("dataset", help="dataset directory")
    p.add_argument("--trials", type=_trial_list, default=None,
                   help="trial indices to use, e.g. 0-49 or 3,5,8 (default all)")
    p.add_argument("--spike-range", type=int_list, default=None,
                   help="keep trials with this many spikes, LOW,HIGH (default 0,24 per 6 s, scaled to the trials' "
                        "length; a range of your own is a count per trial unless --spike-range-per-ms)")
    per = p.add_mutually_exclusive_group()
    per.add_argument("--spike-range-per-ms", type=int, default=None, metavar="MS",
                     help="the spike range is per this many ms of trial, scaled to the trials' length")
    per.add_argument("--spike-range-per-trial", action="store_true",
                     help="the spike range is an absolute count per trial, whatever its length (the authors' code)")
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
    p.set_defaults(func=_run_evaluate, flags=flags(p))


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
    from .. import scoring
    from ..data import open_dataset

    set_threads(args.threads)
    protocol = given(start_ms=args.start_ms, spike_count_range=args.spike_range, n_subsets=args.subsets,
                      subset_fraction=args.subset_fraction, seed=args.seed, spike_count_per_ms=args.spike_range_per_ms)
    if args.spike_range_per_trial:
        protocol["spike_count_per_ms"] = None
    if args.all_trials:
        protocol["spike_count_range"] = None
    if args.json:  # a place the numbers cannot go fails now, not after the whole evaluation
        _io.check_output_path(args.json, "--json", directory=False)
    a = scoring.evaluate_model(
        args.model, open_dataset(args.dataset, allow_incomplete=args.allow_incomplete),
        config=scoring.EvaluationConfig(**protocol), trials=args.trials, device=args.device,
        **given(target_fpr=args.target_fpr, batch_size=args.batch_size, workers=args.workers,
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
