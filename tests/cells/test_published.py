"""A published NEURON model in one call (issue 18): a tiny pyramid of our own, written as a published model is
(a hoc template and a .mod file of its own, tests/cells/fixtures/tiny_pyramid), goes from its files to a cell of
the pipeline; mechanism clashes, compile failures and a stray x86_64/ are clear; inputs calibrate into range."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib.cells import mechanisms

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = FIXTURES / "tiny_pyramid" / "cell.toml"


@pytest.fixture(scope="module")
def model():
    return nd.cells.load_spec(SPEC)


@pytest.fixture(scope="module")
def cell(model):
    return model.describe.args[0].cell("control", {})


def test_the_spec_becomes_a_cell_that_keeps_the_contract(model, cell):
    assert model.name == "tiny_pyramid" and model.conditions == ("control", "APV") and not model.calibrated
    assert nd.cells.get_cell("tiny_pyramid") is model  # registered by name
    assert isinstance(cell, nd.cells.NeuronCell)
    # basal segments first, then apical; excitatory channels 0..n-1, inhibitory n..2n-1
    assert list(cell.segments.region) == ["basal"] * 6 + ["apical"] * 11
    assert cell.n_segments == 17 and cell.n_inputs == 34 and len(cell.netcons) == 34
    assert [s.hname().split("[")[0] for s in cell.synapses[:2]] == ["SynAmpaNmda"] * 2
    assert {s.hname().split("[")[0] for s in cell.synapses[17:]} == {"SynGabaA"}
    assert cell.nexus_name == "apic[0](0.9)"  # the trunk's fork, picked
    assert cell.dendritic_segments[0].sec.has_membrane("leak_nd")  # the model's own mechanism is loaded
    settings = cell.input_settings("APV")
    assert settings.n_channels == 34 and [g.name for g in settings.groups] == ["basal", "apical"]
    cell.set_condition("APV")  # the cell's own names, mapped to AMPA-only synapses
    assert {s.hname().split("[")[0] for s in cell.synapses[:17]} == {"SynAmpa"}
    cell.set_condition("control")
    with pytest.raises(ValueError, match="unknown condition 'NMDA' for the cell 'tiny_pyramid'"):
        cell.set_condition("NMDA")


def test_a_models_spec_and_its_live_cell_can_be_looked_at(model, cell):
    spec = nd.cells.published.model_spec(model)
    assert spec is nd.cells.published.model_spec("tiny_pyramid") is model.describe.args[0]  # name or model
    assert spec == nd.cells.published.model_spec(SPEC)                                    # or its TOML file
    assert nd.cells.published.build_cell(model) is cell          # the live cell, reused (first condition)
    apv = nd.cells.published.build_cell(model, "APV")
    assert apv is cell and cell.condition == "APV"                # set to the condition asked for
    cell.set_condition("control")
    with pytest.raises(ValueError, match="unknown condition 'NMDA' for the cell 'tiny_pyramid'"):
        nd.cells.published.build_cell(model, "NMDA")
    with pytest.raises(ValueError, match="'teaching' was not made by from_neuron_model"):
        nd.cells.published.model_spec("teaching")


def test_the_built_in_cells_keep_the_contract():
    teaching = nd.cells.TeachingCell("NMDA")
    try:
        assert isinstance(teaching, nd.cells.NeuronCell)
    finally:
        teaching.destroy()


def test_a_mechanism_clash_and_a_compile_failure_are_clear(cell, tmp_path):
    with pytest.raises(mechanisms.MechanismClashError, match=r"SynAmpa\.mod declares the mechanism 'SynAmpa'.*"
                       r"neurodepth's synapses"):
        mechanisms.ensure_model_mechanisms(FIXTURES / "clash_mod")
    with pytest.raises(ValueError, match="nrnivmodl failed to compile the mechanisms in .*broken_mod"):
        mechanisms.ensure_model_mechanisms(FIXTURES / "broken_mod", cache_dir=tmp_path)


def test_a_models_copy_of_a_loaded_mechanism_is_that_mechanism(cell, tmp_path):
    # a model shipping byte-identical copies of mechanisms already loaded (ours here: both libraries, which
    # this process may hold beside a published model when the model does not reuse their names) loads without
    # a clash ...
    mechanisms.ensure_mechanisms()
    copies = tmp_path / "copies"
    copies.mkdir()
    for name in ("SynAmpa.mod", "NaTa_t.mod"):
        shutil.copy(mechanisms.MOD_DIR / name, copies / name)
    cache = tmp_path / "cache"
    assert mechanisms.ensure_model_mechanisms(copies, cache_dir=cache) is not None
    assert not cache.exists() or not any(cache.glob("*/COMPLETE"))      # ... and nothing was compiled
    # beside a mechanism of its own: only that one is compiled and loaded
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(mechanisms.MOD_DIR / "SynAmpa.mod", mixed)
    leak = (FIXTURES / "tiny_pyramid" / "mod" / "leak_nd.mod").read_text()
    (mixed / "leak2_nd.mod").write_text(leak.replace("leak_nd", "leak2_nd"))
    target = mechanisms.ensure_model_mechanisms(mixed)
    assert sorted(p.name for p in (target / "mod").glob("*.mod")) == ["leak2_nd.mod"]
    assert mechanisms._loaded_names({"leak2_nd"}) == {"leak2_nd"}
    # "identical" means byte for byte: one more comment line and it is another mechanism of the same name
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "SynAmpa.mod").write_text((mechanisms.MOD_DIR / "SynAmpa.mod").read_text() + ": edited\n")
    with pytest.raises(mechanisms.MechanismClashError, match="declares the mechanism 'SynAmpa'"):
        mechanisms.ensure_model_mechanisms(changed, cache_dir=cache)


@pytest.mark.parametrize("text, error, message", [
    ('name = "x"\nhoc = "tiny_pyramid.hoc"\ntemplate = "TinyPyramid"\n[trees]\nbasal = "dend[*]"\ncolour = 1\n',
     ValueError, "colour"),
    ('name = "x"\nhoc = "missing.hoc"\ntemplate = "TinyPyramid"\n[trees]\nbasal = "dend[*]"\n',
     FileNotFoundError, "missing.hoc does not exist"),
    ('name = "x"\nhoc = "tiny_pyramid.hoc"\ntemplate = "TinyPyramid"\n[trees]\nbasal = "dend[*]"\n'
     '[conditions]\ncontrol = "GABA"\n', ValueError, "must map to a kind of excitatory synapse"),
    ('name = "l5pc"\nhoc = "tiny_pyramid.hoc"\ntemplate = "TinyPyramid"\n[trees]\nbasal = "dend[*]"\n',
     ValueError, "built-in cell"),
])
def test_a_bad_spec_is_one_clear_error(tmp_path, text, error, message):
    shutil.copy(FIXTURES / "tiny_pyramid" / "tiny_pyramid.hoc", tmp_path)
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(error, match=message):
        nd.cells.load_spec(tmp_path / "bad.toml")


def test_a_stray_x86_64_in_the_working_directory_is_not_loaded(model, cell, tmp_path):
    # the model's own library, compiled by hand into the working directory, as users do
    compiled = mechanisms._model_libraries[mechanisms.mechanisms_hash(FIXTURES / "tiny_pyramid" / "mod")]
    shutil.copytree(compiled / "x86_64", tmp_path / "x86_64")
    script = textwrap.dedent(f"""
        import neurodepth_lib as nd
        from neurodepth_lib.cells.simulation import simulate_trial
        model = nd.cells.load_spec({str(SPEC)!r})
        cell = model.describe.args[0].cell("control", {{}})
        print("spikes", simulate_trial(cell, ([0, 1], [5.0, 6.0]), duration_ms=50).n_spikes)
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "spikes 0" in done.stdout


def test_calibration_lands_in_its_target_range(model):
    cal = nd.cells.calibrate_inputs(model, "control", n_trials=3, duration_ms=1500)
    assert cal.in_range and 0.8 <= cal.rate_hz <= 2.5 and cal.param == "rate_factor"
    assert cal.history[0]["factor"] == 1.0 and cal.factor == cal.history[-1]["factor"]
    assert f"rate_factor = {cal.factor:.4g}" in cal.summary()


def test_a_script_without_a_main_guard_is_told_why_before_any_pool_starts(tmp_path):
    (tmp_path / "driver.py").write_text(textwrap.dedent("""
        import neurodepth_lib as nd
        nd.data.generate_dataset("out", cell="iaf", n_trials=4, duration_ms=200, workers=2, progress=False)
        """))
    done = subprocess.run([sys.executable, "driver.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "SpawnGuardError" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr and not (tmp_path / "out").exists()
