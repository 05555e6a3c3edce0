"""Plotting functions used by the notebooks. Each takes data and an optional matplotlib ``ax`` and
returns the axes (or figure); every axis is labelled with its unit.

Shared file: chapters add their functions below, grouped by chapter.
"""
from __future__ import annotations

import numpy as np


def _axes(ax=None, figsize=(8, 3)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


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
        ax.legend(loc="upper right", fontsize=8, frameon=False)
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
