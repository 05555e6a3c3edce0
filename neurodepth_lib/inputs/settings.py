"""What the generator draws from: the paper's rate ranges, groups of channels (:class:`InputGroup`) and
:class:`InputSettings`, for the I&F neuron, for a cell's trees, and with out-of-distribution changes switched on.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._checks import low_high_pair
from .ood import OODOptions, kmeans_labels, segment_clusters, segment_xyz_um

__all__ = ["L5PC_INTERVAL_CHOICES_MS", "L5PC_SIGMA_CHOICES_MS", "IAF_INTERVAL_CHOICES_MS", "IAF_SIGMA_CHOICES_MS",
           "L5PC_RATE_RANGES_PER_100MS", "HAY_ADJUSTED_LENGTH_UM", "hay_rates_for_tree", "InputGroup",
           "InputSettings", "iaf_input_settings", "tree_input_settings", "ood_settings", "cell_ood_settings"]


# ----------------------------------------------------------------------------------------------------
# The instantaneous-rate generator (paper_facts 1.3 for the L5PC, 1.8 for the I&F neuron)
# ----------------------------------------------------------------------------------------------------

# The L5PC dataset's choices of rate-change interval and smoothing width (ms), before the +-20 ms jitter.
L5PC_INTERVAL_CHOICES_MS = (25, 30, 35, 40, 45, 55, 60, 65, 70, 75, 80, 85, 90, 100, 150, 200, 300, 450)


L5PC_SIGMA_CHOICES_MS = (25, 30, 35, 40, 50, 60, 80, 100, 150, 200, 300, 400, 500, 600)


# The integrate-and-fire variant's choices (paper Fig. 1).
IAF_INTERVAL_CHOICES_MS = (25, 30, 35, 40, 50, 60, 70, 80, 90, 100)


IAF_SIGMA_CHOICES_MS = (40, 60, 80, 100)


# Coarse rate ranges per tree, in spikes per tree per 100 ms: (excitation range, inhibition-minus-excitation range).
L5PC_RATE_RANGES_PER_100MS = {
    "NMDA": {"basal": ((0.0, 800.0), (-600.0, 200.0)), "apical": ((0.0, 800.0), (-600.0, 200.0))},
    "AMPA": {"basal": ((0.0, 1900.0), (-1650.0, 150.0)), "apical": ((0.0, 2000.0), (-1650.0, 150.0))},
    "AMPA_SK": {"basal": ((0.0, 1900.0), (-1500.0, 300.0)), "apical": ((0.0, 2000.0), (-1500.0, 300.0))},
}


# Adjusted length (sum of segment lengths + 10 um per segment) of the Hay cell1 trees (paper_facts 1.1): the
# paper's coarse rates are totals over these, so its rate density is total / adjusted length.
HAY_ADJUSTED_LENGTH_UM = {"basal": 5133.5 + 262 * 10.0, "apical": 7440.9 + 377 * 10.0}


def hay_rates_for_tree(synapses: str, adjusted_length_um: float, like: str | None = None, factor: float = 1.0,
                       condition_factor: float = 1.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """The paper's coarse rate ranges carried over to a tree of another cell at the same input per um.

    ``synapses`` is the paper's condition whose ranges apply (``"NMDA"``, ``"AMPA"``, ``"AMPA_SK"``);
    ``like`` the Hay tree it stands for (``"basal"`` or ``"apical"``; None: both Hay trees together). Returns
    ``(excitation range, inhibition-minus-excitation range)``, each the Hay range times
    ``factor x adjusted_length_um / the Hay tree's adjusted length x condition_factor`` (a cell's own factor
    for one condition, e.g. the teaching cell's AMPA scale; multiplied in this order, which the plans of
    shipped datasets depend on to the last bit).
    """
    refs = list(HAY_ADJUSTED_LENGTH_UM) if like is None else [like]
    if any(r not in HAY_ADJUSTED_LENGTH_UM for r in refs):
        raise ValueError(f"like must be 'basal', 'apical' or None, got {like!r}")
    paper = L5PC_RATE_RANGES_PER_100MS[synapses]
    f = float(factor) * float(adjusted_length_um) / sum(HAY_ADJUSTED_LENGTH_UM[r] for r in refs)
    f *= float(condition_factor)
    (elo, ehi), (dlo, dhi) = (tuple(sum(paper[r][i][j] for r in refs) for j in (0, 1)) for i in (0, 1))
    return (elo * f, ehi * f), (dlo * f, dhi * f)


@dataclass(frozen=True)
class InputGroup:
    """Synapses whose coarse rates are drawn together: a dendritic subtree, or all inputs of a point neuron.

    Per rate interval, the group draws a total excitatory rate ``E ~ U(exc_total_per_100ms)`` and a total
    inhibitory rate ``I ~ U(max(0, E + lo), E + hi)`` with ``(lo, hi) = inh_minus_exc_per_100ms`` (a
    negative draw becomes ``min_total_per_100ms``). Totals are in spikes per group per 100 ms and are
    shared among the channels in proportion to their ``sizes`` (the L5PC uses segment length + 10 um),
    each channel times its own ``U(noise_range)`` factor per interval.
    """

    name: str
    exc_channels: tuple[int, ...]
    inh_channels: tuple[int, ...]
    exc_total_per_100ms: tuple[float, float]
    inh_minus_exc_per_100ms: tuple[float, float]
    exc_sizes: tuple[float, ...] | None = None
    inh_sizes: tuple[float, ...] | None = None
    min_total_per_100ms: float = 1e-4

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass normalisation
        for kind in ("exc", "inh"):
            channels = tuple(int(c) for c in getattr(self, f"{kind}_channels"))
            set_(f"{kind}_channels", channels)
            sizes = getattr(self, f"{kind}_sizes")
            if sizes is not None:
                sizes = tuple(float(s) for s in sizes)
                if len(sizes) != len(channels):
                    raise ValueError(f"group {self.name!r}: {kind}_sizes has {len(sizes)} entries for "
                                     f"{len(channels)} {kind}_channels")
                if any(not np.isfinite(s) or s <= 0 for s in sizes):
                    raise ValueError(f"group {self.name!r}: {kind}_sizes must be positive")
                set_(f"{kind}_sizes", sizes)
        if not self.exc_channels and not self.inh_channels:
            raise ValueError(f"group {self.name!r} has no channels")
        exc = low_high_pair(self.exc_total_per_100ms, f"group {self.name!r}: exc_total_per_100ms")
        if exc[0] < 0:
            raise ValueError(f"group {self.name!r}: excitatory rates must be non-negative, got range {exc}")
        set_("exc_total_per_100ms", exc)
        set_("inh_minus_exc_per_100ms",
             low_high_pair(self.inh_minus_exc_per_100ms, f"group {self.name!r}: inh_minus_exc_per_100ms"))
        if self.min_total_per_100ms < 0:
            raise ValueError(f"group {self.name!r}: min_total_per_100ms must be >= 0")

    def shares(self, kind: str) -> np.ndarray:
        """Fraction of the group's total rate that each channel of ``kind`` ('exc' or 'inh') receives."""
        channels = getattr(self, f"{kind}_channels")
        sizes = getattr(self, f"{kind}_sizes")
        sizes = np.ones(len(channels)) if sizes is None else np.asarray(sizes)
        return sizes / sizes.sum() if len(channels) else sizes


@dataclass(frozen=True)
class InputSettings:
    """Everything the instantaneous-rate generator needs besides a duration and a seed.

    The defaults of the jitter and noise are the paper's; ``interval_choices_ms`` and
    ``sigma_choices_ms`` differ between the L5PC and the I&F datasets (see the module constants).
    ``ood`` (default None: the training distribution) turns on out-of-distribution changes
    (:class:`OODOptions`, usually made with :func:`ood_settings`); settings without it describe
    themselves (:meth:`to_dict`) and generate exactly as before the option existed.
    """

    n_channels: int
    groups: tuple[InputGroup, ...]
    interval_choices_ms: tuple[int, ...] = L5PC_INTERVAL_CHOICES_MS
    sigma_choices_ms: tuple[int, ...] = L5PC_SIGMA_CHOICES_MS
    jitter_ms: tuple[int, int] = (-20, 20)  # integer jitter in [low, high)
    noise_range: tuple[float, float] = (0.5, 1.5)
    gaussian_length_in_sigmas: int = 7  # window of 1 + 7 sigma samples
    ood: OODOptions | None = None

    def __post_init__(self):
        if int(self.n_channels) <= 0:
            raise ValueError(f"n_channels must be positive, got {self.n_channels}")
        object.__setattr__(self, "n_channels", int(self.n_channels))
        groups = tuple(self.groups)
        if not groups or not all(isinstance(g, InputGroup) for g in groups):
            raise ValueError("groups must be a non-empty sequence of InputGroup")
        object.__setattr__(self, "groups", groups)
        seen = np.zeros(self.n_channels, dtype=int)
        for g in groups:
            for c in g.exc_channels + g.inh_channels:
                if not 0 <= c < self.n_channels:
                    raise ValueError(f"group {g.name!r}: channel {c} is out of range [0, {self.n_channels})")
                seen[c] += 1
        if (seen > 1).any():
            raise ValueError(f"channel {int(np.argmax(seen > 1))} belongs to more than one group")
        jitter = tuple(int(j) for j in self.jitter_ms)
        if len(jitter) != 2 or jitter[1] <= jitter[0]:
            raise ValueError(f"jitter_ms must be (low, high) with low < high, got {self.jitter_ms}")
        object.__setattr__(self, "jitter_ms", jitter)
        for name in ("interval_choices_ms", "sigma_choices_ms"):
            choices = tuple(int(c) for c in getattr(self, name))
            if not choices or min(choices) + jitter[0] < 1:
                raise ValueError(f"{name} must be non-empty and stay >= 1 ms after jitter, got {choices}")
            object.__setattr__(self, name, choices)
        lo, hi = low_high_pair(self.noise_range, "noise_range")
        if lo < 0:
            raise ValueError(f"noise_range must be non-negative, got {self.noise_range}")
        object.__setattr__(self, "noise_range", (lo, hi))
        if self.ood is not None:
            if not isinstance(self.ood, OODOptions):
                raise TypeError(f"ood must be OODOptions or None, got {type(self.ood).__name__}")
            bad = [c for cl in self.ood.clusters for c in cl if c >= self.n_channels]
            if bad:
                raise ValueError(f"OOD cluster channel {bad[0]} is out of range [0, {self.n_channels})")

    def to_dict(self) -> dict:
        """A JSON-able description (the 'recipe' a dataset stores instead of the events).

        The ``"ood"`` entry appears only when OOD options are set, so the dict of training settings (and
        with it the plan and plan id of every dataset made before OOD options existed) is unchanged.
        """
        out = {
            "n_channels": self.n_channels,
            "groups": [
                {"name": g.name, "exc_channels": list(g.exc_channels), "inh_channels": list(g.inh_channels),
                 "exc_total_per_100ms": list(g.exc_total_per_100ms),
                 "inh_minus_exc_per_100ms": list(g.inh_minus_exc_per_100ms),
                 "exc_sizes": None if g.exc_sizes is None else list(g.exc_sizes),
                 "inh_sizes": None if g.inh_sizes is None else list(g.inh_sizes),
                 "min_total_per_100ms": g.min_total_per_100ms}
                for g in self.groups],
            "interval_choices_ms": list(self.interval_choices_ms),
            "sigma_choices_ms": list(self.sigma_choices_ms),
            "jitter_ms": list(self.jitter_ms),
            "noise_range": list(self.noise_range),
            "gaussian_length_in_sigmas": self.gaussian_length_in_sigmas,
        }
        if self.ood is not None:
            out["ood"] = self.ood.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "InputSettings":
        data = dict(data)
        data["groups"] = tuple(InputGroup(**g) for g in data["groups"])
        if data.get("ood") is not None:
            data["ood"] = OODOptions.from_dict(data["ood"])
        return cls(**data)


def iaf_input_settings(n_exc: int = 80, n_inh: int = 20) -> InputSettings:
    """The integrate-and-fire dataset's inputs (paper_facts 1.8): channels ``0..n_exc-1`` excitatory,
    then ``n_inh`` inhibitory; E ~ U(0, 50) spikes per 100 ms, I ~ U(max(0, E - 50), E - 15)."""
    if n_exc < 1 or n_inh < 0:
        raise ValueError(f"need n_exc >= 1 and n_inh >= 0, got {n_exc}, {n_inh}")
    group = InputGroup("all", exc_channels=tuple(range(n_exc)),
                       inh_channels=tuple(range(n_exc, n_exc + n_inh)),
                       exc_total_per_100ms=(0.0, 50.0), inh_minus_exc_per_100ms=(-50.0, -15.0))
    return InputSettings(n_channels=n_exc + n_inh, groups=(group,),
                         interval_choices_ms=IAF_INTERVAL_CHOICES_MS, sigma_choices_ms=IAF_SIGMA_CHOICES_MS)


def tree_input_settings(trees: dict, condition: str = "NMDA", *, n_segments: int | None = None,
                        rate_ranges: dict | None = None) -> InputSettings:
    """Inputs for a cell with one excitatory and one inhibitory synapse per dendritic segment.

    Parameters
    ----------
    trees : dict
        ``{"basal": (segment_indices, adjusted_lengths_um), "apical": (...)}``: which segments belong to
        each subtree and their sizes (the paper uses segment length + 10 um). Excitatory channel ``k`` is
        segment ``k``; inhibitory channel ``n_segments + k`` is the inhibitory synapse on segment ``k``.
    condition : str
        Picks the paper's rate ranges (``NMDA``, ``AMPA``, ``AMPA_SK``) unless ``rate_ranges`` is given.
    n_segments : int, optional
        Total number of segments (default: all segments named in ``trees``).
    rate_ranges : dict, optional
        ``{tree: ((exc_lo, exc_hi), (inh_minus_exc_lo, inh_minus_exc_hi))}`` in spikes per tree per 100 ms.
    """
    if rate_ranges is None:
        if condition not in L5PC_RATE_RANGES_PER_100MS:
            raise ValueError(f"unknown condition {condition!r}: choose one of "
                             f"{', '.join(L5PC_RATE_RANGES_PER_100MS)} or pass rate_ranges")
        rate_ranges = L5PC_RATE_RANGES_PER_100MS[condition]
    segments = {name: np.asarray(seg, dtype=int) for name, (seg, _) in trees.items()}
    if n_segments is None:
        n_segments = int(max(s.max() for s in segments.values())) + 1
    groups = []
    for name, (seg, sizes) in trees.items():
        if name not in rate_ranges:
            raise ValueError(f"no rate range for tree {name!r}; rate_ranges has {sorted(rate_ranges)}")
        exc_range, diff_range = rate_ranges[name]
        seg = tuple(int(s) for s in seg)
        groups.append(InputGroup(name, exc_channels=seg, inh_channels=tuple(n_segments + s for s in seg),
                                 exc_total_per_100ms=exc_range, inh_minus_exc_per_100ms=diff_range,
                                 exc_sizes=tuple(sizes), inh_sizes=tuple(sizes)))
    return InputSettings(n_channels=2 * n_segments, groups=tuple(groups))


def ood_settings(base: InputSettings, kinds, *, clusters=(), max_cluster_fraction: float = 0.3,
                 sync_period_ms=(15.0, 300.0), sync_depth: float = 1.0,
                 high_rate_factor=(1.0, 1.5)) -> InputSettings:
    """``base`` (training settings) with the out-of-distribution changes ``kinds`` switched on.

    ``kinds`` is one name or several of :data:`OOD_KINDS` (``"clustered"``, ``"synchronous"``,
    ``"no_inhibition"``, ``"high_rate"``); the other arguments are the fields of :class:`OODOptions`,
    which documents each change and its defaults. ``clusters`` (channel lists) is needed for
    ``"clustered"``; :func:`cell_ood_settings` makes it from a cell. The result's :meth:`~InputSettings.to_dict`
    carries an ``"ood"`` entry, so a dataset made from it has its own plan id.
    """
    if not isinstance(base, InputSettings):
        raise TypeError(f"base must be InputSettings, got {type(base).__name__}")
    if base.ood is not None:
        raise ValueError(f"base already has OOD options ({', '.join(base.ood.kinds)}); start from training settings")
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    options = OODOptions(kinds=kinds, clusters=clusters if "clustered" in kinds else (),
                         max_cluster_fraction=max_cluster_fraction, sync_period_ms=sync_period_ms,
                         sync_depth=sync_depth, high_rate_factor=high_rate_factor)
    return replace(base, ood=options)


def cell_ood_settings(cell, kinds, condition: str | None = None, *, n_clusters: int = 64, cluster_seed: int = 0,
                      **options) -> InputSettings:
    """A cell's training inputs (``cell.input_settings(condition)``) with the OOD changes ``kinds``.

    For ``"clustered"`` the cell's input segments are grouped by :func:`kmeans_labels` on their 3-D centres
    (:func:`segment_xyz_um`) into ``n_clusters`` clusters (the paper's k = 64), each cluster holding the
    excitatory and inhibitory synapses of its segments. **This differs from the authors' clustering**: they
    ran K-means (k = 64) on the cross-correlation matrix of the dendritic voltage traces, i.e. grouped segments
    that are *electrically* alike; ours groups segments that are close in space. The two agree on most
    segments of one thin branch, but ours may join segments of neighbouring branches (near the soma in
    particular) that are further apart electrically, and the sizes of the clusters differ. The authors' code
    for it is not public.

    ``options`` are :func:`ood_settings`'s. The L5PC::

        from neurodepth_lib.cells import L5PC
        settings = cell_ood_settings(L5PC("NMDA"), ("clustered", "synchronous"))
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    base = cell.input_settings(condition)
    if "clustered" in kinds:
        labels = kmeans_labels(segment_xyz_um(cell), n_clusters, seed=cluster_seed)
        options["clusters"] = segment_clusters(labels, base.n_channels)
    return ood_settings(base, kinds, **options)
