"""Argument checks shared by every layer, so that each rule and its message exist once.

Each returns the value converted (``int`` or ``float``) or raises ``ValueError`` naming the argument and
what it got. Booleans are never numbers here (``True`` is not a width of 1), and NaN never passes.
"""
from __future__ import annotations

import math
import numbers

__all__ = ["positive_int", "non_negative_int", "finite_float", "non_negative_float", "positive_float", "low_high_pair"]


def _whole(value) -> int | None:
    """``value`` as an int if it is a whole number (an int, or a float such as 6000.0), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(f) or f != int(f):
        return None
    return int(value) if isinstance(value, numbers.Integral) else int(f)


def positive_int(value, name: str) -> int:
    """A whole number >= 1 (``6000.0`` is accepted as 6000; ``2.7`` is refused, never truncated)."""
    n = _whole(value)
    if n is None or n < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    return n


def non_negative_int(value, name: str) -> int:
    """A whole number >= 0."""
    n = _whole(value)
    if n is None or n < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return n


def finite_float(value, name: str) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def non_negative_float(value, name: str) -> float:
    """A finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
            or float(value) < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def positive_float(value, name: str) -> float:
    """A finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
            or float(value) <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def low_high_pair(value, name: str) -> tuple[float, float]:
    """``(low, high)`` as two finite floats with ``low <= high`` (a range of rates, periods, factors)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ValueError(f"{name} must satisfy low <= high (finite), got ({lo}, {hi})")
    return lo, hi
