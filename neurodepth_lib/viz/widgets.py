"""Interactive widgets for the notebooks: thin wrappers around plain plotting functions.

Every widget first draws one ordinary static figure with its starting values, then (when an IPython kernel
with ipywidgets is running) adds controls that redraw on demand. Nothing waits for a user, so headless
runs (papermill, nbval, CI) get the static figure and never hang. Set ``NEURODEPTH_NO_WIDGETS=1`` to skip the
controls altogether.

A redraw replaces the widget's figure in place: the static figure is displayed with a display id, and each
update sends the new figure to that id (``DisplayHandle.update``), so the notebook shows one figure per
widget however often the controls are used, and a saved notebook still holds an ordinary image output.

Shared file: chapters add their widgets below, grouped by chapter. This module imports NEURON (the L5PC
explorer simulates), so it is not imported by ``neurodepth_lib.viz`` itself: use ``neurodepth_lib.viz.widgets``.
"""
from __future__ import annotations

import os

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython import get_ipython
from IPython.display import display

from ..cells.simulation import simulate_trial
from ..inputs import generate_inputs, tree_input_settings
from .plots import plot_l5pc_trial

__all__ = ["widgets_available", "l5pc_rate_explorer"]


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
