"""Presynaptic input: sparse events and the paper's "instantaneous-rate" generator.

The container is :class:`InputEvents`: one event per (channel, whole millisecond), sorted by time and
then channel. The generator (:func:`generate_inputs`) is defined further down, and after it the
out-of-distribution variants of its inputs (:class:`OODOptions`, :func:`ood_settings`,
:func:`cell_ood_settings`): clustered, synchronous, inhibition-free and above-training-rate input.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import oaconvolve


@dataclass(frozen=True, eq=False)
class InputEvents:
    """Presynaptic spikes of one trial as sparse events.

    Attributes
    ----------
    channel : int32 array, shape (n_events,)
        Input channel of each event, in ``[0, n_channels)``.
    time_ms : int32 array, shape (n_events,)
        Time of each event in whole milliseconds, in ``[0, duration_ms)``.
    n_channels, duration_ms : int
        Size of the dense view ``(n_channels, duration_ms)``.

    Events are sorted by time, then channel, and at most one event falls in one (channel, ms) bin.
    """

    channel: np.ndarray
    time_ms: np.ndarray
    n_channels: int
    duration_ms: int

    def __post_init__(self):
        channel = np.asarray(self.channel)
        time_ms = np.asarray(self.time_ms)
        if channel.ndim != 1 or time_ms.ndim != 1 or channel.shape != time_ms.shape:
            raise ValueError(
                f"channel and time_ms must be 1-D arrays of equal length, got shapes "
                f"{channel.shape} and {time_ms.shape}")
        for name, arr in (("channel", channel), ("time_ms", time_ms)):
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                if not np.all(np.mod(arr, 1) == 0):
                    raise ValueError(f"{name} must hold whole numbers (times in whole ms)")
        n_channels, duration_ms = int(self.n_channels), int(self.duration_ms)
        if n_channels <= 0 or duration_ms <= 0:
            raise ValueError(f"n_channels and duration_ms must be positive, got {n_channels}, {duration_ms}")
        channel = channel.astype(np.int64)
        time_ms = time_ms.astype(np.int64)
        if channel.size:
            if channel.min() < 0 or channel.max() >= n_channels:
                bad = channel[(channel < 0) | (channel >= n_channels)][0]
                raise ValueError(f"channel {bad} is out of range [0, {n_channels})")
            if time_ms.min() < 0 or time_ms.max() >= duration_ms:
                bad = time_ms[(time_ms < 0) | (time_ms >= duration_ms)][0]
                raise ValueError(f"event time {bad} ms is outside the trial [0, {duration_ms}) ms")
        key = time_ms * n_channels + channel
        order = np.argsort(key, kind="stable")
        key = key[order]
        if key.size > 1 and np.any(key[1:] == key[:-1]):
            raise ValueError("two events fall in the same (channel, ms) bin; at most one is allowed")
        object.__setattr__(self, "channel", channel[order].astype(np.int32))
        object.__setattr__(self, "time_ms", time_ms[order].astype(np.int32))
        object.__setattr__(self, "n_channels", n_channels)
        object.__setattr__(self, "duration_ms", duration_ms)

    @property
    def n_events(self) -> int:
        return int(self.channel.size)

    def __len__(self) -> int:
        return self.n_events

    def __repr__(self) -> str:
        return (f"InputEvents(n_events={self.n_events}, n_channels={self.n_channels}, "
                f"duration_ms={self.duration_ms})")

    def __eq__(self, other) -> bool:
        if not isinstance(other, InputEvents):
            return NotImplemented
        return (self.n_channels == other.n_channels and self.duration_ms == other.duration_ms
                and np.array_equal(self.channel, other.channel)
                and np.array_equal(self.time_ms, other.time_ms))

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> "InputEvents":
        """Events from a binary array of shape ``(n_channels, duration_ms)``."""
        dense = np.asarray(dense)
        if dense.ndim != 2:
            raise ValueError(f"dense input must have shape (channels, time), got {dense.shape}")
        if dense.size and not np.isin(dense, (0, 1)).all():
            raise ValueError("dense input must be binary (0/1): at most one event per channel and ms")
        time_ms, channel = np.nonzero(dense.T)  # row-major over (time, channel): already sorted
        return cls(channel=channel, time_ms=time_ms, n_channels=dense.shape[0],
                   duration_ms=dense.shape[1])

    def to_dense(self, dtype=np.uint8) -> np.ndarray:
        """Binary array of shape ``(n_channels, duration_ms)``."""
        dense = np.zeros((self.n_channels, self.duration_ms), dtype=dtype)
        dense[self.channel, self.time_ms] = 1
        return dense

    def checksum(self) -> str:
        """sha256 of the events (little-endian int32 channels, then times, then the two sizes).

        Stable across platforms and numpy versions; a dataset stores it next to an input's recipe so any
        drift of the random streams becomes a loud error.
        """
        h = hashlib.sha256()
        h.update(np.asarray([self.n_channels, self.duration_ms], dtype="<i8").tobytes())
        h.update(self.channel.astype("<i4").tobytes())
        h.update(self.time_ms.astype("<i4").tobytes())
        return h.hexdigest()

    def crop(self, start_ms: int, stop_ms: int) -> "InputEvents":
        """Events in ``[start_ms, stop_ms)``, shifted so that ``start_ms`` becomes 0."""
        if not 0 <= start_ms < stop_ms <= self.duration_ms:
            raise ValueError(f"crop window [{start_ms}, {stop_ms}) is not inside [0, {self.duration_ms})")
        keep = (self.time_ms >= start_ms) & (self.time_ms < stop_ms)
        return InputEvents(self.channel[keep], self.time_ms[keep] - start_ms, self.n_channels,
                           stop_ms - start_ms)


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


def _as_pair(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise ValueError(f"{name} must satisfy low <= high (finite), got ({lo}, {hi})")
    return lo, hi


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
        exc = _as_pair(self.exc_total_per_100ms, f"group {self.name!r}: exc_total_per_100ms")
        if exc[0] < 0:
            raise ValueError(f"group {self.name!r}: excitatory rates must be non-negative, got range {exc}")
        set_("exc_total_per_100ms", exc)
        set_("inh_minus_exc_per_100ms",
             _as_pair(self.inh_minus_exc_per_100ms, f"group {self.name!r}: inh_minus_exc_per_100ms"))
        if self.min_total_per_100ms < 0:
            raise ValueError(f"group {self.name!r}: min_total_per_100ms must be >= 0")

    def shares(self, kind: str) -> np.ndarray:
        """Fraction of the group's total rate that each channel of ``kind`` ('exc' or 'inh') receives."""
        channels = getattr(self, f"{kind}_channels")
        sizes = getattr(self, f"{kind}_sizes")
        sizes = np.ones(len(channels)) if sizes is None else np.asarray(sizes)
        return sizes / sizes.sum() if len(channels) else sizes


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
        period = _as_pair(self.sync_period_ms, "sync_period_ms")
        if period[0] <= 0:
            raise ValueError(f"sync_period_ms must be positive, got {period}")
        set_("sync_period_ms", period)
        depth = float(self.sync_depth)
        if not 0.0 <= depth <= 1.0:
            raise ValueError(f"sync_depth must lie in [0, 1] (rates stay non-negative), got {self.sync_depth!r}")
        set_("sync_depth", depth)
        factor = _as_pair(self.high_rate_factor, "high_rate_factor")
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
        lo, hi = _as_pair(self.noise_range, "noise_range")
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


@dataclass(frozen=True)
class InputDetails:
    """What the generator drew on the way to the events (for teaching plots and checks)."""

    interval_ms: int
    sigma_ms: int
    coarse_totals_per_100ms: dict  # group name -> (exc totals, inh totals), one value per interval
    rate_per_ms: np.ndarray  # (n_channels, duration_ms): smoothed expected spikes per ms
    ood: dict | None = None  # the trial's OOD draws (see _ood_draws), None for training settings


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


def _gaussian_window(sigma_ms: int, length_in_sigmas: int) -> np.ndarray:
    n = 1 + length_in_sigmas * sigma_ms
    t = np.arange(n) - (n - 1) / 2.0
    window = np.exp(-0.5 * (t / sigma_ms) ** 2)
    return window / window.sum()


def generate_inputs(settings: InputSettings, duration_ms: int, seed: int, *,
                    return_details: bool = False):
    """Draw one trial of the paper's instantaneous-rate inputs.

    Steps (paper_facts 1.3): draw a rate-change interval and a smoothing width (each a choice plus an
    integer jitter); per group and interval, draw total excitatory and inhibitory rates; share them among
    the group's channels in proportion to their sizes with a ``U(0.5, 1.5)`` factor per channel and
    interval; hold each rate for its interval in 1-ms bins; smooth with a normalised Gaussian
    ('same'-size, zero padded, so rates halve at the trial edges); then sample doubly stochastically: per
    channel and ms, ``p ~ Exponential(mean = rate)`` and a spike when ``U(0, 1) < p``.

    The stream is ``numpy.random.default_rng(seed)``, so the same settings, duration and seed give the
    same events on the same numpy; :meth:`InputEvents.checksum` detects any drift. Settings with
    ``ood`` options change the trial as :class:`OODOptions` describes, drawing what they need per trial
    from streams of their own, so the training draws above stay those of the same seed.

    Returns
    -------
    InputEvents, or ``(InputEvents, InputDetails)`` when ``return_details`` is true.
    """
    if not isinstance(settings, InputSettings):
        raise TypeError(f"settings must be InputSettings, got {type(settings).__name__}")
    if int(duration_ms) != duration_ms or duration_ms < 1:
        raise ValueError(f"duration_ms must be a positive whole number, got {duration_ms!r}")
    duration_ms = int(duration_ms)
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))

    jlo, jhi = settings.jitter_ms
    interval_ms = int(rng.choice(settings.interval_choices_ms)) + int(rng.integers(jlo, jhi))
    sigma_ms = int(rng.choice(settings.sigma_choices_ms)) + int(rng.integers(jlo, jhi))
    n_intervals = -(-duration_ms // interval_ms)

    ood = settings.ood
    draws = _ood_draws(ood, settings.n_channels, duration_ms, int(seed)) if ood is not None else None
    coarse = np.zeros((settings.n_channels, n_intervals))
    totals = {}
    nlo, nhi = settings.noise_range
    for group in settings.groups:
        e_lo, e_hi = group.exc_total_per_100ms
        if ood is not None and "high_rate" in ood.kinds:
            e_lo, e_hi = ood.high_rate_factor[0] * e_hi, ood.high_rate_factor[1] * e_hi
        d_lo, d_hi = group.inh_minus_exc_per_100ms
        exc_total = rng.uniform(e_lo, e_hi, size=n_intervals)
        inh_low = np.maximum(0.0, exc_total + d_lo)
        inh_total = inh_low + (exc_total + d_hi - inh_low) * rng.uniform(size=n_intervals)
        inh_total = np.where(inh_total < 0, group.min_total_per_100ms, inh_total)
        if ood is not None and "no_inhibition" in ood.kinds:
            inh_total = np.zeros_like(inh_total)
        totals[group.name] = (exc_total, inh_total)
        for kind, total in (("exc", exc_total), ("inh", inh_total)):
            channels = np.asarray(getattr(group, f"{kind}_channels"), dtype=int)
            if channels.size == 0:
                continue
            noise = rng.uniform(nlo, nhi, size=(channels.size, n_intervals))
            shares = group.shares(kind)
            if draws is not None and draws["active_channel"] is not None:
                shares = _active_shares(shares, draws["active_channel"][channels])
            # spikes per group per 100 ms -> expected spikes per channel per ms
            coarse[channels] = shares[:, None] * (total[None, :] / 100.0) * noise

    held = np.repeat(coarse, interval_ms, axis=1)[:, :duration_ms]
    window = _gaussian_window(sigma_ms, settings.gaussian_length_in_sigmas)
    rate = oaconvolve(held, window[None, :], mode="same", axes=1)
    rate = np.clip(rate, 0.0, None)  # FFT round-off can leave tiny negatives
    if draws is not None:
        if draws["active_channel"] is not None:
            rate[~draws["active_channel"]] = 0.0  # silent, not FFT round-off
        if "no_inhibition" in ood.kinds:
            for group in settings.groups:
                rate[list(group.inh_channels)] = 0.0
        if draws["modulation"] is not None:
            rate *= draws["modulation"][None, :]

    p = rng.exponential(size=rate.shape) * rate
    spikes = rng.uniform(size=rate.shape) < p
    channel, time_ms = np.nonzero(spikes)
    events = InputEvents(channel=channel, time_ms=time_ms, n_channels=settings.n_channels,
                         duration_ms=duration_ms)
    if return_details:
        ood_record = None
        if draws is not None:
            ood_record = {"kinds": list(ood.kinds), "active_clusters": draws["active_clusters"],
                          "sync_period_ms": draws["sync_period_ms"], "sync_phase_rad": draws["sync_phase_rad"]}
        details = InputDetails(interval_ms=interval_ms, sigma_ms=sigma_ms,
                               coarse_totals_per_100ms=totals, rate_per_ms=rate.astype(np.float32),
                               ood=ood_record)
        return events, details
    return events


def generate_many(settings: InputSettings, duration_ms: int, seeds) -> list[InputEvents]:
    """One trial per seed (see :func:`generate_inputs`)."""
    return [generate_inputs(settings, duration_ms, int(s)) for s in seeds]


def stack_dense(events: list[InputEvents], dtype=np.uint8) -> np.ndarray:
    """Dense array ``(n_trials, n_channels, duration_ms)`` from trials of equal size."""
    if not events:
        raise ValueError("no trials to stack")
    shape = {(e.n_channels, e.duration_ms) for e in events}
    if len(shape) != 1:
        raise ValueError(f"trials differ in (n_channels, duration_ms): {sorted(shape)}")
    out = np.zeros((len(events), *shape.pop()), dtype=dtype)
    for i, e in enumerate(events):
        out[i, e.channel, e.time_ms] = 1
    return out


# ----------------------------------------------------------------------------------------------------
# Out-of-distribution inputs (Beniaguev et al. 2021, STAR Methods; facts file guerguiev_and_ood_facts.md 2.2)
# ----------------------------------------------------------------------------------------------------

OOD_STREAM = 0x00D  # second entropy word of every OOD draw stream: default_rng([seed, OOD_STREAM, kind index])


def _ood_draws(ood: OODOptions, n_channels: int, duration_ms: int, seed: int) -> dict:
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


def _active_shares(shares: np.ndarray, active: np.ndarray) -> np.ndarray:
    """A group's shares renormalised over its active channels (all zero when none is active)."""
    kept = np.where(active, shares, 0.0)
    total = kept.sum()
    return kept / total if total > 0 else kept


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
