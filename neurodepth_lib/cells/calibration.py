"""Fit a cell's input rates to it: find the rate factor that puts its output firing in a target range.

The paper's input rates were chosen for the Hay cell; another cell driven by them (even scaled to its tree
sizes) may fire far too much or not at all. :func:`calibrate_inputs` simulates a few short trials at a rate
factor, measures the output rate, and brackets and bisects the factor (in log space, with the same input
seeds at every factor) until the rate lies in ``target_hz``. The default target is where the paper's
spike-count filter (0-24 spikes per 6-s trial, at most 4 Hz) keeps most trials: 0.8-2.5 Hz on average.

>>> from neurodepth_lib.cells.calibration import calibrate_inputs
>>> cal = calibrate_inputs("tiny_pyramid", "control")          # doctest: +SKIP
>>> print(cal.summary()); cal.cell_params                       # doctest: +SKIP
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .._checks import positive_int
from ..inputs import generate_inputs
from .registry import get_cell

__all__ = ["DEFAULT_TARGET_HZ", "Calibration", "calibrate_inputs"]

DEFAULT_TARGET_HZ = (0.8, 2.5)
PAPER_MAX_SPIKES_PER_6S = 24


@dataclass
class Calibration:
    """What :func:`calibrate_inputs` found: ``factor`` (the value of ``param``), the output ``rate_hz`` there,
    whether it lies in ``target_hz``, and every factor tried (``history``: factor, rate, fraction of trials the
    paper's spike-count filter, scaled to the trial length, would keep)."""

    cell: str
    condition: object
    param: str
    factor: float
    rate_hz: float
    target_hz: tuple
    in_range: bool
    n_trials: int
    duration_ms: int
    history: list = field(default_factory=list)

    @property
    def cell_params(self) -> dict:
        """``{param: factor}``: pass as ``cell_params`` to generation."""
        return {self.param: self.factor}

    def summary(self) -> str:
        lo, hi = self.target_hz
        tried = ", ".join(f"{h['factor']:.3g} -> {h['rate_hz']:.2f} Hz" for h in self.history)
        verdict = "in" if self.in_range else "NOT in"
        return (f"input calibration of {self.cell} ({self.condition}): {self.param} = {self.factor:.4g} gives "
                f"{self.rate_hz:.2f} Hz, {verdict} the target {lo:g}-{hi:g} Hz ({self.n_trials} trials of "
                f"{self.duration_ms} ms per try; tried {tried})")

    def to_dict(self) -> dict:
        return asdict(self)


def _rate(model, condition, cell_params, simulation, factor, param, n_trials, duration_ms, seed):
    params = {**cell_params, param: float(factor)}
    settings = model.input_settings(condition, params)
    events = [generate_inputs(settings, duration_ms, seed + i) for i in range(n_trials)]
    outs = model.simulate(events, condition, params, simulation, ())
    counts = np.array([len(o["spike_times_ms"]) for o in outs])
    hi = round(PAPER_MAX_SPIKES_PER_6S * duration_ms / 6000)
    return float(counts.sum() / (n_trials * duration_ms / 1000.0)), float(np.mean(counts <= hi))


def calibrate_inputs(cell, condition=None, *, target_hz=DEFAULT_TARGET_HZ, cell_params: dict | None = None,
                     simulation: dict | None = None, n_trials: int = 4, duration_ms: int = 2000,
                     start: float | None = None, max_tries: int = 10, seed: int = 10_000, log=None) -> Calibration:
    """Find the value of the cell's rate parameter (``CellModel.rate_param``, e.g. ``rate_factor``) that puts
    its mean output rate in ``target_hz`` (Hz, inclusive), with ``n_trials`` trials of ``duration_ms`` per try.

    Starts at ``start`` (default: the parameter's current value, or 1), multiplies or divides by 4 until the
    target is bracketed, then bisects in log space; stops at the first factor in range or after
    ``max_tries`` tries (then the closest one, ``in_range=False``). A factor that fires less than a smaller one
    counts as too much drive (a cell in depolarisation block fires less the harder it is driven). ``cell`` is a name or a ``CellModel``;
    ``log`` (e.g. ``print``) hears each try.
    """
    model = get_cell(cell)
    if model.rate_param is None:
        raise ValueError(f"cell {model.name!r} has no input-rate parameter to calibrate (CellModel.rate_param)")
    condition = model.conditions[0] if condition is None else condition
    if condition not in model.conditions:
        raise ValueError(f"unknown condition {condition!r} for cell {model.name!r}; choose one of "
                         f"{', '.join(map(str, model.conditions))}")
    try:
        lo, hi = (float(x) for x in target_hz)
    except (TypeError, ValueError):
        raise ValueError(f"target_hz must be (low, high) in Hz, got {target_hz!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise ValueError(f"target_hz must be (low, high) with 0 <= low < high, got {target_hz!r}")
    n_trials, duration_ms = positive_int(n_trials, "n_trials"), positive_int(duration_ms, "duration_ms")
    max_tries = positive_int(max_tries, "max_tries")
    cell_params = dict(cell_params or {})
    param = model.rate_param
    simulation = model.simulation_defaults(dict(simulation or {}))
    factor = float(start if start is not None else cell_params.get(param) or model.describe(condition, cell_params)
                   .get(param, 1.0))
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"start must be a positive number, got {start!r}")
    below = above = None  # the largest factor firing too little, the smallest firing too much
    history = []
    target = math.sqrt(max(lo, 1e-3) * hi)
    for _ in range(max_tries):
        rate, kept = _rate(model, condition, cell_params, simulation, factor, param, n_trials, duration_ms, seed)
        past_peak = any(r["factor"] < factor and r["rate_hz"] > rate for r in history)
        history.append({"factor": factor, "rate_hz": rate, "kept_by_filter": kept})
        if log is not None:
            log(f"  {param} = {factor:.4g}: {rate:.2f} Hz")
        if lo <= rate <= hi:
            break
        if rate > hi or past_peak:  # too much drive (or so much that the cell fires less: depolarisation block)
            above = factor if above is None else min(above, factor)
        else:
            below = factor if below is None else max(below, factor)
        if below is not None and above is not None:
            if above / below < 1.05:
                break
            factor = math.sqrt(below * above)
        elif above is None:
            factor *= 4.0
        else:
            factor /= 4.0
    best = min(history, key=lambda r: (not lo <= r["rate_hz"] <= hi, abs(math.log((r["rate_hz"] + 1e-3) / target))))
    return Calibration(cell=model.name, condition=condition, param=param, factor=float(best["factor"]),
                       rate_hz=float(best["rate_hz"]), target_hz=(lo, hi), in_range=lo <= best["rate_hz"] <= hi,
                       n_trials=n_trials, duration_ms=duration_ms, history=history)
