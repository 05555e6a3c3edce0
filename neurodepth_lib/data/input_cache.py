"""Input events of many trials, materialised once (in RAM or an HDF5 cache file shared between runs).
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from .. import _parallel
from .._io import atomic_path
from ..inputs import InputEvents
from .shards import H5_LIBVER
from .store import TrialDataset

__all__ = ["EventCache", "input_cache_path", "cached_inputs", "materialise_inputs", "load_event_cache"]

@dataclass
class EventCache:
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
    cache = load_event_cache(dataset, trials, input_cache_path(cache_dir, dataset, trials), progress, workers)
    o = cache.offsets
    return [InputEvents(cache.channel[o[k]:o[k + 1]], cache.time_ms[o[k]:o[k + 1]], dataset.n_channels,
                        dataset.duration_ms) for k in range(len(trials))]


def _inputs_of_trials(task: dict) -> dict:
    """Worker: the checksum-verified input events of some trials, as plain arrays. The trials number the
    trials of the shards the caller saw, so shards finished since then cannot shift them."""
    with TrialDataset(task["path"], allow_incomplete=True, shards=task["shards"]) as ds:
        return {"chunk": task["chunk"],
                "arrays": [(e.channel, e.time_ms) for e in (ds.inputs(int(i)) for i in task["trials"])]}


def materialise_inputs(dataset: TrialDataset, trials, *, workers: int = 0, progress: bool = False) -> list:
    """Input events of ``trials`` (regenerated from their recipe or read, checksum-verified).

    ``workers > 1`` regenerates them on a spawn process pool (worth it for many L5PC trials: one 6-s trial
    takes seconds to regenerate).
    """
    trials = [int(i) for i in trials]
    bar = tqdm(total=len(trials), desc="materialising inputs", unit="trial") if progress else None
    out = []
    if workers and workers > 1 and len(trials) > 1:
        tasks = [{"path": str(dataset.path), "shards": dataset.shard_names, "chunk": k, "trials": trials[a:a + 4]}
                 for k, a in enumerate(range(0, len(trials), 4))]
        done: dict[int, list] = {}

        def on_done(result: dict) -> None:
            done[result["chunk"]] = result["arrays"]
            if bar is not None:
                bar.update(len(result["arrays"]))

        _parallel.run_tasks(_inputs_of_trials, tasks, workers=int(workers), client=None, on_done=on_done,
                            name_of=lambda t: f"trials {t['trials']}", what="materialising inputs of")
        out = [InputEvents(c, t, dataset.n_channels, dataset.duration_ms)
               for k in range(len(tasks)) for c, t in done[k]]
    else:
        for i in trials:
            out.append(dataset.inputs(i))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _verified(cache: EventCache, dataset: TrialDataset, trials: np.ndarray) -> str | None:
    """Why the cached events of ``trials`` cannot be trusted, or None when each trial's events hash to the
    input sha256 the dataset recorded for that trial (and to the checksum stored beside them)."""
    o = cache.offsets
    if o.shape != (len(trials) + 1,) or len(cache.checksums) != len(trials) or o[0] != 0 \
            or np.any(np.diff(o) < 0) or o[-1] != cache.channel.size or cache.time_ms.size != cache.channel.size:
        return "its layout does not match the trials it claims to hold"
    for k, i in enumerate(trials):
        try:
            got = InputEvents(cache.channel[o[k]:o[k + 1]], cache.time_ms[o[k]:o[k + 1]], dataset.n_channels,
                              dataset.duration_ms).checksum()
        except (ValueError, TypeError) as err:  # events out of range: the file was altered
            return f"trial {int(i)}'s events are invalid ({err})"
        if got != cache.checksums[k] or got != dataset.input_sha256(int(i)):
            return f"trial {int(i)}'s events do not match the checksum the dataset recorded"
    return None


def load_event_cache(dataset: TrialDataset, trials: np.ndarray, cache_path, progress: bool,
                      workers: int = 0) -> EventCache:
    """The input events of ``trials`` in RAM, through the cache file ``cache_path`` (None: no file).

    A cache file is trusted only after each trial's events are recomputed into their checksum and compared
    with the input sha256 the dataset recorded for that trial: a damaged or altered file is rebuilt (with a
    warning saying so), never trained on.
    """
    key = _cache_key(dataset, trials)
    if cache_path is not None:
        cache_path = Path(cache_path)
        if cache_path.exists():
            problem = None
            try:
                with h5py.File(cache_path, "r") as f:
                    if f.attrs.get("key") == key:
                        cached = EventCache(f["channel"][()], f["time_ms"][()], f["offsets"][()],
                                            [s.decode() for s in f["checksums"][()]])
                        problem = _verified(cached, dataset, trials)
                        if problem is None:
                            return cached
            except (OSError, KeyError, ValueError, UnicodeDecodeError) as err:
                problem = f"it cannot be read ({type(err).__name__})"
            if problem is not None:
                warnings.warn(f"input cache {cache_path} is damaged ({problem}): rebuilding it from the dataset",
                              stacklevel=2)
    events = materialise_inputs(dataset, trials, workers=workers, progress=progress)  # checksum-verified
    cache = EventCache(
        channel=np.concatenate([e.channel for e in events]) if events else np.zeros(0, np.int32),
        time_ms=np.concatenate([e.time_ms for e in events]) if events else np.zeros(0, np.int32),
        offsets=np.concatenate([[0], np.cumsum([e.n_events for e in events])]).astype(np.int64),
        checksums=[e.checksum() for e in events])
    if cache_path is not None:
        with atomic_path(cache_path) as tmp, h5py.File(tmp, "w", libver=H5_LIBVER) as f:
            f.attrs["key"] = key
            f.attrs["dataset"] = str(dataset.path)
            f.create_dataset("channel", data=cache.channel, track_times=False)
            f.create_dataset("time_ms", data=cache.time_ms, track_times=False)
            f.create_dataset("offsets", data=cache.offsets, track_times=False)
            f.create_dataset("checksums", data=np.asarray([c.encode() for c in cache.checksums], "S64"),
                             track_times=False)
    return cache


