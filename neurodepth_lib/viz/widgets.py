"""Interactive widgets for the notebooks: thin wrappers around plain plotting functions.

Every widget first draws one ordinary static figure with its starting values, then (when an IPython kernel
with ipywidgets is running) adds controls that redraw on demand. Nothing waits for a user, so headless
runs (papermill, nbval, CI) get the static figure and never hang. Set ``NEURODEPTH_NO_WIDGETS=1`` to skip the
controls altogether.

The chapters' demos (01, 03, 05, 06, 07) redraw as soon as a control changes, since a redraw only plots (or runs
the cheap I&F neuron or input generator); the L5PC explorer (02) simulates the detailed cell for seconds, so it
waits for its button. A redraw replaces the widget's
figure in place: the static figure is displayed with a display id, and each
update sends the new figure to that id (``DisplayHandle.update``), so the notebook shows one figure per
widget however often the controls are used, and a saved notebook still holds an ordinary image output.

Shared file: chapters add their widgets below, grouped by chapter. This module imports NEURON (the L5PC
explorer simulates), so it is not imported by ``neurodepth_lib.viz`` itself: use ``neurodepth_lib.viz.widgets``.
"""
from __future__ import annotations

import os
from dataclasses import replace

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython import get_ipython
from IPython.display import display

from ..cells.simulation import simulate_trial
from ..inputs import generate_inputs, tree_input_settings
from ..scoring.metrics import auc_from_curve, roc_curve
from .cell_plots import plot_input_recipe, plot_l5pc_trial
from .filter_plots import plot_filter_on_tree, plot_iaf_time_constant
from .plots import plot_roc_threshold, plot_sweep_by_seed

__all__ = ["widgets_available", "l5pc_rate_explorer", "iaf_time_constant_explorer", "input_recipe_explorer",
           "roc_threshold_explorer", "depth_sweep_explorer", "filter_browser"]


def widgets_available() -> bool:
    """True inside an IPython kernel (and ``NEURODEPTH_NO_WIDGETS`` unset): a frontend may show controls."""
    if os.environ.get("NEURODEPTH_NO_WIDGETS", "").strip() not in ("", "0"):
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _ReplaceableFigure:
    """A figure shown once with a display id; :meth:`update` puts another figure in its place."""

    def __init__(self, fig):
        self.handle = display(fig, display_id=True)
        plt.close(fig)  # shown once, here: pyplot must not show it again at the end of the cell

    def update(self, fig) -> None:
        self.handle.update(fig)
        plt.close(fig)


# ---------------------------------------------------------------- the detailed L5 pyramidal cell (ch. 02)

def _l5pc_constant_rate_trial(cell, condition, basal_exc, apical_exc, inh_minus_exc, duration_ms, seed):
    """Inputs with constant total rates per tree (spikes per tree per 100 ms), then one simulated trial."""
    def ranges(exc):
        inh = max(0.0, exc + inh_minus_exc) - exc  # inhibition never below zero
        return ((float(exc), float(exc)), (float(inh), float(inh)))

    settings = tree_input_settings(cell.input_trees(), condition, n_segments=cell.n_segments,
                                   rate_ranges={"basal": ranges(basal_exc), "apical": ranges(apical_exc)})
    events = generate_inputs(settings, int(duration_ms), int(seed))
    return events, simulate_trial(cell, events, condition=condition, record_dendrites=True)


def _l5pc_figure(cell, events, result, title):
    seg = cell.segments
    mean_v = result.v_dend_1ms.mean(axis=1)
    rows = [int(idx[np.argmax(mean_v[idx])]) for idx in (seg.indices("basal"), seg.indices("tuft"))]
    labels = [f"{seg.region[r]} {seg.section_name[r]}({seg.x[r]:.2f}), {seg.path_distance_um[r]:.0f} µm"
              for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(9, 5.6), sharex=True)
    plot_l5pc_trial(result, dend_rows=rows, dend_labels=labels, axes=axes, title=title)
    fig.tight_layout()
    return fig


def l5pc_rate_explorer(cell, *, condition: str | None = None, basal_exc_per_100ms: float = 400.0,
                       apical_exc_per_100ms: float = 400.0, inh_minus_exc_per_100ms: float = -200.0,
                       duration_ms: int = 300, seed: int = 0, interactive: bool | None = None):
    """Drive the L5PC at constant input rates and show soma, nexus and the most active dendrites.

    Rates are total spikes per tree per 100 ms (the paper's unit; its NMDA dataset draws the excitation from
    0-800); ``inh_minus_exc_per_100ms`` sets inhibition relative to excitation. The controls (condition, three
    rates, seed, a "simulate" button) re-run the trial on request, since each run takes seconds.

    Returns
    -------
    (InputEvents, TrialResult) of the first, static run.
    """
    condition = condition or cell.condition
    values = dict(condition=condition, basal_exc=basal_exc_per_100ms, apical_exc=apical_exc_per_100ms,
                  inh_minus_exc=inh_minus_exc_per_100ms, seed=seed)

    def run(v):
        events, result = _l5pc_constant_rate_trial(cell, v["condition"], v["basal_exc"], v["apical_exc"],
                                                   v["inh_minus_exc"], duration_ms, v["seed"])
        title = (f"{v['condition']}: basal {v['basal_exc']:.0f}, apical {v['apical_exc']:.0f} exc. spikes/100 ms, "
                 f"inh. - exc. {v['inh_minus_exc']:+.0f}; {result.n_spikes} output spikes")
        return events, result, _l5pc_figure(cell, events, result, title)

    events, result, fig = run(values)
    if interactive is None:
        interactive = widgets_available()
    if not interactive:
        plt.show()
        return events, result
    figure = _ReplaceableFigure(fig)

    controls = {
        "condition": W.Dropdown(options=["NMDA", "AMPA", "AMPA_SK"], value=condition, description="synapses"),
        "basal_exc": W.FloatSlider(value=basal_exc_per_100ms, min=0, max=2000, step=50, description="basal E"),
        "apical_exc": W.FloatSlider(value=apical_exc_per_100ms, min=0, max=2000, step=50, description="apical E"),
        "inh_minus_exc": W.FloatSlider(value=inh_minus_exc_per_100ms, min=-1600, max=400, step=50,
                                       description="I - E"),
        "seed": W.IntText(value=seed, description="seed"),
    }
    button = W.Button(description="simulate", button_style="primary")
    out = W.Output()  # messages and errors of a redraw; the figure itself is replaced above the controls

    def on_click(_):
        out.clear_output()
        button.disabled = True  # one run at a time: clicks during a run would queue more runs
        try:
            with out:  # an error shows under the controls instead of vanishing into the kernel's log
                figure.update(run({k: c.value for k, c in controls.items()})[2])
        finally:
            button.disabled = False

    button.on_click(on_click)
    display(W.VBox([W.HBox([controls["condition"], controls["seed"], button]),
                    W.HBox([controls["basal_exc"], controls["apical_exc"], controls["inh_minus_exc"]]), out]))
    return events, result


# ---------------------------------------------------------------- the pattern of the chapters' demos

def _explorer(draw, start: dict, make_controls, *, interactive) -> dict:
    """Draw ``draw(start)``, one ordinary figure; in a live kernel show it with a display id and add controls
    that redraw it in place.

    ``make_controls()`` returns ``(controls, rows)``: ``controls`` maps a key of ``start`` to the widget whose
    ``value`` replaces it, ``rows`` lists the keys to lay out per row. A changed value redraws at once (sliders
    report on release, ``continuous_update=False``), so this suits quick redraws; one that simulates for seconds
    should wait for a button, as the L5PC explorer's does. An error of a redraw shows under the controls (in a kernel)
    and keeps the figure. Returns the controls (an empty dict when static).
    """
    fig = draw(dict(start))
    if interactive is None:
        interactive = widgets_available()
    if not interactive:
        plt.show()
        return {}
    figure = _ReplaceableFigure(fig)
    controls, rows = make_controls()
    out = W.Output()

    def redraw(_=None):
        out.clear_output()
        opened = set(plt.get_fignums())
        try:
            with out:  # in a kernel an error shows here instead of vanishing into the kernel's log
                figure.update(draw({**start, **{k: c.value for k, c in controls.items()}}))
        finally:
            for number in set(plt.get_fignums()) - opened:  # a failed draw leaves no figure for pyplot to show
                plt.close(number)

    for c in controls.values():
        c.observe(redraw, names="value")
    display(W.VBox([W.HBox([controls[k] for k in row]) for row in rows] + [out]))
    return controls


def _slider_style():
    return {"description_width": "initial"}


# ---------------------------------------------------------------- the integrate-and-fire neuron (ch. 01)

def iaf_time_constant_explorer(learned_mV, trial_inputs, params=None, *, tau_ms: float | None = None,
                               weight: float = 1.0, window_ms: tuple[int, int] | None = None,
                               interactive: bool | None = None) -> None:
    """The membrane time constant and the synaptic weight of an I&F neuron, against what a network learned.

    Left, the learned filter's mean excitatory and inhibitory profiles (``learned_mV``: synapses x lags in mV per
    input spike) beside the filter of an I&F neuron with time constant ``tau_ms`` and every weight scaled by
    ``weight`` (PSP amplitude x weight x exp(-t / tau)); right, that neuron's voltage on one trial's input
    (``trial_inputs``: synapses x ms of 0/1, or ``InputEvents``) beside the neuron of ``params`` (the chapter's,
    by default) on the same input, over ``window_ms`` (default: the whole trial). Sliders set tau and the weight;
    each redraw simulates one trial (fast).
    """
    from ..cells import iaf

    params = iaf.IAFParams() if params is None else params
    x = trial_inputs.to_dense() if hasattr(trial_inputs, "to_dense") else np.asarray(trial_inputs)
    if x.ndim != 2 or x.shape[0] != params.n_inputs:
        raise ValueError(f"trial_inputs must be ({params.n_inputs} synapses, ms) for this neuron, got shape {x.shape}")
    learned = np.asarray(learned_mV, dtype=float)
    if learned.ndim != 2 or learned.shape[0] != params.n_inputs:
        raise ValueError(f"learned_mV must be ({params.n_inputs} synapses, lags), got shape {learned.shape}")
    tau_ms = float(params.tau_ms if tau_ms is None else tau_ms)
    if not (np.isfinite(tau_ms) and tau_ms > 0) or not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"tau_ms must be positive and weight non-negative, got {tau_ms!r} and {weight!r}")
    lo, hi = (0, x.shape[1]) if window_ms is None else (int(window_ms[0]), int(window_ms[1]))
    if not 0 <= lo < hi <= x.shape[1]:
        raise ValueError(f"window_ms must lie within the trial's {x.shape[1]} ms, got {window_ms!r}")
    weights = np.asarray(params.weights)
    n_exc = int(np.sum(weights > 0))
    if n_exc == 0:
        raise ValueError("the neuron has no excitatory synapse (positive weight) to compare filters with")
    reference = iaf.simulate(x, params)

    def draw(v):
        neuron = replace(params, tau_ms=float(v["tau_ms"]), kernel_length_ms=int(7 * v["tau_ms"]) + 1,
                         weights=tuple(float(v["weight"]) * weights))
        r = iaf.simulate(x, neuron)
        fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), width_ratios=[1, 1.8])
        plot_iaf_time_constant(
            learned, n_exc, neuron, r.v_mV[0, lo:hi], r.spikes[0, lo:hi], t0_ms=lo, axes=axes,
            reference=(reference.v_mV[0, lo:hi], reference.spikes[0, lo:hi],
                       f"the chapter's neuron (τ = {params.tau_ms:g} ms)"),
            title=f"τ = {v['tau_ms']:g} ms, weights x {v['weight']:g}")
        fig.tight_layout()
        return fig

    def controls():
        c = {"tau_ms": W.FloatSlider(value=tau_ms, min=2, max=60, step=1, description="τ (ms)",
                                     continuous_update=False, style=_slider_style()),
             "weight": W.FloatSlider(value=float(weight), min=0, max=3, step=0.1, description="weight x",
                                     continuous_update=False, style=_slider_style())}
        return c, [["tau_ms", "weight"]]

    _explorer(draw, {"tau_ms": tau_ms, "weight": float(weight)}, controls, interactive=interactive)


# ---------------------------------------------------------------- generating a dataset (ch. 03)

def _input_range(settings, which: str) -> tuple[int, int]:
    choices = getattr(settings, f"{which}_choices_ms")
    return min(choices) + settings.jitter_ms[0], max(choices) + settings.jitter_ms[1] - 1


def input_recipe_explorer(settings, duration_ms: int, seed: int = 0, *, interval_ms: int | None = None,
                          sigma_ms: int | None = None, interactive: bool | None = None):
    """One trial of the paper's inputs at a chosen rate-change interval and smoothing width: the rates drawn per
    interval, the smoothed rates and the spikes drawn from them (:func:`~.plots.plot_input_recipe`).

    The generator draws the interval and sigma from the seed; here they are set by hand (``None``: the values
    this seed would draw), everything else is drawn from ``seed`` as usual. With the interval unchanged, a new
    sigma keeps the drawn levels and random numbers, so only the smoothing changes (a new interval keeps them too
    as long as the trial holds as many intervals). Sliders set both (within the generator's range), a box the
    seed.

    Returns
    -------
    (InputEvents, InputDetails) of the first, static draw.
    """
    if int(duration_ms) != duration_ms or duration_ms < 1:
        raise ValueError(f"duration_ms must be a positive whole number, got {duration_ms!r}")
    own = generate_inputs(settings, 1, int(seed), return_details=True)[1]  # the seed's own draws (a 1-ms trial)
    start = {"interval_ms": own.interval_ms if interval_ms is None else interval_ms,
             "sigma_ms": own.sigma_ms if sigma_ms is None else sigma_ms, "seed": int(seed)}
    for key in ("interval_ms", "sigma_ms"):
        if int(start[key]) != start[key] or start[key] < 1:
            raise ValueError(f"{key} must be a whole number of ms >= 1, got {start[key]!r}")
    first = {}

    def draw(v):
        fixed = replace(settings, interval_choices_ms=(int(v["interval_ms"]),), sigma_choices_ms=(int(v["sigma_ms"]),),
                        jitter_ms=(0, 1))
        events, details = generate_inputs(fixed, int(duration_ms), int(v["seed"]), return_details=True)
        first.setdefault("draw", (events, details))
        fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, height_ratios=[1, 1, 1.7])
        plot_input_recipe(events, details, settings, axes=axes,
                          title=f"seed {v['seed']}: rate interval {details.interval_ms} ms, smoothing σ "
                                f"{details.sigma_ms} ms")
        fig.tight_layout()
        return fig

    def controls():
        (i_lo, i_hi), (s_lo, s_hi) = _input_range(settings, "interval"), _input_range(settings, "sigma")
        c = {"interval_ms": W.IntSlider(value=int(start["interval_ms"]), min=min(i_lo, int(start["interval_ms"])),
                                        max=max(i_hi, int(start["interval_ms"])), step=5,
                                        description="rate interval (ms)", continuous_update=False,
                                        style=_slider_style()),
             "sigma_ms": W.IntSlider(value=int(start["sigma_ms"]), min=min(s_lo, int(start["sigma_ms"])),
                                     max=max(s_hi, int(start["sigma_ms"])), step=5, description="smoothing σ (ms)",
                                     continuous_update=False, style=_slider_style()),
             "seed": W.BoundedIntText(value=int(seed), min=0, max=2 ** 31 - 1, description="seed",
                                      layout=W.Layout(width="160px"))}
        return c, [["interval_ms", "sigma_ms", "seed"]]

    _explorer(draw, start, controls, interactive=interactive)
    return first["draw"]


# ---------------------------------------------------------------- evaluating the fit (ch. 05)

def roc_threshold_explorer(scores, labels, *, threshold: float | None = None, fp_rate: float = 0.0025,
                           t0_ms: int = 0, interactive: bool | None = None) -> None:
    """A threshold sliding along the ROC curve, with the hits and false alarms it makes in time.

    ``scores`` and ``labels`` are the scored milliseconds, ``(trials, ms)`` from ``t0_ms`` on in each trial (the
    trials kept by the protocol, after its warm-up). The figure (:func:`~.plots.plot_roc_threshold`) starts at
    ``threshold``, or at the ROC point closest to ``fp_rate``. A log slider moves the threshold, a menu picks the
    trial whose probability is drawn.
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be (trials, ms) of equal shape, got {s.shape} and {y.shape}")
    if not 0 < fp_rate < 1:
        raise ValueError(f"fp_rate must be in (0, 1), got {fp_rate!r}")
    fpr, tpr, thresholds = roc_curve(s, y)  # raises when only one class is present
    auc = auc_from_curve(fpr, tpr)
    if threshold is None:
        finite = np.flatnonzero(np.isfinite(thresholds))
        threshold = float(thresholds[finite[np.argmin(np.abs(fpr[finite] - fp_rate))]])
    negatives = s[np.asarray(y) == 0]
    lo = max(float(np.quantile(negatives, 0.8)), float(s[s > 0].min()) if (s > 0).any() else 1e-12, 1e-12)
    hi = max(float(s.max()), lo * 10)
    counts = (y > 0).sum(axis=1)

    def draw(v):
        fig = plt.figure(figsize=(13, 5.4))
        axd = fig.subplot_mosaic([["roc", "trace"], ["roc", "raster"]], width_ratios=[1, 2.3], height_ratios=[1, 1.6])
        plot_roc_threshold(s, y, float(v["threshold"]), fpr, tpr, axes=(axd["roc"], axd["trace"], axd["raster"]),
                           t0_ms=t0_ms, trace_row=None if v["trace_row"] < 0 else v["trace_row"], auc=auc)
        fig.tight_layout()
        return fig

    def controls():
        c = {"threshold": W.FloatLogSlider(value=min(max(threshold, lo), hi), base=10, min=np.log10(lo),
                                           max=np.log10(hi), step=0.02, readout_format=".2e",
                                           description="threshold on p", continuous_update=False,
                                           style=_slider_style(), layout=W.Layout(width="480px")),
             # -1: the trial with most spikes (a Dropdown shows no selection for the value None)
             "trace_row": W.Dropdown(options=[("the trial with most spikes", -1)]
                                     + [(f"scored trial {i}: {int(n)} spikes", i) for i, n in enumerate(counts)],
                                     value=-1, description="trace", style=_slider_style())}
        return c, [["threshold", "trace_row"]]

    _explorer(draw, {"threshold": float(threshold), "trace_row": -1}, controls, interactive=interactive)


# ---------------------------------------------------------------- how deep is a neuron (ch. 06)

_SWEEP_METRICS = (("auc", "spike AUC"), ("soma_raw_explained_variance_pct", "soma explained variance (%)"))


def depth_sweep_explorer(rows, *, metrics=_SWEEP_METRICS, conditions=None, seeds=None, cumulative: bool = True,
                         axis: str = "depth", interactive: bool | None = None) -> None:
    """A sweep's metrics against depth (or ``axis``), seed by seed, with the mean ± standard error over the seeds
    and conditions shown (:func:`~.plots.plot_sweep_by_seed`, one panel per ``(metric, label)`` of ``metrics``).

    Check boxes choose the conditions and seeds; a menu switches between the paper's "best so far" curve
    (``cumulative``) and each depth on its own.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("no sweep results to draw")
    metrics = [tuple(m) for m in metrics]
    if not metrics or any(len(m) != 2 for m in metrics):
        raise ValueError(f"metrics must be (key, label) pairs, got {metrics!r}")
    all_conditions = sorted({r["condition"] for r in rows})
    all_seeds = sorted({r["seed"] for r in rows})
    conditions = all_conditions if conditions is None else list(conditions)
    seeds = all_seeds if seeds is None else list(seeds)
    for name, chosen, available in (("condition", conditions, all_conditions), ("seed", seeds, all_seeds)):
        unknown = [c for c in chosen if c not in available]
        if unknown:
            raise ValueError(f"no results for {name}(s) {unknown}; the sweep has {available}")
    for key, _ in metrics:
        if not any(r.get(key) is not None for r in rows):
            raise ValueError(f"no run of the sweep has the metric {key!r}")
    start = {"cumulative": bool(cumulative), **{f"condition {c}": c in conditions for c in all_conditions},
             **{f"seed {s}": s in seeds for s in all_seeds}}

    def draw(v):
        shown_c = [c for c in all_conditions if v[f"condition {c}"]]
        shown_s = [s for s in all_seeds if v[f"seed {s}"]]
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
        for ax, (key, label) in zip(axes[0], metrics):
            plot_sweep_by_seed(rows, key, ax=ax, conditions=shown_c, seeds=shown_s, cumulative=v["cumulative"],
                               axis=axis, metric_label=label)
        fig.tight_layout()
        return fig

    def controls():
        c = {"cumulative": W.Dropdown(options=[("best so far (the paper's curve)", True),
                                               (f"each {axis} on its own", False)], value=bool(cumulative),
                                      description="curve", style=_slider_style())}
        for key in start:
            if key != "cumulative":
                c[key] = W.Checkbox(value=start[key], description=key, indent=False,
                                    layout=W.Layout(width="max-content", margin="0 12px 0 0"))
        return c, [["cumulative"], [k for k in c if k.startswith("condition ")],
                   [k for k in c if k.startswith("seed ")]]

    _explorer(draw, start, controls, interactive=interactive)


# ---------------------------------------------------------------- what the network learned (ch. 07)

def filter_browser(maps, points, segments, *, index: int | None = None, window_ms: int = 10,
                   interactive: bool | None = None) -> None:
    """Browse a network's first-layer filters over the dendritic tree: pick a filter (strongest first) and see
    its spatio-temporal templates beside the tree coloured by its recent excitatory and inhibitory weights
    (:func:`~.plots.plot_filter_on_tree`).

    ``maps`` is ``nd.studies.filter_maps``' result, ``points`` the cell's ``morphology_points()`` and
    ``segments`` its segment table (``section_name`` and ``x`` per row of the maps). A slider sets how many recent
    ms the tree sums.
    """
    order = maps.strongest(maps.n_filters)
    index = order[0] if index is None else index
    n_lags = int(maps.exc.shape[2])
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < maps.n_filters:
        raise ValueError(f"index must be a filter number in [0, {maps.n_filters}), got {index!r}")
    if isinstance(window_ms, bool) or int(window_ms) != window_ms or not 1 <= window_ms <= n_lags:
        raise ValueError(f"window_ms must be a whole number in [1, {n_lags}] (the maps keep {n_lags} ms), "
                         f"got {window_ms!r}")
    if len(segments.section_name) != maps.exc.shape[1]:
        raise ValueError(f"the maps have {maps.exc.shape[1]} synapse rows but segments has "
                         f"{len(segments.section_name)}: use the segments of the cell the network was trained on")

    def draw(v):
        return plot_filter_on_tree(maps, v["index"], points, segments, window_ms=v["window_ms"])

    def controls():
        c = {"index": W.Dropdown(options=[(f"filter {i} (#{rank + 1} by strength)", i) for rank, i in enumerate(order)],
                                 value=int(index), description="filter", style=_slider_style()),
             "window_ms": W.IntSlider(value=int(window_ms), min=1, max=n_lags, description="tree: last ms",
                                      continuous_update=False, style=_slider_style())}
        return c, [["index", "window_ms"]]

    _explorer(draw, {"index": int(index), "window_ms": int(window_ms)}, controls, interactive=interactive)
