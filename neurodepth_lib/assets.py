"""Shipped lab assets: Hay-cell datasets and trained models that a class cannot recompute in minutes.

A small registry maps an asset name to a path relative to the data root and, once the asset is final,
the sha256 of the file that pins it (a dataset's ``manifest.json``, which lists every shard's sha256; a
model's ``.json`` card, which holds its weights' sha256). Notebooks ask for an asset by name and fall back
to making what their scale affords when it is missing::

    from neurodepth_lib import assets
    train_dir = assets.find("l5pc_nmda_train")      # a Path, or None when not shipped / not complete

The data root is ``$NEURODEPTH_DATA_DIR`` when set, else the ``data/`` folder of the source checkout
(``<repo>/data``). The lab assets are produced by our own pipeline (``neurodepth generate`` and
``neurodepth train``); the entries, their checksums and their provenance are filled in by the issue that
ships them. ``sha256=None`` means "not pinned yet": the asset is used when present and complete.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Asset", "ASSETS", "data_root", "find", "status", "dataset"]

DATA_DIR_ENV = "NEURODEPTH_DATA_DIR"


@dataclass(frozen=True)
class Asset:
    """``kind`` is ``"dataset"`` (a dataset directory) or ``"model"`` (a model prefix: ``<path>.pt`` +
    ``<path>.json``); ``path`` is relative to :func:`data_root`; ``sha256`` pins ``manifest.json`` or the
    model card (None = not pinned yet)."""

    kind: str
    path: str
    sha256: str | None = None
    description: str = ""


ASSETS: dict[str, Asset] = {
    "l5pc_nmda_train": Asset("dataset", "lab/l5pc_nmda_train", None, "Hay L5PC, NMDA, 6-s training trials"),
    "l5pc_nmda_valid": Asset("dataset", "lab/l5pc_nmda_valid", None, "Hay L5PC, NMDA, validation trials"),
    "l5pc_nmda_test": Asset("dataset", "lab/l5pc_nmda_test", None, "Hay L5PC, NMDA, held-out test trials"),
    "l5pc_ampa_train": Asset("dataset", "lab/l5pc_ampa_train", None, "Hay L5PC, AMPA only, training trials"),
    "l5pc_ampa_valid": Asset("dataset", "lab/l5pc_ampa_valid", None, "Hay L5PC, AMPA only, validation trials"),
    "l5pc_ampa_test": Asset("dataset", "lab/l5pc_ampa_test", None, "Hay L5PC, AMPA only, test trials"),
    "model_l5pc_nmda_tcn": Asset("model", "lab/models/l5pc_nmda_tcn", None,
                                 "the best deeper TCN trained on l5pc_nmda_train"),
    "model_l5pc_nmda_fcn": Asset("model", "lab/models/l5pc_nmda_fcn", None,
                                 "a depth-1 network trained on l5pc_nmda_train"),
}


def data_root() -> Path:
    """``$NEURODEPTH_DATA_DIR`` if set, else ``<source checkout>/data``."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / "data"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pin_file(asset: Asset, where: Path) -> Path:
    return where / "manifest.json" if asset.kind == "dataset" else where.with_name(where.name + ".json")


def status(name: str) -> str:
    """``"ok"``, ``"missing"``, ``"incomplete"`` (a dataset still being generated; a model card without
    weights) or ``"checksum mismatch"``."""
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    where = data_root() / asset.path
    pin = _pin_file(asset, where)
    if not pin.exists():
        return "missing"
    if asset.kind == "dataset":
        try:
            if not json.loads(pin.read_text()).get("complete"):
                return "incomplete"
        except (OSError, ValueError):
            return "incomplete"
    elif not where.with_name(where.name + ".pt").exists():
        return "incomplete"
    if asset.sha256 is not None and _sha256(pin) != asset.sha256:
        return "checksum mismatch"
    return "ok"


def find(name: str) -> Path | None:
    """The asset's path when it is present, complete and (if pinned) matches its sha256; else None.

    For a dataset the directory (open it with :func:`neurodepth_lib.datasets.open_dataset`, which checks
    every shard against the manifest); for a model the prefix (:func:`neurodepth_lib.models.load_model`
    checks the weights against the card). A checksum mismatch is a loud error, not a silent fallback.
    """
    state = status(name)
    if state == "checksum mismatch":
        raise ValueError(f"asset {name!r} at {data_root() / ASSETS[name].path} does not match its recorded "
                         f"sha256: the shipped file was altered or replaced")
    return data_root() / ASSETS[name].path if state == "ok" else None


def dataset(name: str | None, fallback_dir, *, use_shipped: bool = True, progress: bool = True,
            **generate_kwargs) -> tuple[Path, str]:
    """A dataset for a notebook: the shipped asset ``name`` when present (and ``use_shipped``), else the
    dataset in ``fallback_dir``, generated there now (or resumed, or found complete) by
    :func:`neurodepth_lib.generation.generate_dataset` with ``generate_kwargs``.

    Returns ``(path, "shipped" | "generated")``.
    """
    if use_shipped and name is not None:
        found = find(name)
        if found is not None:
            return found, "shipped"
    from .generation import generate_dataset

    report = generate_dataset(fallback_dir, progress=progress, **generate_kwargs)
    return Path(report.path), "generated"
