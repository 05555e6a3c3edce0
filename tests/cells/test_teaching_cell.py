"""The teaching cell: its size, its inputs, that it fires under the paper's input statistics, that its
NMDA synapses make plateaus its AMPA synapses do not, and that it passes through generation unchanged.

The cost ratio against the Hay cell is a benchmark (benchmarks/bench_teaching_cell.py), not a test.
"""
from __future__ import annotations

import gc

import numpy as np
import pytest

pytest.importorskip("neuron")

import neurodepth_lib as nd  # noqa: E402
from neurodepth_lib.cells import mechanisms  # noqa: E402,F401  (sets NEURON_MODULE_OPTIONS first)
from neurodepth_lib.cells.teaching import TeachingCell, TeachingCellParams  # noqa: E402
from neurodepth_lib.inputs import generate_inputs  # noqa: E402
from neurodepth_lib.cells.simulation import resting_potential, simulate_trial  # noqa: E402

pytestmark = pytest.mark.neuron

N_SEG = 52
DURATION_MS = 3000
SEEDS = (0, 1, 2)

_RUNS = {}


def _runs():
    """Three 3-s trials per condition with the paper's generator on this cell (same seeds for both)."""
    if not _RUNS:
        cell = TeachingCell("NMDA")
        for condition in ("NMDA", "AMPA"):
            cell.set_condition(condition)
            settings = cell.input_settings(condition)
            _RUNS[condition] = [simulate_trial(cell, generate_inputs(settings, DURATION_MS, s), dt_ms=0.05,
                                               secondorder=2, record_dendrites=True) for s in SEEDS]
        _RUNS["cell"] = cell
    return _RUNS


def test_counts_and_channel_order():
    cell = TeachingCell("NMDA")
    assert cell.n_segments == N_SEG and cell.n_inputs == 2 * N_SEG
    assert len(cell.synapses) == len(cell.netcons) == 2 * N_SEG
    regions = cell.segments.region
    # basal first, then apical; the three regions all present
    first_apical = int(np.flatnonzero(regions != "basal")[0])
    assert (regions[:first_apical] == "basal").all() and (regions[first_apical:] != "basal").all()
    assert {"basal", "oblique", "tuft"} == set(regions)
    assert cell.synapses[0].hname().startswith("SynAmpaNmda")
    assert cell.synapses[N_SEG].hname().startswith("SynGabaA")
    cell.set_condition("AMPA")
    assert cell.synapses[0].hname().startswith("SynAmpa[")
    # thin distal branches: where NMDA spikes can start
    assert cell.segments.diam_um[regions == "tuft"].max() <= 1.0
    assert cell.segments.path_distance_um.max() > 500


def test_rebuild_does_not_leak():
    from neuron import h

    TeachingCell("NMDA")
    gc.collect()
    n_sec = len(list(h.allsec()))
    TeachingCell("AMPA")
    gc.collect()
    assert len(list(h.allsec())) == n_sec


def test_inputs_follow_the_paper_densities():
    cell = TeachingCell("NMDA")
    s = cell.input_settings("NMDA")
    assert s.n_channels == 2 * N_SEG
    assert len(s.groups) == len(cell.branch_names)  # one coarse rate per branch subtree
    trees = TeachingCell("NMDA", TeachingCellParams(input_grouping="trees")).input_settings("NMDA")
    assert [g.name for g in trees.groups] == ["basal", "apical"]
    # the paper's excitation density (800 per 100 ms over the Hay basal tree's adjusted length) x rate_scale
    basal = trees.groups[0]
    adjusted = (TeachingCell("NMDA").segments.length_um + 10)[np.asarray(basal.exc_channels)].sum()
    assert basal.exc_total_per_100ms[1] == pytest.approx(4.0 * 800 * adjusted / (5133.5 + 2620))
    with pytest.raises(ValueError, match="input_grouping"):
        TeachingCellParams(input_grouping="spines")
    with pytest.raises(ValueError, match="condition"):
        TeachingCell("AMPA_SK")


def test_rest_and_firing_under_paper_like_input():
    runs = _runs()
    rest = resting_potential(runs["cell"])
    assert -92 < rest < -75
    for condition in ("NMDA", "AMPA"):
        rate_hz = np.mean([r.n_spikes for r in runs[condition]]) / (DURATION_MS / 1000)
        # a cortical pyramidal cell's range, and what the paper's 0-24 spikes per 6 s filter keeps
        assert 0.3 < rate_hz < 10, (condition, rate_hz)


def test_nmda_plateaus_exist_only_with_nmda():
    runs = _runs()
    cell = runs["cell"]
    thin = cell.segments.diam_um < 1.0

    def plateau_fraction(results):
        # samples of thin dendrites above -30 mV, with the soma below -50 mV (not a back-propagating spike)
        frac = []
        for r in results:
            v = r.v_dend_1ms[thin]
            quiet = r.v_soma_1ms < -50
            frac.append(float((v[:, quiet] > -30).mean()))
        return float(np.mean(frac))

    nmda, ampa = plateau_fraction(runs["NMDA"]), plateau_fraction(runs["AMPA"])
    assert nmda > 1e-3, nmda
    assert nmda > 5 * ampa, (nmda, ampa)


def test_passes_through_generation(tmp_path):
    report = nd.data.generate_dataset(tmp_path / "ds", cell="teaching", condition="AMPA", n_trials=2,
                                         duration_ms=600, seed=3, workers=0, progress=False)
    ds = report.open()
    assert ds.cell == "teaching" and ds.n_channels == 2 * N_SEG and len(ds) == 2
    with pytest.raises(ValueError, match="unknown teaching-cell parameter"):
        nd.data.generate_dataset(tmp_path / "bad", cell="teaching", condition="NMDA", n_trials=1,
                                    duration_ms=600, cell_params={"spines": 1}, workers=0, progress=False)


def test_compiled_step_loop_matches_python_fadvance_loop(monkeypatch):
    """simulate_trial advances with ParallelContext.psolve; it must give exactly what a Python fadvance loop
    gives (same steps, same event deliveries, same spikes), including a duration that is not a whole number
    of 10-ms psolve chunks and dt that does not divide 1 ms evenly in binary (0.05)."""

    cell = _runs()["cell"]
    cell.set_condition("NMDA")
    events = generate_inputs(cell.input_settings("NMDA"), 1237, 5)
    compiled = simulate_trial(cell, events, dt_ms=0.05, secondorder=2, record_dendrites=True)

    def python_loop(h, tstop_ms):
        while h.t < tstop_ms:
            h.fadvance()

    monkeypatch.setattr(nd.cells.simulation, "_run_fixed_step", python_loop)
    looped = simulate_trial(cell, events, dt_ms=0.05, secondorder=2, record_dendrites=True)
    assert compiled.n_spikes > 0  # a trial with action potentials, so spike timing is compared too
    np.testing.assert_array_equal(compiled.spike_times_ms, looped.spike_times_ms)
    np.testing.assert_array_equal(compiled.v_soma_0125ms, looped.v_soma_0125ms)
    np.testing.assert_array_equal(compiled.v_dend_1ms, looped.v_dend_1ms)
