"""The container of presynaptic input: :class:`InputEvents`, one event per (channel, whole millisecond),
sorted by time and then channel, with a checksum; and its dense form (:func:`stack_dense`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

__all__ = ["InputEvents", "stack_dense"]


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
