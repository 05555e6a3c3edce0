"""Output spikes: found in a voltage trace (:func:`detect_spikes`) and matched between two spike trains
(:func:`match_spikes`). The one place these rules live; simulation, tests, benchmarks and notebooks use them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["detect_spikes", "match_spikes", "SpikeMatch"]


def detect_spikes(v_mV: np.ndarray, dt_ms: float, threshold_mV: float = -25.0) -> np.ndarray:
    """Times (ms, float64) of local maxima of ``v_mV`` above ``threshold_mV``.

    A local maximum rises strictly from the previous sample and falls strictly to the next one; the first
    and last samples are never spikes.
    """
    v = np.asarray(v_mV, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"v_mV must be 1-D, got shape {v.shape}")
    if v.size < 3:
        return np.zeros(0)
    mid = v[1:-1]
    peaks = (mid > v[:-2]) & (mid > v[2:]) & (mid > threshold_mV)
    return (np.flatnonzero(peaks) + 1) * float(dt_ms)



class SpikeMatch:
    """How two spike trains agree: ``matched`` of ``n_reference`` reference spikes have a partner among
    the ``n_other`` spikes within the tolerance; ``shifts_ms`` are the matched partners' times minus the
    reference times."""

    def __init__(self, n_reference: int, n_other: int, shifts_ms):
        self.n_reference, self.n_other = int(n_reference), int(n_other)
        self.shifts_ms = np.asarray(shifts_ms, dtype=np.float64)

    @property
    def matched(self) -> int:
        return int(self.shifts_ms.size)

    @property
    def extra(self) -> int:
        """Spikes of the other train with no reference partner."""
        return self.n_other - self.matched

    @property
    def recall(self) -> float:
        return self.matched / self.n_reference if self.n_reference else float("nan")

    @property
    def precision(self) -> float:
        return self.matched / self.n_other if self.n_other else float("nan")

    @property
    def max_abs_shift_ms(self) -> float:
        return float(np.max(np.abs(self.shifts_ms))) if self.matched else float("nan")

    @property
    def mean_abs_shift_ms(self) -> float:
        return float(np.mean(np.abs(self.shifts_ms))) if self.matched else float("nan")

    def __add__(self, other: "SpikeMatch") -> "SpikeMatch":
        """Pool two matches (for example, trials of a dataset)."""
        return SpikeMatch(self.n_reference + other.n_reference, self.n_other + other.n_other,
                          np.concatenate([self.shifts_ms, other.shifts_ms]))

    def __repr__(self) -> str:
        return (f"SpikeMatch(matched {self.matched} of {self.n_reference} reference spikes, "
                f"{self.extra} extra of {self.n_other})")


def match_spikes(reference_ms, other_ms, tolerance_ms: float = 1.0) -> SpikeMatch:
    """Match spike times one to one: each reference spike, in time order, takes the nearest spike of
    ``other_ms`` that is still free and lies within ``tolerance_ms`` (greedy; each spike is used once)."""
    if not tolerance_ms >= 0:
        raise ValueError(f"tolerance_ms must be >= 0, got {tolerance_ms!r}")
    reference = np.sort(np.asarray(reference_ms, dtype=np.float64).ravel())
    other = np.asarray(other_ms, dtype=np.float64).ravel()
    free = np.ones(other.size, dtype=bool)
    shifts = []
    for t in reference:
        distance = np.where(free, np.abs(other - t), np.inf)
        if distance.size and distance.min() <= tolerance_ms:
            j = int(np.argmin(distance))
            free[j] = False
            shifts.append(other[j] - t)
    return SpikeMatch(reference.size, other.size, shifts)
