"""Our mechanisms are two libraries, the paper's synapses and the Hay channels, and each cell loads only what it
declares: a published model whose own .mod file reuses a Hay channel's name with other contents (as the Hay
model's files from ModelDB do) works in a fresh process, and in a process holding our Hay channels it is a
clear error saying what to do; the reverse order too.

NEURON cannot unload a library, so every test that loads the model's ``Ih`` runs in a subprocess of its own
(the fixture ``fixtures/hay_named``: a hoc template and mod/Ih.mod, a leak under the name ``Ih``).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("neuron")

import neurodepth_lib as nd  # noqa: E402
from neurodepth_lib.cells import mechanisms  # noqa: E402

pytestmark = pytest.mark.neuron

SPEC = Path(__file__).parent / "fixtures" / "hay_named" / "cell.toml"


def _run(script: str, cwd: Path, timeout: int = 600) -> dict:
    """Run ``script`` in a fresh Python process; it prints one JSON line starting with ``RESULT``."""
    path = cwd / "script.py"
    path.write_text(textwrap.dedent(script))
    done = subprocess.run([sys.executable, str(path)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_the_libraries_split_our_mod_folder_and_each_cell_declares_its_own():
    names = {f.name for f in mechanisms.MOD_DIR.glob("*.mod")}
    syn, hay = (set(mechanisms.LIBRARIES[k]) for k in (mechanisms.SYNAPSES, mechanisms.HAY_CHANNELS))
    assert syn | hay == names and not syn & hay
    assert set(mechanisms.mechanism_names(library="synapses")) == {"SynAmpa", "SynAmpaNmda", "SynGabaA"}
    assert {"Ih", "NaTa_t", "CaDynamics_E2", "SK_E2"} <= set(mechanisms.mechanism_names(library="hay_channels"))
    assert nd.cells.L5PC.mechanisms == nd.cells.TeachingCell.mechanisms == ("hay_channels", "synapses")
    assert nd.cells.SynapticCell.mechanisms == ("synapses",)
    with pytest.raises(ValueError, match="unknown mechanism library 'hay'"):
        mechanisms.ensure_mechanisms(libraries="hay")
    with pytest.raises(ValueError, match="names of our libraries .* or directories of .mod files"):
        mechanisms.ensure_cell_mechanisms(["no such library"])


def test_a_model_reusing_a_hay_name_works_in_a_fresh_process_and_blocks_the_l5pc_after(tmp_path):
    # (1) a fresh process: the model's Ih is loaded beside our synapses, never our Hay channels; a short trial
    # with the paper's synapses runs, and so does generation in a spawn worker (a fresh process of its own);
    # (reverse order) an L5PC built afterwards is a clear error
    result = _run(f"""
        import json
        import numpy as np
        import neurodepth_lib as nd
        from neurodepth_lib.cells import mechanisms
        from neurodepth_lib.cells.simulation import simulate_trial
        from neuron import h

        if __name__ == "__main__":
            model = nd.cells.load_spec({str(SPEC)!r})
            cell = nd.cells.published.build_cell(model, "NMDA")
            n = cell.n_segments
            events = (np.r_[np.zeros(40, int), np.arange(n)], np.r_[np.linspace(10, 30, 40), np.full(n, 50.0)])
            trial = simulate_trial(cell, events, duration_ms=150, v_init_mV=-65.0)
            loaded = mechanisms.loaded_mechanisms()
            out = {{"mechanisms": list(cell.mechanisms), "n_segments": n, "spikes": trial.n_spikes,
                    "v_max": float(trial.v_soma_1ms.max()), "v_rest": float(trial.v_soma_1ms[5]),
                    "ih_owner": loaded["Ih"][0], "has_NaTa_t": hasattr(h, "NaTa_t") or "NaTa_t" in loaded,
                    "gleak": cell.dendritic_segments[0].Ih.gleak, "synapse": cell.synapses[0].hname(),
                    "soma": cell.soma.name().split(".")[-1]}}
            report = nd.data.generate_dataset("data", cell=model, condition="NMDA", n_trials=2, duration_ms=100,
                                              trials_per_shard=1, workers=1, progress=False)
            out["executor"], out["trials"] = report.executor, len(report.open())
            try:
                nd.cells.L5PC("NMDA")
                out["l5pc"] = "built"
            except mechanisms.MechanismClashError as err:
                out["l5pc"] = str(err)
            print("RESULT", json.dumps(out))
        """, tmp_path)
    assert result["mechanisms"][0] == "synapses" and result["mechanisms"][1].endswith("hay_named/mod")
    assert result["n_segments"] == 2 * 3 + 5 + 3 and result["synapse"].startswith("SynAmpaNmda")
    assert result["ih_owner"].startswith("the model's mechanisms in") and result["gleak"] == pytest.approx(5e-5)
    assert not result["has_NaTa_t"]                      # our Hay channels were never loaded
    assert result["soma"] == "soma[0]"                   # the spec's default soma="soma" finds a template's soma[0]
    assert -66 < result["v_rest"] < -63                  # starts at v_init, the model's leak holds it there
    assert result["v_max"] > 0 and result["spikes"] >= 1  # the paper's synapses drive the hh soma to fire
    assert "spawn" in result["executor"] and result["trials"] == 2
    message = result["l5pc"]
    assert "declares the mechanism 'Ih'" in message and "the model's mechanisms in" in message
    assert "neurodepth's Hay channels are needed by the L5PC and the teaching cell" in message
    assert "fresh Python process" in message and "workers" in message


def test_after_an_l5pc_the_model_is_a_clear_error(tmp_path):
    # (2) a process that built an L5PC holds our Hay channels: the model's Ih is refused before anything is
    # compiled, naming both sides and the way out; the L5PC is untouched
    result = _run(f"""
        import json
        import neurodepth_lib as nd
        from neurodepth_lib.cells import mechanisms

        l5pc = nd.cells.L5PC("NMDA")
        model = nd.cells.load_spec({str(SPEC)!r})
        out = {{}}
        try:
            nd.cells.published.build_cell(model)
            out["error"] = None
        except mechanisms.MechanismClashError as err:
            out["error"], out["is_value_error"] = str(err), isinstance(err, ValueError)
        out["l5pc_segments"] = l5pc.n_segments
        out["ih_owner"] = mechanisms.loaded_mechanisms()["Ih"][0]
        print("RESULT", json.dumps(out))
        """, tmp_path)
    message = result["error"]
    assert message is not None and result["is_value_error"]  # the command line reports it in one line
    assert "hay_named/mod/Ih.mod declares the mechanism 'Ih'" in message
    assert "neurodepth's Hay channels (Ih.mod in" in message and "with other contents" in message
    assert "because an L5PC or a TeachingCell was built here" in message
    assert "fresh Python process" in message and "spawn pool, Dask workers" in message
    assert result["l5pc_segments"] == 639 and result["ih_owner"] == "neurodepth's Hay channels"


def test_a_cell_that_inserts_a_channel_it_did_not_declare_is_told_what_to_declare(tmp_path):
    # a user's SynapticCell that inserts our NaTa_t but declares only the synapses: NEURON's own message names
    # no mechanism, so the library adds what to declare (a fresh process: this one may hold the Hay channels)
    result = _run("""
        import json
        import neurodepth_lib as nd
        from neurodepth_lib.cells.mechanisms import import_neuron

        h = import_neuron()

        class MyCell(nd.cells.SynapticCell):
            def _build(self):
                self.soma = h.Section(name="soma")
                self.soma.insert("NaTa_t")

        try:
            MyCell("NMDA")
            out = {"error": None}
        except ValueError as err:
            out = {"error": str(err), "live": MyCell.live() is not None}
        print("RESULT", json.dumps(out))
        """, tmp_path)
    assert result["error"] is not None and not result["live"]
    assert "not a density mechanism name" in result["error"]
    assert "MyCell.mechanisms declares ('synapses',)" in result["error"]
    assert "('hay_channels', 'synapses')" in result["error"]
