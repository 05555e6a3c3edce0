"""Simulate one trial of a NEURON cell driven by input events.

>>> from neurodepth_lib.cells import L5PC
>>> from neurodepth_lib.cells.simulation import simulate_trial
>>> cell = L5PC("NMDA")
>>> result = simulate_trial(cell, events)          # events: neurodepth_lib.inputs.InputEvents  # doctest: +SKIP
>>> result.v_soma_1ms.shape, result.spike_times_ms  # doctest: +SKIP

Each input event (channel, whole-ms time) is delivered to the channel's synapse through its
``NetCon(None, synapse)`` (weight 1), queued at initialisation by an ``FInitializeHandler``. Voltages are
recorded at every integration step and linearly interpolated onto a 1 ms grid (``0 .. duration-1``) and a
0.125 ms grid; output spikes are the local maxima of the 0.125 ms soma trace above -25 mV (strict rise
before, strict fall after), as in the paper's code. ``h.finitialize`` resets every state, ion concentration
and queued event, so one built cell serves any number of trials. This module never imports torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..inputs import InputEvents
from .mechanisms import import_neuron
from .spikes import detect_spikes

h = import_neuron()  # NEURON, imported away from a stray x86_64/ in the working directory

__all__ = ["SimulationParams", "TrialResult", "simulate_trial", "detect_spikes", "resting_potential"]  # detect_spikes: .spikes

HIGH_RES_PER_MS = 8  # samples per ms of the fine soma trace (0.125 ms)


@dataclass(frozen=True)
class SimulationParams:
    """How a trial is integrated and read out (defaults: the reference data's settings)."""

    dt_ms: float = 0.025                 # fixed step; ignored with CVODE
    use_cvode: bool = False              # the paper used CVODE at default tolerances
    cvode_atol: float | None = None      # None: NEURON's default
    v_init_mV: float = -76.0
    spike_threshold_mV: float = -25.0
    # NEURON's fixed-step method: 0 backward Euler (NEURON's default, used for the reference data), 2
    # Crank-Nicolson. None leaves NEURON's global h.secondorder as it is; a value is set for this trial only.
    secondorder: int | None = None

    def __post_init__(self):
        if self.secondorder is not None and self.secondorder not in (0, 1, 2):
            raise ValueError(f"secondorder must be None, 0, 1 or 2, got {self.secondorder!r}")
        if not (self.dt_ms > 0 and np.isfinite(self.dt_ms)):
            raise ValueError(f"dt_ms must be positive, got {self.dt_ms}")
        if self.cvode_atol is not None and not self.cvode_atol > 0:
            raise ValueError(f"cvode_atol must be positive, got {self.cvode_atol}")
        if not np.isfinite(self.v_init_mV) or not np.isfinite(self.spike_threshold_mV):
            raise ValueError("v_init_mV and spike_threshold_mV must be finite")


@dataclass(frozen=True, eq=False)
class TrialResult:
    """The outputs of one trial. Voltages are float32 in mV.

    Attributes
    ----------
    v_soma_1ms : (duration_ms,)             soma(0.5) at t = 0, 1, ..., duration-1 ms
    v_soma_0125ms : (8 * duration_ms,)      soma(0.5) at t = 0, 0.125, ... ms
    v_nexus_1ms : (duration_ms,)            the nexus (apic[50](0.9) for cell1)
    spike_times_ms : (n_spikes,) float64    output spikes on the 0.125 ms grid
    v_dend_1ms : (n_segments, duration_ms) or None, every dendritic segment (when requested)
    """

    v_soma_1ms: np.ndarray
    v_soma_0125ms: np.ndarray
    v_nexus_1ms: np.ndarray
    spike_times_ms: np.ndarray
    v_dend_1ms: np.ndarray | None
    duration_ms: int
    condition: str
    params: SimulationParams
    n_input_events: int
    wall_time_s: float

    @property
    def n_spikes(self) -> int:
        return int(self.spike_times_ms.size)

    def spike_train_1ms(self) -> np.ndarray:
        """Binary spike train on the 1 ms grid (uint8), bin ``int(t - 0.5)`` as in the paper's code."""
        train = np.zeros(self.duration_ms, dtype=np.uint8)
        bins = np.clip((self.spike_times_ms - 0.5).astype(int), 0, self.duration_ms - 1)
        train[bins] = 1
        return train


def _events_arrays(events, duration_ms, n_inputs):
    """Validate and return (channel int64, time float64, duration_ms int)."""
    if isinstance(events, InputEvents):
        if events.n_channels != n_inputs:
            raise ValueError(f"events have n_channels={events.n_channels}, but the cell has {n_inputs} inputs")
        if duration_ms is not None and int(duration_ms) != events.duration_ms:
            raise ValueError(f"duration_ms={duration_ms} differs from events.duration_ms={events.duration_ms}")
        return events.channel.astype(np.int64), events.time_ms.astype(np.float64), events.duration_ms
    if isinstance(events, tuple) and len(events) == 2:
        channel, time_ms = (np.asarray(a) for a in events)
    elif isinstance(events, dict) and {"channel", "time_ms"} <= set(events):
        channel, time_ms = np.asarray(events["channel"]), np.asarray(events["time_ms"])
    else:
        raise TypeError("events must be an InputEvents, a (channel, time_ms) tuple or a dict with 'channel' "
                        f"and 'time_ms', got {type(events).__name__}")
    if duration_ms is None:
        raise ValueError("duration_ms is required when events are given as arrays")
    if isinstance(duration_ms, bool) or int(duration_ms) != duration_ms or duration_ms < 1:
        raise ValueError(f"duration_ms must be a positive whole number, got {duration_ms!r}")
    duration_ms = int(duration_ms)
    if channel.ndim != 1 or time_ms.ndim != 1 or channel.shape != time_ms.shape:
        raise ValueError(f"channel and time_ms must be 1-D arrays of equal length, got shapes {channel.shape} "
                         f"and {time_ms.shape}")
    if channel.size and not np.issubdtype(channel.dtype, np.integer):
        if not np.all(np.mod(channel, 1) == 0):
            raise ValueError("channel must hold whole numbers")
    channel = channel.astype(np.int64)
    time_ms = time_ms.astype(np.float64)
    if channel.size:
        bad = (channel < 0) | (channel >= n_inputs)
        if bad.any():
            raise ValueError(f"channel {channel[bad][0]} is out of range [0, {n_inputs})")
        bad = ~np.isfinite(time_ms) | (time_ms < 0) | (time_ms >= duration_ms)
        if bad.any():
            raise ValueError(f"event time {time_ms[bad][0]} ms is outside the trial [0, {duration_ms}) ms")
    return channel, time_ms, duration_ms


def _run_fixed_step(h, tstop_ms: float) -> None:
    """Advance NEURON's fixed-step integrator from the current state to ``tstop_ms``.

    ``ParallelContext.psolve`` steps in C: the same steps and event deliveries as a Python
    ``while h.t < tstop: h.fadvance()`` loop (bit-identical, tests/test_teaching_cell.py), without that loop's
    ~7 us of interpreter overhead per step, which is 40 % of the teaching cell's cost. A single process needs
    no gids; ``set_maxstep`` only bounds the chunks psolve integrates between (unused) spike exchanges.
    """
    pc = h.ParallelContext()
    pc.set_maxstep(10)
    pc.psolve(tstop_ms)


def simulate_trial(cell, events, duration_ms: int | None = None, *, condition: str | None = None,
                   params: SimulationParams | None = None, record_dendrites: bool = False,
                   **overrides) -> TrialResult:
    """Run one trial of ``cell`` driven by ``events``.

    Parameters
    ----------
    cell : neurodepth_lib.cells.L5PC (or any object with ``netcons``, ``soma``, ``nexus``,
        ``dendritic_segments``, ``n_inputs``, ``condition`` and ``set_condition``)
    events : InputEvents, or ``(channel, time_ms)`` arrays (then ``duration_ms`` is required)
        Channel ``c`` drives ``cell.netcons[c]``; times are in ms, in ``[0, duration_ms)``.
    duration_ms : int, optional
        Trial length; defaults to ``events.duration_ms``.
    condition : str, optional
        Switch the cell to this condition first (``NMDA``, ``AMPA``, ``AMPA_SK``).
    params : SimulationParams, optional
        Integration settings; keyword ``overrides`` (e.g. ``dt_ms=0.05``, ``use_cvode=True``) replace fields.
    record_dendrites : bool
        Also return every dendritic segment's voltage on the 1 ms grid (``v_dend_1ms``).

    Returns
    -------
    TrialResult
    """
    if params is None:
        params = SimulationParams()
    if not isinstance(params, SimulationParams):
        raise TypeError(f"params must be SimulationParams, got {type(params).__name__}")
    if overrides:
        unknown = set(overrides) - set(SimulationParams.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown simulation parameter(s): {', '.join(sorted(unknown))}")
        params = replace(params, **overrides)
    if getattr(cell, "_alive", True) is False:
        raise RuntimeError("this cell was destroyed (a newer one was built); build a new cell")
    conditions = getattr(cell, "conditions", None)  # the cell's own names (L5PC: NMDA, AMPA, AMPA_SK)
    if condition is not None and conditions is not None and condition not in conditions:
        raise ValueError(f"unknown condition {condition!r}; choose one of {', '.join(conditions)}")
    channel, time_ms, duration_ms = _events_arrays(events, duration_ms, cell.n_inputs)
    if condition is not None:
        cell.set_condition(condition)

    start = time.perf_counter()
    netcons = cell.netcons

    def queue_events():
        for c, t in zip(channel.tolist(), time_ms.tolist()):
            netcons[c].event(t)

    t_vec = h.Vector()
    v_soma = h.Vector()
    v_nexus = h.Vector()
    t_vec.record(h._ref_t)
    v_soma.record(cell.soma(0.5)._ref_v)
    v_nexus.record(cell.nexus._ref_v)
    dend_vecs = []
    if record_dendrites:
        # Recording 639 segments at every step would take ~5 MB per simulated second each; NEURON records
        # at the grid times instead (for the fixed step these coincide with steps; CVODE interpolates).
        grid = h.Vector(np.arange(duration_ms, dtype=float))
        for seg in cell.dendritic_segments:
            vec = h.Vector()
            vec.record(seg._ref_v, grid)
            dend_vecs.append(vec)
    handler = h.FInitializeHandler(1, queue_events)
    cvode = h.CVode()
    previous_order = h.secondorder
    try:
        if params.secondorder is not None:
            h.secondorder = params.secondorder
        cvode.active(1 if params.use_cvode else 0)
        if params.use_cvode and params.cvode_atol is not None:
            cvode.atol(params.cvode_atol)
        h.dt = params.dt_ms
        h.finitialize(params.v_init_mV)
        if params.use_cvode:
            cvode.solve(duration_ms)
        else:
            _run_fixed_step(h, duration_ms)
    finally:
        del handler
        cvode.active(0)
        h.secondorder = previous_order
    t = t_vec.as_numpy().copy()
    grid_1 = np.arange(duration_ms, dtype=np.float64)
    grid_hi = np.arange(duration_ms * HIGH_RES_PER_MS, dtype=np.float64) / HIGH_RES_PER_MS
    vs = v_soma.as_numpy()
    v_soma_hi = np.interp(grid_hi, t, vs).astype(np.float32)
    v_soma_1 = np.interp(grid_1, t, vs).astype(np.float32)
    v_nexus_1 = np.interp(grid_1, t, v_nexus.as_numpy()).astype(np.float32)
    v_dend = None
    if record_dendrites:
        v_dend = np.empty((len(dend_vecs), duration_ms), dtype=np.float32)
        for k, vec in enumerate(dend_vecs):
            v_dend[k] = vec.as_numpy()[:duration_ms]
    spikes = detect_spikes(v_soma_hi, 1.0 / HIGH_RES_PER_MS, params.spike_threshold_mV)
    return TrialResult(v_soma_1ms=v_soma_1, v_soma_0125ms=v_soma_hi, v_nexus_1ms=v_nexus_1,
                       spike_times_ms=spikes, v_dend_1ms=v_dend, duration_ms=duration_ms,
                       condition=cell.condition, params=params, n_input_events=int(channel.size),
                       wall_time_s=time.perf_counter() - start)


def resting_potential(cell, duration_ms: int = 500, **overrides) -> float:
    """Soma voltage (mV) after ``duration_ms`` without input, from v_init (the paper's cell: about -81 mV).

    Uses CVODE unless ``use_cvode=False`` is passed: with no input events it takes long steps, so this costs
    a fraction of a second instead of seconds (the two agree to about 1e-3 mV).
    """
    overrides.setdefault("use_cvode", True)
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
    result = simulate_trial(cell, empty, duration_ms=duration_ms + 1, **overrides)
    return float(result.v_soma_1ms[-1])
