"""Shipped lab assets: Hay-cell datasets, trained models and sweep results that a class cannot recompute.

A small registry maps an asset name to a path relative to the data root and, once the asset is final,
the sha256 of the file that pins it: a dataset's ``manifest.json`` (which lists every shard's sha256), a
model's ``.json`` card (which holds its weights' sha256), or the file itself. Notebooks ask for an asset
by name and fall back to making what their scale affords when it is missing::

    from neurodepth_lib.data import assets
    train_dir = assets.find("l5pc_nmda_train")      # a Path, or None when not shipped / not complete
    for check in assets.verify():                    # every shipped byte against its recorded sha256
        print(check)

The data root is ``$NEURODEPTH_DATA_DIR`` when set, else the ``data/`` folder of the source checkout
(``<repo>/data``). ``sha256=None`` in the registry means "not pinned yet": the asset is used when present
(and, for a dataset, complete, unless the caller accepts a dataset still being generated).

Provenance travels with each asset: a dataset's manifest holds its plan (every parameter and seed) and
versions, and ``provenance.jsonl`` beside it logs every generation run (command, cores, workers, wall time
per shard); a model card holds the ``neurodepth train`` command that made it, the machine and the wall
time; a result file has ``<file>.provenance.json``. :func:`regenerate_command` turns that record back into
the command; on the command line ``neurodepth assets list | verify | regenerate NAME``.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from .._io import file_sha256
from .generation import generate_dataset, plan_generation
from .shards import plan_id

__all__ = ["Asset", "ASSETS", "data_root", "path_of", "find", "status", "dataset", "VerifyResult", "verify",
           "describe", "regenerate_command", "recorded_commands", "regeneration_note", "provenance_path"]

DATA_DIR_ENV = "NEURODEPTH_DATA_DIR"
BUDGET_BYTES = 80e6  # what all shipped assets may take together (issue 16; it was 60 MB for issue 9)
KINDS = ("dataset", "model", "file")


@dataclass(frozen=True)
class Asset:
    """``kind`` is ``"dataset"`` (a dataset directory), ``"model"`` (a model prefix: ``<path>.pt`` +
    ``<path>.json``) or ``"file"`` (one file, e.g. a sweep's CSV); ``path`` is relative to
    :func:`data_root`; ``sha256`` pins ``manifest.json``, the model card or the file (None = not pinned)."""

    kind: str
    path: str
    sha256: str | None = None
    description: str = ""


ASSETS: dict[str, Asset] = {
    "l5pc_nmda_train": Asset("dataset", "lab/l5pc_nmda_train",
                             "6b098b2d609c4412d55a0ec603e73bc96e48278b0dd7978feb37bdf21620735c",
                             "Hay L5PC, NMDA, 6-s training trials"),
    "l5pc_nmda_valid": Asset("dataset", "lab/l5pc_nmda_valid",
                             "e81b81e25a62909467e5502fe4cf201694b988339aca846e0f6587e7dc715d14",
                             "Hay L5PC, NMDA, validation trials"),
    "l5pc_nmda_test": Asset("dataset", "lab/l5pc_nmda_test",
                            "ec3bd91b9613699d3f9bcc1be9cab8049344b252aaf3373edd66552ff9445dbd",
                            "Hay L5PC, NMDA, held-out test trials"),
    "l5pc_ampa_train": Asset("dataset", "lab/l5pc_ampa_train",
                             "0785fc81c4013069b26d1e66da4eff73d0947ef3aac38cea60732c87dccc6264",
                             "Hay L5PC, AMPA only, training trials"),
    "l5pc_ampa_valid": Asset("dataset", "lab/l5pc_ampa_valid",
                             "50da122b9507331db3d9f64f21fb930b69ec534f28456324b699530f0606a0dd",
                             "Hay L5PC, AMPA only, validation trials"),
    "l5pc_ampa_test": Asset("dataset", "lab/l5pc_ampa_test",
                            "cb73c7eabf2a1640be3cbf090067fe6fda041981e5f86d28c61fd3169dde5560",
                            "Hay L5PC, AMPA only, test trials"),
    # issue 16: the training sets grown five-fold (still being generated: not pinned until complete). Their
    # first 400 / 200 trials are the trials of l5pc_nmda_train / l5pc_ampa_train (same seeds)
    "l5pc_nmda_train_2000": Asset("dataset", "lab/l5pc_nmda_train_2000", None,
                                  "Hay L5PC, NMDA, 6-s training trials, growing to 2,000"),
    "l5pc_ampa_train_1000": Asset("dataset", "lab/l5pc_ampa_train_1000", None,
                                  "Hay L5PC, AMPA only, 6-s training trials, growing to 1,000"),
    "model_l5pc_nmda_tcn": Asset("model", "lab/models/l5pc_nmda_tcn",
                                 "2fb3a96dc3090b21cbf60fde9a1c81af5dc7b3d751418935a3ba495c6bd3e59b",
                                 "the best deeper TCN trained on l5pc_nmda_train"),
    "model_l5pc_nmda_fcn": Asset("model", "lab/models/l5pc_nmda_fcn",
                                 "937acc9450fecb1d4c8de686d185e9569fdbf4e59145f25615777d19a6935028",
                                 "a depth-1 network trained on l5pc_nmda_train"),
    "model_l5pc_ampa_tcn": Asset("model", "lab/models/l5pc_ampa_tcn",
                                 "86b8090463fe0d5e588cf942cb585f618752969ccd03ffb91ea10ee1fa656445",
                                 "the best deeper TCN trained on l5pc_ampa_train"),
    "model_l5pc_ampa_fcn": Asset("model", "lab/models/l5pc_ampa_fcn",
                                 "9177affbe0728f9c1b38d23ab189ebb7e364fdbd02d95c1ffd05d707366f7304",
                                 "a depth-1 network trained on l5pc_ampa_train"),
    # traces simulated with the authors' original model (outputs only; data/reference/README.md says how)
    "l5pc_reference": Asset("file", "reference/l5pc_reference.npz",
                            "8adce241565c5f1e9f2cade286abbc798d46ca46b7f4e50f0e664ebf63f8d599",
                            "the authors' L5PC model on 3 trials of given inputs: the reference our cell is tested against"),
    "hay_sweep": Asset("file", "lab/sweeps/hay_sweep.csv",
                       "173f31c16849081ccca4ef004cf81afcdf50cc42852f7e353afe7db6efc274b3",
                       "depth and width sweep of TCNs on the Hay lab data (the table notebook 06 plots)"),
}


def data_root() -> Path:
    """``$NEURODEPTH_DATA_DIR`` if set, else ``<source checkout>/data``."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "data"


def _asset(name: str) -> Asset:
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    if asset.kind not in KINDS:
        raise ValueError(f"asset {name!r} has unknown kind {asset.kind!r}; expected one of {KINDS}")
    return asset


def path_of(name: str) -> Path:
    """Where asset ``name`` lives (present or not): a directory, a model prefix or a file."""
    return data_root() / _asset(name).path


def _pin_file(asset: Asset, where: Path) -> Path:
    if asset.kind == "dataset":
        return where / "manifest.json"
    if asset.kind == "model":
        return where.with_name(where.name + ".json")
    return where


def provenance_path(name: str) -> Path:
    """The file that records how asset ``name`` was made (see the module notes)."""
    asset, where = _asset(name), path_of(name)
    if asset.kind == "dataset":
        return where / "provenance.jsonl"
    if asset.kind == "model":
        return where.with_name(where.name + ".json")
    return where.with_name(where.name + ".provenance.json")


def _manifest(where: Path) -> dict | None:
    try:
        return json.loads((where / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def status(name: str) -> str:
    """``"ok"``, ``"missing"``, ``"incomplete"`` (a dataset still being generated; a model card without
    weights) or ``"checksum mismatch"`` (of the pinning file; :func:`verify` checks every byte)."""
    asset = _asset(name)
    where = data_root() / asset.path
    pin = _pin_file(asset, where)
    if not pin.exists():
        return "missing"
    if asset.kind == "dataset":
        manifest = _manifest(where)
        if manifest is None or not manifest.get("complete"):
            return "incomplete"
    elif asset.kind == "model" and not where.with_name(where.name + ".pt").exists():
        return "incomplete"
    if asset.sha256 is not None and file_sha256(pin) != asset.sha256:
        return "checksum mismatch"
    return "ok"


def find(name: str, *, allow_incomplete: bool = False) -> Path | None:
    """The asset's path when it is present, complete and (if pinned) matches its sha256; else None.

    ``allow_incomplete`` also returns a dataset that is still being generated, when at least one of its
    shards is finished (open it with ``open_dataset(path, allow_incomplete=True)``: only finished trials
    are visible). For a dataset the directory (:func:`neurodepth_lib.data.open_dataset` checks every
    shard against the manifest); for a model the prefix (:func:`neurodepth_lib.nets.load_model` checks
    the weights against the card); for a file the file. A checksum mismatch is a loud error.
    """
    state = status(name)
    where = path_of(name)
    if state == "checksum mismatch":
        raise ValueError(f"asset {name!r} at {where} does not match its recorded sha256: the shipped file "
                         f"was altered or replaced")
    if state == "ok":
        return where
    if state == "incomplete" and allow_incomplete and ASSETS[name].kind == "dataset":
        manifest = _manifest(where)
        if manifest is not None and any(s.get("sha256") for s in manifest.get("shards", [])):
            return where
    return None


def dataset(name: str | None, fallback_dir, *, use_shipped: bool = True, allow_incomplete: bool = False,
            progress: bool = True, **generate_kwargs) -> tuple[Path, str]:
    """A dataset for a notebook: the shipped asset ``name`` when present (and ``use_shipped``; with
    ``allow_incomplete`` also while it is still being generated), else the dataset in ``fallback_dir``,
    generated there now (or resumed, or found complete) by
    :func:`neurodepth_lib.data.generate_dataset` with ``generate_kwargs``.

    Returns ``(path, "shipped" | "generated")``.
    """
    if use_shipped and name is not None:
        found = find(name, allow_incomplete=allow_incomplete)
        if found is not None:
            return found, "shipped"
    report = generate_dataset(fallback_dir, progress=progress, **generate_kwargs)
    return Path(report.path), "generated"


# ----------------------------------------------------------------------------------------------------
# Verification and description
# ----------------------------------------------------------------------------------------------------

@dataclass
class VerifyResult:
    """The outcome of checking one asset: ``state`` is ``"ok"``, ``"partial"`` (a dataset still being
    generated whose finished shards are all intact), ``"missing"`` or ``"FAILED"``; ``problems`` names every
    file that does not match."""

    name: str
    kind: str
    state: str
    size_bytes: int
    detail: str
    problems: list

    @property
    def failed(self) -> bool:
        return self.state == "FAILED"

    def __str__(self) -> str:
        text = f"{self.name:<22} {self.kind:<8} {self.state:<8} {self.size_bytes / 1e6:7.2f} MB  {self.detail}"
        return text + "".join(f"\n    {p}" for p in self.problems)


def _verify_dataset(where: Path) -> tuple[str, int, str, list]:
    manifest = _manifest(where)
    if manifest is None:
        return "FAILED", 0, "", [f"{where / 'manifest.json'} is not readable JSON"]
    problems, size, done, spikes = [], (where / "manifest.json").stat().st_size, 0, []
    for entry in manifest.get("shards", []):
        if not entry.get("sha256"):
            continue
        shard = where / entry["name"]
        if not shard.exists():
            problems.append(f"{shard.name}: listed as finished but missing")
            continue
        size += shard.stat().st_size
        digest = file_sha256(shard)
        if digest != entry["sha256"]:
            problems.append(f"{shard.name}: sha256 {digest[:12]}... != manifest {entry['sha256'][:12]}...")
            continue
        done += entry["n_trials"]
        spikes += list(entry.get("n_spikes") or [])
    planned = int(manifest.get("plan", {}).get("n_trials", 0))
    duration_s = manifest.get("plan", {}).get("duration_ms", 0) / 1000.0
    rate = (sum(spikes) / (len(spikes) * duration_s)) if spikes and duration_s else float("nan")
    detail = f"{done}/{planned} trials, {done * duration_s / 3600:.2f} h simulated" + \
        (f", {rate:.2f} Hz mean rate" if spikes else "")
    if problems:
        return "FAILED", size, detail, problems
    return ("ok" if manifest.get("complete") else "partial"), size, detail, []


def _verify_model(where: Path) -> tuple[str, int, str, list]:
    card_path, weights = where.with_name(where.name + ".json"), where.with_name(where.name + ".pt")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as err:
        return "FAILED", 0, "", [f"{card_path.name}: unreadable model card ({err})"]
    if not weights.exists():
        return "FAILED", card_path.stat().st_size, "", [f"{weights.name}: missing"]
    size = card_path.stat().st_size + weights.stat().st_size
    digest = file_sha256(weights)
    detail = f"{card.get('name', '?')}, {card.get('n_parameters', '?')} parameters"
    test = (card.get("metrics") or {}).get("test") or {}
    if "auc" in test:
        detail += f", test AUC {test['auc']:.4f}"
    if card.get("weights_sha256") != digest:
        return "FAILED", size, detail, [f"{weights.name}: sha256 {digest[:12]}... != card "
                                        f"{str(card.get('weights_sha256'))[:12]}..."]
    return "ok", size, detail, []


def verify(names=None) -> list[VerifyResult]:
    """Check every byte of the shipped assets (all registered ones, or ``names``) against the sha256s
    recorded for them: the registry pin, each dataset shard against its manifest, each model's weights
    against its card. Nothing is trusted from file sizes or dates."""
    results = []
    for name in (sorted(ASSETS) if names is None else list(names)):
        asset, where = _asset(name), path_of(name)
        pin = _pin_file(asset, where)
        if not pin.exists():
            results.append(VerifyResult(name, asset.kind, "missing", 0, "not shipped", []))
            continue
        if asset.kind == "dataset":
            state, size, detail, problems = _verify_dataset(where)
        elif asset.kind == "model":
            state, size, detail, problems = _verify_model(where)
        else:
            state, size, detail, problems = "ok", pin.stat().st_size, f"{file_sha256(pin)[:12]}...", []
        if asset.sha256 is not None and file_sha256(pin) != asset.sha256:
            state, problems = "FAILED", problems + [f"{pin.name}: does not match the sha256 pinned in "
                                                    f"neurodepth_lib.data.assets.ASSETS"]
        elif asset.sha256 is None and state == "ok":
            detail += " (not pinned yet)"
        results.append(VerifyResult(name, asset.kind, state, size, detail, problems))
    return results


def describe() -> str:
    """A table of the registered assets: kind, state, size and what they are (no checksums computed)."""
    lines = [f"{'asset':<22} {'kind':<8} {'state':<11} {'MB':>7}  description"]
    for name in sorted(ASSETS):
        asset, where = ASSETS[name], path_of(name)
        files = ([p for p in where.iterdir() if p.is_file()] if where.is_dir() else
                 [p for p in (where.with_name(where.name + ".json"), where.with_name(where.name + ".pt"), where)
                  if p.is_file()])
        size = sum(p.stat().st_size for p in files)
        lines.append(f"{name:<22} {asset.kind:<8} {status(name):<11} {size / 1e6:7.2f}  {asset.description}")
    lines.append(f"data root: {data_root()}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Regeneration
# ----------------------------------------------------------------------------------------------------

def _dataset_argv(manifest: dict, out: Path) -> list[str]:
    plan = manifest["plan"]
    argv = ["neurodepth", "generate", "--cell", plan["cell"]]
    if plan.get("condition"):
        argv += ["--condition", plan["condition"]]
    argv += ["--trials", str(plan["n_trials"]), "--duration-ms", str(plan["duration_ms"]), "--seed",
             str(plan["seed"]), "--trials-per-shard", str(plan["trials_per_shard"])]
    if "dend_1ms" in plan.get("record", []):
        argv.append("--record-dendrites")
    return argv + ["--out", str(out)]


def _provenance_record(name: str) -> dict:
    path = provenance_path(name)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"asset {name!r} has no readable provenance record ({path})") from None


def _recorded_argv(name: str) -> list[str]:
    path = provenance_path(name)
    record = _provenance_record(name)
    argv = (record.get("provenance") or record).get("argv")
    if not argv:
        raise ValueError(f"the provenance record of {name!r} ({path}) holds no command")
    return list(argv)


def recorded_commands(name: str) -> list[list[str]]:
    """Every command recorded as making asset ``name``, in order. A merged result (the Hay sweep: several
    ``neurodepth sweep`` commands per condition, then a merge) records them all under ``commands``
    (``{condition: [argv, ...]}``) and ``made_by`` (the script that runs them and merges); anything else
    records one command."""
    record = _provenance_record(name) if _asset(name).kind == "file" else {}
    return _merged_commands(record) or [regenerate_command(name)]


def _merged_commands(record: dict) -> list[list[str]]:
    commands = record.get("commands")
    return [list(argv) for group in commands.values() for argv in group] if isinstance(commands, dict) else []


def regeneration_note(name: str) -> str | None:
    """For an asset made by several commands and a merge, a note listing them all: what
    :func:`regenerate_command` gives remakes one part only. None for an asset made by one command."""
    if _asset(name).kind != "file":
        return None
    record = _provenance_record(name)
    commands, made_by = _merged_commands(record), record.get("made_by")
    if len(commands) < 2:
        return None
    return "\n".join([f"note: {name} was made by {len(commands)} commands and a merge"
                      + (f" ({made_by})" if made_by else "")
                      + "; the command below remakes one part only. All of them:"]
                     + ["  " + shlex.join(argv) for argv in commands])


def _replace_out(argv: list[str], out) -> list[str]:
    argv = list(argv)
    if out is not None:
        if "--out" not in argv:
            raise ValueError(f"the recorded command has no --out: {shlex.join(argv)}")
        argv[argv.index("--out") + 1] = str(out)
    return argv


def _anchored(token: str) -> str:
    """A recorded command's argument with the repository paths in it made absolute: commands were recorded
    from the repository root (``data/lab/...``), and must run from any directory. ``data/...`` is read
    under :func:`data_root`; ``LABEL=a,b`` lists (``sweep --data``) are anchored piece by piece."""
    label, sep, rest = token.rpartition("=") if "=" in token and not token.startswith("-") else ("", "", token)
    pieces = []
    for piece in rest.split(","):
        parts = Path(piece).parts
        if piece and not Path(piece).is_absolute() and len(parts) > 1 and parts[0] == "data":
            piece = str(data_root().joinpath(*parts[1:]))
        pieces.append(piece)
    return label + sep + ",".join(pieces)


def regenerate_command(name: str, out=None) -> list[str]:
    """The command (argv, starting with ``neurodepth``) that remakes asset ``name`` into ``out`` (default:
    where it lives, which resumes or repairs it). For a dataset it is rebuilt from the manifest's plan and
    checked to give the same plan id; for a model or a file it is the command recorded when it was made
    (its ``data/...`` paths made absolute, so it runs from any directory; a sweep's ``--out`` is a directory
    whose ``results.csv`` is the file).
    ``neurodepth assets regenerate NAME`` runs it."""
    asset = _asset(name)
    if asset.kind == "dataset":
        manifest = _manifest(path_of(name))
        if manifest is None:
            raise ValueError(f"asset {name!r} is not present: nothing records how to make it "
                             f"(see data/lab/make_lab_datasets.sh)")
        plan = manifest["plan"]
        remade, _, _ = plan_generation(
            cell=plan["cell"], condition=plan.get("condition"), n_trials=plan["n_trials"],
            duration_ms=plan["duration_ms"], seed=plan["seed"], trials_per_shard=plan["trials_per_shard"],
            record=list(plan.get("record", [])))
        if plan_id(remade) != manifest["plan_id"]:
            raise ValueError(f"asset {name!r} was made with settings the command line cannot express "
                             f"(cell, input or simulation overrides): regenerate it with "
                             f"neurodepth_lib.data.generate_dataset and the manifest's plan")
        return _dataset_argv(manifest, path_of(name) if out is None else Path(out))
    return _replace_out([_anchored(a) for a in _recorded_argv(name)], out)
