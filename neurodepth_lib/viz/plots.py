"""Figures of traces, training and scoring (chapters 01 and 04-08): rasters, voltages, ROC curves, training
histories, TCN diagrams, predictions and sweeps. Each takes data and an optional matplotlib ``ax`` and
returns the axes (or figure); every axis is labelled with its unit. Figures of cells are in
:mod:`.cell_plots`, of learned filters in :mod:`.filter_plots`.
"""
from __future__ import annotations

import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from ._common import axes_or_new, legend_outside

__all__ = ["plot_raster", "plot_voltage", "plot_kernels", "plot_roc", "plot_training_history",
           "plot_training_window", "plot_tcn_architecture", "plot_loss_components", "plot_trial_prediction",
           "plot_voltage_scatter", "plot_temporal_precision", "plot_best_so_far", "plot_roc_threshold",
           "plot_sweep_by_seed", "plot_scaling_curves"]


# ---------------------------------------------------------------- inputs and the I&F neuron (ch. 00-01)

def plot_raster(events, ax=None, groups=None, title=None, max_points=200_000):
    """Input raster: one dot per event, channels on the y axis.

    ``groups`` maps a label to ``(channel_indices, colour)``; channels in no group are grey.
    """
    ax = axes_or_new(ax)
    ch, t = events.channel, events.time_ms
    if ch.size > max_points:  # keep huge rasters drawable
        keep = np.linspace(0, ch.size - 1, max_points).astype(int)
        ch, t = ch[keep], t[keep]
    colours = np.full(ch.size, "0.4", dtype=object)
    if groups:
        for label, (channels, colour) in groups.items():
            colours[np.isin(ch, channels)] = colour
            ax.plot([], [], "|", color=colour, label=label)
        legend_outside(ax, markerscale=2)
    ax.scatter(t, ch, s=1.0, c=list(colours), marker="|", linewidths=0.6)
    ax.set_xlim(0, events.duration_ms)
    ax.set_ylim(-0.5, events.n_channels - 0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("input channel")
    if title:
        ax.set_title(title)
    return ax


def plot_voltage(v_mV, spikes=None, ax=None, t0_ms=0, label="membrane potential", color="k",
                 threshold_mV=None):
    """A voltage trace in mV against time in ms, with spikes as ticks and an optional threshold line."""
    ax = axes_or_new(ax)
    t = t0_ms + np.arange(len(v_mV))
    ax.plot(t, v_mV, color=color, lw=0.8, label=label)
    if threshold_mV is not None:
        ax.axhline(threshold_mV, color="tab:red", ls="--", lw=0.8, label="threshold")
    if spikes is not None:
        spike_t = t[np.asarray(spikes, dtype=bool)]
        top = np.nanmax(v_mV) + 2
        ax.plot(spike_t, np.full(spike_t.shape, top), "v", color="tab:red", ms=4, label="spikes")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("voltage (mV)")
    return ax


def plot_kernels(learned, true, ax=None, dt_ms=1.0, title="synaptic filters"):
    """Learned against true input filters: every synapse's filter (thin) and their means (thick).

    ``learned`` and ``true`` are ``(n_inputs, n_lags)`` arrays, lag 0 = the current millisecond.
    """
    ax = axes_or_new(ax)
    lags = np.arange(learned.shape[1]) * dt_ms
    for f, colour in ((learned, "tab:orange"), ):
        ax.plot(lags, f.T, color=colour, lw=0.3, alpha=0.3)
    ax.plot(lags, learned.mean(axis=0), color="tab:orange", lw=2, label="learned (mean over synapses)")
    ax.plot(lags, true.mean(axis=0), color="k", ls="--", lw=1.5, label="true (mean over synapses)")
    ax.set_xlabel("time since input spike (ms)")
    ax.set_ylabel("filter (mV per input spike)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_roc(fpr, tpr, ax=None, auc=None, operating_points=(0.001, 0.0025), label="model"):
    """ROC curve with a log-scaled false-positive axis and the paper's operating points marked."""
    ax = axes_or_new(ax, figsize=(4.5, 4))
    ax.plot(fpr, tpr, lw=1.5, label=f"{label}" + (f" (AUC {auc:.4f})" if auc is not None else ""))
    for x in operating_points:
        i = int(np.argmin(np.abs(np.asarray(fpr) - x)))
        ax.plot(fpr[i], tpr[i], "o", ms=5, label=f"TP {tpr[i]:.2f} at FP {100 * x:g} %")
    ax.plot([0, 1], [0, 1], color="0.7", ls=":", lw=1)
    ax.set_xlabel("false-positive rate (fraction of non-spike ms)")
    ax.set_ylabel("true-positive rate (fraction of spikes)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return ax


def plot_training_history(history, ax=None, title="training"):
    """Training (and validation) loss against step from a ``TrainingHistory``-like dict."""
    ax = axes_or_new(ax)
    h = history if isinstance(history, dict) else history.to_dict()
    steps = np.asarray(h["step"])
    ax.plot(steps, h["loss"], lw=0.6, color="0.5", label="training batches")
    if h.get("valid_step"):
        ax.plot(h["valid_step"], h["valid_loss"], "o-", color="tab:blue", ms=3, label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("weighted loss")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_training_window(x, soma, spikes, axes=None, t0_ms=None, n_exc=None, soma_label="soma target (mV)",
                         title=None):
    """One training window: inputs (channels x ms), the voltage target and the spike target.

    ``x`` is ``(channels, W)``, ``soma`` and ``spikes`` ``(W,)`` (numpy or torch); ``n_exc`` channels are
    excitatory (red), the rest inhibitory (blue). With ``t0_ms`` (the window's start in its trial) the time
    axis is time in the trial; without it, time in the window. A window without an output spike says so.
    """
    x, soma, spikes = (np.asarray(getattr(a, "numpy", lambda: a)()) for a in (x, soma, spikes))
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(9, 5.5), sharex=True, height_ratios=[3, 1.5, 0.7])
    t = (0 if t0_ms is None else t0_ms) + np.arange(x.shape[1])
    ch, k = np.nonzero(x)
    n_exc = x.shape[0] if n_exc is None else n_exc
    axes[0].scatter(t[k], ch, s=1, marker="|", linewidths=0.5,
                    c=np.where(ch < n_exc, "tab:red", "tab:blue"))
    axes[0].set_ylabel("input channel")
    axes[0].set_ylim(-0.5, x.shape[0] - 0.5)
    axes[1].plot(t, soma, color="k", lw=1)
    axes[1].set_ylabel(soma_label)
    axes[2].vlines(t[np.asarray(spikes) > 0], 0, 1, color="tab:red")
    if not np.any(np.asarray(spikes) > 0):
        axes[2].text(0.5, 0.5, "no output spike in this window", transform=axes[2].transAxes, ha="center",
                     va="center", fontsize=8, color="0.4")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_yticks([0, 1])
    axes[2].set_ylabel("spike")
    axes[2].set_xlabel("time in window (ms)" if t0_ms is None else "time in trial (ms)")
    if title:
        axes[0].set_title(title)
    return axes


# ---------------------------------------------------------------- fitting and evaluating TCNs (ch. 04-05)

def plot_tcn_architecture(config, ax=None, title=None, n_inputs_label=None):
    """The TCN drawn as the receptive field of one output: each hidden layer is a row, and the bar on it
    spans the time steps of that layer that reach the output at time 0 (causal: only the past).

    ``config`` is a :class:`~neurodepth_lib.nets.TCNConfig` (or a TCN). The input row spans the whole
    receptive field ``T = sum_k (kernel_k - 1) + 1`` ms; every layer above it spans ``kernel_k - 1`` ms
    less. The heads (1x1 convolutions) read the last layer at time 0 only.
    """
    c = getattr(config, "config", config)
    ax = axes_or_new(ax, figsize=(9, 1.2 + 0.55 * (c.depth + 2)))
    kernels = list(c.kernel_sizes)
    # span (ms into the past) of layer k's outputs that reach the final output at t = 0
    spans = [sum(k - 1 for k in kernels[i:]) for i in range(len(kernels) + 1)]  # input ... last layer
    t_rf = spans[0] + 1
    rows = ["input"] + [f"layer {i + 1}" for i in range(c.depth)] + ["heads"]
    colours = ["0.55"] + ["tab:blue"] * c.depth + ["tab:orange"]
    for y, (label, colour) in enumerate(zip(rows, colours)):
        span = spans[y] if y <= c.depth else 0
        ax.add_patch(mpatches.Rectangle((-span - 0.5, y - 0.32), span + 1, 0.64, color=colour, alpha=0.75, lw=0))
        if y == 0:
            text = f"{n_inputs_label or c.n_inputs} synapses, 0/1 per ms"
        elif y <= c.depth:
            act = "ReLU" if c.activation == "relu" else "linear"
            text = f"{c.widths[y - 1]} filters x {kernels[y - 1]} ms, {act}" + (" + BN" if c.batch_norm else "")
        else:
            heads = ["spike (sigmoid)", "soma (linear)"] + ([f"dendritic ({c.n_dendritic})"] if c.n_dendritic else [])
            text = "1x1 read-outs: " + ", ".join(heads)
        ax.text(1.5, y, text, va="center", ha="left", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows)
    ax.set_xlim(-t_rf - 2, max(0.45 * t_rf, 40))
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.axvline(0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("time relative to the predicted millisecond (ms)")
    ax.set_title(title or f"{c.name}: receptive field T = {t_rf} ms")
    return ax


def _smooth(y, n):
    y = np.asarray(y, dtype=float)
    if n <= 1 or y.size < n:
        return y
    k = np.ones(n) / n
    core = np.convolve(y, k, mode="valid")
    return np.concatenate([np.full(n - 1, np.nan), core])


def plot_loss_components(history, axes=None, smooth=20, title=None):
    """Unweighted spike loss (BCE) and soma loss (MSE, mV^2) against step, training (running mean over
    ``smooth`` entries) and validation, with the schedule's stage boundaries. The weighted total jumps when
    the schedule changes its loss weights; its parts do not."""
    h = history if isinstance(history, dict) else history.to_dict()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    steps = np.asarray(h["step"])
    stages = np.asarray(h.get("stage", []))
    bounds = steps[1:][np.diff(stages) != 0] if stages.size > 1 else []
    for ax, train_key, valid_key, label in ((axes[0], "loss_spike", "valid_spike", "spike loss (BCE)"),
                                            (axes[1], "loss_soma", "valid_soma", "soma loss (MSE, mV²)")):
        ax.plot(steps, h[train_key], color="0.8", lw=0.5)
        ax.plot(steps, _smooth(h[train_key], smooth), color="0.35", lw=1.2, label="training")
        if h.get("valid_step"):
            ax.plot(h["valid_step"], h[valid_key], "o-", color="tab:blue", ms=3, lw=1, label="validation")
        for b in bounds:
            ax.axvline(b, color="0.6", lw=0.6, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.legend(frameon=False, fontsize=8)
    if title:
        axes[0].set_title(title)
    return axes


def plot_trial_prediction(spike_probability, spike_true, soma_pred_mV, soma_true_mV, axes=None,
                          soma_raw_mV=None, t_window_ms=None, title=None, warmup_ms=None):
    """One trial: true and predicted somatic voltage (top) and spike probability with the true spikes
    (bottom). Arrays are ``(time,)`` at 1 ms; ``soma_raw_mV`` (unclipped truth) is drawn in grey."""
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(10, 4.6), sharex=True, height_ratios=[2, 1.2])
    t = np.arange(len(spike_probability))
    lo, hi = (0, len(t)) if t_window_ms is None else t_window_ms
    sl = slice(int(lo), int(hi))
    if soma_raw_mV is not None:
        axes[0].plot(t[sl], np.asarray(soma_raw_mV)[sl], color="0.75", lw=0.7, label="simulated (spikes)")
    axes[0].plot(t[sl], np.asarray(soma_true_mV)[sl], color="k", lw=0.9, label="simulated, clipped at -55 mV")
    axes[0].plot(t[sl], np.asarray(soma_pred_mV)[sl], color="tab:orange", lw=0.9, label="network")
    axes[0].set_ylabel("soma voltage (mV)")
    axes[0].legend(frameon=False, fontsize=8, loc="upper left", ncol=3)
    prob = np.asarray(spike_probability)[sl]
    top = float(min(1.0, max(1.15 * prob.max(), 0.02)))  # a weak prediction stays visible
    axes[1].plot(t[sl], prob, color="tab:green", lw=0.9, label="predicted probability")
    spikes_t = t[sl][np.asarray(spike_true)[sl] > 0]
    axes[1].vlines(spikes_t, 0, top, color="tab:red", lw=1, label="true spikes")
    axes[1].set_ylim(0, top)
    axes[1].set_ylabel("spike probability\nper ms")
    axes[1].set_xlabel("time in trial (ms)")
    axes[1].legend(frameon=False, fontsize=8, loc="upper left", ncol=2)
    if warmup_ms:
        for ax in axes:
            ax.axvspan(lo, min(warmup_ms, hi), color="0.92", lw=0, zorder=0)
    axes[1].set_xlim(lo, hi)
    if title:
        axes[0].set_title(title)
    return axes


def plot_voltage_scatter(pred_mV, true_mV, ax=None, bins=80, title=None):
    """Predicted against true somatic voltage over every (trial, ms): a 2-D histogram (log counts) with
    the identity line."""
    ax = axes_or_new(ax, figsize=(4.5, 4))
    p, t = np.ravel(pred_mV), np.ravel(true_mV)
    lo = float(min(np.percentile(t, 0.1), np.percentile(p, 0.1)))
    hi = float(max(t.max(), np.percentile(p, 99.9)))
    h = ax.hist2d(t, p, bins=bins, range=[[lo, hi], [lo, hi]], norm=LogNorm(), cmap="viridis")
    ax.plot([lo, hi], [lo, hi], color="tab:red", lw=1, ls="--", label="prediction = truth")
    ax.figure.colorbar(h[3], ax=ax, label="ms (count)")
    ax.set_xlabel("simulated soma voltage (mV)")
    ax.set_ylabel("predicted soma voltage (mV)")
    ax.set_aspect("equal")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_temporal_precision(precision, ax=None, label=None, color="tab:blue"):
    """The paper's temporal-precision plot: rate of predicted spikes (Hz) at each lag from a true spike
    (a :class:`~neurodepth_lib.scoring.TemporalPrecision`)."""
    ax = axes_or_new(ax, figsize=(5, 3.2))
    ax.plot(precision.lags_ms, precision.rate_hz, color=color, lw=1.5,
            label=label or f"threshold at FP {100 * precision.fpr:.2g} % (TP {precision.tpr:.2f})")
    ax.axvline(0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("time from true spike (ms)")
    ax.set_ylabel("predicted spikes (Hz)")
    ax.legend(frameon=False, fontsize=8)
    return ax


# ---------------------------------------------------------------- sweeps (ch. 06) and the ROC demo (ch. 05)

def plot_best_so_far(curves, ax=None, axis_label="depth (layers)", metric_label="spike AUC", title=None,
                     colours=None):
    """The paper's "best so far" curves with error bars over seeds: ``curves`` is
    :func:`neurodepth_lib.studies.best_so_far`'s ``{condition: {"x", "mean", "sem", "n"}}``."""
    ax = axes_or_new(ax, figsize=(4.5, 3.2))
    colours = colours or {"NMDA": "tab:red", "AMPA": "tab:blue"}
    for condition, c in curves.items():
        sem = np.nan_to_num(np.asarray(c["sem"], float))
        ax.errorbar(c["x"], c["mean"], yerr=sem, marker="o", capsize=3, label=str(condition),
                    color=colours.get(condition))
    ax.set_xlabel(axis_label)
    ax.set_ylabel(f"best {metric_label} so far")
    ax.set_xticks(sorted({x for c in curves.values() for x in c["x"]}))
    ax.legend(title="condition", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_roc_threshold(scores, labels, threshold, fpr, tpr, axes=None, t0_ms=0, trace_row=None, auc=None):
    """A threshold on the spike probability, as a point on the ROC curve and as hits and false alarms in time
    (chapter 05).

    ``scores`` and ``labels`` are ``(trials, ms)`` (the scored milliseconds, starting at ``t0_ms`` in each
    trial); a millisecond is called a spike when its score is at least ``threshold`` (as in
    ``nd.scoring.roc_curve``, whose ``fpr`` and ``tpr`` give the curve). Panels: the ROC curve on a log
    false-positive axis with the threshold's point; one trial's probability (the one with most spikes unless
    ``trace_row``) with the threshold line; a raster over all trials of true spikes (black), hits (green) and
    false alarms (red). Returns the three axes.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels) > 0
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be (trials, ms) of equal shape, got {s.shape} and {y.shape}")
    if not y.any() or y.all():
        raise ValueError("labels need both spike and silent milliseconds to place a threshold on the ROC curve")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if axes is None:
        fig = plt.figure(figsize=(13, 5.2))
        axd = fig.subplot_mosaic([["roc", "trace"], ["roc", "raster"]], width_ratios=[1, 2.3],
                                 height_ratios=[1, 1.6])
        axes = (axd["roc"], axd["trace"], axd["raster"])
    ax_roc, ax_trace, ax_raster = axes
    above = s >= threshold
    hits, alarms = above & y, above & ~y
    tp_rate, fp_rate = hits.sum() / y.sum(), alarms.sum() / (~y).sum()
    lo_fp = 1e-4
    ax_roc.plot(fpr, tpr, color="tab:blue", lw=1.5, label="ROC" + (f" (AUC {auc:.4f})" if auc is not None else ""))
    for x in (0.001, 0.0025):
        ax_roc.axvline(x, color="0.6", ls=":", lw=0.8)
    ax_roc.plot(max(fp_rate, lo_fp), tp_rate, "o", ms=9, mfc="none", mec="k", mew=2,
                label=f"threshold {threshold:.3g}" + (" (FP < 0.01 %)" if fp_rate < lo_fp else ""))
    ax_roc.set_xscale("log")
    ax_roc.set_xlim(lo_fp, 1)
    ax_roc.set_ylim(0, 1.02)
    ax_roc.set_xlabel("false-positive rate (fraction of silent ms)\ndotted: the paper's 0.1 % and 0.25 %")
    ax_roc.set_ylabel("true-positive rate (fraction of spike ms)")
    ax_roc.legend(frameon=False, fontsize=8, loc="upper left")

    row = int(np.argmax(y.sum(axis=1))) if trace_row is None else int(trace_row)
    if not 0 <= row < s.shape[0]:
        raise ValueError(f"trace_row must be in [0, {s.shape[0]}), got {trace_row}")
    t = t0_ms + np.arange(s.shape[1])
    floor = max(float(np.min(s[s > 0])) if (s > 0).any() else 1e-6, 1e-7)
    ax_trace.plot(t, np.maximum(s[row], floor), color="tab:green", lw=0.7, label="spike probability")
    ax_trace.axhline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax_trace.plot(t[y[row]], np.full(int(y[row].sum()), 1.3), "v", color="k", ms=5, label="true spikes")
    ax_trace.plot(t[alarms[row]], np.maximum(s[row][alarms[row]], floor), ".", color="tab:red", ms=4,
                  label="false alarms")
    ax_trace.plot(t[hits[row]], s[row][hits[row]], "o", color="tab:green", mec="k", ms=5, label="hits")
    ax_trace.set_yscale("log")
    ax_trace.set_ylim(floor, 2)
    ax_trace.set_ylabel("p(spike) per ms")
    ax_trace.set_title(f"scored trial {row} (the one with most spikes)" if trace_row is None else
                       f"scored trial {row}", fontsize=9)
    legend_outside(ax_trace, fontsize=7)

    for mask, colour, marker, size, label in ((y, "k", "|", 40, "true spikes"),
                                              (alarms, "tab:red", ".", 8, "false alarms"),
                                              (hits, "tab:green", "o", 12, "hits")):
        r, c = np.nonzero(mask)
        ax_raster.scatter(t[c], r, s=size, c=colour, marker=marker, linewidths=1 if marker == "|" else 0,
                          label=f"{label}: {r.size:,}")
    ax_raster.set_xlim(t[0], t[-1] + 1)
    ax_raster.set_ylim(-0.5, s.shape[0] - 0.5)
    ax_raster.yaxis.set_major_locator(MaxNLocator(integer=True))  # trials are counted
    ax_raster.invert_yaxis()
    ax_raster.set_xlabel("time in trial (ms)")
    ax_raster.set_ylabel("scored trial")
    legend_outside(ax_raster, fontsize=7, markerscale=1.5)
    per_s = alarms.sum() / (s.size / 1000.0)
    ax_trace.figure.suptitle(
        f"p ≥ {threshold:.3g}: TP {tp_rate:.2f} ({int(hits.sum())} of {int(y.sum())} spike ms caught), "
        f"FP {100 * fp_rate:.3g} % ({int(alarms.sum()):,} false alarms, {per_s:.2g} per second)", fontsize=10)
    return axes


def _seed_curves(rows, condition, metric, key, seeds, cumulative):
    """Per seed, the metric at each value of ``key``: the best over the other settings at that value, or with
    ``cumulative`` the best at any value up to it (the paper's best so far). Returns (xs, {seed: values})."""
    sub = [r for r in rows if r["condition"] == condition and r.get(metric) is not None
           and (seeds is None or r["seed"] in seeds)]
    xs = sorted({r[key] for r in sub})
    curves = {}
    for seed in sorted({r["seed"] for r in sub}):
        best, curve = -np.inf, []
        for x in xs:
            vals = [r[metric] for r in sub if r["seed"] == seed and r[key] == x]
            here = max(vals) if vals else -np.inf
            best = max(best, here) if cumulative else here
            curve.append(best if np.isfinite(best) else np.nan)
        curves[seed] = curve
    return xs, curves


def plot_sweep_by_seed(rows, metric="auc", ax=None, conditions=None, seeds=None, cumulative=True, axis="depth",
                       metric_label="spike AUC", colours=None, title=None):
    """A sweep's metric against ``axis`` per seed (thin lines) and its mean ± standard error over the seeds shown
    (thick), per condition (chapter 06). ``cumulative`` draws the paper's "best so far" (the same numbers as
    ``nd.studies.best_so_far``); otherwise each seed's best network at each value. ``conditions`` and ``seeds``
    choose what to show (None: all in ``rows``)."""
    keys = {"depth": "depth", "width": "width", "T": "receptive_field_ms"}
    if axis not in keys:
        raise ValueError(f"axis must be one of {sorted(keys)}, got {axis!r}")
    rows = list(rows)
    if not rows:
        raise ValueError("no sweep results to draw")
    missing = [r for r in rows if metric not in r]
    if missing:
        raise ValueError(f"the sweep's rows have no metric {metric!r}")
    ax = axes_or_new(ax, figsize=(4.5, 3.2))
    colours = colours or {"NMDA": "tab:red", "AMPA": "tab:blue"}
    all_conditions = sorted({r["condition"] for r in rows})
    conditions = all_conditions if conditions is None else list(conditions)
    unknown = [c for c in conditions if c not in all_conditions]
    if unknown:
        raise ValueError(f"no results for condition(s) {unknown}; the sweep has {all_conditions}")
    if seeds is not None:
        seeds = set(seeds)
        unknown = sorted(seeds - {r["seed"] for r in rows})
        if unknown:
            raise ValueError(f"no results for seed(s) {unknown}; the sweep has {sorted({r['seed'] for r in rows})}")
    drawn = 0
    for i, condition in enumerate(conditions):
        xs, curves = _seed_curves(rows, condition, metric, keys[axis], seeds, cumulative)
        if not curves:
            continue
        colour = colours.get(condition, f"C{i}")
        arr = np.array(list(curves.values()), dtype=float)
        offsets = np.linspace(-0.08, 0.08, len(curves)) if len(curves) > 1 else [0.0]
        for dx, (seed, curve) in zip(offsets, curves.items()):
            ax.plot(np.asarray(xs, float) + dx, curve, "o-", color=colour, lw=0.7, ms=3, alpha=0.45)
        columns = [a[np.isfinite(a)] for a in arr.T]
        mean = [c.mean() if c.size else np.nan for c in columns]
        sem = [c.std(ddof=1) / np.sqrt(c.size) if c.size > 1 else 0.0 for c in columns]
        ax.errorbar(xs, mean, yerr=sem, marker="o", lw=2, capsize=3, color=colour,
                    label=f"{condition}: mean ± s.e. of {len(curves)} seed{'s' * (len(curves) != 1)}")
        drawn += 1
    if drawn:
        ax.plot([], [], "o-", color="0.5", lw=0.7, ms=3, alpha=0.6, label="single seeds")
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2)  # off the data
        ax.set_xticks(sorted({r[keys[axis]] for r in rows}))
    else:
        ax.text(0.5, 0.5, "choose at least one condition and one seed", transform=ax.transAxes, ha="center",
                va="center", color="0.4")
    ax.set_xlabel({"depth": "depth (layers)", "width": "width (channels)", "T": "receptive field T (ms)"}[axis])
    ax.set_ylabel(f"best {metric_label} so far" if cumulative else f"{metric_label}\n(each seed's best network)")
    if title:
        ax.set_title(title)
    return ax


def plot_scaling_curves(entries, condition, ax=None, metric_label="spike AUC", title=None, cmap="viridis"):
    """The data-scaling study of one condition: mean test ``metric_label`` against the simulated hours of
    training data (log axis), one line per depth, bars one standard error over seeds. ``entries`` is
    :func:`neurodepth_lib.studies.depth_by_size`'s list (entries of other conditions are ignored). Each size's
    depth needed (within the study's tolerance of the best) is ringed."""
    ax = axes_or_new(ax, figsize=(5.5, 3.6))
    sub = sorted((e for e in entries if e["condition"] == condition), key=lambda e: e["n_train_trials"])
    if not sub:
        raise ValueError(f"no entries for condition {condition!r}; conditions: "
                         f"{sorted({str(e['condition']) for e in entries})}")
    depths = sorted({d for e in sub for d in e["depths"]})
    colours = plt.get_cmap(cmap)(np.linspace(0.0, 0.85, len(depths)))
    for d, colour in zip(depths, colours):
        pts = [(e["train_hours"], e["mean_by_depth"][e["depths"].index(d)], e["sem_by_depth"][e["depths"].index(d)])
               for e in sub if d in e["depths"]]
        x, y, err = (np.asarray(v, float) for v in zip(*pts))
        ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", ms=4, capsize=3, color=colour,
                    label=f"{d} layer{'s' if d > 1 else ''}")
    for e in sub:
        y = e["mean_by_depth"][e["depths"].index(e["depth_needed"])]
        ax.plot(e["train_hours"], y, "o", ms=11, mfc="none", mec="k", mew=1.0)
    ax.plot([], [], "o", ms=9, mfc="none", mec="k", label=f"depth needed (within {sub[0]['tolerance']:g})")
    ax.set_xscale("log")
    hours = [e["train_hours"] for e in sub]
    ax.set_xticks(hours, [f"{h:.2g}\n({e['n_train_trials']})" for h, e in zip(hours, sub)])
    ax.minorticks_off()
    ax.set_xlabel("training data: simulated hours (trials)")
    ax.set_ylabel(f"test {metric_label} (mean ± s.e.)")
    legend_outside(ax, title="depth")
    ax.set_title(title or f"{condition}: does the depth needed grow with the data?", fontsize=10)
    return ax
