"""Baselines for chapter 11 on the same data, sizes, initialisation, minibatches and epochs as the dendritic
network of :mod:`.segregated`: backpropagation and feedback alignment (Lillicrap et al. 2016).

A baseline network is the dendritic network's steady state without time: hidden rates
``rate_max * sigmoid(k_b (W s + b))``, output ``U = k_d (W s + b)``, and the output target of the same
teaching current (``sigmoid`` of the output soma's steady state with gE/gI on). The output layer learns with
exactly the dendritic network's output rule; the hidden layers learn from the output error carried down
through ``W.T`` (``"backprop"``) or through fixed random matrices (``"feedback_alignment"``). With no hidden
layer both rules are the dendritic network's output rule.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from .._checks import non_negative_int, positive_int
from .segregated import (N_CLASSES, Digits, LearningRun, SegregatedParams, _dsigmoid, digit_rates, init_weights,
                         sigmoid)

__all__ = ["RULES", "train_baseline"]

RULES = ("backprop", "feedback_alignment")


def _forward(W, b, x, p: SegregatedParams):
    s, somas, inputs = x, [], [x]
    for w, bias in zip(W[:-1], b[:-1]):
        v = p.k_b * (s @ w.T + bias)
        s = p.rate_max_per_ms * sigmoid(v)
        somas.append(v)
        inputs.append(s)
    vb = s @ W[-1].T + b[-1]
    return somas, inputs, vb


def train_baseline(digits: Digits, hidden=(100,), params: SegregatedParams | None = None,
                   rule: str = "backprop", epochs: int = 10, seed: int = 0, n_train: int | None = None,
                   progress: bool = False) -> LearningRun:
    """Train a steady-state baseline network with ``rule`` (one of :data:`RULES`) on ``digits``; the
    returned :class:`~.segregated.LearningRun` has the test error before training and after each epoch."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    p = params or SegregatedParams()
    epochs = non_negative_int(epochs, "epochs")
    seed = non_negative_int(seed, "seed")
    hidden = tuple(positive_int(h, "hidden layer size") for h in hidden)
    n = len(digits.x_train) if n_train is None else min(positive_int(n_train, "n_train"), len(digits.x_train))
    x = digit_rates(digits.x_train[:n], p.rate_max_hz) / 1000.0      # spikes per ms, as the filtered trains
    y = digits.y_train[:n]
    x_te = digit_rates(digits.x_test, p.rate_max_hz) / 1000.0
    rng = np.random.default_rng(seed)
    sizes = (digits.n_inputs, *hidden, N_CLASSES)
    rms = [float(np.sqrt(np.mean(x ** 2)))] + [0.3 * p.rate_max_per_ms] * len(hidden)
    sds = [p.init_v_sd] * len(hidden) + [p.init_output_v_sd]
    means = [p.init_v_mean] * len(hidden) + [p.init_output_v_mean]
    W, b = map(list, zip(*[init_weights(rng, o, i, r, m, sd)
                           for i, o, r, m, sd in zip(sizes[:-1], sizes[1:], rms, means, sds)]))
    B = [init_weights(rng, w.shape[1], w.shape[0], 1.0, 0.0, 1.0)[0] for w in W[1:]]   # fixed, for FA
    run = LearningRun(hidden, p, seed, rule=rule)

    def error(xs, ys):
        return float(np.mean(np.argmax(_forward(W, b, xs, p)[2], axis=1) != ys))

    t0 = time.perf_counter()
    run.test_error.append(error(x_te, digits.y_test))
    k = 20.0
    for _ in tqdm(range(epochs), desc=rule, unit="epoch", disable=not progress, leave=False):
        order = rng.permutation(n)
        for start in range(0, n, p.batch_size):
            idx = order[start:start + p.batch_size]
            somas, inputs, vb = _forward(W, b, x[idx], p)
            teach = np.zeros((len(idx), N_CLASSES))
            teach[np.arange(len(idx)), y[idx]] = 1.0
            u_target = (p.g_d * vb + teach * p.e_exc + (1 - teach) * p.e_inh) / (p.g_l + p.g_d + 1.0)
            u = p.k_d * vb
            delta = p.k_d * (sigmoid(u_target) - sigmoid(u)) * _dsigmoid(u)
            deltas = [delta]
            for i in reversed(range(len(hidden))):
                back = W[i + 1] if rule == "backprop" else B[i].T
                delta = (delta @ back) * p.k_b * p.rate_max_per_ms * _dsigmoid(somas[i])
                deltas.insert(0, delta)
            lrs = [p.lr_hidden] * len(hidden) + [p.lr_output]
            for i, (d, s, lr) in enumerate(zip(deltas, inputs, lrs)):
                W[i] += lr * k * d.T @ s / len(idx)
                b[i] += lr * p.lr_bias_scale * k * d.mean(axis=0)
        run.test_error.append(error(x_te, digits.y_test))
    run.train_error = error(x, y)
    run.wall_s = time.perf_counter() - t0
    return run
