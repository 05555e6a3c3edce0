"""Figures of a cell and its inputs (chapters 02, 03 and 09): morphology, channel densities, dendritic
voltages, input rates and rasters, values drawn on the tree. Plain matplotlib: each takes data and an optional
``ax`` (or ``axes``) and returns what it drew on; every axis is labelled with its unit.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from ._common import axes_or_new, legend_outside
from .plots import plot_raster

__all__ = ["REGION_COLOURS", "plot_morphology", "plot_density_vs_distance", "plot_dendritic_map",
           "plot_l5pc_trial", "plot_input_rates", "plot_raster_by_distance", "plot_input_recipe",
           "plot_values_on_tree"]


# ---------------------------------------------------------------- the detailed L5 pyramidal cell (ch. 02)

# The one colour map for dendritic regions, in every chapter and every figure that colours a region (the
# morphology, channel densities, filter maps on the tree): a region keeps its colour across the collection.
REGION_COLOURS = {"soma": "k", "axon": "0.5", "basal": "tab:blue", "oblique": "tab:green", "tuft": "tab:purple"}


def plot_morphology(points, ax=None, colours=None, marks=None, title=None, width_scale=0.6):
    """Draw a neuron from its 3-D points, projected on the x-y plane, coloured by region.

    ``points`` is a list of ``(section_name, region, xyz (n, 3) um, diam (n,) um)`` as returned by
    ``L5PC.morphology_points()``. ``marks`` maps a label to an ``(x, y)`` position in um (e.g. the nexus).
    """
    ax = axes_or_new(ax, figsize=(4.5, 7))
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
    ax = axes_or_new(ax, figsize=(5, 3.2))
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
    ax = axes_or_new(ax, figsize=(9, 3.5))
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
    legend_outside(axes[0])
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
    ax = axes_or_new(ax, figsize=(9, 4))
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
    legend_outside(ax, markerscale=8)
    if title:
        ax.set_title(title)
    return ax


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
    ax = axes_or_new(ax, figsize=(4.5, 7))
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
