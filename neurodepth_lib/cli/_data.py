"""``neurodepth generate``, ``reencode`` and ``assets``: making, rewriting and checking datasets and the
shipped assets (:mod:`neurodepth_lib.data`)."""
from __future__ import annotations

import argparse
import shlex

from ._shell import cluster, flags, given


def add_generate(subparsers) -> None:
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
    p.add_argument("--ood", type=_ood_kinds, default=None, metavar="NAME[,NAME...]",
                   help="out-of-distribution inputs: one or more of the named settings "
                        f"{', '.join(_OOD_KINDS)} (neurodepth_lib.inputs.OODOptions), e.g. clustered,synchronous; "
                        "recorded in the plan (clustered: 64 spatial clusters of the cell's segments)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_run_generate, flags=flags(p))


# the named out-of-distribution settings: neurodepth_lib.inputs.OOD_KINDS (a test keeps them equal), not imported
# here because the inputs module loads scipy, and the parser should start fast
_OOD_KINDS = ("clustered", "synchronous", "no_inhibition", "high_rate")


def _ood_kinds(text: str) -> tuple[str, ...]:
    """``clustered,synchronous`` as a tuple of OOD setting names (a flag type: a bad name fails at parsing)."""
    kinds = tuple(k for k in str(text).replace(" ", "").split(",") if k)
    bad = [k for k in kinds if k not in _OOD_KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"unknown OOD setting {(bad or [text])[0]!r}; choose one or more of "
                                         f"{', '.join(_OOD_KINDS)}, comma-separated")
    if len(set(kinds)) != len(kinds):
        raise argparse.ArgumentTypeError(f"OOD settings must be distinct, got {text!r}")
    return kinds


def _run_generate(args) -> int:
    from ..data import generation

    simulation = given(dt_ms=args.dt_ms, secondorder=args.secondorder, use_cvode=args.cvode or None)
    # the OOD recipe is made (and checked) before any simulation; the plan records it, so the plan id differs
    settings = generation.ood_input_settings(args.cell, args.condition, args.ood) if args.ood else None
    with cluster(args.scheduler) as client:
        report = generation.generate_dataset(
            args.out, cell=args.cell, condition=args.condition, n_trials=args.trials, client=client,
            record_dendrites=args.record_dendrites, record_soma_0125ms=args.record_soma_0125ms,
            simulation=simulation or None, progress=args.progress, input_settings=settings,
            **given(duration_ms=args.duration_ms, seed=args.seed, trials_per_shard=args.trials_per_shard,
                     workers=args.workers))
    with report.open() as ds:
        print(generation.format_summary(ds.summary(), report))
    return 0


def add_reencode(subparsers) -> None:
    p = subparsers.add_parser(
        "reencode", help="rewrite a dataset in the current storage format (voltages to 0.01 mV, compressed)",
        description="Check every finished shard of DATASET (sha256 and each trial's output hash), then write the "
                    "same trials into --out in the current dataset format: the same plan and plan id, voltages "
                    "rounded to 0.01 mV and compressed; the result is byte for byte what 'neurodepth generate' "
                    "writes for that plan, so a resumed generation in --out continues it. Resumable.")
    p.add_argument("dataset", help="dataset directory (format 1 or 2)")
    p.add_argument("--out", required=True, help="new dataset directory")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_run_reencode, flags=flags(p))


def _run_reencode(args) -> int:
    from .. import data

    out = data.reencode_dataset(args.dataset, args.out, progress=args.progress)
    with data.open_dataset(out, allow_incomplete=True) as ds:
        print(data.format_summary(ds.summary()))
    return 0


def add_assets(subparsers) -> None:
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
    p.set_defaults(func=_run_assets, flags=flags(p))


def _run_assets(args) -> int:
    from ..data import asset_records, assets

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
    from . import main  # the command itself, to run the recorded command line

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
