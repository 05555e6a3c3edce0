"""The paper's current-based integrate-and-fire neuron (Figure 1; paper_facts 1.8).

Discrete time, 1-ms steps. Each input spike adds a post-synaptic potential of
``psp_amplitude_mV * weight * exp(-t / tau_ms)`` (truncated after ``kernel_length_ms`` samples)::

    V(t) = V_reset + sum_i 2 mV * w_i * (x_i * k)(t),      k(t) = exp(-t / 20 ms), t = 0..140

When ``V(t)`` exceeds the threshold, a spike is emitted at ``t`` and ``(V(t+1) - V_reset) * k`` is
subtracted from the following samples, which puts ``V(t+1)`` exactly at ``V_reset``; the reset then
relaxes with the same time constant. There is no absolute refractory period.

Arrays are numpy, ``(n_trials, n_channels, time)`` for inputs and ``(n_trials, time)`` for outputs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
from scipy.signal import oaconvolve

from ..inputs import InputEvents, iaf_input_settings, stack_dense
from .registry import CellModel, register_cell

__all__ = ["IAFParams", "IAFResult", "synaptic_drive_mV", "simulate", "IAF_MODEL"]


def _default_weights() -> tuple[float, ...]:
    return (1.0,) * 80 + (-1.0,) * 20


@dataclass(frozen=True)
class IAFParams:
    """Defaults of the paper's I&F neuron: 80 excitatory (+1) and 20 inhibitory (-1) synapses."""

    weights: tuple[float, ...] = field(default_factory=_default_weights)
    psp_amplitude_mV: float = 2.0
    tau_ms: float = 20.0
    kernel_length_ms: int = 141  # 7 tau + 1 samples
    v_reset_mV: float = -75.0
    v_threshold_mV: float = -55.0
    v_clip_mV: float = -54.9  # the voltage target is clipped here (spikes are predicted separately)

    def __post_init__(self):
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        if not self.weights:
            raise ValueError("weights must not be empty")
        if self.tau_ms <= 0:
            raise ValueError(f"tau_ms must be positive, got {self.tau_ms}")
        if int(self.kernel_length_ms) < 1:
            raise ValueError(f"kernel_length_ms must be >= 1, got {self.kernel_length_ms}")
        if self.v_threshold_mV <= self.v_reset_mV:
            raise ValueError(f"v_threshold_mV ({self.v_threshold_mV}) must be above v_reset_mV "
                             f"({self.v_reset_mV})")

    @property
    def n_inputs(self) -> int:
        return len(self.weights)

    def psp_kernel(self) -> np.ndarray:
        """``k(t) = exp(-t / tau)`` for ``t = 0 .. kernel_length_ms - 1`` (dimensionless, k(0) = 1)."""
        return np.exp(-np.arange(int(self.kernel_length_ms)) / self.tau_ms)

    def true_filter_mV(self, length_ms: int | None = None) -> np.ndarray:
        """The linear filter from inputs to the sub-threshold voltage, shape ``(n_inputs, length_ms)``:
        ``psp_amplitude_mV * w_i * k(t)`` with ``t`` the lag in ms (column 0 = the current ms)."""
        k = self.psp_kernel()
        length_ms = len(k) if length_ms is None else int(length_ms)
        k = np.pad(k, (0, max(0, length_ms - len(k))))[:length_ms]
        return self.psp_amplitude_mV * np.asarray(self.weights)[:, None] * k[None, :]


@dataclass(frozen=True, eq=False)
class IAFResult:
    """Output of :func:`simulate`: ``v_mV`` and ``spikes`` of shape ``(n_trials, duration_ms)``."""

    v_mV: np.ndarray
    spikes: np.ndarray
    params: IAFParams

    @property
    def spike_counts(self) -> np.ndarray:
        return self.spikes.sum(axis=1)

    def voltage_target_mV(self) -> np.ndarray:
        """The voltage the network is trained on: spikes' peaks clipped at ``v_clip_mV``."""
        return np.minimum(self.v_mV, self.params.v_clip_mV)


def _as_dense(inputs, n_inputs: int) -> np.ndarray:
    if isinstance(inputs, InputEvents):
        inputs = [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], InputEvents):
        inputs = stack_dense(list(inputs))
    x = np.asarray(inputs)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"inputs must have shape (trials, channels, time) or (channels, time), got {x.shape}")
    if x.shape[1] != n_inputs:
        raise ValueError(f"inputs have {x.shape[1]} channels but the neuron has {n_inputs} synapses")
    if x.shape[2] < 1:
        raise ValueError("inputs have no time samples")
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("inputs must be finite, non-negative spike counts")
    return x


def synaptic_drive_mV(inputs, params: IAFParams = IAFParams()) -> np.ndarray:
    """Summed PSPs without any reset, ``(n_trials, duration_ms)``, in mV relative to ``v_reset_mV``."""
    x = _as_dense(inputs, params.n_inputs)
    weighted = np.einsum("c,nct->nt", np.asarray(params.weights), x.astype(np.float64))
    k = params.psp_kernel()
    drive = oaconvolve(weighted, k[None, :], mode="full", axes=1)[:, : x.shape[2]]
    return params.psp_amplitude_mV * drive


def simulate(inputs, params: IAFParams = IAFParams()) -> IAFResult:
    """Simulate the neuron for every trial at once.

    Parameters
    ----------
    inputs : array ``(n_trials, n_channels, duration_ms)`` or ``(n_channels, duration_ms)`` of 0/1, an
        :class:`~neurodepth_lib.inputs.InputEvents`, or a list of them.
    params : IAFParams
    """
    free_v = params.v_reset_mV + synaptic_drive_mV(inputs, params)
    n_trials, duration = free_v.shape
    k = params.psp_kernel()
    n_k = len(k)
    reset = np.zeros((n_trials, duration + n_k + 1))  # reset currents scheduled for later samples
    v = np.empty_like(free_v)
    spikes = np.zeros((n_trials, duration), dtype=bool)
    for t in range(duration):
        v[:, t] = free_v[:, t] + reset[:, t]
        fired = np.nonzero(v[:, t] > params.v_threshold_mV)[0]
        if fired.size and t + 1 < duration:
            spikes[fired, t] = True
            # amplitude that brings V(t+1) to V_reset, decaying afterwards with the PSP kernel
            amplitude = free_v[fired, t + 1] + reset[fired, t + 1] - params.v_reset_mV
            reset[fired, t + 1: t + 1 + n_k] -= amplitude[:, None] * k[None, :]
        elif fired.size:
            spikes[fired, t] = True
    return IAFResult(v_mV=v, spikes=spikes, params=params)


# ---- the I&F as a registered cell (generation simulates it like any other) -------------------------

def _iaf_params(cell_params: dict):
    names = {f.name for f in fields(IAFParams)}
    unknown = set(cell_params) - names
    if unknown:
        raise ValueError(f"unknown I&F parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    return IAFParams(**cell_params)


def _iaf_describe(condition, cell_params):
    p = _iaf_params(cell_params)
    w = np.asarray(p.weights)
    n_exc = int((w > 0).sum())
    if not (w[:n_exc] > 0).all() or (w[n_exc:] > 0).any():
        raise ValueError("I&F weights must list the excitatory (positive) synapses first, then the others")
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(p).items()}


def _iaf_input_settings(condition, cell_params):
    w = np.asarray(_iaf_params(cell_params).weights)
    n_exc = int((w > 0).sum())
    return iaf_input_settings(n_exc=n_exc, n_inh=len(w) - n_exc)


def _iaf_simulate(events_list, condition, cell_params, simulation, record):
    result = simulate(list(events_list), _iaf_params(cell_params))
    return [{"soma_1ms": result.v_mV[i],
             # the I&F fires on the 1-ms grid: a spike emitted at sample t has time t (ms)
             "spike_times_ms": np.flatnonzero(result.spikes[i]).astype(np.float64)}
            for i in range(len(events_list))]


def _no_simulation_params(simulation):
    if simulation:
        raise ValueError(f"the I&F neuron takes no simulation parameters, got {sorted(simulation)}")
    return {}


IAF_MODEL = register_cell(CellModel(
    name="iaf", conditions=(None,), describe=_iaf_describe, input_settings=_iaf_input_settings,
    simulate=_iaf_simulate, simulation_defaults=_no_simulation_params, default_trials_per_shard=100))

