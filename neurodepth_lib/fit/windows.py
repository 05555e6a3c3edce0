"""Random training windows the paper's way (paper_facts 1.5, 2.2): from arrays in memory or from a dataset.

One rule, in :class:`Windows`, for every sampler: each batch item picks a trial at random (with
replacement) and a window end ``t_end`` uniformly from the half-open range ``[max(warmup_ms, W), T)``
(without replacement within the batch while the range allows); the window covers ``[t_end - W, t_end)``.
With the paper's ``warmup_ms = 500`` and ``T = 6000``: ``t_end`` in ``[500, 6000)``, so no window ends inside
the warm-up. :class:`InMemoryWindows` serves arrays already in memory (the integrate-and-fire chapters);
:class:`WindowSampler` serves a dataset directory, turning its outputs into the paper's targets.

A sampler is what :func:`neurodepth_lib.fit.train` takes: ``sample(rng, batch_size, window_ms)`` returns
torch tensors ``x`` (B, C, W) float32, ``spikes`` (B, W), ``soma`` (B, W) and optionally ``dendritic``
(B, K, W); ``windows(rows, ends, W)`` gives the same as numpy arrays for chosen windows.
"""
from __future__ import annotations

import numpy as np
import torch

from .._checks import non_negative_int, positive_int
from ..data.input_cache import load_event_cache
from ..data.store import TrialDataset, open_dataset
from ..data.targets import TargetTransform, WhitenedPCA, fit_dendritic_pca

__all__ = ["Windows", "WindowSampler", "InMemoryWindows"]


class Windows:
    """What every window sampler shares: the paper's window rule, random batches and whole trials.

    A subclass sets ``duration_ms``, ``n_channels``, ``warmup_ms`` and ``n_rows`` (trials it serves) and
    implements :meth:`windows` (numpy arrays of chosen windows).
    """

    duration_ms: int
    n_channels: int
    warmup_ms: int

    @property
    def n_rows(self) -> int:
        raise NotImplementedError

    @property
    def n_dendritic(self) -> int:
        raise NotImplementedError

    def windows(self, rows, end_ms, window_ms: int) -> dict:
        """Numpy windows ``[end - W, end)`` of the given rows: ``x`` (B, C, W) float32, ``spikes`` and
        ``soma`` (B, W) float32, ``dendritic`` (B, K, W) when served."""
        raise NotImplementedError

    # ---- the rule ----------------------------------------------------------------------------------
    def check_window(self, window_ms) -> int:
        """``window_ms`` as an int if at least one window end fits, else ``ValueError``."""
        window_ms = positive_int(window_ms, "window_ms")
        if window_ms > self.duration_ms:
            raise ValueError(f"window_ms={window_ms} is longer than the trials ({self.duration_ms} ms)")
        if max(self.warmup_ms, window_ms) >= self.duration_ms:
            raise ValueError(f"window_ms={window_ms} with warm-up {self.warmup_ms} ms does not fit "
                             f"trials of {self.duration_ms} ms")
        return window_ms

    def end_range(self, window_ms: int) -> tuple[int, int]:
        """Half-open range ``[lo, hi)`` of window ends: ``[max(warmup_ms, W), T)``."""
        window_ms = self.check_window(window_ms)
        return max(self.warmup_ms, window_ms), self.duration_ms

    def draw(self, rng, batch_size: int, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """The random part of :meth:`sample`: rows (with replacement) and window ends (ms; without
        replacement within the batch while the range allows). ``rng``: a numpy Generator or a seed."""
        batch_size = positive_int(batch_size, "batch_size")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        lo, hi = self.end_range(window_ms)
        rows = rng.integers(0, self.n_rows, size=batch_size)
        ends = lo + rng.choice(hi - lo, size=batch_size, replace=batch_size > hi - lo)
        return rows, ends

    def sample(self, rng, batch_size: int, window_ms: int) -> dict:
        """A random batch of windows as torch tensors (see the module notes)."""
        rows, ends = self.draw(rng, batch_size, window_ms)
        return to_torch(self.windows(rows, ends, int(window_ms)))

    def full_trial(self, row: int, as_torch: bool = True) -> dict:
        """Row ``row`` whole (``[0, T)``), with a batch axis of 1; evaluation ignores the warm-up."""
        row = int(row)
        if not 0 <= row < self.n_rows:
            raise IndexError(f"row {row} out of range [0, {self.n_rows})")
        batch = self.windows([row], [self.duration_ms], self.duration_ms)
        return to_torch(batch) if as_torch else batch


def to_torch(batch: dict) -> dict:
    """Numpy arrays of a batch as torch tensors (sharing memory)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


class WindowSampler(Windows):
    """Random training windows from a dataset directory (see the module notes for the rule).

    Implements the training loop's sampler interface (:class:`Windows`), the map-style dataset protocol
    (``len`` and ``[i]``, usable with ``torch.utils.data.DataLoader``), and serves whole trials for
    evaluation (:meth:`full_trial`). Targets: ``spikes = 1`` in the bin ``int(t - offset)`` of each spike
    time ``t``; ``soma = min(v, clip) - bias``; optionally ``dendritic``: whitened PCA components of the
    clipped dendritic voltages. The warm-up is the transform's ``warmup_ms``.

    Parameters
    ----------
    dataset : TrialDataset or a path to one.
    trials : which trials to use (default: all), e.g. one half of :func:`~neurodepth_lib.data.split_trials`.
    transform : TargetTransform (default: ``TargetTransform.paper(cell, condition)``). A ``None`` bias is
        fitted on these trials: pass ``train.transform`` to a validation sampler so both share it.
    dendritic : also serve dendritic PCA targets (needs ``dend_1ms`` in the dataset).
    pca : a fitted :class:`~neurodepth_lib.data.WhitenedPCA` (default: fit on these trials).
    cache_path : an HDF5 file keeping the materialised inputs between sessions (default: RAM only).
    workers : regenerate the inputs on this many processes (default: in this process).
    window_ms, windows_per_epoch, seed : size and count of the windows served by ``[i]`` (window ``i`` is
        a deterministic function of ``seed`` and ``i``); ``window_ms`` is also :meth:`sample`'s default.
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
        self.warmup_ms = int(transform.warmup_ms)
        self.window_ms = self.check_window(window_ms)
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
        self._events = load_event_cache(dataset, trials, cache_path, progress, workers)

    @property
    def n_rows(self) -> int:
        return len(self.trials)

    @property
    def n_dendritic(self) -> int:
        return 0 if self.pca is None else self.pca.n_components

    def windows(self, rows: np.ndarray, end_ms: np.ndarray, window_ms: int) -> dict:
        """Numpy windows ``[end - W, end)`` of sampler rows ``rows`` (positions in ``self.trials``)."""
        window_ms = positive_int(window_ms, "window_ms")
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

    def sample(self, rng, batch_size: int, window_ms: int | None = None) -> dict:
        return super().sample(rng, batch_size, self.window_ms if window_ms is None else window_ms)

    def draw(self, rng, batch_size: int, window_ms: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return super().draw(rng, batch_size, self.window_ms if window_ms is None else window_ms)

    def __len__(self) -> int:
        return self.windows_per_epoch

    def __getitem__(self, i: int) -> dict:
        """Window ``i`` of an epoch (deterministic in ``seed`` and ``i``), without a batch dimension."""
        if not 0 <= int(i) < len(self):
            raise IndexError(f"window {i} out of range [0, {len(self)})")
        rng = np.random.default_rng([self.seed, int(i)])
        lo, hi = self.end_range(self.window_ms)
        row, end = int(rng.integers(0, self.n_rows)), int(rng.integers(lo, hi))
        return {k: v[0] for k, v in to_torch(self.windows([row], [end], self.window_ms)).items()}

    def full_trial(self, row: int, as_torch: bool = True) -> dict:
        """Whole trial ``self.trials[row]``: ``x`` (1, C, T), ``spikes`` (1, T), ``soma`` (1, T) targets,
        ``dendritic`` (1, K, T) when on, plus ``soma_mV`` (raw), ``spike_times_ms`` and ``trial``."""
        batch = super().full_trial(row, as_torch)
        row = int(row)
        batch["soma_mV"] = self.soma_mV[row]
        batch["spike_times_ms"] = self.spike_times_ms[row]
        batch["trial"] = int(self.trials[row])
        return batch

    def full_trials(self, as_torch: bool = True):
        """Iterate :meth:`full_trial` over every trial of this sampler."""
        for row in range(self.n_rows):
            yield self.full_trial(row, as_torch=as_torch)


class InMemoryWindows(Windows):
    """Random training windows from trials held in memory (see the module notes for the rule).

    Parameters
    ----------
    inputs : (N, C, T) 0/1 array (uint8, bool or float), numpy or torch.
    spikes : (N, T) 0/1 spike target.
    soma : (N, T) somatic target (mV, already clipped and shifted).
    dendritic : optional (N, K, T) dendritic target.
    warmup_ms : no window ends before this (the paper: 500 ms).
    """

    def __init__(self, inputs, spikes, soma, dendritic=None, warmup_ms: int = 500):
        self.inputs = _as_numpy(inputs, "inputs")
        self.spikes = _as_numpy(spikes, "spikes").astype(np.float32, copy=False)
        self.soma = _as_numpy(soma, "soma").astype(np.float32, copy=False)
        self.dendritic = None if dendritic is None else _as_numpy(dendritic, "dendritic").astype(np.float32,
                                                                                                 copy=False)
        if self.inputs.ndim != 3:
            raise ValueError(f"inputs must have shape (trials, channels, time), got {self.inputs.shape}")
        n, _, t = self.inputs.shape
        if n < 1 or t < 1:
            raise ValueError(f"inputs must hold at least one trial and one ms, got shape {self.inputs.shape}")
        for name, arr in (("spikes", self.spikes), ("soma", self.soma)):
            if arr.shape != (n, t):
                raise ValueError(f"{name} must have shape (trials, time) = {(n, t)} to match inputs, "
                                 f"got {arr.shape}")
        if self.dendritic is not None and (self.dendritic.ndim != 3 or self.dendritic.shape[0] != n
                                           or self.dendritic.shape[2] != t):
            raise ValueError(f"dendritic must have shape (trials, components, time) = ({n}, K, {t}), "
                             f"got {self.dendritic.shape}")
        if not np.isin(self.spikes, (0.0, 1.0)).all():
            raise ValueError("spikes must hold only 0 and 1 (one bin per ms)")
        if not np.isfinite(self.soma).all() or (self.dendritic is not None and not np.isfinite(self.dendritic).all()):
            raise ValueError("soma and dendritic targets must be finite (found NaN or inf)")
        if self.inputs.dtype != np.bool_ and not np.isfinite(self.inputs).all():
            raise ValueError("inputs must be finite")
        warmup_ms = non_negative_int(warmup_ms, "warmup_ms")
        if warmup_ms >= t:
            raise ValueError(f"warmup_ms={warmup_ms} leaves no window end in trials of {t} ms")
        self.warmup_ms = warmup_ms

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[0]

    n_rows = n_trials

    @property
    def n_channels(self) -> int:
        return self.inputs.shape[1]

    @property
    def duration_ms(self) -> int:
        return self.inputs.shape[2]

    @property
    def n_dendritic(self) -> int:
        return 0 if self.dendritic is None else self.dendritic.shape[1]

    def windows(self, rows, end_ms, window_ms: int) -> dict:
        rows, end_ms = np.asarray(rows, dtype=np.int64), np.asarray(end_ms, dtype=np.int64)
        idx = end_ms[:, None] - int(window_ms) + np.arange(int(window_ms))[None, :]  # (B, W) time indices
        x = self.inputs[rows[:, None], :, idx]  # advanced indexing puts the channel axis last
        batch = {"x": np.ascontiguousarray(np.transpose(x, (0, 2, 1)), dtype=np.float32),
                 "spikes": self.spikes[rows[:, None], idx], "soma": self.soma[rows[:, None], idx]}
        if self.dendritic is not None:
            batch["dendritic"] = np.transpose(self.dendritic[rows[:, None], :, idx], (0, 2, 1))
        return batch


def _as_numpy(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return a


