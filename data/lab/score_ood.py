"""Score every shipped Hay NMDA model on the out-of-distribution test sets (issue 20): the OOD table of
data/lab/README.md comes from the JSON this writes.

    python data/lab/score_ood.py [--out data/lab/ood_scores.json] [--models NAME ...] [--threads 1]

Each model (default: every shipped ``model_l5pc_nmda_*`` asset present) is scored with
:func:`neurodepth_lib.scoring.evaluate_model` on every trial of each OOD set (``l5pc_nmda_test_ood_*``) and on
the first as many trials of ``l5pc_nmda_test``, the in-distribution set the OOD sets are paired with trial by
trial (same seed), under two readings of the paper's protocol (t >= 500 ms for both):

- ``every_trial``: no spike-count filter and no error-bar subsets (the README's table: the 0-24-spike filter
  keeps only a few trials of the clustered, inhibition-free set);
- ``paper``: the paper's 0-24-spike filter and its 12 subsets of 67 % for the error bar.

The JSON holds each score's summary (AUC, TP at fixed FP, partial AUC, soma calibrated and raw), the trials kept,
the models' and datasets' plan ids and sha256 pins, the command, the machine's load and the wall time. The OOD
sets are never used for training or model selection; nothing here changes a model card.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import neurodepth_lib as nd
from neurodepth_lib._io import Timer, atomic_write_json
from neurodepth_lib.data import assets
from neurodepth_lib.scoring import protocol

IN_DISTRIBUTION = "l5pc_nmda_test"
OOD_SETS = ("l5pc_nmda_test_ood_clustered_sync", "l5pc_nmda_test_ood_clustered_no_inhibition",
            "l5pc_nmda_test_ood_high_rate")
READINGS = {"every_trial": protocol.EvaluationConfig(spike_count_range=None, n_subsets=0),
            "paper": protocol.EvaluationConfig()}


def shipped_nmda_models() -> list[str]:
    """The shipped NMDA model assets present in this checkout, in the registry's order."""
    return [name for name, a in assets.ASSETS.items()
            if a.kind == "model" and name.startswith("model_l5pc_nmda_") and assets.find(name, download=False)]


def _dataset(name: str) -> Path:
    path = assets.find(name, download=False)
    if path is None:
        raise SystemExit(f"dataset {name} is missing or does not match its pin: run `neurodepth assets verify`")
    return path


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/lab/ood_scores.json", help="the JSON to write")
    p.add_argument("--models", nargs="+", default=None, help="model asset names (default every shipped NMDA model)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = args.models or shipped_nmda_models()
    unknown = [m for m in models if m not in assets.ASSETS or assets.ASSETS[m].kind != "model"]
    if unknown:
        raise SystemExit(f"not a model asset: {', '.join(unknown)}")
    ood = {name: _dataset(name) for name in OOD_SETS}
    n_ood = {name: len(nd.data.open_dataset(path)) for name, path in ood.items()}
    if len(set(n_ood.values())) != 1:
        raise SystemExit(f"the OOD sets differ in size ({n_ood}): cannot pair them with one slice of the test set")
    n = next(iter(n_ood.values()))
    sets = {IN_DISTRIBUTION: (_dataset(IN_DISTRIBUTION), list(range(n))), **{k: (v, None) for k, v in ood.items()}}
    load_start, timer = os.getloadavg(), Timer().start()
    scores = {}
    with tempfile.TemporaryDirectory(prefix="score_ood_") as cache:  # each set's inputs regenerated once
        for model_name in models:
            prefix = assets.find(model_name, download=False)
            if prefix is None:
                raise SystemExit(f"model {model_name} is missing or does not match its pin")
            scores[model_name] = {}
            for set_name, (path, trials) in sets.items():
                # predicted once, scored under both readings
                a = nd.scoring.evaluate_model(prefix, path, config=READINGS["every_trial"], trials=trials,
                                              input_cache_dir=cache)
                entry = {"every_trial": a.summary(), "paper": nd.scoring.assess_predictions(
                    a.predictions, prefix, path, config=READINGS["paper"]).summary()}
                entry["trials"] = list(range(n)) if trials is None else trials
                scores[model_name][set_name] = entry
                r = entry["every_trial"]
                print(f"{model_name:<28} {set_name:<44} AUC {r['auc']:.3f}, soma EV {r['soma_calibrated_explained_variance_pct']:.1f} % "
                      f"(raw {r['soma_raw_explained_variance_pct']:.1f} %); paper filter keeps {entry['paper']['n_trials_kept']} "
                      f"trials, AUC {entry['paper']['auc']}", flush=True)
    cards = {m: json.loads(Path(str(assets.find(m, download=False)) + ".json").read_text()) for m in models}
    out = {
        "what": "shipped Hay NMDA models scored on the out-of-distribution test sets (data/lab/score_ood.py)",
        "readings": {k: v.to_dict() for k, v in READINGS.items()},
        "models": {m: {"name": c["name"], "n_parameters": c["n_parameters"], "card_sha256": assets.ASSETS[m].sha256}
                   for m, c in cards.items()},
        "datasets": {k: {"plan_id": nd.data.open_dataset(p).manifest["plan_id"], "manifest_sha256": assets.ASSETS[k].sha256,
                         "trials_scored": n} for k, (p, _) in sets.items()},
        "scores": scores,
        "provenance": {"argv": ["python", "data/lab/score_ood.py", *(argv if argv is not None else sys.argv[1:])],
                       "threads": args.threads, "cores": os.cpu_count(), "platform": platform.platform(),
                       "load_average_start": [round(x, 2) for x in load_start],
                       "load_average_end": [round(x, 2) for x in os.getloadavg()],
                       "wall_s": round(timer.elapsed_s, 1), "cpu_s": round(timer.elapsed_cpu_s, 1),
                       "date": time.strftime("%Y-%m-%d"), "versions": nd.nb.versions()},
    }
    atomic_write_json(args.out, out)
    print(f"written: {args.out} ({out['provenance']['wall_s']} s wall, {out['provenance']['cpu_s']} s CPU)")
    return out


if __name__ == "__main__":
    main()
