"""Plotting functions used by the notebooks. Each takes data and an optional matplotlib ``ax`` and
returns the axes (or figure); every axis is labelled with its unit.

Shared file: chapters add their functions below, grouped by chapter.
"""
from __future__ import annotations

import matplotlib.patches as mpatches
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_raster", "plot_voltage", "plot_kernels", "plot_filter_map", "plot_roc",
           "plot_training_history", "REGION_COLOURS", "plot_morphology", "plot_density_vs_distance",
           "plot_dendritic_map", "plot_l5pc_trial", "plot_input_rates", "plot_raster_by_distance",
           "plot_training_window", "plot_tcn_architecture", "plot_loss_components", "plot_trial_prediction",
           "plot_voltage_scatter", "plot_temporal_precision", "plot_best_so_far", "plot_filter_templates",
           "plot_filter_profiles", "plot_iaf_time_constant", "plot_input_recipe", "plot_roc_threshold",
           "plot_sweep_by_seed", "plot_values_on_tree", "plot_filter_on_tree"]


def _axes(ax=None, figsize=(8, 3)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _legend_outside(ax, **kwargs):
    """A legend to the right of the axes, where it cannot hide data (rasters and traces fill their axes)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
                     **{"fontsize": 8, **kwargs})


# ---------------------------------------------------------------- inputs and the I&F neuron (ch. 00-01)

def plot_raster(events, ax=None, groups=None, title=None, max_points=200_000):
    """Input raster: one dot per event, channels on the y axis.

    ``groups`` maps a label to ``(channel_indices, colour)``; channels in no group are grey.
    """
    ax = _axes(ax)
    ch, t = events.channel, events.time_ms
    if ch.size > max_points:  # keep huge rasters drawable
        keep = np.linspace(0, ch.size - 1, max_points).astype(int)
        ch, t = ch[keep], t[keep]
    colours = np.full(ch.size, "0.4", dtype=object)
    if groups:
        for label, (channels, colour) in groups.items():
            colours[np.isin(ch, channels)] = colour
            ax.plot([], [], "|", color=colour, label=label)
        _legend_outside(ax, markerscale=2)
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
    ax = _axes(ax)
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
    ax = _axes(ax)
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


def plot_filter_map(filt, ax=None, title="", vmax=None, n_exc=None):
    """A synapse x time map of a filter (lag 0 at the left), excitatory above inhibitory."""
    ax = _axes(ax)
    vmax = vmax or np.abs(filt).max()
    im = ax.imshow(filt, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest",
                   extent=(-0.5, filt.shape[1] - 0.5, filt.shape[0] - 0.5, -0.5))
    if n_exc is not None:
        ax.axhline(n_exc - 0.5, color="k", lw=0.6)
    ax.set_xlabel("time since input spike (ms)")
    ax.set_ylabel("synapse")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="mV per input spike")
    return ax


def plot_roc(fpr, tpr, ax=None, auc=None, operating_points=(0.001, 0.0025), label="model"):
    """ROC curve with a log-scaled false-positive axis and the paper's operating points marked."""
    ax = _axes(ax, figsize=(4.5, 4))
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
    ax = _axes(ax)
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


# ---------------------------------------------------------------- the detailed L5 pyramidal cell (ch. 02)

# The one colour map for dendritic regions, in every chapter and every figure that colours a region (the
# morphology, channel densities, filter maps on the tree): a region keeps its colour across the collection.
REGION_COLOURS = {"soma": "k", "axon": "0.5", "basal": "tab:blue", "oblique": "tab:green", "tuft": "tab:purple"}


def plot_morphology(points, ax=None, colours=None, marks=None, title=None, width_scale=0.6):
    """Draw a neuron from its 3-D points, projected on the x-y plane, coloured by region.

    ``points`` is a list of ``(section_name, region, xyz (n, 3) um, diam (n,) um)`` as returned by
    ``L5PC.morphology_points()``. ``marks`` maps a label to an ``(x, y)`` position in um (e.g. the nexus).
    """
    ax = _axes(ax, figsize=(4.5, 7))
    colours = {**REGION_COLOURS, **(colours or {})}
    seen = set()
    for _, region, xyz, diam in points:
        if len(xyz) < 2:
            continue
        segs = np.stack([xyz[:-1, :2], xyz[1:, :2]], axis=1)
        widths = np.clip(width_scale * 0.5 * (diam[:-1] + diam[1:]), 0.3, 6 if region == "soma" else 3)
        ax.add_collection(LineCollection(segs, colors=colours.get(region, "0.3"), linewidths=widths,
                                         capstyle="round"))
        if region not in seen:
            ax.plot([], [], color=colours.get(region, "0.3"), lw=2, label=region)
            seen.add(region)
    for label, (x, y) in (marks or {}).items():
        ax.plot(x, y, "o", ms=7, mfc="none", mec="tab:red", mew=1.5, label=label)
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_density_vs_distance(distance_um, density_S_cm2, regions, ax=None, title=None, log=False,
                             ylabel="conductance density (S/cm²)"):
    """One dot per dendritic segment: a channel's density against path distance from the soma."""
    ax = _axes(ax, figsize=(5, 3.2))
    distance_um, density_S_cm2, regions = (np.asarray(a) for a in (distance_um, density_S_cm2, regions))
    for region in dict.fromkeys(regions.tolist()):
        keep = regions == region
        ax.plot(distance_um[keep], density_S_cm2[keep], "o", ms=2.5, color=REGION_COLOURS.get(region, "0.3"),
                label=region)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("path distance from the soma (µm)")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_dendritic_map(v_dend_mV, regions, ax=None, t0_ms=0, vmin=-85, vmax=-10, title=None, colorbar=True):
    """Voltage of every dendritic segment (rows, in channel order) against time, region bands on the left.

    With ``colorbar=False`` the image is ``ax.images[0]``, e.g. for one colour bar shared by several maps."""
    ax = _axes(ax, figsize=(9, 3.5))
    v = np.asarray(v_dend_mV)
    n, T = v.shape
    im = ax.imshow(v, aspect="auto", cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest",
                   extent=(t0_ms - 0.5, t0_ms + T - 0.5, n - 0.5, -0.5))
    regions = np.asarray(regions)
    start = 0
    for k in range(1, n + 1):  # label each contiguous block of one region
        if k == n or regions[k] != regions[start]:
            ax.axhline(k - 0.5, color="w", lw=0.4)
            ax.text(t0_ms + 0.005 * T, (start + k) / 2, regions[start], color="w", fontsize=7, va="center")
            start = k
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("dendritic segment")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="voltage (mV)")
    if title:
        ax.set_title(title)
    return ax


def plot_l5pc_trial(result, dend_rows=(), dend_labels=None, axes=None, title=None, t_window_ms=None):
    """Soma (with spikes), nexus and a few dendritic voltages of one simulated trial, stacked.

    ``result`` has ``v_soma_1ms``, ``v_soma_0125ms``, ``v_nexus_1ms``, ``spike_times_ms`` and, when
    ``dend_rows`` are given, ``v_dend_1ms`` (a ``TrialResult`` from ``neurodepth_lib.cells.simulation``).
    """
    dend_rows = list(dend_rows)
    n = 2 + (1 if dend_rows else 0)
    if axes is None:
        _, axes = plt.subplots(n, 1, figsize=(9, 1.9 * n + 0.4), sharex=True)
    axes = np.atleast_1d(axes)
    lo, hi = t_window_ms or (0, len(result.v_soma_1ms))
    t_hi = np.arange(len(result.v_soma_0125ms)) / 8.0
    keep = (t_hi >= lo) & (t_hi < hi)
    axes[0].plot(t_hi[keep], result.v_soma_0125ms[keep], color="k", lw=0.7)
    spikes = result.spike_times_ms[(result.spike_times_ms >= lo) & (result.spike_times_ms < hi)]
    axes[0].plot(spikes, np.full(spikes.shape, 40.0), "v", color="tab:red", ms=4,
                 label=f"{len(spikes)} spikes")
    axes[0].set_ylabel("soma (mV)")
    axes[0].legend(frameon=False, fontsize=8, loc="upper right")
    t = np.arange(len(result.v_nexus_1ms))
    keep1 = (t >= lo) & (t < hi)
    axes[1].plot(t[keep1], result.v_nexus_1ms[keep1], color="tab:purple", lw=0.8)
    axes[1].set_ylabel("nexus (mV)")
    if dend_rows:
        labels = dend_labels or [f"segment {r}" for r in dend_rows]
        for row, label in zip(dend_rows, labels):
            axes[2].plot(t[keep1], result.v_dend_1ms[row][keep1], lw=0.8, label=label)
        axes[2].axhline(-40, color="0.6", ls=":", lw=0.8)
        axes[2].set_ylabel("dendrite (mV)")
        axes[2].legend(frameon=False, fontsize=7, loc="upper right", ncol=2)
    axes[-1].set_xlabel("time (ms)")
    axes[-1].set_xlim(lo, hi)
    if title:
        axes[0].set_title(title)
    return axes


# ---------------------------------------------------------------- generating a dataset (ch. 03)

def plot_input_rates(details, settings, axes=None, kinds=("exc", "inh"), title=None):
    """The instantaneous-rate recipe of one trial, per input group (e.g. basal and apical tree).

    Top: the coarse totals drawn once per rate interval (held constant), bottom: the smoothed rates summed
    over the group's channels, both in spikes per ms for the whole group. ``details`` is the
    ``InputDetails`` of ``generate_inputs(..., return_details=True)``.
    """
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True)
    duration = details.rate_per_ms.shape[1]
    colours = ["tab:blue", "tab:purple", "tab:green", "tab:orange", "tab:brown"]
    styles = {"exc": "-", "inh": "--"}
    for g, group in enumerate(settings.groups):
        colour = colours[g % len(colours)]
        totals = dict(zip(("exc", "inh"), details.coarse_totals_per_100ms[group.name]))
        for kind in kinds:
            channels = np.asarray(getattr(group, f"{kind}_channels"), dtype=int)
            if channels.size == 0:
                continue
            held = np.repeat(np.asarray(totals[kind]) / 100.0, details.interval_ms)[:duration]
            label = f"{group.name} {'excitation' if kind == 'exc' else 'inhibition'}"
            axes[0].plot(np.arange(duration), held, styles[kind], color=colour, lw=1, label=label)
            axes[1].plot(np.arange(duration), details.rate_per_ms[channels].sum(axis=0), styles[kind],
                         color=colour, lw=1.2, label=label)
    axes[0].set_ylabel("drawn rate\n(spikes/ms per group)")
    axes[0].set_title(title or f"rate interval {details.interval_ms} ms, smoothing σ {details.sigma_ms} ms")
    _legend_outside(axes[0])
    axes[1].set_ylabel("smoothed rate\n(spikes/ms per group)")
    axes[1].set_xlabel("time (ms)")
    for ax in axes:
        ax.set_xlim(0, duration)
    return axes


def plot_raster_by_distance(events, distance_um, is_basal, ax=None, title=None, max_points=100_000):
    """Input raster over the morphology: each event at its synapse's path distance from the soma.

    Basal synapses are drawn at negative distances and apical ones at positive distances; excitatory
    events (channels ``0..n-1``) in red, inhibitory (``n..2n-1``) in blue, with ``n = len(distance_um)``.
    """
    ax = _axes(ax, figsize=(9, 4))
    distance_um, is_basal = np.asarray(distance_um, float), np.asarray(is_basal, bool)
    n = distance_um.size
    signed = np.where(is_basal, -distance_um, distance_um)
    ch, t = events.channel, events.time_ms
    if ch.size > max_points:
        keep = np.linspace(0, ch.size - 1, max_points).astype(int)
        ch, t = ch[keep], t[keep]
    exc = ch < n
    ax.scatter(t[exc], signed[ch[exc]], s=1.0, marker="|", linewidths=0.5, color="tab:red", label="excitatory")
    ax.scatter(t[~exc], signed[ch[~exc] - n], s=1.0, marker="|", linewidths=0.5, color="tab:blue",
               label="inhibitory")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlim(0, events.duration_ms)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("path distance from soma (µm)\nbasal < 0 < apical")
    _legend_outside(ax, markerscale=8)
    if title:
        ax.set_title(title)
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
    ax = _axes(ax, figsize=(9, 1.2 + 0.55 * (c.depth + 2)))
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
    ax = _axes(ax, figsize=(4.5, 4))
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
    ax = _axes(ax, figsize=(5, 3.2))
    ax.plot(precision.lags_ms, precision.rate_hz, color=color, lw=1.5,
            label=label or f"threshold at FP {100 * precision.fpr:.2g} % (TP {precision.tpr:.2f})")
    ax.axvline(0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("time from true spike (ms)")
    ax.set_ylabel("predicted spikes (Hz)")
    ax.legend(frameon=False, fontsize=8)
    return ax


# ---------------------------------------------------------------- sweeps and filters (ch. 06-07)

def plot_best_so_far(curves, ax=None, axis_label="depth (layers)", metric_label="spike AUC", title=None,
                     colours=None):
    """The paper's "best so far" curves with error bars over seeds: ``curves`` is
    :func:`neurodepth_lib.studies.best_so_far`'s ``{condition: {"x", "mean", "sem", "n"}}``."""
    ax = _axes(ax, figsize=(4.5, 3.2))
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


def plot_filter_templates(maps, index, fig=None, title=None, vmax=None):
    """One first-layer filter as the paper shows it: synapse x time maps for basal / oblique / tuft
    (excitatory row, inhibitory row) and the mean temporal profile per region (red excitation, blue
    inhibition). ``maps`` is :func:`neurodepth_lib.studies.filter_maps`' result. Returns the figure."""
    regions = [r for r in ("basal", "oblique", "tuft") if r in maps.profiles]
    if fig is None:
        fig = plt.figure(figsize=(3.2 * len(regions), 6.4))
    axes = fig.subplots(3, len(regions), squeeze=False, sharex=True)
    e, i = maps.exc[index], maps.inh[index]
    vmax = vmax or float(np.max(np.abs(np.concatenate([e.ravel(), i.ravel()])))) or 1.0
    lags = maps.lags_ms
    extent_x = (-(lags[-1] + 0.5), 0.5)  # time relative to the output, past on the left
    for col, region in enumerate(regions):
        rows = maps.region_rows(region)
        for row, (w, name) in enumerate(((e, "excitatory"), (i, "inhibitory"))):
            ax = axes[row, col]
            im = ax.imshow(w[rows][:, ::-1], aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           extent=(*extent_x, rows.size - 0.5, -0.5), interpolation="nearest")
            ax.set_title(f"{region}: {name}", fontsize=9)
            if col == 0:
                ax.set_ylabel("synapse (segment #)")
        ax = axes[2, col]
        pe, pi = maps.profiles[region]
        ax.plot(-lags, pe[index], color="tab:red", label="excitatory")
        ax.plot(-lags, pi[index], color="tab:blue", label="inhibitory")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("time before output (ms)")
        if col == 0:
            ax.set_ylabel("mean weight (a.u.)")
            ax.legend(fontsize=7)
    fig.colorbar(im, ax=axes[:2, :].ravel().tolist(), shrink=0.6, label="weight (a.u.)")
    fig.suptitle(title or f"filter {index}" + (" (sign-flipped)" if maps.flipped[index] else ""))
    return fig


def plot_filter_profiles(maps, indices, axes=None, title=None):
    """Mean temporal profiles (excitatory red, inhibitory blue) of several filters, one panel per region:
    a compact view of what many filters prefer."""
    regions = [r for r in ("basal", "oblique", "tuft") if r in maps.profiles]
    if axes is None:
        _, axes = plt.subplots(1, len(regions), figsize=(3.4 * len(regions), 2.8), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, region in zip(axes, regions):
        pe, pi = maps.profiles[region]
        for k in indices:
            ax.plot(-maps.lags_ms, pe[k], color="tab:red", alpha=0.6)
            ax.plot(-maps.lags_ms, pi[k], color="tab:blue", alpha=0.6)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(region)
        ax.set_xlabel("time before output (ms)")
    axes[0].set_ylabel("mean weight (a.u.)")
    if title:
        axes[0].figure.suptitle(title)
    return axes


# ---------------------------------------------------------------- figures of the interactive demos (ch. 01, 03, 05-07)
# Each draws one ordinary figure from data; the widgets in :mod:`.widgets` compute the data and redraw on demand.

def plot_iaf_time_constant(learned_mV, n_exc, params, v_mV, spikes, reference=None, t0_ms=0, axes=None,
                           title=None):
    """What the membrane time constant does, beside what the one-unit network learned (chapter 01).

    Left: the mean excitatory and inhibitory profiles of a learned filter (``learned_mV``: synapses x lags in mV
    per input spike, lag 0 first, the first ``n_exc`` rows excitatory) and the filter of an I&F neuron with
    ``params`` (an ``IAFParams``: PSP amplitude x weight x exp(-t / tau), from ``params.true_filter_mV``).
    Right: that neuron's voltage ``v_mV`` with its ``spikes`` (1-D, 1 ms bins, starting at ``t0_ms``);
    ``reference = (v_mV, spikes, label)`` draws another neuron on the same input in grey (e.g. the true one).
    """
    learned = np.asarray(learned_mV, dtype=float)
    if learned.ndim != 2 or not 0 < int(n_exc) <= learned.shape[0]:
        raise ValueError(f"learned_mV must be (synapses, lags) with 0 < n_exc <= synapses, got shape "
                         f"{learned.shape} and n_exc={n_exc}")
    n_exc = int(n_exc)
    v_mV, spikes = np.asarray(v_mV, dtype=float), np.asarray(spikes, dtype=bool)
    if v_mV.shape != spikes.shape or v_mV.ndim != 1:
        raise ValueError(f"v_mV and spikes must be 1-D of equal length, got {v_mV.shape} and {spikes.shape}")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.8), width_ratios=[1, 1.8])
    ax_f, ax_v = axes
    lags = np.arange(learned.shape[1])
    model = np.asarray(params.true_filter_mV(learned.shape[1]), dtype=float)
    for rows, colour, name in ((slice(0, n_exc), "tab:red", "excitatory"), (slice(n_exc, None), "tab:blue",
                                                                             "inhibitory")):
        if learned[rows].size == 0:
            continue
        ax_f.plot(lags, learned[rows].mean(axis=0), color=colour, lw=2, alpha=0.55,
                  label=f"learned, {name} (mean)")
        ax_f.plot(lags, model[rows].mean(axis=0), color=colour, lw=1.2, ls="--",
                  label=f"I&F with τ = {params.tau_ms:g} ms")
    ax_f.axhline(0, color="k", lw=0.5)
    ax_f.set_xlabel("time since input spike (ms)")
    ax_f.set_ylabel("filter (mV per input spike)")
    ax_f.set_title("the filter: learned (thick) and an I&F neuron's (dashed)", fontsize=9)
    ax_f.legend(frameon=False, fontsize=7, loc="upper right")

    t = t0_ms + np.arange(v_mV.size)
    threshold = getattr(params, "v_threshold_mV", None)
    shown = [v_mV]
    top = (threshold if threshold is not None else np.nanmax(v_mV)) + 4
    if reference is not None:
        v_ref, s_ref, label = reference
        v_ref, s_ref = np.asarray(v_ref, dtype=float), np.asarray(s_ref, dtype=bool)
        if v_ref.shape != v_mV.shape or s_ref.shape != v_mV.shape:
            raise ValueError(f"the reference trace must match v_mV's shape {v_mV.shape}, got {v_ref.shape}")
        shown.append(v_ref)
        ax_v.plot(t, v_ref, color="0.65", lw=0.8, label=label)
        ax_v.plot(t[s_ref], np.full(int(s_ref.sum()), top + 2), "|", color="0.45", ms=7,
                  label=f"{label}: {int(s_ref.sum())} spikes")
    ax_v.plot(t, v_mV, color="k", lw=0.8, label=f"I&F with τ = {params.tau_ms:g} ms")
    ax_v.plot(t[spikes], np.full(int(spikes.sum()), top), "v", color="tab:red", ms=4,
              label=f"its spikes: {int(spikes.sum())}")
    if threshold is not None:
        ax_v.axhline(threshold, color="tab:red", ls="--", lw=0.8, label="threshold")
    low = float(min(np.percentile(s, 0.5) for s in shown))
    ax_v.set_ylim(low - 2, top + 4)
    ax_v.set_xlim(t[0], t[-1] + 1)
    ax_v.set_xlabel("time (ms)")
    ax_v.set_ylabel("voltage (mV)")
    _legend_outside(ax_v, fontsize=7)
    if title:
        ax_v.set_title(title, fontsize=9)
    return axes


def plot_input_recipe(events, details, settings, axes=None, title=None):
    """One trial of the paper's inputs from recipe to spikes (chapter 03): the rates drawn per interval, the
    smoothed rates (both as :func:`plot_input_rates`) and the raster of the spikes drawn from them, each group's
    excitatory channels in red shades and inhibitory ones in blue shades."""
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, height_ratios=[1, 1, 1.7])
    if events.n_channels != settings.n_channels or details.rate_per_ms.shape != (settings.n_channels,
                                                                                  events.duration_ms):
        raise ValueError(f"events ({events.n_channels} channels, {events.duration_ms} ms) and details (rates "
                         f"{details.rate_per_ms.shape}) do not belong to settings of {settings.n_channels} channels")
    plot_input_rates(details, settings, axes=axes[:2], title=title)
    axes[1].set_xlabel("")
    shades = {"exc": ("tab:red", "darkred", "salmon"), "inh": ("tab:blue", "navy", "lightsteelblue")}
    groups = {}
    for g, group in enumerate(settings.groups):
        for kind, word in (("exc", "exc."), ("inh", "inh.")):
            channels = np.asarray(getattr(group, f"{kind}_channels"), dtype=int)
            if channels.size:
                groups[f"{group.name} {word}"] = (channels, shades[kind][g % 3])
    plot_raster(events, ax=axes[2], groups=groups)
    axes[2].set_title(f"{events.n_events:,} input spikes drawn from these rates", fontsize=9)
    return axes


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
    _legend_outside(ax_trace, fontsize=7)

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
    _legend_outside(ax_raster, fontsize=7, markerscale=1.5)
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
    ax = _axes(ax, figsize=(4.5, 3.2))
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


def plot_values_on_tree(points, section_name, x, values, ax=None, vmax=None, cmap="coolwarm", label=None,
                        title=None, width_scale=0.6):
    """A neuron's dendrites coloured by one value per segment (e.g. a filter's weight on each synapse).

    ``points`` as for :func:`plot_morphology`; ``section_name`` and ``x`` (its centre along the section, 0-1)
    name each segment, as in ``cell.segments``, and ``values`` holds one number per segment. Sections without
    segments (soma, axon) are grey. The colour scale is symmetric around 0 (``vmax``: its end).
    """
    values = np.asarray(values, dtype=float)
    section_name, x = np.asarray(section_name), np.asarray(x, dtype=float)
    if not values.shape == section_name.shape == x.shape or values.ndim != 1:
        raise ValueError(f"section_name, x and values need one entry per segment, got shapes {section_name.shape}, "
                         f"{x.shape} and {values.shape}")
    ax = _axes(ax, figsize=(4.5, 7))
    vmax = float(vmax or np.max(np.abs(values)) or 1.0)
    by_section = {}
    for k, name in enumerate(section_name):
        by_section.setdefault(str(name), []).append(k)
    pieces, colour_values, widths, grey, grey_widths = [], [], [], [], []
    for name, _, xyz, diam in points:
        if len(xyz) < 2:
            continue
        segs = np.stack([xyz[:-1, :2], xyz[1:, :2]], axis=1)
        w = np.clip(width_scale * 0.5 * (diam[:-1] + diam[1:]), 0.6, 6)
        rows = by_section.get(str(name))
        if not rows:
            grey.extend(segs)
            grey_widths.extend(w)
            continue
        rows = np.asarray(rows)[np.argsort(x[rows])]
        arc = np.r_[0, np.cumsum(np.linalg.norm(np.diff(xyz, axis=0), axis=1))]
        mid = 0.5 * (arc[:-1] + arc[1:]) / max(arc[-1], 1e-12)      # each piece's place along the section, 0-1
        which = np.minimum((mid * rows.size).astype(int), rows.size - 1)
        pieces.extend(segs)
        colour_values.extend(values[rows[which]])
        widths.extend(np.maximum(w, 2.0))
    if grey:
        ax.add_collection(LineCollection(grey, colors="0.6", linewidths=grey_widths, capstyle="round"))
    lines = LineCollection(pieces, array=np.asarray(colour_values), cmap=cmap, linewidths=widths,
                           capstyle="round")
    lines.set_clim(-vmax, vmax)
    ax.add_collection(lines)
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    if label:
        ax.figure.colorbar(lines, ax=ax, shrink=0.7, label=label)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_filter_on_tree(maps, index, points, segments, window_ms=10, fig=None):
    """One first-layer filter as templates (:func:`plot_filter_templates`) beside the tree coloured by its
    excitatory and inhibitory weights summed over the last ``window_ms`` ms (chapter 07). ``segments`` has
    ``section_name`` and ``x`` per segment, in the order of the maps' rows. Returns the figure."""
    n_filters, n_rows, n_lags = maps.exc.shape
    if not 0 <= int(index) < n_filters:
        raise ValueError(f"index must be a filter number in [0, {n_filters}), got {index!r}")
    if not 1 <= int(window_ms) <= n_lags:
        raise ValueError(f"window_ms must be in [1, {n_lags}] (the maps keep {n_lags} ms), got {window_ms!r}")
    if len(segments.section_name) != n_rows:
        raise ValueError(f"the maps have {n_rows} synapse rows but segments has {len(segments.section_name)}")
    index, window_ms = int(index), int(window_ms)
    if fig is None:
        fig = plt.figure(figsize=(15, 6.4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[2.6, 1.2])
    plot_filter_templates(maps, index, fig=left)
    exc = maps.exc[index][:, :window_ms].sum(axis=1)
    inh = maps.inh[index][:, :window_ms].sum(axis=1)
    vmax = float(np.max(np.abs(np.r_[exc, inh]))) or 1.0
    ax_e, ax_i = right.subplots(2, 1, sharex=True, sharey=True)
    plot_values_on_tree(points, segments.section_name, segments.x, exc, ax=ax_e, vmax=vmax,
                        title=f"excitatory weights, summed over the last {window_ms} ms")
    plot_values_on_tree(points, segments.section_name, segments.x, inh, ax=ax_i, vmax=vmax,
                        title=f"inhibitory weights, summed over the last {window_ms} ms")
    ax_e.set_xlabel("")
    right.colorbar(ax_e.collections[-1], ax=[ax_e, ax_i], shrink=0.5, label="summed weight (a.u.)")
    return fig
