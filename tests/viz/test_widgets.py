"""The notebook widgets without a browser: what they display, and that an update replaces its figure.

The simulation behind the L5PC explorer is replaced by a stand-in that records its arguments, so these tests
need neither NEURON's mechanisms nor seconds per trial; tests/test_browser.py drives the real thing in JupyterLab.
"""
from __future__ import annotations

from types import SimpleNamespace

import ipywidgets as W
import matplotlib.pyplot as plt
import pytest

from neurodepth_lib.viz import widgets


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
