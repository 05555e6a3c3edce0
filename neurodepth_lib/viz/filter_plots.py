"""Figures of what a network learned (chapters 01 and 07): first-layer filters as maps, templates, profiles and
on the tree, and the integrate-and-fire fit's time constant. Plain matplotlib, like :mod:`.plots`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._common import axes_or_new, legend_outside
from .cell_plots import plot_values_on_tree

__all__ = ["plot_filter_map", "plot_filter_templates", "plot_filter_profiles", "plot_iaf_time_constant",
           "plot_filter_on_tree"]


def plot_filter_map(filt, ax=None, title="", vmax=None, n_exc=None):
    """A synapse x time map of a filter (lag 0 at the left), excitatory above inhibitory."""
    ax = axes_or_new(ax)
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


# ---------------------------------------------------------------- figures of the interactive demos (ch. 01, 07)
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
    legend_outside(ax_v, fontsize=7)
    if title:
        ax_v.set_title(title, fontsize=9)
    return axes


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
