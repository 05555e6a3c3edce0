"""The data of chapter 11: scikit-learn's 8x8 handwritten digits (1,797 images shipped with scikit-learn, so
nothing is downloaded), a fixed stratified train/test split, a validation split for tuning, and pixel
intensities as input rates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .._checks import non_negative_int, positive_float, positive_int

__all__ = ["Digits", "load_digit_split", "validation_split", "digit_rates"]


@dataclass(frozen=True)
class Digits:
    """scikit-learn's 8x8 handwritten digits with a fixed stratified split: pixels 0..16, labels 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int

    @property
    def n_inputs(self) -> int:
        return self.x_train.shape[1]


def load_digit_split(test_fraction: float = 0.25, seed: int = 0) -> Digits:
    """The 1,797 digits shipped with scikit-learn (no download), split reproducibly by ``seed``."""
    test_fraction = positive_float(test_fraction, "test_fraction")
    if test_fraction >= 1:
        raise ValueError(f"test_fraction must be below 1, got {test_fraction}")
    seed = non_negative_int(seed, "seed")
    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data.astype(np.float64), data.target.astype(np.int64),
                                              test_size=test_fraction, random_state=seed, stratify=data.target)
    return Digits(x_tr, y_tr, x_te, y_te, seed)


def validation_split(digits: Digits, n_val: int = 337) -> Digits:
    """For tuning: the first ``len(x_train) - n_val`` training digits train, the last ``n_val`` stand in for
    the test set (the real test digits are never looked at)."""
    n_val = positive_int(n_val, "n_val")
    if n_val >= len(digits.x_train):
        raise ValueError(f"n_val ({n_val}) must leave training digits (of {len(digits.x_train)})")
    cut = len(digits.x_train) - n_val
    return Digits(digits.x_train[:cut], digits.y_train[:cut], digits.x_train[cut:], digits.y_train[cut:],
                  digits.seed)


def digit_rates(pixels: np.ndarray, rate_max_hz: float = 200.0) -> np.ndarray:
    """Pixel intensities 0..16 as Poisson input rates 0..``rate_max_hz`` (in Hz)."""
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.size and (pixels.min() < 0 or pixels.max() > 16):
        raise ValueError("digit pixels must lie in 0..16")
    return pixels / 16.0 * positive_float(rate_max_hz, "rate_max_hz")
