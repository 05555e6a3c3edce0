"""What a trained network learned: first-layer filters as spatio-temporal templates (paper_facts 3.5).

>>> from neurodepth_lib import analysis, models
>>> model = models.load_model("runs/teaching_nmda")                           # doctest: +SKIP
>>> maps = analysis.filter_maps(model, cell.segments.region)                  # doctest: +SKIP
>>> plots.plot_filter_templates(maps, maps.strongest(3)[0])                   # doctest: +SKIP

The paper's recipe, reproduced by :func:`filter_maps`: a first-layer kernel (filters x inputs x taps) is
time-flipped so that lag 0 is the millisecond just before the output, smoothed along time with a 2- or
3-tap moving average, cut to the most recent 40 ms, split into excitatory and inhibitory inputs (channels
``0..n-1`` and ``n..2n-1`` of a cell with ``n`` dendritic segments) and grouped by region (basal, oblique,
tuft). A filter is sign-flipped when its excitatory-minus-inhibitory sum over the last 12 ms is negative, so
that every template reads "excitation here, recently" (the ReLU that follows is not sign-symmetric, so the
flip is for display only). Mean temporal profiles per region are averaged over the region's synapses.
This module imports torch only through :mod:`neurodepth_lib.nets`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["first_layer_kernel", "FilterMaps", "filter_maps", "REGION_ORDER"]

REGION_ORDER = ("basal", "oblique", "tuft")


def first_layer_kernel(model) -> np.ndarray:
    """The first hidden layer's kernel as numpy ``(filters, inputs, lags)`` with lag 0 = the most recent ms.

    ``model`` is a :class:`~neurodepth_lib.nets.TCN`. PyTorch's causal convolution multiplies tap ``j`` of
    a kernel of size ``k`` with the input at ``t - (k - 1) + j``, so the last tap is lag 0: the kernel is
    flipped along time.
    """
    w = model.hidden[0].conv.weight.detach().cpu().numpy()
    return np.ascontiguousarray(w[:, :, ::-1]).astype(np.float64)


def _moving_average(x: np.ndarray, taps: int) -> np.ndarray:
    if taps <= 1:
        return x
    kernel = np.ones(taps) / taps
    pad = [(0, 0)] * (x.ndim - 1) + [(taps // 2, taps - 1 - taps // 2)]
    xp = np.pad(x, pad, mode="edge")
    out = np.zeros_like(x)
    for i in range(taps):
        out += kernel[i] * xp[..., i:i + x.shape[-1]]
    return out


@dataclass(frozen=True, eq=False)
class FilterMaps:
    """First-layer filters arranged as the paper shows them.

    Attributes
    ----------
    lags_ms : (L,) lag of each column, 0 = the ms before the output
    exc, inh : (filters, n_segments, L) excitatory / inhibitory weights per synapse, rows in segment order
    regions : (n_segments,) region of each row
    flipped : (filters,) bool, which filters were sign-flipped
    profiles : ``{region: (exc (filters, L), inh (filters, L))}`` mean over the region's synapses
    """

    lags_ms: np.ndarray
    exc: np.ndarray
    inh: np.ndarray
    regions: np.ndarray
    flipped: np.ndarray
    profiles: dict

    @property
    def n_filters(self) -> int:
        return int(self.exc.shape[0])

    def strongest(self, n: int = 3) -> list[int]:
        """Indices of the ``n`` filters with the largest weight norm (the most structured ones first)."""
        norm = np.sqrt((self.exc ** 2).sum(axis=(1, 2)) + (self.inh ** 2).sum(axis=(1, 2)))
        return [int(i) for i in np.argsort(norm)[::-1][:n]]

    def region_rows(self, region: str) -> np.ndarray:
        return np.flatnonzero(self.regions == region)


def filter_maps(model_or_kernel, regions, *, smooth_taps: int = 3, last_ms: int = 40,
                sign_window_ms: int = 12) -> FilterMaps:
    """The paper's filter display (paper_facts 3.5) from a TCN (or a kernel from :func:`first_layer_kernel`).

    Parameters
    ----------
    regions : (n_segments,) region per dendritic segment (``cell.segments.region``); the model's inputs must
        be ``2 * n_segments`` channels: excitatory synapses first, then inhibitory ones in the same order.
    smooth_taps : moving average along time (the paper used 2 or 3).
    last_ms : keep the most recent ``last_ms`` lags (the paper: 40).
    sign_window_ms : flip a filter whose excitatory-minus-inhibitory sum over the last this many ms is < 0.
    """
    kernel = model_or_kernel if isinstance(model_or_kernel, np.ndarray) else first_layer_kernel(model_or_kernel)
    if kernel.ndim != 3:
        raise ValueError(f"kernel must be (filters, inputs, lags), got shape {kernel.shape}")
    regions = np.asarray(regions)
    n = regions.size
    if kernel.shape[1] != 2 * n:
        raise ValueError(f"the kernel has {kernel.shape[1]} inputs but {n} segments need {2 * n} "
                         "(excitatory then inhibitory)")
    if int(smooth_taps) < 1 or int(last_ms) < 1 or int(sign_window_ms) < 1:
        raise ValueError("smooth_taps, last_ms and sign_window_ms must be >= 1")
    k = _moving_average(kernel, int(smooth_taps))[:, :, : int(last_ms)]
    exc, inh = k[:, :n].copy(), k[:, n:].copy()
    w = min(int(sign_window_ms), k.shape[-1])
    score = exc[:, :, :w].sum(axis=(1, 2)) - inh[:, :, :w].sum(axis=(1, 2))
    flipped = score < 0
    exc[flipped] *= -1
    inh[flipped] *= -1
    profiles = {}
    for region in REGION_ORDER:
        rows = np.flatnonzero(regions == region)
        if rows.size:
            profiles[region] = (exc[:, rows].mean(axis=1), inh[:, rows].mean(axis=1))
    return FilterMaps(lags_ms=np.arange(k.shape[-1]), exc=exc, inh=inh, regions=regions, flipped=flipped,
                      profiles=profiles)
