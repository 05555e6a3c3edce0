"""How recorded outputs become training targets: the paper's soma, spike and dendritic rules.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

__all__ = ["TargetTransform", "WhitenedPCA", "fit_dendritic_pca", "split_trials"]


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


