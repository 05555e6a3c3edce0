"""Baselines for chapter 11 on the same data, sizes, initialisation, minibatches and epochs as the dendritic
network of :mod:`.segregated`: backpropagation and feedback alignment (Lillicrap et al. 2016); and the
runners the chapter uses for all three rules: :func:`train_rule` (one run), :func:`train_many` (many runs, on a
process pool) and :func:`tune_learning_rates` (a grid on the validation split).

A baseline network is the dendritic network's steady state without time: hidden rates
``rate_max * sigmoid(k_b (W s + b))``, output ``U = k_d (W s + b)``, and the output target of the same
teaching current (``sigmoid`` of the output soma's steady state with gE/gI on). The output layer learns with
exactly the dendritic network's output rule; the hidden layers learn from the output error carried down
through ``W.T`` (``"backprop"``) or through fixed random matrices (``"feedback_alignment"``). With no hidden
layer both rules are the dendritic network's output rule.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .. import _parallel
from .._checks import non_negative_int, positive_int
from .digits import Digits, digit_rates, validation_split
from .segregated import (LATE_EPOCHS, N_CLASSES, LearningRun, SegregatedParams, init_weights, sigmoid,
                         sigmoid_derivative, train_segregated)

__all__ = ["RULES", "ALL_RULES", "train_baseline", "train_rule", "train_many", "tune_learning_rates"]

RULES = ("backprop", "feedback_alignment")
#: Every learning rule chapter 11 compares: the dendritic rule of :mod:`.segregated` and the two baselines.
ALL_RULES = ("dendritic", *RULES)


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
    returned :class:`~.segregated.LearningRun` has the test error before training and after each epoch. Runs
    with one BLAS thread (the matrices are small: more threads only cost)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _train_baseline(digits, hidden, params, rule, epochs, seed, n_train, progress)


def _train_baseline(digits, hidden, params, rule, epochs, seed, n_train, progress) -> LearningRun:
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
    # feedback alignment's fixed random matrices: an independent draw from each forward matrix's own
    # distribution (as Lillicrap et al. draw B like W), from their own stream so the shuffles match backprop's
    rng_b = np.random.default_rng([seed, 2])
    B = [init_weights(rng_b, o, i, r, m, sd)[0]
         for i, o, r, m, sd in zip(sizes[1:-1], sizes[2:], rms[1:], means[1:], sds[1:])]
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
            delta = p.k_d * (sigmoid(u_target) - sigmoid(u)) * sigmoid_derivative(u)
            deltas = [delta]
            for i in reversed(range(len(hidden))):
                back = W[i + 1] if rule == "backprop" else B[i]
                delta = (delta @ back) * p.k_b * p.rate_max_per_ms * sigmoid_derivative(somas[i])
                deltas.insert(0, delta)
            lrs = [p.lr_hidden] * len(hidden) + [p.lr_output]
            for i, (d, s, lr) in enumerate(zip(deltas, inputs, lrs)):
                # divided by the nominal minibatch: a short last minibatch steps in proportion (as the
                # dendritic network's training does)
                W[i] += lr * k * d.T @ s / p.batch_size
                b[i] += lr * p.lr_bias_scale * k * d.sum(axis=0) / p.batch_size
        run.test_error.append(error(x_te, digits.y_test))
    run.train_error = error(x, y)
    run.wall_s = time.perf_counter() - t0
    return run


def train_rule(rule: str, digits: Digits, hidden=(100,), params: SegregatedParams | None = None, epochs: int = 10,
               seed: int = 0, n_train: int | None = None, progress: bool = False,
               measure_angle: bool = True) -> LearningRun:
    """One training run with ``rule`` (one of :data:`ALL_RULES`): the dendritic network
    (:func:`~.segregated.train_segregated`, ``measure_angle`` there) or a baseline (:func:`train_baseline`)."""
    if rule == "dendritic":
        return train_segregated(digits, hidden, params, epochs=epochs, seed=seed, n_train=n_train,
                                progress=progress, measure_angle=measure_angle)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(ALL_RULES)}, got {rule!r}")
    return train_baseline(digits, hidden, params, rule=rule, epochs=epochs, seed=seed, n_train=n_train,
                          progress=progress)


def _train_task(task: dict) -> dict:
    """One job of :func:`train_many` (module level, so that spawned workers can run it)."""
    return {"key": task["key"], "run": train_rule(**task["job"])}


def train_many(jobs: dict, workers: int | None = None, progress: bool = True) -> dict:
    """Run every job of ``jobs`` (``{key: keyword arguments of train_rule}``, ``progress`` excepted) and return
    ``{key: LearningRun}`` in the order of ``jobs``.

    ``workers``: processes of a spawn pool (None: one per core; 0: one after the other in this process). The
    runs are independent and seeded, so the results do not depend on ``workers``.
    """
    workers = _parallel.default_workers() if workers is None else non_negative_int(workers, "workers")
    tasks = []
    for key, job in jobs.items():
        job = dict(job)
        if "progress" in job:
            raise ValueError(f"job {key!r}: train_many draws one progress bar for all jobs; drop 'progress'")
        job.setdefault("rule", "dendritic")
        tasks.append({"key": key, "job": job})
    _parallel.check_spawn_safe(workers)
    done = {}
    bar = tqdm(total=len(tasks), unit="run", desc="training runs", disable=not progress, leave=False)

    def on_done(result):
        done[result["key"]] = result["run"]
        bar.update(1)

    try:
        _parallel.run_tasks(_train_task, tasks, workers=min(workers, len(tasks)), client=None, on_done=on_done,
                            name_of=lambda t: repr(t["key"]), what="training run")
    finally:
        bar.close()
    return {key: done[key] for key in jobs}


def tune_learning_rates(digits: Digits, rule: str, hidden, grid: dict, params: SegregatedParams | None = None,
                        epochs: int = 10, seeds=(0, 1, 2), last: int = LATE_EPOCHS, n_val: int = 337,
                        workers: int | None = None, progress: bool = True) -> list[dict]:
    """Score every combination of ``grid`` (``{"lr_hidden": [...], "lr_output": [...]}``: any fields of
    :class:`~.segregated.SegregatedParams`) on :func:`~.segregated.validation_split` of ``digits`` (the test
    digits are never used): the validation error averaged over the ``last`` epochs and over ``seeds``. Returns
    one dict per combination (its values, ``"error"`` and ``"error_by_seed"``), best first."""
    params = params or SegregatedParams()
    last = positive_int(last, "last")
    epochs = positive_int(epochs, "epochs")
    if last > epochs:
        raise ValueError(f"last ({last}) must not exceed epochs ({epochs})")
    if not grid:
        raise ValueError("grid must name at least one parameter")
    val = validation_split(digits, n_val)
    names = list(grid)
    combos = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
    jobs = {(c, s): dict(rule=rule, digits=val, hidden=tuple(hidden), params=params.replace(**combo), epochs=epochs,
                         seed=s, measure_angle=False)
            for c, combo in enumerate(combos) for s in seeds}
    runs = train_many(jobs, workers=workers, progress=progress)
    scored = []
    for c, combo in enumerate(combos):
        by_seed = [runs[(c, s)].late_error(last) for s in seeds]
        scored.append({**combo, "error": float(np.mean(by_seed)), "error_by_seed": by_seed})
    return sorted(scored, key=lambda r: r["error"])
