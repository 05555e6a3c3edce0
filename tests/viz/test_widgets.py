"""The notebook widgets without a browser: what they display, and that an update replaces its figure.

The simulation behind the L5PC explorer is replaced by a stand-in that records its arguments, so these tests
need neither NEURON's mechanisms nor seconds per trial; the chapters' demos (01, 03, 05, 06, 07) run on small
synthetic data (a short I&F trial, a toy ROC, sweep and tree). tests/test_browser.py drives the real things in
JupyterLab.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib import inputs
from neurodepth_lib.viz import cell_plots, plots, widgets


class Shown:
    """Stands in for IPython's ``display``: records what is displayed and every update of a display id."""

    def __init__(self):
        self.displayed = []  # (object, display id or None)
        self.updates = []    # (display id, object)

    def __call__(self, obj, display_id=None):
        did = f"display-{len(self.displayed)}" if display_id else None
        self.displayed.append((obj, did))
        if did:
            return SimpleNamespace(display_id=did, update=lambda new: self.updates.append((did, new)))
        return None

    def figures(self):
        return [(obj, did) for obj, did in self.displayed if isinstance(obj, plt.Figure)]

    def boxes(self):
        return [obj for obj, _ in self.displayed if isinstance(obj, W.Box)]


@pytest.fixture
def shown(monkeypatch):
    rec = Shown()
    monkeypatch.setattr(widgets, "display", rec)
    return rec


@pytest.fixture
def trials(monkeypatch):
    """The explorer's simulation and figure, faked: each trial's figure carries its arguments in its title."""
    calls = []

    def trial(cell, condition, basal_exc, apical_exc, inh_minus_exc, duration_ms, seed):
        calls.append(dict(condition=condition, basal_exc=basal_exc, apical_exc=apical_exc,
                          inh_minus_exc=inh_minus_exc, duration_ms=duration_ms, seed=seed))
        return f"events {len(calls)}", SimpleNamespace(n_spikes=len(calls))

    def figure(cell, events, result, title):
        fig = plt.figure()
        fig.suptitle(title)
        return fig

    monkeypatch.setattr(widgets, "_l5pc_constant_rate_trial", trial)
    monkeypatch.setattr(widgets, "_l5pc_figure", figure)
    plt.close("all")
    yield calls
    plt.close("all")


def _controls(box):
    """Every descendant widget of ``box`` by its description."""
    found, todo = {}, [box]
    while todo:
        w = todo.pop()
        todo.extend(getattr(w, "children", ()))
        if getattr(w, "description", ""):
            found[w.description] = w
    return found


def test_explorer_update_replaces_its_one_figure(shown, trials):
    cell = SimpleNamespace(condition="NMDA")
    events, result = widgets.l5pc_rate_explorer(cell, basal_exc_per_100ms=500, duration_ms=100, seed=3,
                                                interactive=True)
    assert (events, result.n_spikes) == ("events 1", 1)
    [(first, did)] = shown.figures()
    assert did is not None, "the first figure must be shown with a display id, or an update cannot replace it"
    [box] = shown.boxes()
    assert plt.get_fignums() == [], "a shown figure stays open and pyplot shows it a second time"

    c = _controls(box)
    c["synapses"].value = "AMPA"
    c["basal E"].value = 900
    c["seed"].value = 4
    c["simulate"].click()
    assert trials[-1] == dict(condition="AMPA", basal_exc=900, apical_exc=400.0, inh_minus_exc=-200.0,
                              duration_ms=100, seed=4)
    [(target, second)] = shown.updates
    assert target == did and isinstance(second, plt.Figure) and second is not first
    assert "AMPA: basal 900" in second._suptitle.get_text()

    c["simulate"].click()
    assert [t for t, _ in shown.updates] == [did, did]
    assert len(shown.figures()) == 1 and len(shown.displayed) == 2, "an update displayed something new"
    assert plt.get_fignums() == []
    assert not c["simulate"].disabled


def test_a_failed_update_keeps_the_figure_and_the_button(shown, trials, monkeypatch):
    widgets.l5pc_rate_explorer(SimpleNamespace(condition="NMDA"), duration_ms=100, interactive=True)
    c = _controls(shown.boxes()[0])

    def broken(*args, **kwargs):
        raise RuntimeError("NEURON said no")

    monkeypatch.setattr(widgets, "_l5pc_constant_rate_trial", broken)
    c["simulate"].click()  # ipywidgets reports a callback's exception (a log warning outside a kernel)
    assert shown.updates == [] and len(shown.figures()) == 1
    assert not c["simulate"].disabled, "the button must come back after a failed run"


def test_without_widgets_one_static_figure_and_no_controls(shown, trials, monkeypatch):
    shows = []
    monkeypatch.setattr(widgets.plt, "show", lambda: shows.append(list(plt.get_fignums())))
    events, _ = widgets.l5pc_rate_explorer(SimpleNamespace(condition="AMPA"), duration_ms=100,
                                                interactive=False)
    assert events == "events 1" and trials[0]["condition"] == "AMPA"
    assert shown.displayed == [] and len(shows) == 1 and len(shows[0]) == 1


# ---------------------------------------------------------------- the chapters' demos (ch. 01, 03, 05, 06, 07)
# Each is checked three ways: headless it shows one ordinary figure and no controls; live, a changed control
# replaces that one figure (one update of its display id, nothing displayed anew, no figure left open); bad
# arguments raise a ValueError that names the problem. Then what each figure says is pinned to its numbers.


@pytest.fixture
def no_figures():
    plt.close("all")
    yield
    plt.close("all")


def _iaf_case():
    params = nd.cells.iaf.IAFParams()
    x = inputs.generate_inputs(inputs.iaf_input_settings(), 1500, 3).to_dense()
    learned = nd.cells.iaf.IAFParams(tau_ms=14.0).true_filter_mV(80)
    return params, x, learned


def _roc_case():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(6, 800)) < 0.01).astype(np.uint8)
    y[0, 100] = 1
    p = 1 / (1 + np.exp(-(rng.normal(size=y.shape) - 5 + 4 * y)))
    return p, y


def _sweep_rows():
    rng = np.random.default_rng(1)
    return [dict(condition=c, depth=d, width=w, receptive_field_ms=21, seed=s,
                 auc=0.7 + 0.03 * d * (c == "NMDA") + 0.01 * w / 8 + 0.01 * rng.normal(),
                 soma_raw_explained_variance_pct=40 + 2 * d + rng.normal())
            for c in ("NMDA", "AMPA") for d in (1, 2, 3) for w in (8, 16) for s in (0, 1, 2)]


def _tree_case():
    """A toy cell of two sections, three segments on each, and first-layer maps of four filters."""
    points = [("soma[0]", "soma", np.array([[-5.0, 0, 0], [5.0, 0, 0]]), np.array([10.0, 10.0])),
              ("dend[0]", "basal", np.array([[0.0, 0, 0], [0, -30, 0], [0, -60, 0], [0, -90, 0]]), np.ones(4)),
              ("apic[0]", "tuft", np.array([[0.0, 0, 0], [0, 50, 0], [0, 100, 0], [0, 150, 0]]), np.ones(4))]
    segments = SimpleNamespace(section_name=np.array(["dend[0]"] * 3 + ["apic[0]"] * 3),
                               x=np.array([1, 3, 5, 1, 3, 5]) / 6.0,
                               region=np.array(["basal"] * 3 + ["tuft"] * 3))
    kernel = np.random.default_rng(2).normal(size=(4, 12, 20))
    kernel[2] *= 5  # filter 2 is the strongest
    return points, segments, nd.studies.filter_maps(kernel, segments.region, last_ms=20)


def _demo(name):
    """(call(interactive) -> value, a control description and the value to set it to) per widget."""
    if name == "iaf":
        params, x, learned = _iaf_case()
        return (lambda i: widgets.iaf_time_constant_explorer(learned, x, params, window_ms=(500, 1500),
                                                             interactive=i)), "τ (ms)", 12.0
    if name == "inputs":
        settings = inputs.iaf_input_settings()
        return (lambda i: widgets.input_recipe_explorer(settings, 1200, 4, interactive=i)), "smoothing σ (ms)", 60
    if name == "roc":
        p, y = _roc_case()
        return (lambda i: widgets.roc_threshold_explorer(p, y, t0_ms=500, interactive=i)), "threshold on p", 0.5
    if name == "sweep":
        rows = _sweep_rows()
        return (lambda i: widgets.depth_sweep_explorer(rows, interactive=i)), "curve", False
    if name == "filters":
        points, segments, maps = _tree_case()
        return (lambda i: widgets.filter_browser(maps, points, segments, interactive=i)), "filter", 1
    raise KeyError(name)


DEMOS = ["iaf", "inputs", "roc", "sweep", "filters"]


@pytest.mark.parametrize("name", DEMOS)
def test_a_demo_without_a_frontend_shows_one_static_figure(name, shown, no_figures, monkeypatch):
    shows = []
    monkeypatch.setattr(widgets.plt, "show", lambda: shows.append(list(plt.get_fignums())))
    call, _, _ = _demo(name)
    call(False)
    assert shown.displayed == [], "no controls and no display id without a frontend"
    assert len(shows) == 1 and len(shows[0]) == 1, f"one figure, shown once: {shows}"


def test_no_widgets_setting_turns_controls_off(monkeypatch):
    monkeypatch.setenv("NEURODEPTH_NO_WIDGETS", "1")
    assert widgets.widgets_available() is False
    monkeypatch.setenv("NEURODEPTH_NO_WIDGETS", "0")
    assert widgets.widgets_available() is False  # no kernel here: a plain pytest process has no frontend


@pytest.mark.parametrize("name", DEMOS)
def test_a_demo_update_replaces_its_one_figure(name, shown, no_figures):
    call, control, value = _demo(name)
    call(True)
    [(first, did)] = shown.figures()
    assert did is not None
    [box] = shown.boxes()
    assert plt.get_fignums() == [], "the shown figure must be closed, or pyplot shows it a second time"
    c = _controls(box)
    c[control].value = value
    [(target, second)] = shown.updates
    assert target == did and isinstance(second, plt.Figure) and second is not first
    assert len(shown.displayed) == 2 and len(shown.figures()) == 1, "an update displayed something new"
    assert plt.get_fignums() == []


def test_a_failed_redraw_keeps_the_figure_and_leaves_no_figure_open(shown, no_figures, monkeypatch):
    call, control, value = _demo("sweep")
    call(True)
    c = _controls(shown.boxes()[0])

    def broken(*args, **kwargs):
        plt.figure()  # half-drawn, then fails
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(widgets, "plot_sweep_by_seed", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):  # outside a kernel the error reaches the caller
        c[control].value = value
    assert shown.updates == [] and len(shown.figures()) == 1
    assert plt.get_fignums() == [], "a failed redraw must not leave a figure for pyplot to show later"


# ---- ch. 01: the I&F neuron's time constant

def test_iaf_explorer_simulates_the_neuron_it_names(shown, no_figures):
    params, x, learned = _iaf_case()
    widgets.iaf_time_constant_explorer(learned, x, params, interactive=True)
    c = _controls(shown.boxes()[0])
    first = shown.figures()[0][0]
    ax_v = first.axes[1]
    # at the chapter's own tau and weight, the explored neuron is the reference neuron: the same spike count
    labels = [t.get_text() for t in ax_v.get_legend().get_texts()]
    ref = nd.cells.iaf.simulate(x, params)
    n = int(ref.spikes.sum())
    assert f"its spikes: {n}" in labels and f"the chapter's neuron (τ = 20 ms): {n} spikes" in labels
    c["weight x"].value = 0.0  # no synaptic weight: no PSP, the voltage stays at V_reset and nothing fires
    fig = shown.updates[-1][1]
    v_line = [ln for ln in fig.axes[1].get_lines() if ln.get_label().startswith("I&F with")][0]
    assert np.allclose(v_line.get_ydata(), params.v_reset_mV)
    assert "its spikes: 0" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    c["τ (ms)"].value = 10.0
    dashed = [ln for ln in shown.updates[-1][1].axes[0].get_lines() if ln.get_linestyle() == "--"][0]
    assert np.allclose(dashed.get_ydata(), 0.0)  # weight 0 draws a flat filter ...
    c["weight x"].value = 1.0
    dashed = [ln for ln in shown.updates[-1][1].axes[0].get_lines() if ln.get_linestyle() == "--"][0]
    # ... weight 1: 2 mV e^(-t / 10 ms), over the neuron's kernel of 7 tau + 1 ms (the library's 141 ms at 20 ms)
    lags = np.arange(80)
    assert np.allclose(dashed.get_ydata(), np.where(lags <= 70, 2.0 * np.exp(-lags / 10.0), 0.0))


def test_iaf_explorer_rejects_bad_arguments(no_figures):
    params, x, learned = _iaf_case()
    with pytest.raises(ValueError, match="trial_inputs must be"):
        widgets.iaf_time_constant_explorer(learned, x[:50], params, interactive=False)
    with pytest.raises(ValueError, match="learned_mV must be"):
        widgets.iaf_time_constant_explorer(learned[:10], x, params, interactive=False)
    with pytest.raises(ValueError, match="tau_ms must be positive"):
        widgets.iaf_time_constant_explorer(learned, x, params, tau_ms=0, interactive=False)
    with pytest.raises(ValueError, match="window_ms must lie within"):
        widgets.iaf_time_constant_explorer(learned, x, params, window_ms=(0, 99_999), interactive=False)


# ---- ch. 03: the input generator's interval and smoothing

def test_input_explorer_sets_interval_and_sigma_and_keeps_the_levels_when_only_sigma_moves(shown, no_figures):
    settings = inputs.iaf_input_settings()
    _, details = widgets.input_recipe_explorer(settings, 1500, 7, interactive=True)
    own = inputs.generate_inputs(settings, 1500, 7, return_details=True)[1]
    assert (details.interval_ms, details.sigma_ms) == (own.interval_ms, own.sigma_ms), "starts at the seed's own"
    c = _controls(shown.boxes()[0])
    assert (c["rate interval (ms)"].value, c["smoothing σ (ms)"].value) == (own.interval_ms, own.sigma_ms)
    c["smoothing σ (ms)"].value = 25
    fig = shown.updates[-1][1]
    assert f"rate interval {own.interval_ms} ms, smoothing σ 25 ms" in fig.axes[0].get_title()
    # the same levels were drawn: the top panel (drawn rates) is unchanged, the smoothed one is not
    def top(f):
        return np.concatenate([ln.get_ydata() for ln in f.axes[0].get_lines()])

    def mid(f):
        return np.concatenate([ln.get_ydata() for ln in f.axes[1].get_lines()])

    first = shown.figures()[0][0]
    assert np.array_equal(top(fig), top(first)) and not np.allclose(mid(fig), mid(first))
    fixed = dataclasses.replace(settings, interval_choices_ms=(own.interval_ms,), sigma_choices_ms=(25,),
                                jitter_ms=(0, 1))
    expected = inputs.generate_inputs(fixed, 1500, 7)
    assert f"{expected.n_events:,} input spikes" in fig.axes[2].get_title()
    c["rate interval (ms)"].value = 40
    assert "rate interval 40 ms" in shown.updates[-1][1].axes[0].get_title()


def test_input_explorer_rejects_bad_arguments(no_figures):
    settings = inputs.iaf_input_settings()
    with pytest.raises(ValueError, match="duration_ms"):
        widgets.input_recipe_explorer(settings, 0, interactive=False)
    with pytest.raises(ValueError, match="sigma_ms must be a whole number"):
        widgets.input_recipe_explorer(settings, 500, sigma_ms=0, interactive=False)
    with pytest.raises(ValueError, match="seed"):
        widgets.input_recipe_explorer(settings, 500, seed=-1, interactive=False)


# ---- ch. 05: a threshold on the ROC curve

def test_the_threshold_point_lies_on_the_roc_curve(no_figures):
    p, y = _roc_case()
    fpr, tpr, thresholds = nd.scoring.roc_curve(p, y)
    for i in (3, len(thresholds) // 3, len(thresholds) // 2):
        ax_roc, _, ax_raster = plots.plot_roc_threshold(p, y, thresholds[i], fpr, tpr)
        point = [ln for ln in ax_roc.get_lines() if ln.get_marker() == "o"][0]
        assert point.get_xdata()[0] == pytest.approx(max(fpr[i], 1e-4))
        assert point.get_ydata()[0] == pytest.approx(tpr[i])
        # the raster counts what the ROC point says: hits = TPR x spike ms, false alarms = FPR x silent ms
        legend = [t.get_text() for t in ax_raster.get_legend().get_texts()]
        assert f"hits: {round(tpr[i] * y.sum()):,}" in legend
        assert f"false alarms: {round(fpr[i] * (y.size - y.sum())):,}" in legend
        plt.close("all")


def test_roc_explorer_starts_at_the_requested_false_positive_rate(shown, no_figures):
    p, y = _roc_case()
    widgets.roc_threshold_explorer(p, y, fp_rate=0.01, interactive=True)
    fpr, _, thresholds = nd.scoring.roc_curve(p, y)
    i = int(np.argmin(np.abs(fpr[1:] - 0.01))) + 1
    c = _controls(shown.boxes()[0])
    assert c["threshold on p"].value == pytest.approx(thresholds[i])
    assert c["trace"].label == "the trial with most spikes"  # a selection the menu can show
    c["trace"].value = 2
    assert "scored trial 2" in shown.updates[-1][1].axes[1].get_title()


def test_roc_explorer_rejects_bad_arguments(no_figures):
    p, y = _roc_case()
    with pytest.raises(ValueError, match="equal shape"):
        widgets.roc_threshold_explorer(p, y[:, :10], interactive=False)
    with pytest.raises(ValueError, match="only one class"):
        widgets.roc_threshold_explorer(p, np.zeros_like(y), interactive=False)
    with pytest.raises(ValueError, match="fp_rate"):
        widgets.roc_threshold_explorer(p, y, fp_rate=0, interactive=False)
    with pytest.raises(ValueError, match="threshold must be a finite"):
        plots.plot_roc_threshold(p, y, np.inf, [0, 1], [0, 1])


# ---- ch. 06: a sweep, seed by seed

def test_the_cumulative_curve_is_the_papers_best_so_far(no_figures):
    rows = _sweep_rows()
    ax = plots.plot_sweep_by_seed(rows, "auc", cumulative=True)
    expected = nd.studies.best_so_far(rows, "depth", "auc")
    for condition, curve in expected.items():
        [bars] = [c for c in ax.containers if c.get_label().startswith(f"{condition}:")]
        assert np.allclose(bars.lines[0].get_ydata(), curve["mean"])
    plt.close("all")
    ax = plots.plot_sweep_by_seed(rows, "auc", cumulative=False, seeds=[0, 2], conditions=["AMPA"])
    [bars] = ax.containers
    per_depth = [np.mean([max(r["auc"] for r in rows if r["condition"] == "AMPA" and r["depth"] == d
                              and r["seed"] == s) for s in (0, 2)]) for d in (1, 2, 3)]
    assert np.allclose(bars.lines[0].get_ydata(), per_depth)
    assert "of 2 seeds" in bars.get_label()


def test_sweep_explorer_shows_only_the_chosen_seeds_and_conditions(shown, no_figures):
    widgets.depth_sweep_explorer(_sweep_rows(), interactive=True)
    c = _controls(shown.boxes()[0])
    c["condition NMDA"].value = False
    c["seed 1"].value = False
    ax = shown.updates[-1][1].axes[0]
    assert [b.get_label() for b in ax.containers] == ["AMPA: mean ± s.e. of 2 seeds"]
    c["condition AMPA"].value = False
    assert "choose at least one" in shown.updates[-1][1].axes[0].texts[0].get_text()


def test_sweep_explorer_rejects_bad_arguments(no_figures):
    rows = _sweep_rows()
    with pytest.raises(ValueError, match="no sweep results"):
        widgets.depth_sweep_explorer([], interactive=False)
    with pytest.raises(ValueError, match=r"condition\(s\) \['GABA'\]"):
        widgets.depth_sweep_explorer(rows, conditions=["GABA"], interactive=False)
    with pytest.raises(ValueError, match=r"seed\(s\) \[9\]"):
        widgets.depth_sweep_explorer(rows, seeds=[9], interactive=False)
    with pytest.raises(ValueError, match="metric 'nope'"):
        widgets.depth_sweep_explorer(rows, metrics=[("nope", "nothing")], interactive=False)
    with pytest.raises(ValueError, match="axis must be one of"):
        plots.plot_sweep_by_seed(rows, axis="height")


# ---- ch. 07: filters over the tree

def test_the_tree_is_coloured_by_each_segments_value(no_figures):
    points, segments, _ = _tree_case()
    values = np.array([1.0, 2, 3, -1, -2, -3])
    ax = cell_plots.plot_values_on_tree(points, segments.section_name, segments.x, values)
    coloured = ax.collections[-1].get_array()
    # each section has three 3-D pieces and three segments: piece k of a section takes segment k's value
    assert np.array_equal(np.asarray(coloured), values)


def test_filter_browser_starts_at_the_strongest_filter_and_sums_the_chosen_window(shown, no_figures):
    points, segments, maps = _tree_case()
    widgets.filter_browser(maps, points, segments, interactive=True)
    first = shown.figures()[0][0]
    assert first.subfigs[0]._suptitle.get_text().startswith("filter 2")
    c = _controls(shown.boxes()[0])
    assert c["filter"].value == 2 and c["filter"].options[0][0] == "filter 2 (#1 by strength)"
    c["tree: last ms"].value = 5
    fig = shown.updates[-1][1]
    tree = fig.subfigs[1].axes[0]
    assert np.allclose(np.asarray(tree.collections[-1].get_array()),
                       maps.exc[2][:, :5].sum(axis=1))
    assert "last 5 ms" in tree.get_title()


def test_filter_browser_rejects_bad_arguments(no_figures):
    points, segments, maps = _tree_case()
    with pytest.raises(ValueError, match="index must be a filter number"):
        widgets.filter_browser(maps, points, segments, index=4, interactive=False)
    with pytest.raises(ValueError, match="window_ms must be a whole number"):
        widgets.filter_browser(maps, points, segments, window_ms=21, interactive=False)
    short = SimpleNamespace(section_name=segments.section_name[:3], x=segments.x[:3])
    with pytest.raises(ValueError, match="synapse rows"):
        widgets.filter_browser(maps, points, short, interactive=False)
