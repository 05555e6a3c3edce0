"""Datasets of simulated trials: a directory of HDF5 shards with a JSON manifest, and training windows.

A dataset is a directory::

    my_dataset/
      manifest.json          what made it: cell, condition, every parameter, seeds, versions, per-shard sha256
      shard_00000.h5         trials 0 .. k-1      (one shard per generation task)
      shard_00001.h5         trials k .. 2k-1
      ...

Each shard is written by :func:`write_shard` under a temporary name and renamed when complete, so an
interrupted generation leaves only whole shards and a rerun resumes (:mod:`neurodepth_lib.generation`).

Why HDF5 (and not Zarr)
-----------------------
- One shard is one file. "Written under a temporary name, renamed when complete" is then a single atomic
  ``os.replace``, and one sha256 per file in the manifest covers every byte. A Zarr store is a tree of
  chunk files: renaming a directory is atomic too, but checksumming and verifying thousands of small files
  is slower and easier to get wrong, and a half-copied store looks valid.
- Our access pattern is "one task writes one shard, many readers read slices": HDF5 does that well.
  Zarr's strength, many writers filling one big array concurrently or reading from object storage, is
  something we do not need because each generation task owns its own shard.
- h5py is already a dependency; HDF5 files open anywhere (MATLAB, Julia, ``h5dump``) and never execute
  code on load (nothing here is pickled).
- HDF5 can be made byte-reproducible: no timestamps (``track_times=False``), a fixed file-format version
  (``libver``), attributes written in sorted order, and no compression filters. The same seeds therefore
  give byte-identical shards whichever executor ran them, which the tests check.

What a shard holds (``n`` trials of ``T`` ms; all datasets at the file's root)
------------------------------------------------------------------------------
============================  =========================  =================================================
name                          dtype, shape               meaning
============================  =========================  =================================================
``trial_index``               int64 (n,)                 global trial number in the dataset
``input_seed``                int64 (n,)                 seed of :func:`~neurodepth_lib.inputs.generate_inputs`
                                                         (-1 when the inputs were given from outside)
``input_sha256``              S64 (n,)                   :meth:`InputEvents.checksum` of the trial's inputs
``output_sha256``             S64 (n,)                   sha256 of the trial's outputs (locates a damaged trial)
``soma_1ms``                  float32 (n, T)             somatic voltage, mV, one sample per ms
``spike_times_ms``            float64 (total,)           output spike times of all trials, concatenated
``spike_offsets``             int64 (n + 1,)             trial i's spikes are ``[offsets[i], offsets[i+1])``
``nexus_1ms`` (optional)      float32 (n, T)             apical nexus voltage, mV
``soma_0125ms`` (optional)    float32 (n, 8 T)           somatic voltage at 0.125 ms
``dend_1ms`` (optional)       float16 (n, K, T)          every dendritic segment's voltage, mV
``event_channel``,            int32 (events,), int64     inputs given from outside, as sparse events
``event_time_ms``,            (n + 1,)                   (absent when inputs are stored as their recipe)
``event_offsets``
============================  =========================  =================================================

Precision. The authors stored everything as float16. We keep float16 only for the optional dendritic
voltages (the bulk of the bytes: 639 x 6000 samples per trial): between -128 and -64 mV float16 steps are
0.0625 mV and between -64 and -32 mV 0.03 mV, far below what the clipped, PCA-whitened dendritic target
resolves. The soma and nexus stay float32, and spike times float64: in float16 a time near 5,000 ms is
rounded to 4 ms, which would move spikes across the 1-ms bins the network is trained on.

Inputs made by our generator are stored as their recipe (the :class:`~neurodepth_lib.inputs.InputSettings`
in the manifest, a seed and an event checksum per trial) and regenerated on load; a checksum mismatch (a
drifted random stream) is a loud :class:`IntegrityError` naming the shard and the trial.

Training windows: :class:`WindowSampler` serves the paper's random windows (paper_facts 1.5) from a
dataset, after materialising its inputs once in RAM (optionally in an HDF5 cache file). torch is imported
only when tensors are made, so generation workers import this module without torch.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

from .inputs import InputEvents, InputSettings, generate_inputs

FORMAT = "neurodepth-dataset"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SHARD_GLOB = "shard_*.h5"
H5_LIBVER = ("v110", "v110")  # fixed on-disk format: same bytes from any h5py/HDF5 that writes it

# Outputs a trial can carry, in the order they enter the per-trial hash, with their storage dtypes.
OUTPUT_DTYPES = {
    "soma_1ms": np.dtype("<f4"),
    "spike_times_ms": np.dtype("<f8"),
    "nexus_1ms": np.dtype("<f4"),
    "soma_0125ms": np.dtype("<f4"),
    "dend_1ms": np.dtype("<f2"),
}
REQUIRED_OUTPUTS = ("soma_1ms", "spike_times_ms")


class IntegrityError(RuntimeError):
    """A dataset's bytes do not match its manifest (altered or truncated shard, drifted inputs)."""


# ----------------------------------------------------------------------------------------------------
# Small helpers: hashing, atomic writes, canonical JSON, trial seeds
# ----------------------------------------------------------------------------------------------------

def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def canonical_json(value) -> str:
    """JSON with sorted keys and no whitespace: the form that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def pretty_json(value, indent: int = 1, _level: int = 0) -> str:
    """JSON for people: objects one key per line, lists of plain numbers or strings on one line."""
    pad, inner = " " * indent * _level, " " * indent * (_level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {pretty_json(value[k], indent, _level + 1)}"
                 for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return "[" + ", ".join(json.dumps(v, allow_nan=False) for v in value) + "]"
        return "[\n" + ",\n".join(inner + pretty_json(v, indent, _level + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def trial_seed(seed: int, trial: int) -> int:
    """The input seed of trial ``trial`` in a dataset generated with ``seed``.

    ``SeedSequence(entropy=seed, spawn_key=(trial,))`` gives streams that are independent for every
    (seed, trial) pair, unlike ``seed + trial`` (datasets with seeds 1 and 2 would share all trials but one).
    The 64-bit state is shifted to 63 bits so it fits an int64 column.
    """
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(trial),))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


TRIAL_SEED_RULE = ("trial_seed(seed, i) = SeedSequence(entropy=seed, spawn_key=(i,))"
                   ".generate_state(1, uint64)[0] >> 1")


def trial_output_sha256(outputs: dict) -> str:
    """sha256 over a trial's outputs in storage dtype (names, shapes and little-endian bytes)."""
    h = hashlib.sha256()
    for name, dtype in OUTPUT_DTYPES.items():
        if name not in outputs or outputs[name] is None:
            continue
        arr = np.ascontiguousarray(np.asarray(outputs[name]).astype(dtype, copy=False))
        h.update(name.encode())
        h.update(np.asarray(arr.shape, dtype="<i8").tobytes())
        h.update(arr.tobytes())
    return h.hexdigest()


def _versions(extra: dict | None = None) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    import platform

    from . import __version__

    out = {"neurodepth": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version}
    for dist in ("scipy", "neuron"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    out.update(extra or {})
    return out


# ----------------------------------------------------------------------------------------------------
# Writing a shard
# ----------------------------------------------------------------------------------------------------

def shard_name(index: int) -> str:
    return f"shard_{int(index):05d}.h5"


def _cast_outputs(outputs: dict, duration_ms: int, where: str) -> dict:
    """Check one trial's outputs (names, shapes, finiteness) and cast them to their storage dtypes."""
    unknown = set(outputs) - set(OUTPUT_DTYPES)
    if unknown:
        raise ValueError(f"{where}: unknown outputs {sorted(unknown)}; known: {list(OUTPUT_DTYPES)}")
    for name in REQUIRED_OUTPUTS:
        if outputs.get(name) is None:
            raise ValueError(f"{where}: output {name!r} is missing")
    out = {}
    for name, value in outputs.items():
        if value is None:
            continue
        arr = np.asarray(value)
        want = {"soma_1ms": (duration_ms,), "nexus_1ms": (duration_ms,),
                "soma_0125ms": (8 * duration_ms,)}.get(name)
        if want is not None and arr.shape != want:
            raise ValueError(f"{where}: {name} has shape {arr.shape}, expected {want}")
        if name == "dend_1ms" and (arr.ndim != 2 or arr.shape[1] != duration_ms):
            raise ValueError(f"{where}: dend_1ms has shape {arr.shape}, expected (segments, {duration_ms})")
        if name == "spike_times_ms" and arr.ndim != 1:
            raise ValueError(f"{where}: spike_times_ms must be 1-D, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: {name} holds NaN or infinite values")
        out[name] = np.ascontiguousarray(arr.astype(OUTPUT_DTYPES[name]))
    return out


def write_shard(path: str | os.PathLike, *, attrs: dict, trial_index, input_seed, input_sha256,
                outputs: list[dict], events: list[InputEvents] | None = None) -> dict:
    """Write one shard atomically (temporary name, fsync, rename) and return its manifest entry.

    Parameters
    ----------
    path : final file name (``.../shard_00003.h5``).
    attrs : JSON-able facts stored as HDF5 attributes (plan id, shard index, first trial, ...).
    trial_index, input_seed, input_sha256 : one value per trial.
    outputs : per trial a dict ``{"soma_1ms": (T,), "spike_times_ms": (k,), ...}`` (see module docstring).
    events : inputs given from outside, stored as sparse events (``None``: inputs are stored as recipes).

    Returns
    -------
    dict with ``name``, ``n_trials``, ``sha256``, ``size_bytes`` and ``n_spikes`` (per trial).
    """
    path = Path(path)
    n = len(outputs)
    if n == 0:
        raise ValueError("a shard needs at least one trial")
    duration_ms = int(attrs["duration_ms"])
    trial_index = np.asarray(trial_index, dtype="<i8")
    input_seed = np.asarray(input_seed, dtype="<i8")
    if trial_index.shape != (n,) or input_seed.shape != (n,) or len(input_sha256) != n:
        raise ValueError(f"{path.name}: trial_index, input_seed and input_sha256 need {n} entries each")
    cast = [_cast_outputs(o, duration_ms, f"{path.name} trial {int(trial_index[i])}")
            for i, o in enumerate(outputs)]
    names = set(cast[0])
    if any(set(c) != names for c in cast):
        raise ValueError(f"{path.name}: all trials of a shard must carry the same outputs")
    if "dend_1ms" in names and len({c["dend_1ms"].shape for c in cast}) != 1:
        raise ValueError(f"{path.name}: trials differ in their number of dendritic segments")
    out_sha = [trial_output_sha256(c) for c in cast]

    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    kw = dict(track_times=False)
    try:
        with h5py.File(tmp, "w", libver=H5_LIBVER) as f:
            for key in sorted(attrs):
                value = attrs[key]
                f.attrs[key] = canonical_json(value) if isinstance(value, (dict, list)) else (
                    "" if value is None else value)
            f.create_dataset("trial_index", data=trial_index, **kw)
            f.create_dataset("input_seed", data=input_seed, **kw)
            f.create_dataset("input_sha256", data=np.asarray([s.encode() for s in input_sha256], "S64"), **kw)
            f.create_dataset("output_sha256", data=np.asarray([s.encode() for s in out_sha], "S64"), **kw)
            for name in ("soma_1ms", "nexus_1ms", "soma_0125ms"):
                if name in names:
                    f.create_dataset(name, data=np.stack([c[name] for c in cast]), **kw)
            if "dend_1ms" in names:
                k = cast[0]["dend_1ms"].shape[0]
                ds = f.create_dataset("dend_1ms", shape=(n, k, duration_ms), dtype=OUTPUT_DTYPES["dend_1ms"],
                                      chunks=(1, k, duration_ms), **kw)
                for i, c in enumerate(cast):
                    ds[i] = c["dend_1ms"]
            spikes = [c["spike_times_ms"] for c in cast]
            offsets = np.concatenate([[0], np.cumsum([len(s) for s in spikes])]).astype("<i8")
            f.create_dataset("spike_times_ms", data=np.concatenate(spikes).astype("<f8"), **kw)
            f.create_dataset("spike_offsets", data=offsets, **kw)
            if events is not None:
                if len(events) != n:
                    raise ValueError(f"{path.name}: {len(events)} input trials for {n} output trials")
                ev_off = np.concatenate([[0], np.cumsum([e.n_events for e in events])]).astype("<i8")
                f.create_dataset("event_channel", data=np.concatenate([e.channel for e in events]).astype("<i4"), **kw)
                f.create_dataset("event_time_ms", data=np.concatenate([e.time_ms for e in events]).astype("<i4"), **kw)
                f.create_dataset("event_offsets", data=ev_off, **kw)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        digest, size = file_sha256(tmp), tmp.stat().st_size
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return {"name": path.name, "n_trials": n, "sha256": digest, "size_bytes": int(size),
            "n_spikes": [int(len(s)) for s in spikes]}


def read_shard_attrs(path: str | os.PathLike) -> dict:
    """A shard's attributes (JSON-encoded values decoded); raises :class:`IntegrityError` if unreadable."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            attrs = {}
            for k, v in f.attrs.items():
                v = v.decode() if isinstance(v, bytes) else v
                if isinstance(v, str) and v.startswith(("[", "{")):
                    v = json.loads(v)
                attrs[k] = v.item() if isinstance(v, np.generic) else v
            return attrs
    except OSError as err:
        raise IntegrityError(f"shard {path.name} in {path.parent} cannot be read as HDF5 "
                             f"(truncated or not a shard): {err}") from None


def shard_entry_from_file(path: str | os.PathLike) -> dict:
    """Rebuild a manifest entry from a complete shard file (used when a run died before recording it)."""
    path = Path(path)
    read_shard_attrs(path)
    with h5py.File(path, "r") as f:
        offsets = f["spike_offsets"][()]
        n = int(f["trial_index"].shape[0])
    return {"name": path.name, "n_trials": n, "sha256": file_sha256(path), "size_bytes": path.stat().st_size,
            "n_spikes": np.diff(offsets).astype(int).tolist()}


# ----------------------------------------------------------------------------------------------------
# Manifest
# ----------------------------------------------------------------------------------------------------

def plan_id(plan: dict) -> str:
    """sha256 of the canonical JSON of a generation plan: two runs with the same id make the same data."""
    return hashlib.sha256(canonical_json(plan).encode()).hexdigest()


def new_manifest(plan: dict, shard_layout: list[dict], versions_extra: dict | None = None) -> dict:
    """A manifest for ``plan`` with every shard still pending (``sha256`` None)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "plan_id": plan_id(plan),
        "plan": plan,
        "versions": _versions(versions_extra),
        "complete": False,
        "shards": [dict(s, sha256=None, size_bytes=None, n_spikes=None) for s in shard_layout],
    }


def read_manifest(directory: str | os.PathLike) -> dict:
    path = Path(directory) / MANIFEST_NAME
    if not path.exists():
        raise FileNotFoundError(f"{directory} is not a dataset: no {MANIFEST_NAME}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise IntegrityError(f"{path} is not valid JSON: {err}") from None
    if manifest.get("format") != FORMAT:
        raise IntegrityError(f"{path} is not a {FORMAT} manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise IntegrityError(f"{path} has format version {manifest['format_version']}; this library reads "
                             f"up to {FORMAT_VERSION}: upgrade neurodepth")
    if manifest.get("plan_id") != plan_id(manifest.get("plan", {})):
        raise IntegrityError(f"{path}: the plan was edited after the data were made (plan_id mismatch)")
    return manifest


def write_manifest(directory: str | os.PathLike, manifest: dict) -> Path:
    """Write the manifest atomically; shards are listed in index order so the bytes do not depend on
    the order in which tasks finished."""
    manifest = dict(manifest)
    manifest["shards"] = sorted(manifest["shards"], key=lambda s: s["first_trial"])
    manifest["complete"] = all(s.get("sha256") for s in manifest["shards"])
    text = pretty_json(manifest) + "\n"
    return atomic_write_bytes(Path(directory) / MANIFEST_NAME, text.encode())


# ----------------------------------------------------------------------------------------------------
# Reading: TrialDataset
# ----------------------------------------------------------------------------------------------------

@dataclass
class Trial:
    """One simulated trial (arrays in mV and ms; ``dend_1ms`` is ``(segments, T)``)."""

    index: int
    shard: str
    input_seed: int
    inputs: InputEvents
    soma_1ms: np.ndarray
    spike_times_ms: np.ndarray
    nexus_1ms: np.ndarray | None = None
    soma_0125ms: np.ndarray | None = None
    dend_1ms: np.ndarray | None = None

    @property
    def duration_ms(self) -> int:
        return int(self.soma_1ms.shape[0])

    @property
    def rate_hz(self) -> float:
        return 1000.0 * len(self.spike_times_ms) / self.duration_ms


class TrialDataset:
    """A dataset directory opened for reading.

    Checksums are verified lazily: a shard's sha256 (and size) is checked against the manifest the first
    time any of its trials is read, and regenerated inputs are checked against their recorded checksum
    every time. Failures raise :class:`IntegrityError` naming the shard and, where it can be located, the
    trial. Call :meth:`verify` to check everything up front.

    Parameters
    ----------
    path : the dataset directory.
    allow_incomplete : open a dataset whose generation has not finished (only finished shards are visible).
    shards : show only these finished shards (names): a fixed view of a dataset that is still growing, so
        that trial numbers mean the same in every process that opens it.
    """

    def __init__(self, path: str | os.PathLike, *, allow_incomplete: bool = False, shards=None):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        plan = self.manifest["plan"]
        self.plan = plan
        done = [s for s in self.manifest["shards"] if s.get("sha256")]
        if not self.manifest["complete"] and not allow_incomplete:
            missing = len(self.manifest["shards"]) - len(done)
            raise IntegrityError(f"dataset {self.path} is incomplete ({missing} of "
                                 f"{len(self.manifest['shards'])} shards missing): rerun the same "
                                 f"generation command to finish it, or pass allow_incomplete=True")
        self._shards = sorted(done, key=lambda s: s["first_trial"])
        # visible trials: the finished shards, renumbered 0..n-1 in trial order
        self._starts = np.cumsum([0] + [s["n_trials"] for s in self._shards]).tolist()
        if shards is not None:
            self._restrict_to(list(shards))
        self._verified: set[str] = set()
        self._files: dict[str, h5py.File] = {}
        self.input_settings = (InputSettings.from_dict(plan["input_settings"])
                               if plan.get("input_settings") else None)

    def _restrict_to(self, shard_names) -> None:
        by_name = {s["name"]: s for s in self._shards}
        missing = [n for n in shard_names if n not in by_name]
        if missing:
            raise IntegrityError(f"dataset {self.path}: shard(s) {', '.join(missing)} are no longer finished")
        self._shards = sorted((by_name[n] for n in shard_names), key=lambda s: s["first_trial"])
        self._starts = np.cumsum([0] + [s["n_trials"] for s in self._shards]).tolist()

    @property
    def complete(self) -> bool:
        """True when every planned shard is finished and visible (not a view of some shards)."""
        return bool(self.manifest["complete"]) and len(self._shards) == len(self.manifest["shards"])

    @property
    def n_planned(self) -> int:
        """Trials the generation plan asked for (``len(self)`` counts the finished ones)."""
        return int(self.plan["n_trials"])

    # ------------------------------------------------------------------ description
    @property
    def cell(self) -> str:
        return self.plan["cell"]

    @property
    def condition(self) -> str | None:
        return self.plan.get("condition")

    @property
    def duration_ms(self) -> int:
        return int(self.plan["duration_ms"])

    @property
    def n_channels(self) -> int:
        return int(self.plan["n_channels"])

    @property
    def inputs_stored_as(self) -> str:
        return self.plan["inputs"]

    @property
    def shard_names(self) -> list[str]:
        return [s["name"] for s in self._shards]

    @property
    def shard_checksums(self) -> dict[str, str]:
        """``{shard name: sha256}`` of the visible (finished) shards, in trial order."""
        return {s["name"]: s["sha256"] for s in self._shards}

    def __len__(self) -> int:
        return self._starts[-1]

    def __repr__(self) -> str:
        return (f"TrialDataset({str(self.path)!r}, cell={self.cell!r}, condition={self.condition!r}, "
                f"trials={len(self)}, duration_ms={self.duration_ms}, shards={len(self._shards)})")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for f in getattr(self, "_files", {}).values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - closing during interpreter shutdown
                pass
        getattr(self, "_files", {}).clear()

    def __del__(self):
        self.close()

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of the recorded outputs (``soma_1ms``, ``spike_times_ms``, ...)."""
        if not self._shards:
            return ()
        f = self._open(0)
        return tuple(n for n in OUTPUT_DTYPES if n in f)

    @property
    def disk_bytes(self) -> int:
        return sum(s["size_bytes"] for s in self._shards) + (self.path / MANIFEST_NAME).stat().st_size

    # ------------------------------------------------------------------ shard access and verification
    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"trial index must be an integer, got {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"trial {i} out of range for a dataset of {n} trials")
        k = bisect.bisect_right(self._starts, i) - 1
        return k, i - self._starts[k]

    def _shard_path(self, k: int) -> Path:
        return self.path / self._shards[k]["name"]

    def verify_shard(self, k: int) -> None:
        """Check shard ``k``'s size and sha256 against the manifest; raise naming it (and the trial)."""
        entry = self._shards[k]
        path = self._shard_path(k)
        if entry["name"] in self._verified:
            return
        if not path.exists():
            raise IntegrityError(f"shard {entry['name']} of dataset {self.path} is missing")
        size = path.stat().st_size
        if size != entry["size_bytes"]:
            raise IntegrityError(f"shard {entry['name']} of dataset {self.path} has {size} bytes but the "
                                 f"manifest records {entry['size_bytes']}: the file is truncated or altered")
        digest = file_sha256(path)
        if digest != entry["sha256"]:
            raise IntegrityError(f"shard {entry['name']} of dataset {self.path} does not match its sha256 "
                                 f"in the manifest: the file was altered{self._locate_damage(k)}")
        self._verified.add(entry["name"])

    def _locate_damage(self, k: int) -> str:
        """Best effort: which trial's outputs no longer match their recorded hash."""
        try:
            with h5py.File(self._shard_path(k), "r") as f:
                names = [n for n in OUTPUT_DTYPES if n in f and n != "spike_times_ms"]
                offsets = f["spike_offsets"][()]
                recorded = f["output_sha256"][()]
                index = f["trial_index"][()]
                for j in range(len(recorded)):
                    outs = {n: f[n][j] for n in names}
                    outs["spike_times_ms"] = f["spike_times_ms"][offsets[j]:offsets[j + 1]]
                    if trial_output_sha256(outs) != recorded[j].decode():
                        return f"; trial {int(index[j])} (row {j} of the shard) differs from its recorded hash"
        except Exception:  # noqa: BLE001 - the file may be too damaged to say more
            return ""
        return "; the trial outputs match their hashes, so the damage is in metadata or inputs"

    def _open(self, k: int) -> h5py.File:
        name = self._shards[k]["name"]
        if name not in self._files:
            self.verify_shard(k)
            try:
                self._files[name] = h5py.File(self._shard_path(k), "r")
            except OSError as err:
                raise IntegrityError(f"shard {name} of dataset {self.path} cannot be opened: {err}") from None
        return self._files[name]

    def verify(self, inputs: bool = True, progress: bool = False) -> dict:
        """Check every shard's sha256 and (when ``inputs``) every trial's regenerated-input checksum.

        Returns ``{"shards": n, "trials": n}`` when everything matches; raises :class:`IntegrityError`.
        """
        it = range(len(self._shards))
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="verifying shards", unit="shard")
        for k in it:
            self.verify_shard(k)
            if inputs:
                for j in range(self._shards[k]["n_trials"]):
                    self._inputs_at(k, j)
        trial_index = np.concatenate([self._open(k)["trial_index"][()] for k in range(len(self._shards))]) \
            if self._shards else np.zeros(0, int)
        expected = np.concatenate([np.arange(s["first_trial"], s["first_trial"] + s["n_trials"])
                                   for s in self._shards]) if self._shards else np.zeros(0, int)
        if not np.array_equal(trial_index, expected):
            raise IntegrityError(f"dataset {self.path}: the shards' trial numbers are not the planned ones")
        return {"shards": len(self._shards), "trials": len(self)}

    # ------------------------------------------------------------------ trials
    def trial_numbers(self) -> np.ndarray:
        """Global trial numbers (as planned) of the visible trials, in order."""
        return np.concatenate([np.arange(s["first_trial"], s["first_trial"] + s["n_trials"])
                               for s in self._shards]).astype(int) if self._shards else np.zeros(0, int)

    def _inputs_at(self, k: int, j: int) -> InputEvents:
        f = self._open(k)
        name = self._shards[k]["name"]
        recorded = f["input_sha256"][j].decode()
        g = int(f["trial_index"][j])
        if "event_offsets" in f:
            lo, hi = f["event_offsets"][j], f["event_offsets"][j + 1]
            events = InputEvents(f["event_channel"][lo:hi], f["event_time_ms"][lo:hi], self.n_channels,
                                 self.duration_ms)
            what = "stored input events"
        else:
            if self.input_settings is None:
                raise IntegrityError(f"shard {name}: trial {g} has no stored inputs and the manifest no recipe")
            events = generate_inputs(self.input_settings, self.duration_ms, int(f["input_seed"][j]))
            what = "regenerated inputs"
        got = events.checksum()
        if got != recorded:
            made_with = self.manifest.get("versions", {}).get("numpy")
            raise IntegrityError(
                f"shard {name}, trial {g} (row {j}): the {what} have checksum {got[:16]}... but the dataset "
                f"recorded {recorded[:16]}...; the input generator or numpy's random stream changed "
                f"(data made with numpy {made_with}, now {np.__version__})")
        return events

    def inputs(self, i: int) -> InputEvents:
        """Trial ``i``'s input events (regenerated from the recipe, or read), checksum-verified."""
        return self._inputs_at(*self._locate(i))

    def output(self, name: str, i: int) -> np.ndarray:
        """One recorded output of trial ``i`` (``soma_1ms``, ``spike_times_ms``, ``nexus_1ms``, ...)."""
        k, j = self._locate(i)
        f = self._open(k)
        if name not in OUTPUT_DTYPES:
            raise ValueError(f"unknown output {name!r}; known: {list(OUTPUT_DTYPES)}")
        if name not in f:
            raise KeyError(f"this dataset has no {name!r} (recorded: {', '.join(self.outputs)})")
        if name == "spike_times_ms":
            lo, hi = f["spike_offsets"][j], f["spike_offsets"][j + 1]
            return f["spike_times_ms"][lo:hi]
        return f[name][j]

    def spike_times(self, i: int) -> np.ndarray:
        return self.output("spike_times_ms", i)

    def trial(self, i: int, *, dendrites: bool = False) -> Trial:
        """Everything about trial ``i``; dendritic voltages (large) only when ``dendrites`` is true."""
        k, j = self._locate(i)
        f = self._open(k)
        get = lambda n: f[n][j] if n in f else None  # noqa: E731
        lo, hi = f["spike_offsets"][j], f["spike_offsets"][j + 1]
        return Trial(index=int(i), shard=self._shards[k]["name"], input_seed=int(f["input_seed"][j]),
                     inputs=self._inputs_at(k, j), soma_1ms=f["soma_1ms"][j],
                     spike_times_ms=f["spike_times_ms"][lo:hi], nexus_1ms=get("nexus_1ms"),
                     soma_0125ms=get("soma_0125ms"), dend_1ms=get("dend_1ms") if dendrites else None)

    def __getitem__(self, i: int) -> Trial:
        return self.trial(i)

    def __iter__(self):
        for i in range(len(self)):
            yield self.trial(i)

    def stack(self, name: str, trials=None) -> np.ndarray:
        """A dense output of many trials, ``(n, T)`` (or ``(n, K, T)`` for ``dend_1ms``)."""
        trials = range(len(self)) if trials is None else trials
        return np.stack([self.output(name, int(i)) for i in trials]) if len(trials) else np.zeros((0,))

    def spike_counts(self) -> np.ndarray:
        """Output spikes per trial (from the manifest: no shard is read)."""
        return np.concatenate([np.asarray(s["n_spikes"], int) for s in self._shards]) \
            if self._shards else np.zeros(0, int)

    def summary(self) -> dict:
        """Trials, simulated time, output firing rates (Hz) and disk size."""
        counts = self.spike_counts()
        rates = counts / (self.duration_ms / 1000.0) if len(counts) else np.zeros(0)
        return {
            "path": str(self.path), "cell": self.cell, "condition": self.condition,
            "trials": int(len(self)), "shards": len(self._shards),
            "complete": bool(self.manifest["complete"]),
            "duration_ms": self.duration_ms, "simulated_s": len(self) * self.duration_ms / 1000.0,
            "rate_hz_mean": float(rates.mean()) if len(rates) else float("nan"),
            "rate_hz_std": float(rates.std()) if len(rates) else float("nan"),
            "rate_hz_median": float(np.median(rates)) if len(rates) else float("nan"),
            "silent_fraction": float((counts == 0).mean()) if len(counts) else float("nan"),
            "disk_bytes": int(self.disk_bytes),
        }


def open_dataset(path: str | os.PathLike, *, allow_incomplete: bool = False, shards=None) -> TrialDataset:
    """Open a dataset directory for reading (see :class:`TrialDataset`)."""
    return TrialDataset(path, allow_incomplete=allow_incomplete, shards=shards)


# ----------------------------------------------------------------------------------------------------
# Training targets (paper_facts 1.5 and 1.8)
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetTransform:
    """How recorded outputs become training targets (defaults: the paper's L5PC NMDA rules).

    - soma target: ``min(v, soma_clip_mV) - soma_bias_mV``; ``soma_bias_mV=None`` means "the mean of the
      clipped training voltage" (the I&F rule), filled in by :meth:`fit_bias`.
    - spike target: 1 in bin ``int(t - spike_bin_offset_ms)`` for each spike time ``t`` (the authors'
      ``int(t - 0.5)`` for the L5PC, whose spike times are peaks of the 8-kHz trace; 0 for the I&F, whose
      spikes are emitted on the 1-ms grid).
    - a window ``[t_end - W, t_end)`` has ``t_end`` in ``[max(warmup_ms, W), duration)`` (the paper:
      ``[500, 6000)``), so no window ends inside the first 500 ms.
    - dendritic target: voltages clipped at ``dend_clip_mV``, projected on ``n_dend_components`` whitened
      principal components (fitted on training trials), clipped to ``+-pca_clip``.
    """

    soma_clip_mV: float = -55.0
    soma_bias_mV: float | None = -67.7
    spike_bin_offset_ms: float = 0.5
    warmup_ms: int = 500
    dend_clip_mV: float = 2.0
    n_dend_components: int = 20
    pca_clip: float = 3.0

    def __post_init__(self):
        if not np.isfinite(self.soma_clip_mV):
            raise ValueError(f"soma_clip_mV must be finite, got {self.soma_clip_mV}")
        if self.soma_bias_mV is not None and not np.isfinite(self.soma_bias_mV):
            raise ValueError(f"soma_bias_mV must be finite or None, got {self.soma_bias_mV}")
        if int(self.warmup_ms) < 0:
            raise ValueError(f"warmup_ms must be >= 0, got {self.warmup_ms}")
        if int(self.n_dend_components) < 1:
            raise ValueError(f"n_dend_components must be >= 1, got {self.n_dend_components}")
        if self.pca_clip <= 0:
            raise ValueError(f"pca_clip must be positive, got {self.pca_clip}")

    @classmethod
    def paper(cls, cell: str, condition: str | None = None) -> "TargetTransform":
        """The paper's rules for ``cell`` (``"iaf"`` or a NEURON cell) and ``condition``."""
        if cell == "iaf":
            return cls(soma_clip_mV=-54.9, soma_bias_mV=None, spike_bin_offset_ms=0.0)
        return cls(n_dend_components=20 if (condition or "NMDA") == "NMDA" else 30)

    def soma_target(self, v_mV: np.ndarray) -> np.ndarray:
        if self.soma_bias_mV is None:
            raise ValueError("soma_bias_mV is None (use the training mean): call fit_bias first")
        return (np.minimum(v_mV, self.soma_clip_mV) - self.soma_bias_mV).astype(np.float32)

    def spike_bins(self, spike_times_ms: np.ndarray, duration_ms: int) -> np.ndarray:
        """Bin index of each spike: ``int(t - spike_bin_offset_ms)`` (truncation, as Python's ``int``)."""
        bins = np.trunc(np.asarray(spike_times_ms, float) - self.spike_bin_offset_ms).astype(int)
        return np.clip(bins, 0, duration_ms - 1)

    def spike_target(self, spike_times_ms: np.ndarray, duration_ms: int) -> np.ndarray:
        out = np.zeros(duration_ms, dtype=np.float32)
        out[self.spike_bins(spike_times_ms, duration_ms)] = 1.0
        return out

    def fit_bias(self, v_mV_trials) -> "TargetTransform":
        """A copy with ``soma_bias_mV`` set to the mean clipped voltage after warm-up (if it was None)."""
        if self.soma_bias_mV is not None:
            return self
        total, count = 0.0, 0
        for v in v_mV_trials:
            part = np.minimum(np.asarray(v, float)[self.warmup_ms:], self.soma_clip_mV)
            total, count = total + part.sum(), count + part.size
        if count == 0:
            raise ValueError("no voltage samples after warm-up to fit the bias on")
        return replace(self, soma_bias_mV=float(total / count))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TargetTransform":
        return cls(**data)


@dataclass(frozen=True, eq=False)
class WhitenedPCA:
    """Whitened principal components of clipped dendritic voltages (paper_facts 1.5).

    ``transform(v)`` maps ``(segments, T)`` voltages to ``(n_components, T)``: clip at ``clip_mV``,
    subtract ``mean``, project on ``components`` and divide by ``scale`` (the components' standard
    deviations), then clip to ``+-out_clip``.
    """

    mean: np.ndarray        # (K,)
    components: np.ndarray  # (n, K), orthonormal rows, largest variance first
    scale: np.ndarray       # (n,)
    clip_mV: float = 2.0
    out_clip: float = 3.0

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def transform(self, v_mV: np.ndarray) -> np.ndarray:
        v = np.minimum(np.asarray(v_mV, np.float64), self.clip_mV)
        z = (self.components @ (v - self.mean[:, None])) / self.scale[:, None]
        return np.clip(z, -self.out_clip, self.out_clip).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "components": self.components.tolist(),
                "scale": self.scale.tolist(), "clip_mV": self.clip_mV, "out_clip": self.out_clip}

    @classmethod
    def from_dict(cls, d: dict) -> "WhitenedPCA":
        return cls(np.asarray(d["mean"]), np.asarray(d["components"]), np.asarray(d["scale"]),
                   float(d["clip_mV"]), float(d["out_clip"]))


def fit_dendritic_pca(voltages, n_components: int, *, clip_mV: float = 2.0, out_clip: float = 3.0,
                      warmup_ms: int = 500) -> WhitenedPCA:
    """Fit a whitened PCA on ``(segments, T)`` dendritic voltage traces (an iterable of trials).

    Uses the samples after ``warmup_ms``; accumulates the mean and covariance trial by trial (float64),
    so memory stays ``O(K^2)``.
    """
    s1 = s2 = None
    count = 0
    for v in voltages:
        x = np.minimum(np.asarray(v, np.float64)[:, warmup_ms:], clip_mV)
        s1 = x.sum(axis=1) if s1 is None else s1 + x.sum(axis=1)
        s2 = x @ x.T if s2 is None else s2 + x @ x.T
        count += x.shape[1]
    if count < 2:
        raise ValueError("need at least two voltage samples after warm-up to fit a PCA")
    k = s1.shape[0]
    if not 1 <= n_components <= k:
        raise ValueError(f"n_components must be in [1, {k}], got {n_components}")
    mean = s1 / count
    cov = s2 / count - np.outer(mean, mean)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:n_components]
    comps = evecs[:, order].T
    # fix each component's sign (largest loading positive) so fits are reproducible
    comps *= np.sign(comps[np.arange(n_components), np.argmax(np.abs(comps), axis=1)])[:, None]
    scale = np.sqrt(np.maximum(evals[order], 1e-12))
    return WhitenedPCA(mean=mean, components=comps, scale=scale, clip_mV=clip_mV, out_clip=out_clip)


def split_trials(n_trials: int, valid_fraction: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, valid) trial indices; the I&F code holds out 5 % for validation."""
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    order = np.random.default_rng(seed).permutation(int(n_trials))
    n_valid = int(round(valid_fraction * n_trials))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


# ----------------------------------------------------------------------------------------------------
# Training windows
# ----------------------------------------------------------------------------------------------------

@dataclass
class _EventCache:
    """All trials' input events in RAM: trial i's events are ``[offsets[i], offsets[i+1])``, time-sorted."""

    channel: np.ndarray
    time_ms: np.ndarray
    offsets: np.ndarray
    checksums: list = field(default_factory=list)

    def window(self, trial: int, start_ms: int, stop_ms: int, out: np.ndarray) -> None:
        lo, hi = self.offsets[trial], self.offsets[trial + 1]
        t = self.time_ms[lo:hi]
        a, b = np.searchsorted(t, start_ms), np.searchsorted(t, stop_ms)
        out[self.channel[lo + a:lo + b], t[a:b] - start_ms] = 1.0


def _cache_key(dataset: TrialDataset, trials: np.ndarray) -> str:
    h = hashlib.sha256(dataset.manifest["plan_id"].encode())
    # trial numbers count the visible shards: name them, so a view of a growing dataset gets its own key
    h.update(",".join(dataset.shard_names).encode())
    h.update(np.asarray(trials, "<i8").tobytes())
    return h.hexdigest()


def input_cache_path(cache_dir, dataset: TrialDataset, trials) -> Path:
    """Where the materialised inputs of ``trials`` of ``dataset`` live in a cache directory shared by many
    runs (sweeps): one HDF5 file per (dataset plan, visible shards, trials)."""
    return Path(cache_dir) / f"inputs-{_cache_key(dataset, np.asarray(trials, dtype=np.int64))[:32]}.h5"


def cached_inputs(dataset: TrialDataset, trials, cache_dir, *, workers: int = 0, progress: bool = False) -> list:
    """:func:`materialise_inputs` through the shared cache in ``cache_dir`` (made on the first call)."""
    trials = np.asarray([int(i) for i in trials], dtype=np.int64)
    cache = _load_event_cache(dataset, trials, input_cache_path(cache_dir, dataset, trials), progress, workers)
    o = cache.offsets
    return [InputEvents(cache.channel[o[k]:o[k + 1]], cache.time_ms[o[k]:o[k + 1]], dataset.n_channels,
                        dataset.duration_ms) for k in range(len(trials))]


def _inputs_of_trials(path: str, shard_names: list, trials: list) -> list:
    """Worker: the checksum-verified input events of some trials, as plain arrays. ``trials`` number the
    trials of ``shard_names`` (the shards the caller saw), so shards finished since then cannot shift them."""
    with TrialDataset(path, allow_incomplete=True, shards=shard_names) as ds:
        return [(e.channel, e.time_ms) for e in (ds.inputs(int(i)) for i in trials)]


def materialise_inputs(dataset: TrialDataset, trials, *, workers: int = 0, progress: bool = False) -> list:
    """Input events of ``trials`` (regenerated from their recipe or read, checksum-verified).

    ``workers > 1`` regenerates them on a spawn process pool (worth it for many L5PC trials: one 6-s trial
    takes seconds to regenerate).
    """
    trials = [int(i) for i in trials]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(trials), desc="materialising inputs", unit="trial")
    out = []
    if workers and workers > 1 and len(trials) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = [trials[k:k + 4] for k in range(0, len(trials), 4)]
        names = dataset.shard_names
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=mp.get_context("spawn")) as pool:
            for chunk, arrays in zip(chunks, pool.map(_inputs_of_trials, [str(dataset.path)] * len(chunks),
                                                       [names] * len(chunks), chunks)):
                out += [InputEvents(c, t, dataset.n_channels, dataset.duration_ms) for c, t in arrays]
                if bar is not None:
                    bar.update(len(chunk))
    else:
        for i in trials:
            out.append(dataset.inputs(i))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _load_event_cache(dataset: TrialDataset, trials: np.ndarray, cache_path, progress: bool,
                      workers: int = 0) -> _EventCache:
    key = _cache_key(dataset, trials)
    if cache_path is not None:
        cache_path = Path(cache_path)
        if cache_path.exists():
            try:
                with h5py.File(cache_path, "r") as f:
                    if f.attrs.get("key") == key:
                        return _EventCache(f["channel"][()], f["time_ms"][()], f["offsets"][()],
                                           [s.decode() for s in f["checksums"][()]])
            except OSError:
                pass  # unreadable cache: rebuild it
    events = materialise_inputs(dataset, trials, workers=workers, progress=progress)  # checksum-verified
    cache = _EventCache(
        channel=np.concatenate([e.channel for e in events]) if events else np.zeros(0, np.int32),
        time_ms=np.concatenate([e.time_ms for e in events]) if events else np.zeros(0, np.int32),
        offsets=np.concatenate([[0], np.cumsum([e.n_events for e in events])]).astype(np.int64),
        checksums=[e.checksum() for e in events])
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.parent / f".{cache_path.name}.{os.getpid()}.tmp"
        with h5py.File(tmp, "w", libver=H5_LIBVER) as f:
            f.attrs["key"] = key
            f.attrs["dataset"] = str(dataset.path)
            f.create_dataset("channel", data=cache.channel, track_times=False)
            f.create_dataset("time_ms", data=cache.time_ms, track_times=False)
            f.create_dataset("offsets", data=cache.offsets, track_times=False)
            f.create_dataset("checksums", data=np.asarray([c.encode() for c in cache.checksums], "S64"),
                             track_times=False)
        os.replace(tmp, cache_path)
    return cache


class WindowSampler:
    """Random training windows from a dataset, the paper's way (paper_facts 1.5).

    Implements the training loop's batch-sampler interface, ``sample(rng, batch_size, window_ms)``, and the
    map-style dataset protocol (``len`` and ``[i]``, usable with ``torch.utils.data.DataLoader``), and
    serves full trials for evaluation (:meth:`full_trial`).

    As in the authors' training code (paper_facts 2.2), each batch item picks a trial at random (with
    replacement) and a window end ``t_end`` uniformly from ``[max(warmup_ms, W), duration)`` (without
    replacement within the batch); the window covers ``[t_end - W, t_end)``. Targets: ``spikes = 1`` in the
    bin ``int(t - offset)`` of each spike time ``t``; ``soma = min(v, clip) - bias``; optionally
    ``dendritic``: whitened PCA components of the clipped dendritic voltages.

    Parameters
    ----------
    dataset : TrialDataset or a path to one.
    trials : which trials to use (default: all), e.g. one half of :func:`split_trials`.
    transform : TargetTransform (default: ``TargetTransform.paper(cell, condition)``). A ``None`` bias is
        fitted on these trials: pass ``train.transform`` to a validation sampler so both share it.
    dendritic : also serve dendritic PCA targets (needs ``dend_1ms`` in the dataset).
    pca : a fitted :class:`WhitenedPCA` (default: fit on these trials).
    cache_path : an HDF5 file keeping the materialised inputs between sessions (default: RAM only).
    workers : regenerate the inputs on this many processes (default: in this process).
    window_ms, windows_per_epoch, seed : size and count of the windows served by ``[i]`` (window ``i`` is
        a deterministic function of ``seed`` and ``i``).
    """

    def __init__(self, dataset, *, trials=None, transform: TargetTransform | None = None,
                 dendritic: bool = False, pca: WhitenedPCA | None = None, cache_path=None,
                 window_ms: int = 400, windows_per_epoch: int | None = None, seed: int = 0,
                 progress: bool = False, workers: int = 0):
        if not isinstance(dataset, TrialDataset):
            dataset = open_dataset(dataset)
        self.dataset = dataset
        n = len(dataset)
        trials = np.arange(n) if trials is None else np.asarray(trials, dtype=int)
        if trials.ndim != 1 or len(trials) == 0:
            raise ValueError("trials must be a non-empty 1-D list of trial indices")
        if trials.min() < 0 or trials.max() >= n:
            raise ValueError(f"trial indices must be in [0, {n}), got {trials.min()}..{trials.max()}")
        self.trials = trials
        self.duration_ms = dataset.duration_ms
        self.n_channels = dataset.n_channels
        transform = transform or TargetTransform.paper(dataset.cell, dataset.condition)
        self._check_window(window_ms, transform)
        self.window_ms = int(window_ms)
        self.seed = int(seed)
        self.windows_per_epoch = int(windows_per_epoch or len(trials))

        # outputs -> targets, in RAM (float32 soma, uint8 spikes)
        soma = np.stack([dataset.output("soma_1ms", int(i)) for i in trials])
        self.transform = transform.fit_bias(soma)
        self.soma_mV = soma
        self.soma = self.transform.soma_target(soma)
        self.spikes = np.zeros((len(trials), self.duration_ms), dtype=np.uint8)
        self.spike_times_ms = [dataset.spike_times(int(i)) for i in trials]
        for r, t in enumerate(self.spike_times_ms):
            self.spikes[r, self.transform.spike_bins(t, self.duration_ms)] = 1
        self.pca = None
        self.dendritic = None
        if dendritic:
            if "dend_1ms" not in dataset.outputs:
                raise ValueError("dendritic=True but this dataset has no dendritic voltages "
                                 "(generate it with record_dendrites=True)")
            dend = lambda: (dataset.output("dend_1ms", int(i)) for i in trials)  # noqa: E731
            self.pca = pca or fit_dendritic_pca(dend(), self.transform.n_dend_components,
                                                clip_mV=self.transform.dend_clip_mV,
                                                out_clip=self.transform.pca_clip,
                                                warmup_ms=self.transform.warmup_ms)
            self.dendritic = np.stack([self.pca.transform(v) for v in dend()])
        self._events = _load_event_cache(dataset, trials, cache_path, progress, workers)

    def _check_window(self, window_ms, transform=None) -> int:
        transform = transform or self.transform
        if isinstance(window_ms, bool) or int(window_ms) != window_ms or window_ms < 1:
            raise ValueError(f"window_ms must be a positive whole number, got {window_ms!r}")
        if max(transform.warmup_ms, int(window_ms)) >= self.duration_ms:
            raise ValueError(f"window_ms={window_ms} with warm-up {transform.warmup_ms} ms does not fit "
                             f"trials of {self.duration_ms} ms")
        return int(window_ms)

    @property
    def n_dendritic(self) -> int:
        return 0 if self.pca is None else self.pca.n_components

    def end_range(self, window_ms: int) -> tuple[int, int]:
        """Half-open range ``[lo, hi)`` of window ends ``t_end`` (a window is ``[t_end - W, t_end)``)."""
        return max(self.transform.warmup_ms, window_ms), self.duration_ms

    # ------------------------------------------------------------------ numpy core
    def windows(self, rows: np.ndarray, end_ms: np.ndarray, window_ms: int) -> dict:
        """Numpy windows ``[end - W, end)`` of sampler rows ``rows`` (positions in ``self.trials``)."""
        if isinstance(window_ms, bool) or int(window_ms) != window_ms or window_ms < 1:
            raise ValueError(f"window_ms must be a positive whole number, got {window_ms!r}")
        window_ms = int(window_ms)
        rows, end_ms = np.asarray(rows, int), np.asarray(end_ms, int)
        if end_ms.size and (end_ms.min() < window_ms or end_ms.max() > self.duration_ms):
            raise ValueError(f"window ends must lie in [{window_ms}, {self.duration_ms}]")
        b = len(rows)
        x = np.zeros((b, self.n_channels, window_ms), dtype=np.float32)
        spikes = np.empty((b, window_ms), dtype=np.float32)
        soma = np.empty((b, window_ms), dtype=np.float32)
        dend = np.empty((b, self.n_dendritic, window_ms), np.float32) if self.pca is not None else None
        for k, (r, end) in enumerate(zip(rows, end_ms)):
            start = end - window_ms
            self._events.window(r, start, end, x[k])
            spikes[k] = self.spikes[r, start:end]
            soma[k] = self.soma[r, start:end]
            if dend is not None:
                dend[k] = self.dendritic[r, :, start:end]
        out = {"x": x, "spikes": spikes, "soma": soma}
        if dend is not None:
            out["dendritic"] = dend
        return out

    @staticmethod
    def _to_torch(batch: dict) -> dict:
        import torch

        return {k: torch.from_numpy(v) for k, v in batch.items()}

    # ------------------------------------------------------------------ the training loop's interface
    def sample(self, rng, batch_size: int, window_ms: int | None = None) -> dict:
        """A random batch: ``x`` (B, C, W) float32, ``spikes`` (B, W), ``soma`` (B, W) and, when dendritic
        targets are on, ``dendritic`` (B, K, W), as torch tensors. ``rng``: a numpy Generator or a seed."""
        window_ms = self.window_ms if window_ms is None else self._check_window(window_ms)
        rows, ends = self.draw(rng, batch_size, window_ms)
        return self._to_torch(self.windows(rows, ends, window_ms))

    def draw(self, rng, batch_size: int, window_ms: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The random part of :meth:`sample`: sampler rows (with replacement) and window ends ``t_end``
        (ms; without replacement within the batch while the range allows)."""
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        window_ms = self.window_ms if window_ms is None else self._check_window(window_ms)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        lo, hi = self.end_range(window_ms)
        rows = rng.integers(0, len(self.trials), size=int(batch_size))
        ends = lo + rng.choice(hi - lo, size=int(batch_size), replace=int(batch_size) > hi - lo)
        return rows, ends

    def __len__(self) -> int:
        return self.windows_per_epoch

    def __getitem__(self, i: int) -> dict:
        """Window ``i`` of an epoch (deterministic in ``seed`` and ``i``), without a batch dimension."""
        if not 0 <= int(i) < len(self):
            raise IndexError(f"window {i} out of range [0, {len(self)})")
        rng = np.random.default_rng([self.seed, int(i)])
        lo, hi = self.end_range(self.window_ms)
        row, end = int(rng.integers(0, len(self.trials))), int(rng.integers(lo, hi))
        return {k: v[0] for k, v in self._to_torch(self.windows([row], [end], self.window_ms)).items()}

    # ------------------------------------------------------------------ evaluation
    def full_trial(self, row: int, as_torch: bool = True) -> dict:
        """Whole trial ``self.trials[row]``: ``x`` (1, C, T), ``spikes`` (1, T), ``soma`` (1, T) targets,
        ``dendritic`` (1, K, T) when on, plus ``soma_mV`` (raw) and ``spike_times_ms``; evaluation should
        ignore the first ``transform.warmup_ms``."""
        row = int(row)
        if not 0 <= row < len(self.trials):
            raise IndexError(f"row {row} out of range [0, {len(self.trials)})")
        batch = self.windows([row], [self.duration_ms], self.duration_ms)
        batch = self._to_torch(batch) if as_torch else batch
        batch["soma_mV"] = self.soma_mV[row]
        batch["spike_times_ms"] = self.spike_times_ms[row]
        batch["trial"] = int(self.trials[row])
        return batch

    def full_trials(self, as_torch: bool = True):
        """Iterate :meth:`full_trial` over every trial of this sampler."""
        for row in range(len(self.trials)):
            yield self.full_trial(row, as_torch=as_torch)
