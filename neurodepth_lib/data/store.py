"""Reading a dataset directory: :class:`TrialDataset` (trials, inputs, outputs, verification).

The format is described in :mod:`neurodepth_lib.data.shards`.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from ..inputs import InputEvents, InputSettings, generate_inputs
from .._io import file_sha256
from .shards import (MANIFEST_NAME, OUTPUT_DTYPES, IntegrityError, read_manifest, read_stored_output,
                     trial_output_sha256)

__all__ = ["Trial", "TrialDataset", "open_dataset", "MismatchError", "describe_source", "check_same_source"]


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

    def input_sha256(self, i: int) -> str:
        """The sha256 of trial ``i``'s input events recorded when the dataset was made (not recomputed)."""
        k, j = self._locate(i)
        return self._open(k)["input_sha256"][j].decode()

    @property
    def source(self) -> dict:
        """What these trials are of: ``{"name", "path", "cell", "condition"}`` (see :func:`check_same_source`)."""
        return {"name": self.path.name, "path": str(self.path), "cell": self.cell, "condition": self.condition}

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
        return read_stored_output(f, name, j)

    def spike_times(self, i: int) -> np.ndarray:
        return self.output("spike_times_ms", i)

    def trial(self, i: int, *, dendrites: bool = False) -> Trial:
        """Everything about trial ``i``; dendritic voltages (large) only when ``dendrites`` is true."""
        k, j = self._locate(i)
        f = self._open(k)
        get = lambda n: read_stored_output(f, n, j) if n in f else None  # noqa: E731
        lo, hi = f["spike_offsets"][j], f["spike_offsets"][j + 1]
        return Trial(index=int(i), shard=self._shards[k]["name"], input_seed=int(f["input_seed"][j]),
                     inputs=self._inputs_at(k, j), soma_1ms=get("soma_1ms"),
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



# ---------------------------------------------------------------------------------------------------
# Which cell and condition: datasets, models and records must agree
# ---------------------------------------------------------------------------------------------------

class MismatchError(ValueError):
    """Data of one cell or condition met data, a model or a label of another (e.g. an NMDA model scored on an
    AMPA test set). Pass ``allow_mismatch=True`` (``--allow-mismatch``) for a study that means it."""


def describe_source(source: dict) -> str:
    """``l5pc/NMDA (l5pc_nmda_test)``: a source's cell, condition and name in a few words."""
    text = f"{source.get('cell')}" + (f"/{source['condition']}" if source.get("condition") else "")
    return text + (f" ({source['name']})" if source.get("name") else "")


def check_same_source(expected: dict, actual: dict, *, expected_what: str, actual_what: str,
                      allow_mismatch: bool = False) -> dict | None:
    """Check that two sources (dicts with ``cell`` and ``condition``, e.g. :attr:`TrialDataset.source` or a
    model card's ``dataset``) are of the same cell and condition, before any work is done.

    Returns None when they agree (or ``expected`` does not say: a model built in memory). On a mismatch
    raises :class:`MismatchError` naming both sides, or with ``allow_mismatch=True`` returns a record of it
    (``{"expected": ..., "actual": ..., "allowed": True}``) for the result to carry.
    """
    if not isinstance(allow_mismatch, (bool, np.bool_)):
        raise TypeError(f"allow_mismatch must be True or False, got {allow_mismatch!r}")
    if not expected or not actual or expected.get("cell") is None:
        return None
    same = (expected.get("cell") == actual.get("cell")
            and str(expected.get("condition") or "").upper() == str(actual.get("condition") or "").upper())
    if same:
        return None
    if not allow_mismatch:
        raise MismatchError(f"{actual_what} is {describe_source(actual)} but {expected_what} is "
                            f"{describe_source(expected)}: refusing to mix cells or conditions; pass "
                            f"allow_mismatch=True (--allow-mismatch) for an out-of-distribution study")
    keep = ("cell", "condition", "name")
    return {"expected": {k: expected.get(k) for k in keep}, "expected_what": expected_what,
            "actual": {k: actual.get(k) for k in keep}, "actual_what": actual_what, "allowed": True}
