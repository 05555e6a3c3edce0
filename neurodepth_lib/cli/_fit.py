"""``neurodepth train``: a TCN trained on a dataset directory (:func:`neurodepth_lib.fit.train_on_dataset`)."""
from __future__ import annotations

import argparse

from ._shell import flags, given, int_list, set_threads


def _auto_yes_no(text: str):
    try:
        return {"auto": None, "yes": True, "no": False}[text]
    except KeyError:
        raise argparse.ArgumentTypeError(f"choose auto, yes or no, got {text!r}") from None


def add_train(subparsers) -> None:
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
                   help="architecture preset: the TCNs large (7x128x153), small (1x128x43), fit_cnn (3x64x100, "
                        "default), lab (4x32x77) or tiny (2x8x23), or the ELM family (Spieler et al. 2024) elm "
                        "(20 memory units) or branch_elm (20 memory units, 45 branches of 100 inputs; no "
                        "--kernels/--depth/--width)")
    p.add_argument("--kernels", dest="kernel_sizes", metavar="KERNELS", type=int_list, default=None,
                   help="every layer's kernel in ms, e.g. 45,19,19 (overrides the preset and --depth)")
    p.add_argument("--depth", type=int, default=None, help="number of hidden layers")
    p.add_argument("--kernel", dest="kernel_ms", metavar="KERNEL", type=int, default=None,
                   help="kernel (ms) of the layers (with --depth)")
    p.add_argument("--first-kernel", dest="first_kernel_ms", metavar="FIRST_KERNEL", type=int, default=None,
                   help="kernel (ms) of the first layer")
    p.add_argument("--width", dest="widths", metavar="WIDTH", type=int_list, default=None,
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
    p.add_argument("--input-cache", dest="input_cache_dir", metavar="DIR", default=None,
                   help="keep the regenerated inputs in DIR, shared by runs on the same trials (default: beside "
                        "OUT, for this run only)")
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
    p.set_defaults(func=_run_train, flags=flags(p))


def _run_train(args) -> int:
    from .. import fit, nb, scoring

    set_threads(args.threads)
    spec = given(**{name: getattr(args, name) for name in fit.FitSpec.field_names() if hasattr(args, name)})
    result = fit.train_on_dataset(args.dataset, args.out, **spec, log=print,
                                  provenance={"argv": ["neurodepth", *args.argv], "versions": nb.versions()})
    if args.evaluate:
        scoring.score_validation(result, log=print)
    print(f"model written: {result.model_path}.pt and {result.model_path}.json")
    return 0
