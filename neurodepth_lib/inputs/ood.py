"""Out-of-distribution inputs (Beniaguev et al. 2021, STAR Methods; facts file guerguiev_and_ood_facts.md 2.2):
the options (:class:`OODOptions`: clustered, synchronous, inhibition-free and above-training-rate input), the
per-trial draws the generator makes for them, and the spatial clusters of a cell's segments. Settings that
switch them on are made in :mod:`.settings` (:func:`~.settings.ood_settings`, :func:`~.settings.cell_ood_settings`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import low_high_pair

__all__ = ["OOD_KINDS", "OODOptions", "OOD_STREAM", "kmeans_labels", "segment_xyz_um", "segment_clusters"]


# Names of the out-of-distribution manipulations (see OODOptions), in the order they are documented.
OOD_KINDS = ("clustered", "synchronous", "no_inhibition", "high_rate")


@dataclass(frozen=True)
class OODOptions:
    """Out-of-distribution changes to the paper's training inputs (Beniaguev et al. 2021, STAR Methods
    "Out-of-Distribution (OOD) simulations"; facts file guerguiev_and_ood_facts.md part 2).

    ``kinds`` names the changes applied to every trial (any combination of :data:`OOD_KINDS`):

    ``"clustered"``
        Spatially clustered input. Each trial draws a number of active clusters ``n ~ U{1, ...,
        floor(max_cluster_fraction x n_clusters)}`` (1 to 19 of 64 with the defaults: at most 30 %, as the
        paper) and then which ``n`` clusters, uniformly without replacement. Only the channels (excitatory
        and inhibitory) of the active clusters receive input; every other channel is silent. Each group's
        coarse totals are drawn as in training and shared among the group's *active* channels in proportion
        to their sizes, so a tree's total input stays in the training range while the input per active
        synapse rises (by the inverse of the active fraction of the tree; our reading of the paper's
        "training-like rates, only space changes"). A group with no active channel gets no input.
        ``clusters`` lists the channels of each cluster (disjoint); channels in no cluster never receive
        input. :func:`cell_ood_settings` makes them from a cell's geometry.
    ``"synchronous"``
        Every instantaneous rate (after smoothing) is multiplied by ``1 + sync_depth x sin(2 pi t / T +
        phi)``, one sinusoid shared by all channels. Per trial the period ``T ~ U(sync_period_ms)`` (the
        paper: 15-300 ms, held fixed for the trial) and the phase ``phi ~ U(0, 2 pi)``. The paper gives
        neither depth, phase nor the period's distribution; our defaults (depth 1: the rate swings between
        0 and twice its value and keeps its mean; uniform period and phase) are choices.
    ``"no_inhibition"``
        Every inhibitory channel is silent (the paper's excitation-only condition).
    ``"high_rate"``
        Each group's total excitation per interval is drawn from ``U(high_rate_factor x the group's
        training maximum)`` instead of its training range: ``(1.0, 1.5)`` turns the Hay cell's NMDA range
        0-800 spikes per tree per 100 ms into 800-1200, entirely above training (mean 1000 against the
        training mean 400 and maximum 800). Inhibition follows the training rule ``I = E + U(lo, hi)`` on
        the new ``E``, so it rises with it.

    Per trial, the draws of each kind come from their own stream, ``default_rng([seed, OOD_STREAM, k])``
    with ``k`` the kind's index in :data:`OOD_KINDS`, apart from the training draws (rate-change interval,
    smoothing width, totals, noise, spike sampling), which use the trial's seed exactly as in training. So
    trial ``i`` still depends only on the dataset's seed and ``i``, a kind's draws do not depend on which
    other kinds are on, and an OOD trial is a transform of the training trial with the same seed.
    """

    kinds: tuple[str, ...]
    clusters: tuple[tuple[int, ...], ...] = ()
    max_cluster_fraction: float = 0.3
    sync_period_ms: tuple[float, float] = (15.0, 300.0)
    sync_depth: float = 1.0
    high_rate_factor: tuple[float, float] = (1.0, 1.5)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass normalisation
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        bad = [k for k in kinds if k not in OOD_KINDS]
        if not kinds or bad or len(set(kinds)) != len(kinds):
            raise ValueError(f"OOD kinds must be distinct names from {', '.join(OOD_KINDS)}, got {self.kinds!r}")
        set_("kinds", tuple(k for k in OOD_KINDS if k in kinds))  # one order, so equal options compare equal
        clusters = tuple(tuple(int(c) for c in cluster) for cluster in self.clusters)
        if "clustered" in kinds:
            if not clusters or any(not cl for cl in clusters):
                raise ValueError("OOD kind 'clustered' needs clusters: a non-empty list of non-empty channel lists")
            flat = [c for cl in clusters for c in cl]
            if len(flat) != len(set(flat)) or min(flat) < 0:
                raise ValueError("OOD clusters must be disjoint lists of non-negative channels")
        elif clusters:
            raise ValueError("clusters are given but OOD kind 'clustered' is not on")
        set_("clusters", clusters)
        fraction = float(self.max_cluster_fraction)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"max_cluster_fraction must lie in (0, 1], got {self.max_cluster_fraction!r}")
        set_("max_cluster_fraction", fraction)
        period = low_high_pair(self.sync_period_ms, "sync_period_ms")
        if period[0] <= 0:
            raise ValueError(f"sync_period_ms must be positive, got {period}")
        set_("sync_period_ms", period)
        depth = float(self.sync_depth)
        if not 0.0 <= depth <= 1.0:
            raise ValueError(f"sync_depth must lie in [0, 1] (rates stay non-negative), got {self.sync_depth!r}")
        set_("sync_depth", depth)
        factor = low_high_pair(self.high_rate_factor, "high_rate_factor")
        if factor[0] < 0:
            raise ValueError(f"high_rate_factor must be non-negative, got {factor}")
        set_("high_rate_factor", factor)

    @property
    def max_active_clusters(self) -> int:
        """The most clusters one trial stimulates: ``floor(max_cluster_fraction x n_clusters)``, at least 1."""
        return max(1, int(np.floor(self.max_cluster_fraction * len(self.clusters) + 1e-9)))

    def to_dict(self) -> dict:
        return {"kinds": list(self.kinds), "clusters": [list(cl) for cl in self.clusters],
                "max_cluster_fraction": self.max_cluster_fraction, "sync_period_ms": list(self.sync_period_ms),
                "sync_depth": self.sync_depth, "high_rate_factor": list(self.high_rate_factor)}

    @classmethod
    def from_dict(cls, data: dict) -> "OODOptions":
        return cls(**data)


OOD_STREAM = 0x00D  # second entropy word of every OOD draw stream: default_rng([seed, OOD_STREAM, kind index])


def ood_draws(ood: OODOptions, n_channels: int, duration_ms: int, seed: int) -> dict:
    """One trial's OOD draws: which clusters are active (and the channel mask), and the sinusoid."""
    def stream(kind):
        return np.random.default_rng([seed, OOD_STREAM, OOD_KINDS.index(kind)])

    out = {"active_clusters": None, "active_channel": None, "sync_period_ms": None, "sync_phase_rad": None,
           "modulation": None}
    if "clustered" in ood.kinds:
        rng = stream("clustered")
        n_active = int(rng.integers(1, ood.max_active_clusters + 1))
        active = np.sort(rng.choice(len(ood.clusters), size=n_active, replace=False))
        mask = np.zeros(n_channels, dtype=bool)
        for k in active:
            mask[list(ood.clusters[k])] = True
        out.update(active_clusters=[int(k) for k in active], active_channel=mask)
    if "synchronous" in ood.kinds:
        rng = stream("synchronous")
        period = float(rng.uniform(*ood.sync_period_ms))
        phase = float(rng.uniform(0.0, 2.0 * np.pi))
        t = np.arange(duration_ms, dtype=float)
        out.update(sync_period_ms=period, sync_phase_rad=phase,
                   modulation=1.0 + ood.sync_depth * np.sin(2.0 * np.pi * t / period + phase))
    return out


def active_shares(shares: np.ndarray, active: np.ndarray) -> np.ndarray:
    """A group's shares renormalised over its active channels (all zero when none is active)."""
    kept = np.where(active, shares, 0.0)
    total = kept.sum()
    return kept / total if total > 0 else kept


def kmeans_labels(points, k: int, *, seed: int = 0, max_iter: int = 300) -> np.ndarray:
    """Cluster ``points`` (n, d) into ``k`` groups by K-means; returns each point's label (int, shape (n,)).

    k-means++ seeding from ``default_rng(seed)``, then Lloyd iterations until no label changes (or
    ``max_iter``); a cluster left empty takes the point farthest from its centre. Labels are renumbered in
    order of first appearance along the points, so the result is a deterministic function of the points
    and the seed (on one platform and numpy).
    """
    x = np.asarray(points, dtype=float)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"points must be a finite (n, d) array, got shape {x.shape}")
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= len(x):
        raise ValueError(f"k must be a whole number in [1, {len(x)}] (the number of points), got {k!r}")
    k = int(k)
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1.0 / len(x))
        centres.append(x[rng.choice(len(x), p=p)])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(axis=1))
    centres = np.array(centres)
    labels = np.full(len(x), -1)
    for _ in range(max_iter):
        dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = np.argmin(dist, axis=1)
        for j in range(k):  # an empty cluster takes the point farthest from its own centre
            if not np.any(new == j):
                far = int(np.argmax(dist[np.arange(len(x)), new]))
                new[far] = j
        if np.array_equal(new, labels):
            break
        labels = new
        centres = np.array([x[labels == j].mean(axis=0) for j in range(k)])
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)  # old label order[i] becomes label i
    relabel = np.full(k, -1)
    relabel[np.unique(labels)[order]] = np.arange(len(order))
    return relabel[labels]


def segment_xyz_um(cell) -> np.ndarray:
    """3-D centre (um) of each input segment of ``cell``, shape ``(n_segments, 3)``, in channel order.

    ``cell`` needs ``segments.section_name`` and ``segments.x`` (the :class:`~neurodepth_lib.cells.l5pc.SegmentTable`)
    and ``morphology_points()``, as the L5PC has (its reconstructed 3-D points; the teaching cell's points are
    a drawing layout, so its "positions" are schematic). Each segment's centre is interpolated along its
    section's points at arc length ``x`` times the section's arc length (as NEURON places it).
    """
    points = {name: xyz for name, _region, xyz, _diam in cell.morphology_points()}
    out = np.zeros((len(cell.segments.x), 3))
    for k, (name, x) in enumerate(zip(cell.segments.section_name, cell.segments.x)):
        xyz = points[str(name)]
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))])
        out[k] = [np.interp(float(x) * arc[-1], arc, xyz[:, j]) for j in range(3)]
    return out


def segment_clusters(labels, n_channels: int) -> tuple[tuple[int, ...], ...]:
    """Channel clusters from per-segment labels, for settings made by :func:`tree_input_settings`
    (excitatory channel ``k`` and inhibitory channel ``n_segments + k`` sit on segment ``k``)."""
    labels = np.asarray(labels, dtype=int)
    n_segments = len(labels)
    if n_channels != 2 * n_segments:
        raise ValueError(f"expected 2 x {n_segments} channels (one excitatory and one inhibitory synapse per "
                         f"segment), got {n_channels}")
    return tuple(tuple(int(c) for c in np.concatenate([seg, seg + n_segments]))
                 for seg in (np.flatnonzero(labels == j) for j in np.unique(labels)))
