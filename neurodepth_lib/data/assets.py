"""Shipped lab assets: Hay-cell datasets, trained models, sweep results and the original model's reference
traces, resolved wherever the collection runs: a clone of the repository, a pip install, Colab, Binder.

A small registry maps an asset name to a path relative to the data root and, once the asset is final,
the sha256 of the file that pins it: a dataset's ``manifest.json`` (which lists every shard's sha256), a
model's ``.json`` card (which holds its weights' sha256), or the file itself. Notebooks ask for an asset
by name and fall back to making what their scale affords when it is missing::

    from neurodepth_lib.data import assets
    train_dir = assets.find("l5pc_nmda_train")      # a Path, or None when not available / not complete
    where = assets.fetch("model_l5pc_nmda_tcn")     # the same, or a clear error; downloads when needed

**Where an asset comes from**, in order:

1. the data root: ``$NEURODEPTH_DATA_DIR`` when set, else the ``data/`` folder of a source checkout (a clone:
   nothing is downloaded);
2. the download cache (``$NEURODEPTH_CACHE_DIR/<version>``, else the OS cache folder, e.g.
   ``~/.cache/neurodepth/<version>``),
   filled by **pooch** from the repository's raw files at the release tag of this version
   (``$NEURODEPTH_ASSETS_URL`` overrides the base URL, e.g. a mirror or a local server). Every file is checked
   against ``registry.txt`` (path and sha256 of every downloadable file, generated from the pins by
   ``neurodepth assets registry --write``) before it is moved into place, so nothing half-downloaded or
   altered is ever used. ``$NEURODEPTH_OFFLINE=1`` forbids downloads.

:func:`fetch` returns an asset or raises :class:`AssetUnavailable` (offline, a missing file on the server)
or :class:`AssetChecksumError` (a download that does not match its sha256), each naming the file and the way
out; :func:`find` returns None instead of the first (with a one-line message), so a notebook falls back to
making its own data. :func:`used` lists what this process resolved, and where from (notebook receipts carry it).
On the command line: ``neurodepth assets list | verify | fetch [NAME ...|--all] | regenerate NAME | registry``
(verification, the table and regeneration from provenance live in :mod:`neurodepth_lib.data.asset_records`).

Provenance travels with each asset: a dataset's manifest holds its plan (every parameter and seed) and
versions, and ``provenance.jsonl`` beside it logs every generation run (command, cores, workers, wall time
per shard); a model card holds the ``neurodepth train`` command that made it, the machine and the wall
time; a result file has ``<file>.provenance.json``; all of them travel with a download.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pooch
import requests
from tqdm.auto import tqdm

from .. import _project
from .._io import atomic_write_text, file_sha256
from .generation import generate_dataset, planned_id
from .store import TrialDataset, open_dataset

__all__ = ["Asset", "ASSETS", "AssetUnavailable", "AssetChecksumError", "data_root", "checkout_data_root",
           "cache_root", "base_url", "get_asset", "path_of", "pin_file", "manifest_of", "status", "find", "fetch",
           "used", "files_of", "downloadable", "registry_entries", "registry_differences", "read_registry", "write_registry", "dataset", "ChosenData",
           "choose_dataset"]

DATA_DIR_ENV = "NEURODEPTH_DATA_DIR"
CACHE_DIR_ENV = _project.CACHE_DIR_ENV
ASSETS_URL_ENV = "NEURODEPTH_ASSETS_URL"
OFFLINE_ENV = "NEURODEPTH_OFFLINE"
REGISTRY_FILE = "registry.txt"  # beside this module, shipped in the wheel
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
    companions: tuple = ()  # further files (relative to the data root) that travel with it, e.g. a README


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
    "l5pc_ampa_valid": Asset("dataset", "lab/l5pc_ampa_valid",
                             "50da122b9507331db3d9f64f21fb930b69ec534f28456324b699530f0606a0dd",
                             "Hay L5PC, AMPA only, validation trials"),
    "l5pc_ampa_test": Asset("dataset", "lab/l5pc_ampa_test",
                            "cb73c7eabf2a1640be3cbf090067fe6fda041981e5f86d28c61fd3169dde5560",
                            "Hay L5PC, AMPA only, test trials"),
    # issue 16: the training sets grown five-fold (2,000 NMDA and 1,000 AMPA trials, both complete).
    # Their first 400 / 200 trials are the trials of l5pc_nmda_train / of the retired 200-trial l5pc_ampa_train
    # (same seeds; data/lab/README.md says why it was retired and how to remake it)
    "l5pc_nmda_train_2000": Asset("dataset", "lab/l5pc_nmda_train_2000",
                                  "76b8beb238fbc9ebd6b40aa39a77cb67adeb971400c3aefa7f5f57ebb64b0bcd",
                                  "Hay L5PC, NMDA, 2,000 6-s training trials (3.33 simulated hours)"),
    "l5pc_ampa_train_1000": Asset("dataset", "lab/l5pc_ampa_train_1000",
                                  "47aa406f11c61d12873e1f06f0678379227d6e02e9ad13350b376462ede3d70f",
                                  "Hay L5PC, AMPA only, 1,000 6-s training trials (1.67 simulated hours)"),
    # chapter 06's teaching-cell data at lab scale with SEED = 0 (data/lab/make_teaching_datasets.sh): shipped so
    # that the chapter's lab run fits in 10 minutes on 2 cores; used only for exactly this plan (same_plan)
    "teaching_nmda_train": Asset("dataset", "lab/teaching_nmda_train",
                                 "1824adfb8ccd8aecce311e8126f04803b074b8351f081c5c5c6353188010dc62",
                                 "teaching cell, NMDA, 96 training trials of 6 s (chapter 06)"),
    "teaching_nmda_test": Asset("dataset", "lab/teaching_nmda_test",
                                "2faf6212adee06d2f0598d3c85f4f68ad81ed65754ed62c1c8b2eb2540f2adf2",
                                "teaching cell, NMDA, 48 test trials of 6 s (chapter 06)"),
    "teaching_ampa_train": Asset("dataset", "lab/teaching_ampa_train",
                                 "c39cefcd68ebc950e7b971f4223442677769537fbcba41a61bc2dfc42e14d896",
                                 "teaching cell, AMPA only, 96 training trials of 6 s (chapter 06)"),
    "teaching_ampa_test": Asset("dataset", "lab/teaching_ampa_test",
                                "468865f839a723d447ff4ec35647e84336f1b40b9f17a5fac657ef72f631ca5e",
                                "teaching cell, AMPA only, 48 test trials of 6 s (chapter 06)"),
    # issue 20: Hay NMDA out-of-distribution test sets (data/lab/make_ood_datasets.sh; inputs.OODOptions), paired
    # trial by trial with l5pc_nmda_test (same seed); never used for training or model selection
    "l5pc_nmda_test_ood_clustered_sync": Asset(
        "dataset", "lab/l5pc_nmda_test_ood_clustered_sync",
        "c01feaeecf913bd116633d56348e0a65d953e9a12d7b5ffaae461c44a19fab01",
        "Hay L5PC, NMDA, 28 OOD test trials: input on a few spatial clusters, sinusoidally synchronous"),
    "l5pc_nmda_test_ood_clustered_no_inhibition": Asset(
        "dataset", "lab/l5pc_nmda_test_ood_clustered_no_inhibition",
        "041882175714fb1979475f22dfe0717617c0a3705d19cbc3abb37451c79a83e1",
        "Hay L5PC, NMDA, 28 OOD test trials: input on a few spatial clusters, no inhibition"),
    "l5pc_nmda_test_ood_high_rate": Asset(
        "dataset", "lab/l5pc_nmda_test_ood_high_rate",
        "e59150bd97177e12d19897758cc9b3725555f4484b6c242e938c4a415c6cb73d",
        "Hay L5PC, NMDA, 28 OOD test trials: excitation 800-1200 per tree per 100 ms (training 0-800)"),
    "model_l5pc_nmda_tcn": Asset("model", "lab/models/l5pc_nmda_tcn",
                                 "3cf659deac73b1c7ee5521bd6953c95c58b7f3d40308d98dde9761950c9d1062",
                                 "the best deeper TCN trained on l5pc_nmda_train_2000"),
    "model_l5pc_nmda_fcn": Asset("model", "lab/models/l5pc_nmda_fcn",
                                 "e7e45aff6e1e9d95e6785cbb7e1bc694d447bdef290abfdbd340616525a35780",
                                 "a depth-1 network trained on l5pc_nmda_train_2000"),
    "model_l5pc_ampa_tcn": Asset("model", "lab/models/l5pc_ampa_tcn",
                                 "4c813bc0abd3883c2776df42b85c4311690b0f1a9214e097cf86efdd084481cb",
                                 "the best deeper TCN trained on l5pc_ampa_train_1000"),
    "model_l5pc_ampa_fcn": Asset("model", "lab/models/l5pc_ampa_fcn",
                                 "cdfb395237d370937977fe4503e328ad5bc6ae0348d71e0515a8d7eecf98ac5c",
                                 "a depth-1 network trained on l5pc_ampa_train_1000"),
    # issue 20: the 7.8k-parameter Branch-ELM (Spieler et al. 2024) on the same data and budget as the TCNs
    # (data/lab/make_lab_elms.sh; learning rate chosen on the validation set)
    "model_l5pc_nmda_branch_elm": Asset("model", "lab/models/l5pc_nmda_branch_elm",
                                        "9ff1187f2370999e9deee8be1f3ac68863851f47932347985cb84311ece7720c",
                                        "the Branch-ELM (7.8 k parameters) trained on l5pc_nmda_train_2000"),
    "model_l5pc_ampa_branch_elm": Asset("model", "lab/models/l5pc_ampa_branch_elm",
                                        "00ca5377a14f0aa6e6a15180eac56bebca58aa14d5be2f8f308ac5fd72419289",
                                        "the Branch-ELM (7.8 k parameters) trained on l5pc_ampa_train_1000"),
    # traces simulated with the authors' original model (outputs only; data/reference/README.md says how)
    "l5pc_reference": Asset("file", "reference/l5pc_reference.npz",
                            "8adce241565c5f1e9f2cade286abbc798d46ca46b7f4e50f0e664ebf63f8d599",
                            "the authors' L5PC model on 3 trials of given inputs: the reference our cell is tested against",
                            companions=("reference/README.md",)),
    "hay_sweep": Asset("file", "lab/sweeps/hay_sweep.csv",
                       "173f31c16849081ccca4ef004cf81afcdf50cc42852f7e353afe7db6efc274b3",
                       "depth and width sweep of TCNs on the Hay lab data (the table notebook 06 plots)"),
    # issue 16: depth against training-set size; its provenance says which sizes are done (the study resumes)
    "hay_scaling_nmda": Asset("file", "lab/sweeps/hay_scaling_nmda.csv",
                              "0d6047bdfbd3868a195f2a36203542dadcd024631ad25457b4b047f5cb5f8c2d",
                              "the Hay cell's data-scaling study, NMDA: depths 1-7 at growing training sets "
                              "(the curves notebook 06 plots)"),
    "hay_scaling_ampa": Asset("file", "lab/sweeps/hay_scaling_ampa.csv",
                              "0ad6af5c85e472a198b3d5802d9f8193fde31a05f18d00d99e06358a3c482ee8",
                              "the Hay cell's data-scaling study, AMPA only: depths 1-7 at growing training sets "
                              "(the curves notebook 06 plots)"),
}


class AssetUnavailable(FileNotFoundError):
    """An asset that is neither in the data root nor downloadable now (offline, not on the server, not
    pinned yet). The message names the file and the way out."""


class AssetChecksumError(ValueError):
    """A downloaded file whose sha256 differs from the registry's: it was not moved into place."""


def checkout_data_root() -> Path | None:
    """The ``data/`` folder of the source checkout this package runs from, or None (a wheel install)."""
    return _project.checkout_folder("data")


def data_root() -> Path:
    """Where assets are looked for first: ``$NEURODEPTH_DATA_DIR`` if set, else a source checkout's ``data/``,
    else (a pip install) the download cache."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return checkout_data_root() or cache_root()


def cache_root() -> Path:
    """Where downloaded assets are kept: the collection's cache folder (:func:`neurodepth_lib._project.cache_dir`,
    ``$NEURODEPTH_CACHE_DIR`` or ``~/.cache/neurodepth`` on Linux), one folder per version."""
    return _project.cache_dir(_project.VERSION)


def base_url() -> str:
    """The URL the data root's files are downloaded from: ``$NEURODEPTH_ASSETS_URL``, else the repository's
    ``data/`` folder at the release tag of this version (``pyproject.toml`` names the repository)."""
    env = os.environ.get(ASSETS_URL_ENV, "").strip()
    return (env.rstrip("/") + "/") if env else _project.raw_url("data/")


def get_asset(name: str) -> Asset:
    """The registry entry of asset ``name``; a ValueError naming the known ones for an unknown name."""
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    if asset.kind not in KINDS:
        raise ValueError(f"asset {name!r} has unknown kind {asset.kind!r}; expected one of {KINDS}")
    return asset


def path_of(name: str) -> Path:
    """Where asset ``name`` lives (present or not): a directory, a model prefix or a file."""
    return data_root() / get_asset(name).path


def pin_file(asset: Asset, where: Path) -> Path:
    """The file whose sha256 pins an asset found at ``where``: a manifest, a model card or the file itself."""
    if asset.kind == "dataset":
        return where / "manifest.json"
    if asset.kind == "model":
        return where.with_name(where.name + ".json")
    return where


def manifest_of(where: Path) -> dict | None:
    """A dataset directory's manifest, or None when it is missing or not JSON."""
    try:
        return json.loads((where / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def status(name: str) -> str:
    """``"ok"``, ``"missing"``, ``"incomplete"`` (a dataset still being generated; a model card without
    weights) or ``"checksum mismatch"`` (of the pinning file; :func:`verify` checks every byte)."""
    asset = get_asset(name)
    where = data_root() / asset.path
    pin = pin_file(asset, where)
    if not pin.exists():
        return "missing"
    if asset.kind == "dataset":
        manifest = manifest_of(where)
        if manifest is None or not manifest.get("complete"):
            return "incomplete"
    elif asset.kind == "model" and not where.with_name(where.name + ".pt").exists():
        return "incomplete"
    if asset.sha256 is not None and file_sha256(pin) != asset.sha256:
        return "checksum mismatch"
    return "ok"


def find(name: str, *, allow_incomplete: bool = False, download: bool = True) -> Path | None:
    """The asset's path when it is available, complete and (if pinned) matches its sha256; else None.

    Looked for in the data root first (a checkout's ``data/``: no download), then, for a pinned asset and
    ``download``, in the download cache, fetched there when missing (:func:`fetch`). When it cannot be
    downloaded (offline, ``$NEURODEPTH_OFFLINE``, the server lacks it) a one-line note says so and None is
    returned, so that the caller falls back to making its own; a download that does not match its sha256
    raises :class:`AssetChecksumError`.

    ``allow_incomplete`` also returns a dataset of the data root that is still being generated, when at least
    one of its shards is finished (open it with ``open_dataset(path, allow_incomplete=True)``: only finished
    trials are visible). For a dataset the directory (:func:`neurodepth_lib.data.open_dataset` checks every
    shard against the manifest); for a model the prefix (:func:`neurodepth_lib.nets.load_model` checks
    the weights against the card); for a file the file. A checksum mismatch is a loud error.
    """
    state = status(name)
    where = path_of(name)
    if state == "checksum mismatch":
        raise ValueError(f"asset {name!r} at {where} does not match its recorded sha256: the shipped file "
                         f"was altered or replaced")
    if state == "ok":
        _note_use(name, where, "data root")
        return where
    if state == "incomplete" and allow_incomplete and ASSETS[name].kind == "dataset":
        manifest = manifest_of(where)
        if manifest is not None and any(s.get("sha256") for s in manifest.get("shards", [])):
            _note_use(name, where, "data root (incomplete)")
            return where
    registry = read_registry()
    if not download or not files_of(name, registry):
        return None
    try:
        return _fetch_into_cache(name, registry, progress=True)
    except AssetUnavailable as err:
        print(f"note: {err}", file=sys.stderr, flush=True)
        return None


# ----------------------------------------------------------------------------------------------------
# Downloads: the registry of downloadable files and pooch
# ----------------------------------------------------------------------------------------------------

_USED: dict[str, dict] = {}


def _note_use(name: str, where: Path, source: str) -> None:
    _USED[name] = {"source": source, "path": str(where), "sha256": ASSETS[name].sha256}


def used() -> dict[str, dict]:
    """The assets this process has resolved: name -> ``{"source", "path", "sha256"}``, where source is
    ``"data root"`` (a checkout or ``$NEURODEPTH_DATA_DIR``), ``"cache"`` (downloaded earlier, every file
    checked again now) or ``"downloaded"`` (fetched now, every file checked before it was used)."""
    return {name: dict(entry) for name, entry in _USED.items()}


def _listed_files(asset: Asset, root: Path) -> dict[str, str]:
    """The files an asset's pin lists with their sha256 (a dataset's finished shards, a model's weights),
    relative to ``root``; empty when the pin cannot be read."""
    where = root / asset.path
    if asset.kind == "dataset":
        manifest = manifest_of(where) or {}
        return {f"{asset.path}/{s['name']}": s["sha256"] for s in manifest.get("shards", []) if s.get("sha256")}
    if asset.kind == "model":
        try:
            card = json.loads(where.with_name(where.name + ".json").read_text())
        except (OSError, ValueError):
            return {}
        return {f"{asset.path}.pt": card["weights_sha256"]} if card.get("weights_sha256") else {}
    return {}


def _sidecars(asset: Asset) -> list[str]:
    """Files that travel with an asset without being pinned by it: its provenance record, a model's scored
    test record, the companions it names (relative to the data root)."""
    if asset.kind == "dataset":
        names = [f"{asset.path}/provenance.jsonl"]
    elif asset.kind == "model":
        names = [f"{asset.path}.test.json"]
    else:
        names = [f"{asset.path}.provenance.json"]
    return names + list(asset.companions)


def registry_entries(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Every downloadable file (path relative to the data root -> sha256), generated from the pins of the
    assets in ``root`` (default: the data root): each pinned asset's pinning file, what that file lists (a
    dataset's shards, a model's weights) and its sidecars. Assets not pinned yet (still being generated)
    are not downloadable. Raises ValueError when a pinned asset is not there intact."""
    root = Path(root) if root is not None else data_root()
    entries: dict[str, str] = {}
    for name in sorted(ASSETS):
        asset = ASSETS[name]
        if asset.sha256 is None:
            continue
        where = root / asset.path
        pin = pin_file(asset, where)
        if not pin.is_file() or file_sha256(pin) != asset.sha256:
            raise ValueError(f"asset {name!r}: {pin} is missing or does not match its pinned sha256; the "
                             f"registry is generated from a checkout that holds every pinned asset")
        entries[pin.relative_to(root).as_posix()] = asset.sha256
        entries.update(_listed_files(asset, root))
        for rel in _sidecars(asset):
            if (root / rel).is_file():
                entries[rel] = file_sha256(root / rel)
    return dict(sorted(entries.items()))


def _registry_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(REGISTRY_FILE)))


def read_registry() -> dict[str, str]:
    """The registry shipped with the package (path relative to the data root -> sha256)."""
    entries = {}
    try:
        text = _registry_path().read_text()
    except OSError:
        return entries
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rel, digest = line.split()
            entries[rel] = digest
    return entries


def write_registry(path: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> Path:
    """Write :func:`registry_entries` of ``root`` to ``path`` (default: the package's ``registry.txt``)."""
    path = Path(path) if path is not None else _registry_path()
    lines = ["# Every file of the lab assets that can be downloaded: path relative to data/, sha256.",
             "# Generated from the pins in neurodepth_lib/data/assets.py by `neurodepth assets registry --write`;",
             "# tests/data/test_assets.py fails when it disagrees with the assets in the checkout."]
    lines += [f"{rel} {digest}" for rel, digest in registry_entries(root).items()]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def registry_differences() -> list[str]:
    """The files whose line in the shipped registry differs from what the data root's assets give (missing
    on either side, or another sha256): empty when ``registry.txt`` is up to date."""
    shipped, current = read_registry(), registry_entries()
    return sorted(rel for rel in shipped.keys() | current.keys() if shipped.get(rel) != current.get(rel))


def downloadable() -> list[str]:
    """The assets that can be downloaded: the pinned ones."""
    return sorted(name for name, asset in ASSETS.items() if asset.sha256 is not None)


def files_of(name: str, registry: dict | None = None) -> list[str]:
    """The registry's files of asset ``name`` (its pinning file first); ``registry`` defaults to
    :func:`read_registry`'s."""
    asset = get_asset(name)
    registry = read_registry() if registry is None else registry
    pin = pin_file(asset, Path(asset.path)).as_posix()
    if asset.kind == "dataset":
        mine = [rel for rel in registry if rel.startswith(asset.path + "/")]
    elif asset.kind == "model":
        mine = [rel for rel in registry if rel.startswith(asset.path + ".")]
    else:
        mine = [rel for rel in registry if rel in _sidecars(asset) or rel == asset.path]
    return sorted(mine, key=lambda rel: rel != pin)


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0")


def fetch(name: str, *, progress: bool = True) -> Path:
    """Asset ``name`` from the data root when it is there, else from the download cache, downloading what
    is missing; every downloaded file is checked against the registry's sha256 in a temporary file before it
    is moved into place, so nothing half-downloaded or altered is ever used. Returns the asset's path (as
    :func:`find`). Raises :class:`AssetUnavailable` or :class:`AssetChecksumError`, naming the file and the
    way out."""
    if status(name) == "ok":
        _note_use(name, path_of(name), "data root")
        return path_of(name)
    return _fetch_into_cache(name, read_registry(), progress=progress)


def _fetch_into_cache(name: str, registry: dict, *, progress: bool) -> Path:
    """The download-cache half of :func:`fetch` (the data root was already looked at)."""
    asset, files = get_asset(name), files_of(name, registry)
    if not files:
        raise AssetUnavailable(f"asset {name!r} is not in {data_root()} and cannot be downloaded (it is not "
                               f"pinned yet, or this package's registry lacks it): clone the repository and "
                               f"set {DATA_DIR_ENV}=<clone>/data, or regenerate it (neurodepth assets "
                               f"regenerate {name})")
    cache, url = cache_root(), base_url()
    todo = [rel for rel in files if not ((cache / rel).is_file() and file_sha256(cache / rel) == registry[rel])]
    if todo and _offline():
        raise AssetUnavailable(f"asset {name!r} needs {todo[0]} (and {len(todo) - 1} more files) but "
                               f"{OFFLINE_ENV} forbids downloads: unset it, or clone the repository and set "
                               f"{DATA_DIR_ENV}=<clone>/data")
    if todo:
        fetcher = pooch.create(path=cache, base_url=url, registry={rel: f"sha256:{registry[rel]}" for rel in todo},
                               retry_if_failed=2)
        pooch.get_logger().setLevel("WARNING")  # one line of ours, not one per file
        print(f"downloading asset {name!r}: {len(todo)} files from {url} into {cache}", file=sys.stderr,
              flush=True)
        for rel in tqdm(todo, desc=name, unit="file", disable=not progress):
            _download(fetcher, rel, url)
    where = cache / asset.path
    _note_use(name, where, "downloaded" if todo else "cache")
    return where


def _download(fetcher, rel: str, url: str) -> None:
    way_out = (f"check the connection, or set {ASSETS_URL_ENV} to a mirror of the repository's data/ folder, "
               f"or clone the repository and set {DATA_DIR_ENV}=<clone>/data")
    try:
        fetcher.fetch(rel)
    except requests.exceptions.RequestException as err:
        response = getattr(err, "response", None)
        reason = (f"the server answered HTTP {response.status_code}" if response is not None else
                  f"no connection ({type(err).__name__})")
        raise AssetUnavailable(f"could not download {rel} from {url}: {reason}; {way_out}") from None
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise
        raise AssetChecksumError(f"the download of {rel} from {url} does not match its sha256 in the "
                                 f"registry, so it was not used (the server holds another file, or the "
                                 f"transfer was corrupted); try again, or {way_out}") from None


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


@dataclass
class ChosenData:
    """A dataset a notebook works on: the opened dataset, where it came from (``"data root"``, ``"cache"``,
    ``"downloaded"`` or ``"generated"``) and the trials to use (``None``: all of them)."""

    dataset: TrialDataset
    source: str
    trials: np.ndarray | None = None

    @property
    def shipped(self) -> bool:
        """True when it is one of the lab assets (from the data root or downloaded), not simulated here."""
        return self.source != "generated"

    @property
    def n_trials(self) -> int:
        return len(self.dataset) if self.trials is None else len(self.trials)

    def describe(self, role: str = "data") -> str:
        """One line for a notebook: how many trials, from where, the output rate and what is recorded."""
        s = self.dataset.summary()
        origin = "shipped lab asset" if self.shipped else "simulated here"
        return (f"{role} ({origin}, {self.source}): {self.n_trials} of {s['trials']} trials x {s['duration_ms']} "
                f"ms, output rate {s['rate_hz_mean']:.2f} Hz (median {s['rate_hz_median']:.2f} Hz), "
                f"{100 * s['silent_fraction']:.0f} % of trials silent, dendritic voltages: "
                f"{'dend_1ms' in self.dataset.outputs}")


def choose_dataset(name: str | None, fallback_dir=None, *, use_shipped: bool = True,
                   allow_incomplete: bool = False, max_trials: int | None = None, progress: bool = True,
                   same_plan: bool = False, **generate_kwargs) -> ChosenData | None:
    """A notebook's dataset in one call: the lab asset ``name`` (from the data root, or downloaded) when
    ``use_shipped`` and it is available, limited to its first ``max_trials`` trials (None: all); else the
    dataset generated (or resumed) in ``fallback_dir`` with ``generate_kwargs`` (all of it). With no
    ``fallback_dir``, None when the asset is not available.

    With ``same_plan``, the asset stands in only for exactly the dataset ``generate_kwargs`` would make (the
    same plan id: cell, condition, trials, length, seed, ...), so a run with another seed or size simulates
    its own, and says so in one line."""
    if max_trials is not None and (not isinstance(max_trials, (int, np.integer)) or max_trials < 1):
        raise ValueError(f"max_trials must be a positive whole number or None, not {max_trials!r}")
    if use_shipped and name is not None:
        found = find(name, allow_incomplete=allow_incomplete)
        if found is not None and same_plan:
            shipped_id = (manifest_of(found) or {}).get("plan_id")
            if shipped_id != planned_id(**generate_kwargs):
                print(f"note: the shipped {name} is not the dataset this run asks for (another seed, size or "
                      f"setting), so it is simulated here")
                found = None
        if found is not None:
            ds = open_dataset(found, allow_incomplete=allow_incomplete)
            trials = None if max_trials is None else np.arange(min(int(max_trials), len(ds)))
            return ChosenData(ds, used()[name]["source"], trials)
    if fallback_dir is None:
        return None
    path, _ = dataset(None, fallback_dir, progress=progress, **generate_kwargs)
    return ChosenData(open_dataset(path), "generated")
