"""The dataset format: a directory of HDF5 shards and a JSON manifest (written here, read by
:mod:`neurodepth_lib.data.store`).

A dataset is a directory::

    my_dataset/
      manifest.json          what made it: cell, condition, every parameter, seeds, versions, per-shard sha256
      shard_00000.h5         trials 0 .. k-1      (one shard per generation task)
      shard_00001.h5         trials k .. 2k-1
      ...

Each shard is written by :func:`write_shard` under a temporary name and renamed when complete, so an
interrupted generation leaves only whole shards and a rerun resumes (:mod:`neurodepth_lib.data.generation`).

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
  (``libver``), attributes written in sorted order, fixed chunks and a fixed gzip level, and every dataset
  closed as soon as it is written (HDF5 places a compressed chunk when its dataset closes, which Python
  alone would leave to whoever holds the handle last: see :func:`_close_now`). The same seeds
  therefore give byte-identical shards whichever executor ran them (with the same h5py/HDF5 build; the
  manifest records it), which the tests check. The per-trial output hashes do not depend on the build.

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
``soma_1ms``                  int16 (n, T)               somatic voltage in steps of 0.01 mV, one sample per ms
``spike_times_ms``            float64 (total,)           output spike times of all trials, concatenated
``spike_offsets``             int64 (n + 1,)             trial i's spikes are ``[offsets[i], offsets[i+1])``
``nexus_1ms`` (optional)      int16 (n, T)               apical nexus voltage in steps of 0.01 mV
``soma_0125ms`` (optional)    int16 (n, 8 T)             somatic voltage at 0.125 ms, steps of 0.01 mV
``dend_1ms`` (optional)       float16 (n, K, T)          every dendritic segment's voltage, mV
``event_channel``,            int32 (events,), int64     inputs given from outside, as sparse events
``event_time_ms``,            (n + 1,)                   (absent when inputs are stored as their recipe)
``event_offsets``
============================  =========================  =================================================

Precision and size (format 2). Soma and nexus voltages are stored as whole hundredths of a millivolt
(``int16``: -327.68 to +327.67 mV; a value outside that range is refused) in chunks of one trial, with HDF5's
shuffle and gzip (level 9) filters. Rounding to 0.01 mV moves a voltage by at most 0.005 mV, far below what
any target or metric resolves (the soma target is clipped at -55 mV; the evaluation compares voltages in
tenths of a millivolt at best). The filters are lossless, so what is read back is exactly the rounded value
(``int16 / 100`` as float32): 6 s of soma and nexus take about 14.5 kB per trial instead of 48 kB as
float32 (measured on the Hay-cell datasets). Spike times stay float64 (in float16 a time near 5,000 ms is
rounded to 4 ms, which would move spikes across the 1-ms bins the network is trained on). The optional
dendritic voltages stay float16 as the authors stored them (between -128 and -64 mV float16 steps are
0.0625 mV, far below what the clipped, PCA-whitened dendritic target resolves). Format 1 (voltages as
float32, no filters) is still read; :func:`neurodepth_lib.data.generation.reencode_dataset` rewrites a
dataset in the current format.

Inputs made by our generator are stored as their recipe (the :class:`~neurodepth_lib.inputs.InputSettings`
in the manifest, a seed and an event checksum per trial) and regenerated on load; a checksum mismatch (a
drifted random stream) is a loud :class:`IntegrityError` naming the shard and the trial.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from .._io import atomic_path, atomic_write_bytes, canonical_json, file_sha256, pretty_json
from ..inputs import InputEvents

__all__ = ["FORMAT", "FORMAT_VERSION", "READABLE_VERSIONS", "VOLTAGE_OUTPUTS", "VOLTAGE_STEP_MV",
           "STORAGE_DTYPES", "quantize_mV", "dequantize_mV", "read_stored_output", "MANIFEST_NAME", "SHARD_GLOB", "H5_LIBVER", "OUTPUT_DTYPES",
           "REQUIRED_OUTPUTS", "IntegrityError", "trial_seed", "TRIAL_SEED_RULE", "trial_output_sha256",
           "shard_name", "write_shard", "read_shard_attrs", "shard_entry_from_file", "plan_id", "new_manifest",
           "read_manifest", "write_manifest"]


FORMAT = "neurodepth-dataset"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
SHARD_GLOB = "shard_*.h5"
H5_LIBVER = ("v110", "v110")  # fixed on-disk format: same bytes from any h5py/HDF5 that writes it

# Outputs a trial can carry, in the order they enter the per-trial hash, with the dtype a reader gets.
OUTPUT_DTYPES = {
    "soma_1ms": np.dtype("<f4"),
    "spike_times_ms": np.dtype("<f8"),
    "nexus_1ms": np.dtype("<f4"),
    "soma_0125ms": np.dtype("<f4"),
    "dend_1ms": np.dtype("<f2"),
}
REQUIRED_OUTPUTS = ("soma_1ms", "spike_times_ms")
VOLTAGE_OUTPUTS = ("soma_1ms", "nexus_1ms", "soma_0125ms")  # stored as whole steps of VOLTAGE_STEP_MV
VOLTAGE_STEP_MV = 0.01
# how format 2 stores each output (format 1 stored every output in its OUTPUT_DTYPES)
STORAGE_DTYPES = {**OUTPUT_DTYPES, **{name: np.dtype("<i2") for name in VOLTAGE_OUTPUTS}}
_VOLTAGE_FILTERS = dict(compression="gzip", compression_opts=9, shuffle=True)
_DATASET_OPTIONS = dict(track_times=False)  # no timestamps in the object headers


class IntegrityError(RuntimeError):
    """A dataset's bytes do not match its manifest (altered or truncated shard, drifted inputs)."""


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


def quantize_mV(v_mV, where: str = "voltage") -> np.ndarray:
    """Voltages (mV) as whole steps of :data:`VOLTAGE_STEP_MV` (int16), rounding half to even."""
    q = np.rint(np.asarray(v_mV, dtype=np.float64) / VOLTAGE_STEP_MV)
    if q.size and (q.min() < -32768 or q.max() > 32767):
        raise ValueError(f"{where}: a voltage outside -327.68..327.67 mV cannot be stored "
                         f"(range {np.min(v_mV):.2f} to {np.max(v_mV):.2f} mV)")
    return q.astype("<i2")


def dequantize_mV(q) -> np.ndarray:
    """Stored voltage steps back to mV (float32, the nearest float32 to ``q / 100``)."""
    return np.asarray(q).astype(np.float32) / np.float32(round(1.0 / VOLTAGE_STEP_MV))


def trial_output_sha256(stored: dict) -> str:
    """sha256 over a trial's outputs as stored (names, shapes and little-endian bytes, in the order of
    :data:`OUTPUT_DTYPES`). Hashing what is stored means a damaged trial is found without decoding."""
    h = hashlib.sha256()
    for name in OUTPUT_DTYPES:
        if name not in stored or stored[name] is None:
            continue
        arr = np.asarray(stored[name])
        arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
        h.update(name.encode())
        h.update(np.asarray(arr.shape, dtype="<i8").tobytes())
        h.update(arr.tobytes())
    return h.hexdigest()


def _versions(extra: dict | None = None) -> dict:
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
    """Check one trial's outputs (names, shapes, finiteness) and convert them to what format 2 stores."""
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
        if name in VOLTAGE_OUTPUTS:
            out[name] = quantize_mV(arr, f"{where}: {name}")
        else:
            out[name] = np.ascontiguousarray(arr.astype(STORAGE_DTYPES[name]))
    return out


def _close_now(ds: h5py.Dataset, attrs: dict | None = None) -> None:
    """Give the dataset ``ds`` its ``attrs``, then close it here, whoever else still refers to its handle.

    HDF5 places a compressed chunk in the file when its dataset closes. Left to Python, that happens when the
    last reference to the handle goes: at once, normally, but later when something else holds the frame of
    the h5py call that made it, as Dask's worker profiler does while it processes a sample of the running
    task (every 10 ms), or a debugger. A one-trial shard's soma chunk (a dataset of a single chunk) then lands
    after the datasets written next, and the same trials give other bytes (tests/data/test_generation.py
    holds every handle h5py returns and checks the bytes do not change). Closing the handle (not just
    dropping it) closes the dataset here whatever holds the Python object.
    """
    for key, value in (attrs or {}).items():
        ds.attrs[key] = value
    ds.id.close()


def _add_dataset(f: h5py.File, name: str, **kwargs) -> None:
    """Create and write the dataset ``name`` without timestamps, and close it at once (:func:`_close_now`)."""
    _close_now(f.create_dataset(name, **_DATASET_OPTIONS, **kwargs))


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

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver=H5_LIBVER) as f:
            for key in sorted(attrs):
                value = attrs[key]
                f.attrs[key] = canonical_json(value) if isinstance(value, (dict, list)) else (
                    "" if value is None else value)
            _add_dataset(f, "trial_index", data=trial_index)
            _add_dataset(f, "input_seed", data=input_seed)
            _add_dataset(f, "input_sha256", data=np.asarray([s.encode() for s in input_sha256], "S64"))
            _add_dataset(f, "output_sha256", data=np.asarray([s.encode() for s in out_sha], "S64"))
            for name in VOLTAGE_OUTPUTS:
                if name in names:
                    data = np.stack([c[name] for c in cast])
                    _add_dataset(f, name, data=data, chunks=(1, data.shape[1]), **_VOLTAGE_FILTERS)
                    _close_now(f[name], attrs={"step_mV": VOLTAGE_STEP_MV})
            dend = None
            if "dend_1ms" in names:
                k = cast[0]["dend_1ms"].shape[0]
                dend = f.create_dataset("dend_1ms", shape=(n, k, duration_ms), dtype=OUTPUT_DTYPES["dend_1ms"],
                                        chunks=(1, k, duration_ms), **_DATASET_OPTIONS)
                for i, c in enumerate(cast):
                    dend[i] = c["dend_1ms"]
            spikes = [c["spike_times_ms"] for c in cast]
            offsets = np.concatenate([[0], np.cumsum([len(s) for s in spikes])]).astype("<i8")
            _add_dataset(f, "spike_times_ms", data=np.concatenate(spikes).astype("<f8"))
            _add_dataset(f, "spike_offsets", data=offsets)
            if events is not None:
                if len(events) != n:
                    raise ValueError(f"{path.name}: {len(events)} input trials for {n} output trials")
                ev_off = np.concatenate([[0], np.cumsum([e.n_events for e in events])]).astype("<i8")
                _add_dataset(f, "event_channel", data=np.concatenate([e.channel for e in events]).astype("<i4"))
                _add_dataset(f, "event_time_ms", data=np.concatenate([e.time_ms for e in events]).astype("<i4"))
                _add_dataset(f, "event_offsets", data=ev_off)
            if dend is not None:  # closed last, as shards with dendrites always had it (it places its chunks)
                _close_now(dend)
        digest, size = file_sha256(tmp), tmp.stat().st_size
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
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IntegrityError(f"{path} is not a {FORMAT} manifest")
    if manifest.get("format_version", 0) not in READABLE_VERSIONS:
        raise IntegrityError(f"{path} has format version {manifest['format_version']}; this library reads "
                             f"up to {FORMAT_VERSION}: upgrade neurodepth")
    missing = [k for k in ("plan", "plan_id", "shards", "complete") if k not in manifest]
    if missing:
        raise IntegrityError(f"{path} is damaged: it lacks {', '.join(map(repr, missing))}; regenerate the "
                             f"dataset or restore its manifest")
    if not isinstance(manifest["plan"], dict) or not isinstance(manifest["shards"], list):
        raise IntegrityError(f"{path} is damaged: 'plan' must be an object and 'shards' a list")
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


def read_stored_output(f: h5py.File, name: str, row: int) -> np.ndarray:
    """Output ``name`` of row ``row`` of an open shard as a reader wants it: voltages in mV (float32),
    whether the shard stores them as format-2 steps or as format-1 float32."""
    data = f[name][row]
    if name in VOLTAGE_OUTPUTS and data.dtype.kind == "i":
        return dequantize_mV(data)
    return data
