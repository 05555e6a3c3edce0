"""A causal convolution whose cost follows the number of input events (the TCN's first layer).

The L5PC's 1,278 synapses are mostly silent: in a given millisecond about 1 % of them fire (0.3 % for the
100-input integrate-and-fire neuron). A dense convolution multiplies every input bin, zeros included, by
every tap of every filter; here each *event* (an input channel that fired in a millisecond) adds its
filter column to the outputs it reaches, which is all the work there is.

For an input ``x`` of shape ``(batch, channels, time)`` and a kernel ``weight`` of shape
``(out_channels, channels, taps)`` the causal convolution (``taps - 1`` zeros padded on the left) is::

    out[b, o, t] = bias[o] + sum_{c, k} weight[o, c, k] * x[b, c, t - (taps - 1) + k]

An event at ``(b, c, s)`` with value ``v`` therefore adds ``v * weight[:, c, k]`` to ``out[b, :, s + lag]``
with ``lag = taps - 1 - k``, for every tap with ``s + lag < time``. Per tap this is a gather-and-sum: the
output row ``(b, t)`` is the sum of the kernel rows ``weight[:, c, k]`` of the channels active at
``(b, t - lag)``, one ``torch.nn.functional.embedding_bag`` call (a vectorised, multi-threaded gather-sum)
on a ``(channels, out_channels)`` table, followed by a shifted add. The weight gradient is the same
gather the other way round: ``grad_weight[o, c, k] = sum over events of channel c of v * grad_out[b, o,
s + lag]``, one ``embedding_bag`` per tap over the rows of ``grad_out`` with one bag per channel.
Both directions cost ``O(n_events * taps * out_channels)`` instead of
``O(batch * time * channels * taps * out_channels)``, and ``O(batch * time * out_channels)`` memory.
Narrow kernels (``taps * out_channels <= 512``, e.g. the one-unit I&F network's 80 x 1) are done for all
taps at once instead, which saves the loop's calls: one gather of whole kernel rows per time step followed
by a strided sum over taps, and for the gradient one gather of ``taps``-long windows of ``grad_out`` per
event. Sums are taken in another order than ``conv1d``'s, so results agree to float rounding, not bit for
bit; they are deterministic.

Input events need not come from a dense array. The input generator, the datasets' recipes and NEURON all
hold a trial as events, ``(channel, time_ms)`` pairs; :func:`index_events` and :func:`trial_events` index such
events directly, and :func:`sparse_causal_conv1d` takes the resulting :class:`SparseEvents` in place of ``x``,
so that no ``(batch, channels, time)`` array is ever built and no non-zero search is run (:func:`find_events` is
the same indexing after a ``torch.nonzero`` over a dense array).

Small problems run on one intra-op thread (:data:`SERIAL_MAX_WORK`): on a 2-core machine shared with other
work, handing each of the loop's small ops to a second thread costs more than it saves. On a GPU the dense
convolution is the default (``choose_path``); the sparse path runs there too but was not tuned for it.

The per-tap tables ``weight[:, :, k]`` are read as ``(channels, out_channels)`` matrices, so the kernel is
fastest when stored *tap-major* (:func:`tap_major_`): a tensor of the usual shape
``(out_channels, channels, taps)`` whose memory is laid out as ``(taps, channels, out_channels)``. The
gradient is returned in that layout too. Any layout gives the same numbers.

This module imports only torch and numpy (:mod:`neurodepth_lib.nets` uses it).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["SparseEvents", "find_events", "index_events", "trial_events", "sparse_causal_conv1d",
           "dense_causal_conv1d", "density",
           "tap_major_", "is_tap_major", "choose_path", "SPARSE_MAX_DENSITY", "FIRST_LAYER_MODES"]

FIRST_LAYER_MODES = ("auto", "dense", "sparse")

# Above this fraction of non-zero input bins "auto" uses the dense convolution on the CPU. Measured on a
# 2-core AMD EPYC, one thread (torch 2.13; benchmarks/bench_surrogate.py, "break-even"): for the 7x128x153
# TCN's first layer (1,278 inputs, 45 taps, 128 filters, batch 8 x 400 ms) the sparse path is 18x (forward)
# and 24x (forward + weight gradient) faster at 1 % density, 2.5x and 3.3x at 10 %, 1.3x and 1.9x at 20 %,
# and breaks even near 30 % (forward) and 30-50 % (training); for the one-unit I&F layer (100 inputs, 80
# taps, 1 filter) it is 8x and 26x faster at 1 % and breaks even near 20 % (forward) and above 50 %
# (training). 10 % keeps a margin on the dense side; the paper's inputs are at 1 %, the I&F's at 0.3 %.
SPARSE_MAX_DENSITY = 0.10


class SparseEvents(NamedTuple):
    """The non-zero bins of a ``(batch, channels, time)`` input, in the two orders the kernels need.

    ``row`` is ``b * time + t``; arrays ending in ``_by_row`` are sorted by ``row`` (ties by channel),
    ``_by_channel`` by channel (ties by row). ``value_*`` is None when every non-zero value is 1.
    ``row_ptr[r]`` is the first event of row ``r`` in the row order (length ``batch * time``);
    ``channel_ptr[c]`` the first event of channel ``c`` in the channel order (length ``channels``).

    The forward pass reads the row order only; the weight gradient reads the channel order. Indexing for
    inference only (:func:`index_events` with ``channel_order=False``) leaves the four channel-order fields
    None; :meth:`with_channel_order` fills them in (the backward pass does so when it needs them).
    """

    shape: tuple
    channel_by_row: torch.Tensor
    value_by_row: torch.Tensor | None
    row_ptr: torch.Tensor
    batch_by_channel: torch.Tensor
    time_by_channel: torch.Tensor
    value_by_channel: torch.Tensor | None
    channel_ptr: torch.Tensor

    @property
    def n_events(self) -> int:
        return int(self.channel_by_row.numel())

    @property
    def density(self) -> float:
        b, c, t = self.shape
        return self.n_events / max(1, b * c * t)

    @property
    def device(self) -> torch.device:
        return self.channel_by_row.device

    def row_coordinates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, time) of every event in the row order."""
        n_b, _, n_t = self.shape
        rows = torch.repeat_interleave(torch.arange(n_b * n_t, device=self.device),
                                       torch.diff(self.row_ptr, append=self.row_ptr.new_tensor([self.n_events])))
        return rows // n_t, rows % n_t

    def with_channel_order(self) -> SparseEvents:
        """These events with the channel-order fields filled in (itself when they are)."""
        if self.channel_ptr is not None:
            return self
        b, t = self.row_coordinates()
        return _index(b, self.channel_by_row, t, self.value_by_row, self.shape, row_sorted=True)

    def to(self, device) -> SparseEvents:
        """The same events on ``device``."""
        return SparseEvents(self.shape, *(None if f is None else f.to(device) for f in self[1:]))

    def to_dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The ``(batch, channels, time)`` array these events index (what :func:`find_events` read)."""
        n_b, n_c, n_t = self.shape
        b, t = self.row_coordinates()
        x = torch.zeros(n_b, n_c, n_t, dtype=dtype, device=self.device)
        values = torch.ones((), dtype=dtype, device=self.device) if self.value_by_row is None \
            else self.value_by_row.to(dtype)
        x[b, self.channel_by_row, t] = values
        return x


# Ops that touch fewer numbers than this run on one intra-op thread. Each parallel region costs a hand-off
# between threads, which on a busy machine (an OpenMP worker waiting for a core) takes milliseconds, more
# than a small op itself; and the per-tap loop is many small ops (two per tap: for the 7x128x153 TCN's
# training batch, 45 gathers of 41,000 x 128 numbers and 45 adds of 3,200 x 128). Measured on our shared
# 2-core machine at load 8: the sparse first layer of a batch-1 FCN 1x128x43 took 1.5 s on two threads
# (30 ms per op, mostly waiting) and 0.03 s on one. Large inputs (long trials in big batches) still use
# every thread.
SERIAL_MAX_WORK = 1 << 24


@contextmanager
def threads_for(work: int):
    """Run the block on one intra-op thread when ``work`` is small (restoring the thread count after)."""
    n = torch.get_num_threads()
    if n == 1 or work > SERIAL_MAX_WORK:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def find_events(x: torch.Tensor, max_density: float | None = None) -> SparseEvents | None:
    """Index the non-zero bins of ``x`` (batch, channels, time); any dtype, any device.

    With ``max_density``, return None as soon as more than that fraction of the bins is non-zero (before
    the sorting, which would be wasted on an input that the dense path will take)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a tensor of shape (batch, channels, time), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    with threads_for(x.numel() // 4):  # a few passes over x, each cheap per element
        return _find_events(x, max_density)


def _find_events(x: torch.Tensor, max_density: float | None) -> SparseEvents | None:
    n_b, n_c, n_t = (int(s) for s in x.shape)
    flat = x.detach().reshape(-1)
    # row-major over (b, c, t): sorted by batch, then channel, then time
    index = torch.nonzero(flat).squeeze(1)
    if max_density is not None and index.numel() > max_density * max(1, flat.numel()):
        return None
    values = flat[index]
    t = index % n_t
    bc = index // n_t
    c = bc % n_c
    b = bc // n_c
    binary = bool((values == 1).all()) if values.numel() else True
    vals = None if binary else (values if values.is_floating_point() else values.to(torch.float32))
    return _index(b, c, t, vals, (n_b, n_c, n_t), row_sorted=False)


def _index(b: torch.Tensor, c: torch.Tensor, t: torch.Tensor, values: torch.Tensor | None, shape: tuple,
           row_sorted: bool, channel_order: bool = True) -> SparseEvents:
    """SparseEvents of valid, distinct events (int64 coordinates); ``row_sorted``: already in row order
    (by ``b * T + t``, ties by channel), which saves a sort."""
    n_b, n_c, n_t = shape
    row = b * n_t + t
    if not row_sorted:
        by_row = torch.argsort(row * n_c + c)  # distinct keys: no ties, any sort is the stable one
        b, c, t, row = b[by_row], c[by_row], t[by_row], row[by_row]
        values = None if values is None else values[by_row]
    row_counts = torch.bincount(row, minlength=n_b * n_t)
    row_ptr = torch.cumsum(row_counts, 0) - row_counts
    by_channel = channel_ptr = b_c = t_c = v_c = None
    if channel_order:
        # channel order: the row order sorted stably by channel (ties keep (b, t) order)
        by_channel = torch.argsort(c, stable=True)
        channel_counts = torch.bincount(c, minlength=n_c)
        channel_ptr = torch.cumsum(channel_counts, 0) - channel_counts
        b_c, t_c = b[by_channel], t[by_channel]
        v_c = None if values is None else values[by_channel]
    return SparseEvents(shape=(n_b, n_c, n_t), channel_by_row=c, value_by_row=values, row_ptr=row_ptr,
                        batch_by_channel=b_c, time_by_channel=t_c, value_by_channel=v_c, channel_ptr=channel_ptr)


def _whole_numbers(a, name: str, device) -> torch.Tensor:
    """``a`` (numpy, torch or a sequence) as a 1-D int64 tensor; whole-number floats are accepted."""
    if isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        arr = np.asarray(a)
        if arr.dtype.kind in "iu":
            arr = arr.astype(np.int64, copy=False)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float64, copy=False)
        else:
            raise ValueError(f"{name} must be an array of integers, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {tuple(t.shape)}")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold integers, got dtype {t.dtype}")
    if t.is_floating_point() and t.numel() and not bool(torch.all(t == torch.round(t))):
        bad = t[t != torch.round(t)][0].item()
        raise ValueError(f"{name} must hold whole numbers (1-ms bins), got {bad}")
    return t.to(device=device, dtype=torch.int64)


def index_events(batch, channel, time, shape, values=None, *, channel_order: bool = True,
                 device=None) -> SparseEvents:
    """Index events given by their coordinates: event ``i`` is bin ``(batch[i], channel[i], time[i])`` of a
    ``shape = (batch, channels, time)`` input, with value ``values[i]`` (None: every value is 1).

    The events' order does not matter (they are sorted here; events already in row order, by trial, then
    time, then channel, as :class:`~neurodepth_lib.inputs.InputEvents` holds them, are not sorted again).
    Raises ``ValueError`` for a coordinate outside ``shape`` (a time outside ``[0, time)``, a channel
    outside ``[0, channels)``), for coordinates that are not whole numbers, and for two events in one bin
    (a dense array holds one number per bin). ``channel_order=False`` skips the channel order, which only
    the weight gradient reads (see :class:`SparseEvents`). ``device``: where the index lives (default:
    where ``channel`` is, the CPU for numpy arrays).
    """
    if not (isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 3):
        raise ValueError(f"shape must be (batch, channels, time), got {shape!r}")
    n_b, n_c, n_t = (int(s) for s in shape)
    if min(n_b, n_c, n_t) < 1:
        raise ValueError(f"shape must be positive, got {(n_b, n_c, n_t)}")
    if device is None:
        device = channel.device if isinstance(channel, torch.Tensor) else torch.device("cpu")
    c = _whole_numbers(channel, "channel", device)
    t = _whole_numbers(time, "time", device)
    b = _whole_numbers(batch, "batch", device)
    if not (b.numel() == c.numel() == t.numel()):
        raise ValueError(f"batch, channel and time must have one entry per event, got lengths "
                         f"{b.numel()}, {c.numel()} and {t.numel()}")
    vals = None
    if values is not None:
        vals = values if isinstance(values, torch.Tensor) else torch.as_tensor(values)
        if vals.shape != c.shape:
            raise ValueError(f"values must have one entry per event ({c.numel()}), got shape {tuple(vals.shape)}")
        vals = vals.to(device)
        if not vals.is_floating_point():
            vals = vals.to(torch.float32)
    for name, v, n, what in (("time", t, n_t, "ms"), ("channel", c, n_c, "channels"),
                             ("batch", b, n_b, "trials")):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= n):
            where = int(torch.nonzero((v < 0) | (v >= n))[0])
            trial = f", trial {int(b[where])}" if name != "batch" and 0 <= int(b[where]) < n_b else ""
            raise ValueError(f"{name} {int(v[where])} (event {where} of the batch{trial}) is outside [0, {n}) "
                             f"({n} {what})")
    key = (b * n_t + t) * n_c + c
    row_sorted = key.numel() < 2 or bool(torch.all(key[1:] > key[:-1]))
    if not row_sorted:
        key, order = torch.sort(key)
        dup = key[1:] == key[:-1]
        if bool(dup.any()):
            i = int(torch.nonzero(dup)[0])
            k = int(key[i])
            raise ValueError(f"two events fall in one bin: trial {k // n_c // n_t}, channel {k % n_c}, "
                             f"time {k // n_c % n_t} ms (a bin holds one event)")
        b, c, t = b[order], c[order], t[order]
        vals = None if vals is None else vals[order]
    return _index(b, c, t, vals, (n_b, n_c, n_t), row_sorted=True, channel_order=channel_order)


def trial_events(trials, n_channels: int | None = None, duration_ms: int | None = None, *,
                 channel_order: bool = True, device=None) -> SparseEvents:
    """Index the input events of a list of trials as one batch, without a dense array.

    ``trials``: a list of trials, each an :class:`~neurodepth_lib.inputs.InputEvents` (anything with
    ``channel``, ``time_ms``, ``n_channels`` and ``duration_ms``: what the input generator returns and a
    dataset regenerates from its recipes) or a ``(channel, time_ms)`` pair of arrays (times in whole ms).
    ``n_channels`` and ``duration_ms`` give the batch's shape ``(len(trials), n_channels, duration_ms)``; by
    default the trials' own (which must then agree). A trial whose own ``n_channels`` or ``duration_ms``
    differs from the ones given is an error (crop it first: ``InputEvents.crop``), as is an event outside
    the shape (see :func:`index_events`).
    """
    if isinstance(trials, (str, bytes)) or not hasattr(trials, "__len__"):
        raise TypeError(f"trials must be a list of trials (InputEvents or (channel, time_ms) pairs), got "
                        f"{type(trials).__name__}")
    if len(trials) == 0:
        raise ValueError("no trials: give at least one")
    channels, times = [], []
    for i, trial in enumerate(trials):
        if hasattr(trial, "channel") and hasattr(trial, "time_ms"):
            for name, given in (("n_channels", n_channels), ("duration_ms", duration_ms)):
                own = getattr(trial, name, None)
                if own is None:
                    continue
                if given is None:
                    if name == "n_channels":
                        n_channels = int(own)
                    else:
                        duration_ms = int(own)
                elif int(own) != int(given):
                    raise ValueError(f"trial {i} has {name}={int(own)}, not {int(given)}"
                                     + (" (crop it first: InputEvents.crop)" if name == "duration_ms" else ""))
            channels.append(trial.channel)
            times.append(trial.time_ms)
        elif isinstance(trial, (tuple, list)) and len(trial) == 2:
            channels.append(trial[0])
            times.append(trial[1])
        else:
            raise TypeError(f"trial {i} must be an InputEvents or a (channel, time_ms) pair, got "
                            f"{type(trial).__name__}")
    missing = [name for name, v in (("n_channels", n_channels), ("duration_ms", duration_ms)) if v is None]
    if missing:
        raise ValueError(f"{' and '.join(missing)} must be given for trials given as (channel, time_ms) arrays")
    counts = []
    for i, (c, t) in enumerate(zip(channels, times)):
        if len(c) != len(t):
            raise ValueError(f"trial {i}: channel and time_ms differ in length ({len(c)} and {len(t)})")
        counts.append(len(c))

    def cat(parts):
        if all(isinstance(p, torch.Tensor) for p in parts):
            return torch.cat([p.reshape(-1) for p in parts])
        return np.concatenate([np.asarray(p).reshape(-1) for p in parts])

    batch = torch.repeat_interleave(torch.arange(len(trials)), torch.as_tensor(counts, dtype=torch.int64))
    return index_events(batch, cat(channels), cat(times), (len(trials), n_channels, duration_ms),
                        channel_order=channel_order, device=device)


def density(x: torch.Tensor) -> float:
    """Fraction of non-zero entries of ``x``."""
    n = x.numel()
    return float(torch.count_nonzero(x)) / n if n else 0.0


def is_tap_major(weight: torch.Tensor) -> bool:
    """True when ``weight`` (out, channels, taps) is laid out in memory as (taps, channels, out)."""
    return weight.dim() == 3 and weight.permute(2, 1, 0).is_contiguous()


def tap_major_(module_or_param) -> None:
    """Re-store a convolution's weight (``nn.Conv1d`` or its ``weight`` Parameter) tap-major, in place.

    The values, shape, ``state_dict`` key and everything else stay the same; only the memory layout
    changes, so that :func:`sparse_causal_conv1d` reads each tap as a contiguous table and returns its
    gradient without a transposed copy. Optimiser states created afterwards follow the layout.
    """
    param = module_or_param.weight if isinstance(module_or_param, torch.nn.Module) else module_or_param
    if not isinstance(param, torch.nn.Parameter) or param.dim() != 3:
        raise TypeError("tap_major_ needs an nn.Conv1d or its 3-D weight Parameter")
    if is_tap_major(param):
        return
    with torch.no_grad():
        param.data = param.data.permute(2, 1, 0).contiguous().permute(2, 1, 0)


# Small kernels (taps x out_channels <= this many numbers: the one-unit I&F network's 80 x 1, narrow first
# layers) are computed for all taps at once, which saves the per-tap loop's calls; wide ones tap by tap,
# which keeps every table and intermediate in cache. Measured crossover: between 320 (8 filters x 40 taps)
# and 1,440 (32 x 45) numbers per row.
ALL_TAPS_MAX_ROW = 512
# ... and only while the all-taps forward's (batch * time, taps * out) intermediate stays this small (floats)
ALL_TAPS_MAX_INTERMEDIATE = 1 << 22


def _tap_tables(weight: torch.Tensor) -> torch.Tensor:
    """(taps, channels, out) contiguous view (a copy unless the weight is tap-major)."""
    return weight.permute(2, 1, 0).contiguous()


def _values(values: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if values is None else values.to(dtype)


def _forward(ev: SparseEvents, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    n_b, n_c, n_t = ev.shape
    n_out, _, n_taps = weight.shape
    row = n_taps * n_out
    if row <= ALL_TAPS_MAX_ROW and n_b * n_t * row <= ALL_TAPS_MAX_INTERMEDIATE:
        return _forward_all_taps(ev, weight, bias)
    tables = _tap_tables(weight)
    values = _values(ev.value_by_row, weight.dtype)
    out = torch.zeros(n_b, n_t, n_out, dtype=tables.dtype, device=tables.device)
    if ev.n_events:
        for k in range(n_taps):
            lag = n_taps - 1 - k
            if lag >= n_t:
                continue
            # one bag per (b, s): the sum of the tap-k kernel rows of the channels active at (b, s)
            y = F.embedding_bag(ev.channel_by_row, tables[k], ev.row_ptr, mode="sum",
                                per_sample_weights=values).view(n_b, n_t, n_out)
            # ... lands on output time s + lag
            out[:, lag:].add_(y[:, :n_t - lag])
    if bias is not None:
        out.add_(bias)
    return out.transpose(1, 2)  # (B, O, T), a view


def _forward_all_taps(ev: SparseEvents, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """One gather for every tap: y[b, s, k, :] = sum of weight[:, c, k] over the channels active at (b, s),
    then out[b, t] = sum_k y[b, t - lag_k, k] read through a strided view of y padded in time."""
    n_b, n_c, n_t = ev.shape
    n_out, _, n_taps = weight.shape
    table = weight.permute(1, 2, 0).reshape(n_c, n_taps * n_out)  # [c, k * O + o]
    if ev.n_events:
        y = F.embedding_bag(ev.channel_by_row, table, ev.row_ptr, mode="sum",
                            per_sample_weights=_values(ev.value_by_row, weight.dtype))
    else:
        y = table.new_zeros(n_b * n_t, n_taps * n_out)
    y = F.pad(y.view(n_b, n_t, n_taps, n_out), (0, 0, 0, 0, n_taps - 1, 0))  # (B, T + K - 1, K, O)
    sb, st, sk, so = y.stride()
    # element (b, t, k, o) of this view is y_padded[b, t + k, k, o] = y[b, t - lag_k, k, o]
    out = y.as_strided((n_b, n_t, n_taps, n_out), (sb, st, st + sk, so), y.storage_offset()).sum(2)
    if bias is not None:
        out.add_(bias)
    return out.transpose(1, 2)


def _weight_grad(ev: SparseEvents, grad_out: torch.Tensor, n_taps: int) -> torch.Tensor:
    """grad of the loss w.r.t. the (out, channels, taps) weight (tap-major when computed tap by tap)."""
    n_b, n_c, n_t = ev.shape
    n_out = grad_out.shape[1]
    if n_taps * n_out <= ALL_TAPS_MAX_ROW:
        return _weight_grad_all_taps(ev, grad_out, n_taps)
    grad = torch.zeros(n_taps, n_c, n_out, dtype=grad_out.dtype, device=grad_out.device)
    if ev.n_events:
        # grad_out as a table of rows (b, u), u = 0 .. T + taps - 2, zero beyond T: row b*(T+P) + s + lag
        # holds grad_out[b, :, s + lag] for the event at (b, s)
        pad = n_taps - 1
        # (contiguous: for batch 1 the reshape would otherwise be a column-strided view, 40x slower to gather)
        table = F.pad(grad_out, (0, pad)).transpose(1, 2).contiguous().view(n_b * (n_t + pad), n_out)
        base = ev.batch_by_channel * (n_t + pad) + ev.time_by_channel
        values = _values(ev.value_by_channel, grad_out.dtype)
        for k in range(n_taps):
            lag = n_taps - 1 - k
            # one bag per channel: the sum over that channel's events of grad_out at the event time + lag
            grad[k] = F.embedding_bag(base + lag, table, ev.channel_ptr, mode="sum",
                                      per_sample_weights=values)
    return grad.permute(2, 1, 0)


def _weight_grad_all_taps(ev: SparseEvents, grad_out: torch.Tensor, n_taps: int) -> torch.Tensor:
    """One gather for every tap: the event at (b, s) reaches grad_out[b, :, s .. s + K - 1], a contiguous
    window of the (time, out)-ordered grad_out; channel c's bag sums its events' windows (lag order)."""
    n_b, n_c, n_t = ev.shape
    n_out = grad_out.shape[1]
    if not ev.n_events:
        return grad_out.new_zeros(n_out, n_c, n_taps)
    pad = n_taps - 1
    flat = F.pad(grad_out, (0, pad)).transpose(1, 2).contiguous().view(-1)  # rows (b, u) of O numbers
    n_rows = n_b * (n_t + pad) - pad
    windows = flat.as_strided((n_rows, n_taps * n_out), (n_out, 1))  # row r = rows r .. r + K - 1
    base = ev.batch_by_channel * (n_t + pad) + ev.time_by_channel
    by_lag = F.embedding_bag(base, windows, ev.channel_ptr, mode="sum",
                             per_sample_weights=_values(ev.value_by_channel, grad_out.dtype))
    # [c, lag * O + o] -> [o, c, k] with k = K - 1 - lag
    return by_lag.view(n_c, n_taps, n_out).flip(1).permute(2, 0, 1)


def _work(shape, n_events: int, weight: torch.Tensor) -> int:
    """Numbers touched by the largest single op of the layer (per tap, or all taps at once)."""
    b, _, t = shape
    n_out, _, n_taps = weight.shape
    per_op = max(n_events, b * t) * n_out
    return per_op * n_taps if n_taps * n_out <= ALL_TAPS_MAX_ROW else per_op


class _SparseCausalConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, events):
        with threads_for(_work(events.shape, events.n_events, weight)):
            out = _forward(events, weight, None if bias is None else bias.to(weight.dtype))
        ctx.events = events
        ctx.n_taps = int(weight.shape[2])
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight)
        ctx.x_shape = tuple(events.shape)  # x is a placeholder when the caller gave events only
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (weight,) = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        grad_out = grad_out.contiguous()
        if ctx.needs_input_grad[0]:
            # the input gradient is a dense transposed convolution: nothing sparse about it
            n_b, n_c, n_t = ctx.x_shape
            padded = torch.nn.grad.conv1d_input((n_b, n_c, n_t + ctx.n_taps - 1), weight, grad_out)
            grad_x = padded[..., ctx.n_taps - 1:]
        if ctx.needs_input_grad[1]:
            with threads_for(_work(ctx.events.shape, ctx.events.n_events, weight)):
                grad_w = _weight_grad(ctx.events.with_channel_order(), grad_out, ctx.n_taps)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(dim=(0, 2))
        return grad_x, grad_w, grad_b, None


def _check(x, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if isinstance(x, SparseEvents) or (isinstance(x, torch.Tensor) and x.dim() == 3):
        shape = tuple(x.shape)
    else:
        raise ValueError(f"x must be a tensor of shape (batch, channels, time) or SparseEvents, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 3:
        raise ValueError("weight must be a tensor of shape (out_channels, channels, taps)")
    if shape[1] != weight.shape[1]:
        raise ValueError(f"x has {shape[1]} channels but weight expects {weight.shape[1]} "
                         f"(x shape {shape}, weight shape {tuple(weight.shape)})")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")


def sparse_causal_conv1d(x: torch.Tensor | SparseEvents, weight: torch.Tensor, bias: torch.Tensor | None = None,
                         events: SparseEvents | None = None) -> torch.Tensor:
    """Causal 1-D convolution computed from the non-zero entries of ``x`` only.

    Parameters
    ----------
    x : (batch, channels, time), any numeric or bool dtype (values are used as they are; a 0/1 input is
        the common case and skips the multiplications); or the :class:`SparseEvents` of such an input
        (:func:`index_events`, :func:`trial_events`), when no dense array exists.
    weight : (out_channels, channels, taps), float; fastest when tap-major (:func:`tap_major_`).
    bias : (out_channels,) or None.
    events : :func:`find_events` of ``x``, when the caller already has it.

    Returns
    -------
    (batch, out_channels, time) in the weight's dtype; equal to :func:`dense_causal_conv1d` up to float
    rounding (sums are taken in a different order). Differentiable w.r.t. ``weight`` and ``bias`` at
    sparse cost, and w.r.t. ``x`` (densely) when ``x`` requires a gradient.
    """
    _check(x, weight, bias)
    if isinstance(x, SparseEvents):
        if events is not None and events is not x:
            raise ValueError("give the events once: as x or as events=, not both")
        events, x = x, _NO_INPUT
    elif events is None:
        events = find_events(x)
    elif tuple(events.shape) != tuple(x.shape):
        raise ValueError(f"events were found on an input of shape {events.shape}, not {tuple(x.shape)}")
    return _SparseCausalConv.apply(x, weight, bias, events)


_NO_INPUT = torch.empty(0)  # stands for x when only its events exist (no input gradient)


def dense_causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The reference: ``conv1d`` of ``x`` padded with ``taps - 1`` zeros on the left."""
    _check(x, weight, bias)
    x = x.to(weight.dtype)
    return F.conv1d(F.pad(x, (weight.shape[2] - 1, 0)), weight, bias)


def choose_path(x: torch.Tensor, mode: str = "auto", max_density: float | None = None) -> str:
    """``"sparse"`` or ``"dense"`` for a first layer in ``mode`` (``"auto"``, ``"dense"``, ``"sparse"``).

    ``auto`` picks the sparse path on the CPU when at most ``max_density`` (default
    :data:`SPARSE_MAX_DENSITY`) of the input bins are non-zero, and the dense path otherwise and on GPUs
    (cuDNN's dense convolution is fast there, and the sparse path's per-tap loop launches many kernels).
    """
    if mode not in FIRST_LAYER_MODES:
        raise ValueError(f"first_layer must be one of {FIRST_LAYER_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    if x.device.type != "cpu":
        return "dense"
    limit = SPARSE_MAX_DENSITY if max_density is None else float(max_density)
    return "sparse" if density(x) <= limit else "dense"
