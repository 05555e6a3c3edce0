"""The paper's "instantaneous-rate" generator: coarse rates per interval, smoothed by a Gaussian window, turned
into Poisson events per channel (:func:`generate_inputs`); with OOD options it applies their per-trial draws.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import oaconvolve

from .events import InputEvents
from .ood import active_shares, ood_draws
from .settings import InputSettings

__all__ = ["InputDetails", "generate_inputs", "generate_many"]


@dataclass(frozen=True)
class InputDetails:
    """What the generator drew on the way to the events (for teaching plots and checks)."""

    interval_ms: int
    sigma_ms: int
    coarse_totals_per_100ms: dict  # group name -> (exc totals, inh totals), one value per interval
    rate_per_ms: np.ndarray  # (n_channels, duration_ms): smoothed expected spikes per ms
    ood: dict | None = None  # the trial's OOD draws (see ood_draws), None for training settings


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
    draws = ood_draws(ood, settings.n_channels, duration_ms, int(seed)) if ood is not None else None
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
                shares = active_shares(shares, draws["active_channel"][channels])
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
