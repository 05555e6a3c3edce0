"""Figures for chapter 11 (learning with segregated dendrites): the compartments of one neuron through its two
phases, learning curves with error bars over seeds, and the angle to backpropagation. Every axis is labelled
with its unit."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_two_phases", "plot_learning_curves", "plot_update_angle"]


def plot_two_phases(forward, target, neuron: int = 0, label: int | None = None, axes=None):
    """Basal, apical and somatic potentials of hidden ``neuron`` (first hidden layer) and the output somata
    against time (ms) through a forward then a target phase (two :class:`~neurodepth_lib.studies.PhaseResult`
    recorded with ``record=``), with each phase's plateau (sigmoid of the settled apical mean) marked."""
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    ax1, ax2 = axes
    t_f = forward.trace.t_ms
    t = np.concatenate([t_f, t_f[-1] + target.trace.t_ms])
    for name, color in (("basal", "tab:blue"), ("apical", "tab:green"), ("soma", "k")):
        v = np.concatenate([getattr(forward.trace, name)[0][:, neuron], getattr(target.trace, name)[0][:, neuron]])
        ax1.plot(t, v, color=color, lw=1.2, label=name)
    end = t_f[-1]
    ax1.axvline(end, color="0.5", ls=":", lw=1)
    ax1.set_ylabel("potential (model units)")
    ax1.set_title(f"hidden neuron {neuron}: forward phase, then target phase")
    ax1b = ax1.twinx()
    for res, t0, t1, name in ((forward, 0, end, "forward"), (target, end, t[-1], "target")):
        alpha = float(res.plateau[0][0, neuron]) if res.plateau[0].ndim == 2 else float(res.plateau[0][neuron])
        ax1b.hlines(alpha, t0 + (t1 - t0) * 0.6, t1, color="tab:red", lw=3)
        ax1b.annotate(f"plateau α ({name}) = {alpha:.3f}", (t1, alpha), textcoords="offset points", xytext=(-5, 6),
                      ha="right", color="tab:red", fontsize=8)
    ax1b.set_ylim(0, 1)
    ax1b.set_ylabel("plateau α = σ(mean apical)", color="tab:red")
    ax1.legend(frameon=False, fontsize=8, loc="upper left")
    out = np.concatenate([forward.trace.output_soma, target.trace.output_soma])
    for k in range(out.shape[1]):
        ax2.plot(t, out[:, k], lw=2 if k == label else 0.8, color="tab:orange" if k == label else "0.6",
                 label=f"output {k} (correct class)" if k == label else None)
    ax2.axvline(end, color="0.5", ls=":", lw=1)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("output soma U (model units)")
    if label is not None:
        ax2.legend(frameon=False, fontsize=8)
    return axes


def plot_learning_curves(curves: dict, ax=None, paper: dict | None = None, ylabel: str = "test error (%)"):
    """``curves``: ``{label: array (seeds, epochs + 1)}`` of errors (fractions); mean ± standard error over
    seeds against epoch. ``paper``: ``{label: error}`` drawn as dashed reference lines (the paper's MNIST
    numbers, for orientation only)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for (name, values), color in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        values = 100 * np.atleast_2d(np.asarray(values, dtype=float))
        epochs = np.arange(values.shape[1])
        mean = values.mean(axis=0)
        se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros_like(mean)
        ax.errorbar(epochs, mean, yerr=se, color=color, marker="o", ms=3, capsize=2,
                    label=f"{name} (n = {len(values)} seeds)")
        if paper and name in paper:
            ax.axhline(100 * paper[name], color=color, ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_update_angle(angles: dict, ax=None):
    """``angles``: ``{label: array (seeds, epochs)}`` of angles (degrees) between a hidden layer's update and
    backprop's, mean ± s.e. against epoch, with 90° (no agreement) marked."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in angles.items():
        values = np.atleast_2d(np.asarray(values, dtype=float))
        epochs = np.arange(1, values.shape[1] + 1)
        se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0 * values[0]
        ax.errorbar(epochs, values.mean(axis=0), yerr=se, marker="o", ms=3, capsize=2, label=name)
    ax.axhline(90, color="k", ls=":", lw=0.8)
    ax.set_ylim(0, 120)
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle to backprop's update (degrees)")
    ax.legend(frameon=False, fontsize=8)
    return ax
