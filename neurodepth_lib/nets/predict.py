"""Running a network (a TCN or an ELM) over whole traces: one causal pass (from a dense input array, or from
the trials' input events with :func:`predict_events`), or the paper's overlapping 400-ms windows.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._checks import positive_int
from . import sparse as _sparse
from .kinds import is_model, is_recurrent
from .tcn import TCNOutput, spike_probability

__all__ = ["Prediction", "resolve_device", "predict_full_trace", "predict_events", "paper_overlap_ms",
           "predict_overlapping_windows"]


# ---- inference over whole traces --------------------------------------------------------------------
class Prediction(NamedTuple):
    """Numpy predictions: ``spike_probability`` and ``soma`` of shape (T,) or (B, T), ``dendritic``
    (K, T) or (B, K, T) or None. ``soma`` is in the units of the training target (mV after the shift)."""

    spike_probability: np.ndarray
    soma: np.ndarray
    dendritic: np.ndarray | None


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` / None -> ``cuda`` when available, else ``cpu``; anything else is passed to torch."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def _as_batch(model: nn.Module, inputs) -> tuple[torch.Tensor, bool]:
    """(C, T) or (B, C, T) numpy/torch -> (B, C, T) tensor, and whether a batch axis was added."""
    if not is_model(model):
        raise TypeError(f"model must be a TCN or an ELM, got {type(model).__name__}")
    x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
    squeeze = x.dim() == 2
    if squeeze:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f"inputs must have shape (channels, time) or (batch, channels, time), "
                         f"got shape {tuple(x.shape)}")
    model.check_input(x)
    return x, squeeze


def _model_device(model: nn.Module, device) -> torch.device:
    if device is None:
        p = next(model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")
    return resolve_device(device)


def _to_numpy(out: TCNOutput, squeeze: bool) -> Prediction:
    p = spike_probability(out.spike_logit).cpu().numpy()
    soma = out.soma.cpu().numpy()
    dend = out.dendritic.cpu().numpy() if out.dendritic is not None else None
    if squeeze:
        p, soma = p[0], soma[0]
        dend = dend[0] if dend is not None else None
    return Prediction(p, soma, dend)


def _cat(outputs: list[TCNOutput]) -> TCNOutput:
    dend = None if outputs[0].dendritic is None else torch.cat([o.dendritic for o in outputs], dim=-1)
    return TCNOutput(torch.cat([o.spike_logit for o in outputs], dim=-1),
                     torch.cat([o.soma for o in outputs], dim=-1), dend)


def predict_full_trace(model: nn.Module, inputs, chunk_ms: int | None = None,
                       device: str | torch.device | None = None, batch_size: int | None = None) -> Prediction:
    """Run the causal network over whole trials in one pass (eval mode, no gradients).

    Parameters
    ----------
    model : a :class:`TCN` (put in eval mode; BatchNorm uses its running statistics) or an
        :class:`~neurodepth_lib.nets.ELM`.
    inputs : ``(channels, time)`` or ``(batch, channels, time)``, numpy or torch, 0/1 or float. Trials held as
        events (``InputEvents``, what datasets and NEURON hold): :func:`predict_events` takes them as they
        are, without this dense array.
    chunk_ms : None for one pass; otherwise compute the output ``chunk_ms`` ms at a time, each chunk
        preceded by ``T - 1`` ms of input context (a recurrent ELM: started from the state the last chunk
        left) so that the result is the same as one pass (bounds the memory for very long traces).
    device : where to compute; None = where the model is.
    batch_size : trials per forward pass (None = all at once). The network works in float32, so 100
        trials of 6 s with 1,278 inputs are 3 GB at once: pass e.g. 8 for large sets.

    Returns
    -------
    :class:`Prediction` with numpy arrays shaped like the input without its channel axis.

    Notes
    -----
    The first ``T - 1`` ms of a trace (``T`` = receptive field) are an edge: their receptive field
    reaches before time 0, where the network sees zeros ("no input"), while the simulated neuron started
    from its resting state. The paper's evaluation starts at 500 ms, past this edge for any ``T <= 501``.
    An ELM starts from zero state instead; its ``receptive_field_ms`` is its memory horizon.
    """
    x, squeeze = _as_batch(model, inputs)
    if batch_size is not None:
        batch_size = positive_int(batch_size, "batch_size")
        if batch_size < x.shape[0]:
            parts = [predict_full_trace(model, x[i:i + batch_size], chunk_ms, device)
                     for i in range(0, x.shape[0], batch_size)]
            dend = None if parts[0].dendritic is None else np.concatenate([p.dendritic for p in parts])
            return Prediction(np.concatenate([p.spike_probability for p in parts]),
                              np.concatenate([p.soma for p in parts]), dend)
    dev = _model_device(model, device)
    model.to(dev).eval()
    n_time = x.shape[-1]
    with torch.no_grad():
        if chunk_ms is None or int(chunk_ms) >= n_time:
            if chunk_ms is not None:
                positive_int(chunk_ms, "chunk_ms")
            return _to_numpy(model(x.to(dev)), squeeze)
        chunk_ms = positive_int(chunk_ms, "chunk_ms")
        if is_recurrent(model):
            parts, state = [], None
            for start in range(0, n_time, chunk_ms):
                out, state = model.run(x[..., start:start + chunk_ms].to(dev), state)
                parts.append(out)
            return _to_numpy(_cat(parts), squeeze)
        context = model.config.receptive_field_ms - 1
        parts = []
        for start in range(0, n_time, chunk_ms):
            lo = max(0, start - context)
            out = model(x[..., lo:start + chunk_ms].to(dev))
            keep = start - lo  # drop the context's outputs
            parts.append(TCNOutput(out.spike_logit[..., keep:], out.soma[..., keep:],
                                   None if out.dendritic is None else out.dendritic[..., keep:]))
        return _to_numpy(_cat(parts), squeeze)


def _one_trial(events) -> bool:
    """True when ``events`` is one trial (an InputEvents-like object or a ``(channel, time_ms)`` pair of
    arrays), False for a list of trials."""
    if hasattr(events, "channel") and hasattr(events, "time_ms"):
        return True
    if isinstance(events, tuple) and len(events) == 2:
        return all(isinstance(a, (np.ndarray, torch.Tensor)) for a in events)
    return False


def predict_events(model: nn.Module, events, duration_ms: int | None = None, *,
                   device: str | torch.device | None = None, batch_size: int | None = None) -> Prediction:
    """Run the causal network over whole trials given as input events: no dense input array is built.

    The same outputs as :func:`predict_full_trace` on the dense view of the same trials (up to float
    rounding), from the form the input generator returns, a dataset regenerates from its recipes and NEURON
    is given (one event per synapse and millisecond). The network's input layer (a TCN's first convolution,
    an ELM's synaptic product) runs on the events (:func:`neurodepth_lib.nets.sparse.trial_events`), so the
    cost of reading the input follows the number of events, not ``channels x time``.

    Parameters
    ----------
    model : a :class:`TCN` or an :class:`~neurodepth_lib.nets.ELM` (put in eval mode).
    events : one trial or a list of trials; a trial is an :class:`~neurodepth_lib.inputs.InputEvents` (or
        anything with ``channel``, ``time_ms``, ``n_channels``, ``duration_ms``) or a ``(channel, time_ms)``
        pair of integer arrays (times in whole ms). Channels must lie in ``[0, model inputs)``, times in
        ``[0, duration_ms)``, at most one event per (channel, ms); the order does not matter. A
        :class:`~neurodepth_lib.nets.sparse.SparseEvents` (already indexed) is taken as it is.
    duration_ms : trace length; default the trials' own ``duration_ms`` (required for array pairs). An
        ``InputEvents`` of another length is an error (crop it: ``InputEvents.crop``).
    device : where to compute; None = where the model is. The events path runs on any device but was tuned
        on the CPU.
    batch_size : trials per forward pass (None = all at once).

    Returns
    -------
    :class:`Prediction`: arrays of shape (T,) for one trial, (B, T) for a list (dendritic (K, T) / (B, K, T)).

    Raises ``ValueError`` for events outside the trace or the model's channels (naming the trial and the
    value), for two events in one bin, and for trials of different lengths or channel counts.
    """
    if not is_model(model):
        raise TypeError(f"model must be a TCN or an ELM, got {type(model).__name__}")
    n_inputs = model.config.n_inputs
    dev = _model_device(model, device)
    if isinstance(events, _sparse.SparseEvents):
        if duration_ms is not None and int(duration_ms) != events.shape[2]:
            raise ValueError(f"the events index a trace of {events.shape[2]} ms, not duration_ms={duration_ms}")
        model.check_input(events)
        indexed, squeeze, n_trials = [events], False, events.shape[0]
        if batch_size is not None:
            raise ValueError("batch_size applies to a list of trials, not to SparseEvents (already one batch)")
    else:
        squeeze = _one_trial(events)
        trials = [events] if squeeze else events
        if isinstance(trials, (str, bytes)) or not hasattr(trials, "__len__"):
            raise TypeError(f"events must be a trial (InputEvents or a (channel, time_ms) pair) or a list of "
                            f"trials, got {type(events).__name__}")
        if duration_ms is not None:
            duration_ms = positive_int(duration_ms, "duration_ms")
        n_trials = len(trials)
        if n_trials == 0:
            raise ValueError("no trials: give at least one")
        step = n_trials if batch_size is None else positive_int(batch_size, "batch_size")
        indexed = []
        for lo in range(0, n_trials, step):
            try:
                indexed.append(_sparse.trial_events(trials[lo:lo + step], n_inputs, duration_ms,
                                                    channel_order=False, device=dev))
            except ValueError as err:
                if lo and "trial " in str(err):  # name the trial by its place in the whole list
                    raise ValueError(f"{err} (trial numbers count from trial {lo}, the first of its batch)") from None
                raise
    model.to(dev).eval()
    outputs = []
    with torch.no_grad():
        for ev in indexed:
            outputs.append(model(ev.to(dev) if ev.device != dev else ev))
    out = outputs[0] if len(outputs) == 1 else TCNOutput(
        torch.cat([o.spike_logit for o in outputs]), torch.cat([o.soma for o in outputs]),
        None if outputs[0].dendritic is None else torch.cat([o.dendritic for o in outputs]))
    return _to_numpy(out, squeeze)


def paper_overlap_ms(receptive_field_ms: int, window_ms: int = 400) -> int:
    """The paper's overlap between consecutive inference windows (paper_facts 2.3):
    ``min(max(T + 1, min(150, W - 50)), 250)``; 154 ms for T = 153 and W = 400."""
    t, w = int(receptive_field_ms), int(window_ms)
    return min(max(t + 1, min(150, w - 50)), 250)


def predict_overlapping_windows(model: nn.Module, inputs, window_ms: int = 400, overlap_ms: int | None = None,
                                device: str | torch.device | None = None) -> Prediction:
    """The paper's inference (paper_facts 2.3): slide a ``window_ms`` window with ``overlap_ms`` overlap,
    keep the first window whole and, from each later window, only the outputs after the overlap; the last
    window is zero-padded on the right.

    With the default overlap (``> T``) every kept output has its whole receptive field inside its window,
    so the result equals :func:`predict_full_trace` at every time step, including the first ``T - 1`` ms
    (both see zeros before time 0; see that function's notes). An overlap shorter than ``T - 1`` ms
    makes the outputs right after each window's start differ: they see zeros where the trace had input.
    :func:`predict_full_trace` is the way to predict; this function exists to show the equivalence.
    A recurrent ELM restarts from zero state in every window, so its stitched outputs only approach the
    whole-trace ones when the overlap is long against its memory (no window-length check applies to it).

    Parameters
    ----------
    window_ms : window length (paper: 400 ms); must exceed the overlap.
    overlap_ms : None = :func:`paper_overlap_ms` of the model's receptive field.
    """
    x, squeeze = _as_batch(model, inputs)
    window_ms = positive_int(window_ms, "window_ms")
    t_rf = model.config.receptive_field_ms
    overlap_ms = paper_overlap_ms(t_rf, window_ms) if overlap_ms is None else overlap_ms
    if isinstance(overlap_ms, bool) or not isinstance(overlap_ms, (int, np.integer)) or overlap_ms < 0:
        raise ValueError(f"overlap_ms must be an integer >= 0, got {overlap_ms!r}")
    overlap_ms = int(overlap_ms)
    if window_ms < t_rf and not is_recurrent(model):
        raise ValueError(f"window_ms={window_ms} is shorter than the model's receptive field ({t_rf} ms): "
                         f"no output would see its whole input; use window_ms > {t_rf}")
    if overlap_ms >= window_ms:
        raise ValueError(f"overlap_ms={overlap_ms} must be shorter than window_ms={window_ms} "
                         f"(the receptive field is {t_rf} ms; the paper's overlap for it is "
                         f"{paper_overlap_ms(t_rf, window_ms)} ms, so use a longer window)")
    dev = _model_device(model, device)
    model.to(dev).eval()
    n_time = x.shape[-1]
    step = window_ms - overlap_ms
    parts, start = [], 0
    with torch.no_grad():
        while True:
            xw = x[..., start:start + window_ms]
            if xw.shape[-1] < window_ms:  # the last window: zero-pad on the right, as the paper does
                xw = F.pad(xw, (0, window_ms - xw.shape[-1]))
            out = model(xw.to(dev))
            keep = 0 if start == 0 else overlap_ms
            parts.append(TCNOutput(out.spike_logit[..., keep:], out.soma[..., keep:],
                                   None if out.dendritic is None else out.dendritic[..., keep:]))
            if start + window_ms >= n_time:
                break
            start += step
    out = _cat(parts)
    out = TCNOutput(out.spike_logit[..., :n_time], out.soma[..., :n_time],
                    None if out.dendritic is None else out.dendritic[..., :n_time])
    return _to_numpy(out, squeeze)
