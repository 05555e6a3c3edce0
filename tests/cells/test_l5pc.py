"""The Hay L5PC, our mechanisms and one-trial simulation, checked against physics and the original model.

The key test feeds our cell the exact input events of three trials simulated with the authors' own files
(the shipped asset ``l5pc_reference``, ``data/reference/l5pc_reference.npz``) and compares spikes and voltages. Those three 3-s trials are
simulated once per session (module fixture), roughly 2-3 minutes of one core.
"""
from __future__ import annotations

import gc
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("neuron")

import neurodepth_lib as nd  # noqa: E402
from neurodepth_lib.cells import mechanisms  # noqa: E402  (sets NEURON_MODULE_OPTIONS first)
from neurodepth_lib.cells import L5PC, L5PCParams, ensure_mechanisms  # noqa: E402
from neurodepth_lib.cells.simulation import (SimulationParams, detect_spikes, resting_potential,  # noqa: E402
                                             simulate_trial)

pytestmark = pytest.mark.neuron

REPO = Path(__file__).resolve().parents[2]
N_SEG, N_IN = 639, 1278


def _counts():
    from neuron import h

    gc.collect()
    return {"sections": len(list(h.allsec())),
            **{name: int(h.List(name).count()) for name in ("SynAmpaNmda", "SynAmpa", "SynGabaA", "NetCon")}}


_CELL = {}


@pytest.fixture(scope="module", autouse=True)
def _no_cell_left_behind():
    """Destroy this module's L5PC when its tests are done: NEURON integrates every live section, so a
    640-compartment cell left alive would be simulated with every trial of the small cells later tests build."""
    yield
    cell = _CELL.pop("cell", None)
    if cell is not None and cell._alive:
        cell.destroy()


@pytest.fixture
def cell():
    """The process's NMDA cell (rebuilt if a test destroyed it by building another)."""
    c = _CELL.get("cell")
    if c is None or not c._alive:
        c = _CELL["cell"] = L5PC("NMDA")
    c.set_condition("NMDA")
    return c


def _load_reference():
    path = nd.data.assets.find("l5pc_reference")  # shipped in the repository: never skipped in a clone
    assert path is not None, "the reference traces (data/reference/l5pc_reference.npz) are missing"
    return np.load(path)


# ------------------------------------------------------------------------------------------- mechanisms
def test_ensure_mechanisms_is_idempotent_and_loads_every_mechanism():
    first = ensure_mechanisms()
    assert ensure_mechanisms() == first
    names = mechanisms.mechanism_names()
    assert {"NaTa_t", "NaTs2_t", "Nap_Et2", "K_Pst", "K_Tst", "SKv3_1", "SK_E2", "Ca_HVA", "Ca_LVAst", "Im",
            "Ih", "CaDynamics_E2", "SynAmpaNmda", "SynAmpa", "SynGabaA"} == set(names)
    assert mechanisms._loaded_names(names) == set(names)


def test_hash_follows_the_sources(tmp_path):
    for f in mechanisms.MOD_DIR.glob("*.mod"):
        shutil.copy(f, tmp_path / f.name)
    before = mechanisms.mechanisms_hash(tmp_path)
    assert before == mechanisms.mechanisms_hash(mechanisms.MOD_DIR)
    (tmp_path / "Im.mod").write_text((tmp_path / "Im.mod").read_text() + "\n: changed\n")
    assert mechanisms.mechanisms_hash(tmp_path) != before


def test_missing_compiler_raises_with_the_fix(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setattr(mechanisms, "_loaded_names", lambda names: set())  # pretend nothing is loaded
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(RuntimeError, match=r"no C\+\+ compiler found.*build-essential"):
        ensure_mechanisms(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*/COMPLETE"))


def test_missing_nrnivmodl_raises_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(mechanisms, "_loaded_names", lambda names: set())
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(RuntimeError, match=r"'nrnivmodl' command was not found.*pip install neuron"):
        ensure_mechanisms(tmp_path / "cache")


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="needs a C++ compiler")
def test_compile_failure_shows_the_compiler_output(tmp_path):
    bad = tmp_path / "Broken.mod"
    bad.write_text("NEURON { SUFFIX Broken }\nBREAKPOINT { x = = 1 }\n")
    with pytest.raises(RuntimeError, match=r"nrnivmodl failed[\s\S]*Broken"):
        mechanisms._compile([bad], tmp_path / "target")
    assert not (tmp_path / "target").exists()


# ------------------------------------------------------------------------------------------- synapses
def _clamped_synapse(kind, events_ms, v_clamp_mV, t_stop_ms=60.0):
    """Conductance of one synapse on a small voltage-clamped compartment."""
    from neuron import h

    ensure_mechanisms()
    sec = h.Section(name="synapse_test")
    sec.L = sec.diam = 10
    clamp = h.SEClamp(sec(0.5))
    clamp.dur1, clamp.amp1, clamp.rs = 1e9, v_clamp_mV, 1e-3
    syn = getattr(h, kind)(sec(0.5))
    nc = h.NetCon(None, syn)
    nc.weight[0] = 1.0
    handler = h.FInitializeHandler(1, lambda: [nc.event(t) for t in events_ms])
    names = ("g_AMPA", "g_NMDA", "mggate") if kind == "SynAmpaNmda" else ("g",)
    t = h.Vector().record(h._ref_t)
    rec = {n: h.Vector().record(getattr(syn, f"_ref_{n}")) for n in names}
    h.CVode().active(0)
    h.dt = 0.025
    h.finitialize(v_clamp_mV)
    while h.t < t_stop_ms:
        h.fadvance()
    out = {n: v.as_numpy().copy() for n, v in rec.items()}
    out["t"] = t.as_numpy().copy()
    del handler, nc, syn, clamp, sec
    return out


@pytest.mark.parametrize("kind, gmax_uS, tau_r, tau_d", [
    ("SynAmpa", 0.0004, 0.3, 3.0), ("SynGabaA", 0.001, 0.2, 8.0)])
def test_difference_of_exponentials_peaks_at_gmax(kind, gmax_uS, tau_r, tau_d):
    out = _clamped_synapse(kind, [0.0], -70.0, 40.0)
    t_peak = tau_r * tau_d / (tau_d - tau_r) * np.log(tau_d / tau_r)
    k = int(np.argmax(out["g"]))
    assert out["g"][k] == pytest.approx(gmax_uS, rel=2e-3)
    assert out["t"][k] == pytest.approx(t_peak, abs=0.05)


def test_nmda_component_and_mg_block():
    out = _clamped_synapse("SynAmpaNmda", [0.0], -70.0, 60.0)
    block = 1 / (1 + np.exp(0.08 * 70) / 3.57)  # about 0.013 at -70 mV
    assert out["mggate"][-1] == pytest.approx(block, rel=1e-3)
    assert out["g_AMPA"].max() == pytest.approx(0.0004, rel=2e-3)
    k = int(np.argmax(out["g_NMDA"]))
    assert out["g_NMDA"][k] == pytest.approx(0.0004 * block, rel=2e-3)
    assert out["t"][k] == pytest.approx(2 * 70 / 68 * np.log(35), abs=0.05)


def test_event_at_t0_is_delivered_and_does_not_silence_the_synapse():
    # The authors' synapse turned an event at t = 0 into NaN forever (Dep = 0); ours adds it like any other.
    out = _clamped_synapse("SynAmpa", [0.0, 20.0], -70.0, 40.0)
    t, g = out["t"], out["g"]
    assert np.all(np.isfinite(g))
    first = g[(t > 0) & (t < 10)].max()
    second = g[(t > 20) & (t < 30)].max()
    assert first == pytest.approx(0.0004, rel=2e-3)
    assert second == pytest.approx(0.0004, rel=5e-3)  # the first event's tail (~1e-3 of gmax) adds on top


# ------------------------------------------------------------------------------------------- the cell
def test_morphology_and_synapse_counts(cell):
    assert len(cell.dend) == 84 and len(cell.apic) == 109
    assert sum(s.nseg for s in cell.dend) == 262 and sum(s.nseg for s in cell.apic) == 377
    assert cell.n_segments == N_SEG and cell.n_inputs == N_IN
    assert len(cell.axon) == 2
    assert all(s.nseg == 1 and s.L == 30 and s.diam == pytest.approx(1) for s in cell.axon)
    assert cell.axon[0].parentseg().sec == cell.soma and cell.axon[0].parentseg().x == 0.5
    for sec in cell.all:
        assert sec.nseg == 1 + 2 * int(sec.L / 40)
    assert len(cell.synapses) == len(cell.netcons) == N_IN
    assert all(s.hname().startswith("SynAmpaNmda") for s in cell.synapses[:N_SEG])
    assert all(s.hname().startswith("SynGabaA") for s in cell.synapses[N_SEG:])
    segs = cell.dendritic_segments
    for k in (0, 261, 262, 638):
        for syn in (cell.synapses[k], cell.synapses[N_SEG + k]):
            seg = syn.get_segment()
            assert seg.sec == segs[k].sec and seg.x == pytest.approx(segs[k].x)
    assert all(nc.weight[0] == 1 and nc.delay == 0 for nc in cell.netcons)
    assert cell.nexus.sec == cell.apic[50] and cell.nexus.x == pytest.approx(0.9, abs=0.05)


def test_segment_table_matches_the_reference(cell):
    ref = _load_reference()
    seg = cell.segments
    assert seg.section_name.tolist() == ref["seg_section_name"].tolist()
    np.testing.assert_array_equal(seg.section_index, ref["seg_section_index_in_dendritic_list"])
    np.testing.assert_allclose(seg.x, ref["seg_x"], atol=1e-12)
    np.testing.assert_allclose(seg.length_um, ref["seg_length_um"], rtol=1e-9)
    np.testing.assert_allclose(seg.path_distance_um, ref["seg_path_dist_from_soma_um"], rtol=1e-9)
    np.testing.assert_allclose(seg.diam_um, ref["seg_diam_um"], rtol=1e-6)
    np.testing.assert_array_equal(seg.is_basal, ref["seg_is_basal"])
    np.testing.assert_array_equal(seg.is_apical, ref["seg_is_apical"])
    # the paper's analysis groups (paper_facts 1.1): basal 0-261, oblique 262-365 and 559-638, tuft 366-558
    idx = np.arange(N_SEG)
    np.testing.assert_array_equal(seg.indices("basal"), idx[:262])
    np.testing.assert_array_equal(seg.indices("tuft"), idx[366:559])
    np.testing.assert_array_equal(seg.indices("oblique"), np.r_[idx[262:366], idx[559:]])


def test_input_trees_give_the_generator_its_groups(cell):
    trees = cell.input_trees()
    basal_idx, basal_len = trees["basal"]
    apical_idx, apical_len = trees["apical"]
    np.testing.assert_array_equal(basal_idx, np.arange(262))
    np.testing.assert_array_equal(apical_idx, np.arange(262, 639))
    np.testing.assert_allclose(basal_len, cell.segments.length_um[:262] + 10)
    assert basal_len.sum() == pytest.approx(5133.5 + 262 * 10, abs=0.1)
    assert apical_len.sum() == pytest.approx(7440.9 + 377 * 10, abs=0.1)


def test_biophys5b_distributions(cell):
    from neuron import h

    dens = cell.channel_densities()
    apical = cell.segments.is_apical
    d = cell.segments.path_distance_um
    ih = dens["Ih"]
    assert cell.longest_apical_path_um() == pytest.approx(1300.5, abs=0.1)
    assert np.all(ih[~apical] == pytest.approx(5e-5))
    assert ih[apical].max() == pytest.approx(1e-4 * (-0.8696 + 2.087 * np.exp(3.6161 * 0.65)), rel=1e-9)
    assert ih[apical][0] == pytest.approx(1e-4 * (-0.8696 + 2.087 * np.exp(3.6161 * d[262] / 1300.53)), rel=1e-4)
    rank = lambda a: np.argsort(np.argsort(a))  # noqa: E731
    assert np.corrcoef(rank(np.minimum(d[apical], 845)), rank(ih[apical]))[0, 1] > 0.99  # grows, then saturates
    assert np.all(ih[apical][d[apical] > 870] == pytest.approx(ih[apical].max()))
    ca = dens["Ca_LVAst"][apical]
    assert np.isclose(ca, 0.141954 * 1.6).sum() == 29  # the hot zone, 685-885 um
    assert set(np.round(ca, 9)) == {round(0.141954 * 1.6, 9), round(0.141954 * 0.016, 9)}
    assert dens["soma"]["NaTs2_t"] == 0.998912 and dens["soma"]["SK_E2"] == 0.09965
    assert all(sec.cm == 2 for sec in cell.dend + cell.apic) and cell.soma.cm == 1
    assert all(sec.Ra == 100 for sec in cell.all)
    assert cell.soma.ek == -85 and cell.soma.ena == 50 and cell.soma(0.5).pas.e == -90
    assert not h.ismembrane("NaTs2_t", sec=cell.dend[0])


def test_ampa_sk_scales_sk_in_soma_axon_and_apical(cell):
    soma, axon, apic = cell.soma(0.5), cell.axon[0](0.5), cell.apic[10](0.5)
    base = [s.SK_E2.gbar for s in (soma, axon, apic)]
    cell.set_condition("AMPA_SK")
    assert all(s.hname().startswith("SynAmpa[") for s in cell.synapses[:N_SEG])
    assert [s.SK_E2.gbar for s in (soma, axon, apic)] == pytest.approx([0.1 * b for b in base])
    cell.set_condition("AMPA")
    assert [s.SK_E2.gbar for s in (soma, axon, apic)] == pytest.approx(base)
    cell.set_condition("NMDA")
    assert all(s.hname().startswith("SynAmpaNmda") for s in cell.synapses[:N_SEG])
    assert _counts()["SynAmpa"] == 0


def test_unknown_condition_is_a_clear_error(cell):
    with pytest.raises(ValueError, match="unknown condition 'GABA'"):
        L5PC("GABA")
    assert cell._alive  # validation happens before anything is built or destroyed
    with pytest.raises(ValueError, match="unknown condition"):
        cell.set_condition("nmda")


def test_rebuilding_frees_the_old_cell():
    first = L5PC("NMDA")
    counts = _counts()
    assert counts == {"sections": 196, "SynAmpaNmda": 639, "SynAmpa": 0, "SynGabaA": 639, "NetCon": 1278}
    second = L5PC("AMPA")
    assert _counts() == {"sections": 196, "SynAmpaNmda": 0, "SynAmpa": 639, "SynGabaA": 639, "NetCon": 1278}
    assert not first._alive
    with pytest.raises(RuntimeError, match="destroyed"):
        simulate_trial(first, (np.array([0]), np.array([1])), duration_ms=5)
    second.destroy()
    del first, second
    assert _counts() == {"sections": 0, "SynAmpaNmda": 0, "SynAmpa": 0, "SynGabaA": 0, "NetCon": 0}


def test_params_are_validated():
    with pytest.raises(ValueError, match="tau_rise < tau_decay"):
        L5PCParams(nmda_tau_rise_ms=80.0)
    with pytest.raises(ValueError, match="unknown extension"):
        L5PCParams(morphology=str(REPO / "pyproject.toml"))
    with pytest.raises(ValueError, match="does not exist"):
        L5PC("NMDA", L5PCParams(morphology=str(REPO / "no_such_cell.swc")))


# ------------------------------------------------------------------------------------------- simulation
def test_resting_potential_is_about_minus_81_mV(cell):
    rest = resting_potential(cell, 500)  # CVODE: long steps without input
    assert rest == pytest.approx(-81.0, abs=1.0)
    assert resting_potential(cell, 500, use_cvode=False) == pytest.approx(rest, abs=0.01)


@pytest.mark.parametrize("events, duration, message", [
    ((np.array([1278]), np.array([5])), 10, "channel 1278 is out of range"),
    ((np.array([-1]), np.array([5])), 10, "channel -1 is out of range"),
    ((np.array([3]), np.array([10])), 10, "outside the trial"),
    ((np.array([3]), np.array([-1])), 10, "outside the trial"),
    ((np.array([3, 4]), np.array([1])), 10, "equal length"),
    ((np.zeros((2, 2), int), np.zeros((2, 2), int)), 10, "1-D"),
    ((np.array([3]), np.array([1])), None, "duration_ms is required"),
    ((np.array([3]), np.array([1])), 0, "positive whole number"),
])
def test_bad_events_raise_before_simulating(cell, events, duration, message):
    with pytest.raises(ValueError, match=message):
        simulate_trial(cell, events, duration_ms=duration)


def test_bad_condition_and_channel_count_raise(cell):
    from neurodepth_lib.inputs import InputEvents

    ev = InputEvents([0], [1], n_channels=100, duration_ms=10)
    with pytest.raises(ValueError, match="n_channels=100"):
        simulate_trial(cell, ev)
    with pytest.raises(ValueError, match="unknown condition"):
        simulate_trial(cell, InputEvents([0], [1], N_IN, 10), condition="AMPA+SK")
    with pytest.raises(TypeError, match="unknown simulation parameter"):
        simulate_trial(cell, InputEvents([0], [1], N_IN, 10), dt=0.1)


def test_simulation_does_not_import_torch():
    import subprocess

    code = ("import sys, neurodepth_lib.cells.simulation, neurodepth_lib.cells.l5pc; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_spike_detection_rule():
    v = np.array([-70, -20, -10, -10, -30, -20, -5, -30, -26, -30], float)
    # strict rise and fall: the plateau at -10 is not a spike; -26 is below threshold
    np.testing.assert_array_equal(detect_spikes(v, 0.125, -25.0), [6 * 0.125])


def test_trials_are_reset_and_repeatable(cell):
    rng = np.random.default_rng(0)
    n = 1000
    channel = rng.integers(0, N_IN, n)
    time_ms = rng.integers(0, 100, n)
    a = simulate_trial(cell, (channel, time_ms), duration_ms=100, record_dendrites=True)
    simulate_trial(cell, (channel[: n // 2], time_ms[: n // 2] + 20), duration_ms=150)
    b = simulate_trial(cell, (channel, time_ms), duration_ms=100, record_dendrites=True)
    np.testing.assert_array_equal(a.v_soma_0125ms, b.v_soma_0125ms)
    np.testing.assert_array_equal(a.v_dend_1ms, b.v_dend_1ms)
    assert a.v_soma_1ms.dtype == np.float32 and a.v_soma_1ms.shape == (100,)
    assert a.v_soma_0125ms.shape == (800,) and a.v_nexus_1ms.shape == (100,)
    assert a.v_dend_1ms.shape == (N_SEG, 100) and a.v_dend_1ms.dtype == np.float32
    assert a.v_soma_1ms[0] == pytest.approx(-76.0) and np.all(a.v_dend_1ms[:, 0] == pytest.approx(-76.0))
    np.testing.assert_allclose(a.v_soma_1ms, a.v_soma_0125ms[::8], atol=1e-6)
    assert a.v_dend_1ms.max() > a.v_soma_1ms.min()  # the inputs moved the dendrites


def test_cvode_runs_and_agrees_roughly(cell):
    rng = np.random.default_rng(1)
    channel, time_ms = rng.integers(0, N_IN, 800), rng.integers(0, 100, 800)
    fixed = simulate_trial(cell, (channel, time_ms), duration_ms=100)
    var = simulate_trial(cell, (channel, time_ms), duration_ms=100, params=SimulationParams(use_cvode=True))
    assert np.sqrt(np.mean((fixed.v_soma_1ms - var.v_soma_1ms) ** 2)) < 0.5


def test_secondorder_is_applied_for_the_trial_only(cell):
    from neuron import h

    rng = np.random.default_rng(2)
    channel, time_ms = rng.integers(0, N_IN, 600), rng.integers(0, 60, 600)
    euler = simulate_trial(cell, (channel, time_ms), duration_ms=60, secondorder=0)
    crank = simulate_trial(cell, (channel, time_ms), duration_ms=60, secondorder=2)
    assert h.secondorder == 0
    assert not np.array_equal(euler.v_soma_0125ms, crank.v_soma_0125ms)
    assert np.abs(euler.v_soma_1ms - crank.v_soma_1ms).max() < 0.5
    with pytest.raises(ValueError, match="secondorder"):
        SimulationParams(secondorder=3)


def test_generated_inputs_drive_the_cell(cell):
    from neurodepth_lib.inputs import generate_inputs

    events = generate_inputs(cell.input_settings("NMDA"), 100, seed=3)
    assert events.n_channels == N_IN
    result = simulate_trial(cell, events)
    assert result.duration_ms == 100 and result.n_input_events == events.n_events > 0
    assert np.all(np.isfinite(result.v_soma_1ms))


# ------------------------------------------------------------------------------------------- the reference
@pytest.fixture(scope="module")
def reference_runs():
    """Our cell on the reference's three trials (each 3 s at dt 0.025 ms): agreement numbers per trial."""
    ref = _load_reference()
    out = []
    for i in range(int(ref["n_trials"])):
        condition = str(ref[f"trial{i}_condition"])
        c = _CELL.get("cell")
        if c is None or not c._alive:
            c = _CELL["cell"] = L5PC(condition)
        duration = int(ref[f"trial{i}_duration_ms"])
        result = simulate_trial(c, (ref[f"trial{i}_input_segment_index"], ref[f"trial{i}_input_time_ms"]),
                                duration_ms=duration, condition=condition,
                                params=SimulationParams(dt_ms=float(ref[f"trial{i}_dt_ms"])))
        ref_spikes = ref[f"trial{i}_output_spike_times_ms"]
        matched = nd.cells.spikes.match_spikes(ref_spikes, result.spike_times_ms, tolerance_ms=1.0).matched
        soma_ref, nexus_ref = ref[f"trial{i}_v_soma_1ms"], ref[f"trial{i}_v_nexus_1ms"]
        out.append({
            "trial": str(ref["trial_names"][i]), "reference_spikes": len(ref_spikes),
            "our_spikes": result.n_spikes, "matched_1ms": matched, "extra": result.n_spikes - matched,
            # soma: both traces clipped at -55 mV (the paper's voltage target)
            "soma_rmse_mV": float(np.sqrt(np.mean((np.minimum(result.v_soma_1ms, -55.0)
                                                   - np.minimum(soma_ref, -55.0)) ** 2))),
            # nexus: both traces clipped at -40 mV, every millisecond compared
            "nexus_rmse_mV": float(np.sqrt(np.mean((np.minimum(result.v_nexus_1ms, -40.0)
                                                    - np.minimum(nexus_ref, -40.0)) ** 2))),
            "wall_time_s": result.wall_time_s,
        })
    print("\nagreement with the original model:")
    for row in out:
        print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return out


@pytest.mark.parametrize("trial", [0, 1, 2])
def test_agrees_with_the_original_model(reference_runs, trial):
    row = reference_runs[trial]
    assert row["matched_1ms"] >= 0.95 * row["reference_spikes"], row
    assert row["extra"] <= 0.05 * row["reference_spikes"], row
    assert row["soma_rmse_mV"] <= 0.5, row
    assert row["nexus_rmse_mV"] <= 0.5, row
