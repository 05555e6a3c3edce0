"""Parallel, resumable, byte-reproducible generation; argument checks; the command line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodepth_lib import cli
import neurodepth_lib as nd
from neurodepth_lib.inputs import iaf_input_settings


def shard_bytes(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("shard_*.h5"))}


def byte_differences(runs: dict) -> list[str]:
    """Where the shards of several runs (``{run: shard_bytes(...)}``) differ from the first run's: file, run,
    sizes and the first differing byte offsets (a failure then says where to look)."""
    (first, ref), out = next(iter(runs.items())), []
    for run, shards in runs.items():
        for name in sorted(set(ref) | set(shards)):
            x, y = ref.get(name, b""), shards.get(name, b"")
            if x != y:
                offsets = [i for i in range(min(len(x), len(y))) if x[i] != y[i]][:8]
                out.append(f"{name}: {run} differs from {first} (sizes {len(y)} vs {len(x)}; first differing "
                           f"byte offsets {offsets})")
    return out


@pytest.fixture
def no_simulation(monkeypatch):
    """Make any simulation (in this process) fail loudly."""
    def boom(*a, **k):
        raise AssertionError("a simulation ran")

    monkeypatch.setattr(nd.data.generation, "run_shard", boom)
    monkeypatch.setattr(nd.cells.iaf, "_iaf_simulate", boom)
    monkeypatch.setitem(nd.cells.CELLS, "iaf", nd.cells.CellModel(**{**nd.cells.iaf.IAF_MODEL.__dict__, "simulate": boom}))
    monkeypatch.setitem(nd.cells.CELLS, "l5pc", nd.cells.CellModel(**{**nd.cells.neuron_adapter.L5PC_MODEL.__dict__, "simulate": boom}))


# ---------------------------------------------------------------- wrong parameters fail first

@pytest.mark.parametrize("kwargs, message", [
    (dict(cell="purkinje"), "unknown cell 'purkinje'"),
    (dict(cell="iaf", condition="NMDA"), "unknown condition 'NMDA' for cell 'iaf'"),
    (dict(cell="l5pc", condition="GABA_B"), "unknown condition 'GABA_B' for cell 'l5pc'"),
    (dict(n_trials=0), "n_trials must be a positive whole number, got 0"),
    (dict(n_trials=2.5), "n_trials"),
    (dict(cell="l5pc", n_trials=0), "n_trials"),
    (dict(duration_ms=-100), "duration_ms must be a positive whole number, got -100"),
    (dict(cell="l5pc", duration_ms=0), "duration_ms"),
    (dict(seed=-1), "seed must be a non-negative integer"),
    (dict(trials_per_shard=0), "trials_per_shard"),
    (dict(workers=-2), "workers must be a non-negative integer"),
    (dict(record_dendrites=True), "I&F neuron has no dendrites"),
    (dict(cell_params={"tau_ms": -5.0}), "tau_ms must be positive"),
    (dict(cell_params={"tau": 5.0}), "unknown I&F parameter"),
    (dict(cell="l5pc", simulation={"dt": 0.1}), "unknown simulation parameter"),
    (dict(cell="l5pc", simulation={"dt_ms": -0.1}), "dt_ms must be positive"),
    (dict(cell="l5pc", simulation={"secondorder": 3}), "secondorder must be 0"),
])
def test_wrong_parameters_fail_before_any_simulation(tmp_path, no_simulation, kwargs, message):
    args = dict(cell="iaf", n_trials=4, duration_ms=500, seed=0, workers=0, progress=False)
    args.update(kwargs)
    out = tmp_path / "ds"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        nd.data.generate_dataset(out, **args)
    assert not out.exists()  # not even the directory was made


def test_negative_rates_fail_before_any_simulation(tmp_path, no_simulation):
    settings = iaf_input_settings().to_dict()
    settings["groups"][0]["exc_total_per_100ms"] = [-10.0, 50.0]
    with pytest.raises(ValueError, match="excitatory rates must be non-negative"):
        nd.data.generate_dataset(tmp_path / "ds", cell="iaf", n_trials=2, duration_ms=500,
                           input_settings=settings, workers=0, progress=False)
    settings["groups"][0]["exc_total_per_100ms"] = [0.0, 10.0]
    settings["groups"][0]["inh_minus_exc_per_100ms"] = [-50.0, -20.0]  # I always < 0
    with pytest.raises(ValueError, match="inhibitory rates would always be negative"):
        nd.data.generate_dataset(tmp_path / "ds", cell="iaf", n_trials=2, duration_ms=500,
                           input_settings=settings, workers=0, progress=False)
    assert not (tmp_path / "ds").exists()


def test_a_different_plan_in_the_same_directory_is_refused(tmp_path):
    nd.data.generate_dataset(tmp_path / "ds", cell="iaf", n_trials=3, duration_ms=600, seed=1, workers=0,
                       progress=False)
    with pytest.raises(ValueError, match="different dataset.*seed"):
        nd.data.generate_dataset(tmp_path / "ds", cell="iaf", n_trials=3, duration_ms=600, seed=2, workers=0,
                           progress=False)


# ---------------------------------------------------------------- same seeds, same bytes, any executor

def test_byte_identical_shards_with_process_pool_dask_and_in_process(tmp_path):
    from distributed import Client, LocalCluster

    kw = dict(cell="iaf", n_trials=9, duration_ms=1200, seed=11, trials_per_shard=4, progress=False)
    ref = nd.data.generate_dataset(tmp_path / "inproc", workers=0, **kw)
    time.sleep(1.1)  # any timestamp in the files would now differ
    pool = nd.data.generate_dataset(tmp_path / "pool", workers=2, **kw)
    assert pool.executor.startswith("process pool") and pool.shards_written == 3
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask = nd.data.generate_dataset(tmp_path / "dask", client=client, **kw)
    assert dask.executor == "dask" and dask.shards_written == 3
    runs = {d: shard_bytes(tmp_path / d) for d in ("inproc", "pool", "dask")}
    assert list(runs["inproc"]) == ["shard_00000.h5", "shard_00001.h5", "shard_00002.h5"]
    assert not byte_differences(runs), byte_differences(runs)
    manifests = [(tmp_path / d / "manifest.json").read_bytes() for d in ("inproc", "pool", "dask")]
    assert manifests[0] == manifests[1] == manifests[2]
    assert ref.open().verify() == {"shards": 3, "trials": 9}
    # a different seed gives different data
    other = nd.data.generate_dataset(tmp_path / "other", workers=0, **{**kw, "seed": 12})
    assert shard_bytes(other.path)["shard_00000.h5"] != runs["inproc"]["shard_00000.h5"]


def test_the_bytes_do_not_depend_on_who_else_holds_an_h5py_handle(tmp_path, monkeypatch):
    """HDF5 places a compressed chunk when its dataset closes. Dask's worker profiler (it samples the running
    task's frames every 10 ms), a debugger or a traceback can hold the frame of an h5py call after it returned,
    and the dataset handle in it: a one-trial shard's soma chunk (its only chunk) then moved behind the
    datasets written next, and the test above failed once that way. The writer closes every dataset itself, so
    a handle held elsewhere changes no byte. Here every Dataset and Group h5py hands out is kept alive."""
    kw = dict(cell="iaf", n_trials=5, duration_ms=600, seed=3, trials_per_shard=4, workers=0, progress=False)
    nd.data.generate_dataset(tmp_path / "plain", **kw)
    held = []
    for name in ("create_dataset", "__getitem__"):
        def holding(self, *args, _original=getattr(h5py.Group, name), **kwargs):
            obj = _original(self, *args, **kwargs)
            held.append(obj)
            return obj

        monkeypatch.setattr(h5py.Group, name, holding)
    nd.data.generate_dataset(tmp_path / "held", **kw)
    monkeypatch.undo()
    assert len(held) >= 2 * 8, "the writer's handles were not held: this test would test nothing"
    runs = {d: shard_bytes(tmp_path / d) for d in ("plain", "held")}
    assert [nd.data.shards.read_shard_attrs(tmp_path / "plain" / s)["n_trials"] for s in runs["plain"]] == [4, 1]
    assert not byte_differences(runs), byte_differences(runs)


# ---------------------------------------------------------------- kill -9, rerun, nothing lost or doubled

SLOW_CELL = textwrap.dedent('''
    """A slow I&F for the kill test: 0.15 s of 'simulation' per trial."""
    import time
    import neurodepth_lib as nd
    def simulate(events_list, condition, cell_params, simulation, record):
        time.sleep(0.15 * len(events_list))
        return nd.cells.iaf._iaf_simulate(events_list, condition, cell_params, simulation, record)

    MODEL = nd.cells.CellModel(**{**nd.cells.iaf.IAF_MODEL.__dict__, "name": "slow_iaf", "simulate": simulate})

    def run(out, workers):
        return nd.data.generate_dataset(out, cell=MODEL, n_trials=24, duration_ms=800, seed=5,
                                  trials_per_shard=2, workers=workers, progress=False)
''')


def test_kill_minus_9_then_rerun_completes_without_loss_or_duplicates(tmp_path, monkeypatch):
    (tmp_path / "slowcell.py").write_text(SLOW_CELL)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-c", f"import slowcell; slowcell.run({str(out)!r}, 2)"],
                            env=env, start_new_session=True)
    try:
        # no deadline (a busy machine is slow, not wrong): the run ends on its own after 12 shards
        while not list(out.glob("shard_*.h5")) and proc.poll() is None:
            time.sleep(0.05)
        assert list(out.glob("shard_*.h5")), "no shard appeared"
        os.kill(proc.pid, signal.SIGKILL)  # the run's main process, as `kill -9` would
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its orphaned workers (same session we started)
        except ProcessLookupError:
            pass
    time.sleep(0.3)
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = [s["name"] for s in manifest["shards"] if s["sha256"]]
    present = sorted(p.name for p in out.glob("shard_*.h5"))  # renamed into place = complete
    assert not manifest["complete"] and set(recorded) <= set(present) and 1 <= len(present) < 12, present

    import slowcell

    report = slowcell.run(out, 0)  # rerun the same call (in this process)
    # every complete shard is kept (recorded ones, and any renamed just before the kill); the rest is made
    assert report.shards_skipped == len(present) and report.shards_written == 12 - len(present)
    assert not list(out.glob(".shard_*.tmp"))
    ds = nd.data.open_dataset(out)
    assert ds.verify() == {"shards": 12, "trials": 24}  # every shard sha256 and input checksum
    assert ds.trial_numbers().tolist() == list(range(24))  # no trial lost, none twice
    seeds = [ds.trial(i).input_seed for i in range(24)]
    assert seeds == [nd.data.trial_seed(5, i) for i in range(24)]
    # and the result is exactly what an uninterrupted run makes
    ref = nd.data.generate_dataset(tmp_path / "ref", cell=slowcell.MODEL, n_trials=24, duration_ms=800, seed=5,
                             trials_per_shard=2, workers=0, progress=False)
    assert shard_bytes(out) == shard_bytes(ref.path)


FLAKY_CELL = textwrap.dedent('''
    """An I&F that crashes (like a NEURON error) on trials whose input count is divisible by 3,
    when FLAKY_FAIL is set."""
    import os
    import neurodepth_lib as nd
    def simulate(events_list, condition, cell_params, simulation, record):
        if os.environ.get("FLAKY_FAIL") and any(e.n_events % 3 == 0 for e in events_list):
            raise FloatingPointError("simulated crash")
        return nd.cells.iaf._iaf_simulate(events_list, condition, cell_params, simulation, record)

    MODEL = nd.cells.CellModel(**{**nd.cells.iaf.IAF_MODEL.__dict__, "name": "flaky_iaf", "simulate": simulate})
''')


def test_a_failing_shard_is_named_and_the_rest_is_kept(tmp_path, monkeypatch):
    (tmp_path / "flakycell.py").write_text(FLAKY_CELL)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("FLAKY_FAIL", "1")
    import flakycell

    kw = dict(cell=flakycell.MODEL, n_trials=8, duration_ms=600, seed=1, trials_per_shard=1, progress=False)
    with pytest.raises(RuntimeError, match=r"generating shard_\d{5}\.h5 failed: simulated crash"):
        nd.data.generate_dataset(tmp_path / "ds", workers=2, **kw)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert not manifest["complete"]
    monkeypatch.delenv("FLAKY_FAIL")
    report = nd.data.generate_dataset(tmp_path / "ds", workers=0, **kw)
    assert report.shards_written >= 1 and report.open().verify() == {"shards": 8, "trials": 8}


def test_rerun_adopts_a_shard_renamed_before_the_manifest_was_updated(tmp_path, monkeypatch):
    kw = dict(cell="iaf", n_trials=6, duration_ms=700, seed=2, trials_per_shard=2, workers=0, progress=False)
    nd.data.generate_dataset(tmp_path / "ds", **kw)
    path = tmp_path / "ds" / "manifest.json"
    original = path.read_bytes()
    manifest = json.loads(original)
    manifest["shards"][1].update(sha256=None, size_bytes=None, n_spikes=None)
    manifest["complete"] = False
    path.write_text(json.dumps(manifest))
    (tmp_path / "ds" / ".shard_00002.h5.123.deadbeef.tmp").write_bytes(b"half a shard")
    monkeypatch.setattr(nd.data.generation, "run_shard", lambda task: pytest.fail("nothing should be simulated"))
    report = nd.data.generate_dataset(tmp_path / "ds", **kw)
    assert report.shards_skipped == 3 and report.shards_written == 0
    assert path.read_bytes() == original
    assert not list((tmp_path / "ds").glob(".shard_*"))


def test_a_damaged_finished_shard_is_made_again(tmp_path):
    kw = dict(cell="iaf", n_trials=4, duration_ms=700, seed=2, trials_per_shard=2, workers=0, progress=False)
    nd.data.generate_dataset(tmp_path / "ds", **kw)
    good = shard_bytes(tmp_path / "ds")
    (tmp_path / "ds" / "shard_00001.h5").write_bytes(good["shard_00001.h5"][:-10])
    report = nd.data.generate_dataset(tmp_path / "ds", **kw)
    assert report.shards_written == 1 and shard_bytes(tmp_path / "ds") == good


# ---------------------------------------------------------------- command line

def test_cli_generate_prints_where_and_what(tmp_path, capsys):
    out = tmp_path / "cli_ds"
    code = cli.main(["generate", "--cell", "iaf", "--trials", "5", "--duration-ms", "1000", "--seed", "4",
                     "--out", str(out), "--workers", "0", "--trials-per-shard", "2", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0
    assert str(out) in text and "5 trials x 1000 ms in 3 shards" in text and "Hz" in text and "MB" in text
    ds = nd.data.open_dataset(out)
    rate = ds.spike_counts().mean()  # spikes per 1-s trial = Hz
    assert f"output rate {rate:.2f}" in text
    code = cli.main(["generate", "--cell", "iaf", "--trials", "5", "--duration-ms", "1000", "--seed", "4",
                     "--out", str(out), "--workers", "0", "--trials-per-shard", "2", "--no-progress"])
    assert code == 0 and "0 shards made, 3 already there" in capsys.readouterr().out


def test_cli_scheduler_address_runs_on_that_cluster(tmp_path, capsys):
    from distributed import LocalCluster

    args = ["generate", "--cell", "iaf", "--trials", "4", "--duration-ms", "800", "--seed", "9",
            "--trials-per-shard", "2", "--no-progress"]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert cli.main(args + ["--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address]) == 0
    assert "on dask" in capsys.readouterr().out
    assert cli.main(args + ["--out", str(tmp_path / "local"), "--workers", "0"]) == 0
    assert shard_bytes(tmp_path / "dask") == shard_bytes(tmp_path / "local")


def test_cli_bad_arguments_exit_2_with_a_message(tmp_path, capsys):
    code = cli.main(["generate", "--cell", "iaf", "--trials", "0", "--out", str(tmp_path / "x"),
                     "--no-progress"])
    assert code == 2 and "n_trials must be a positive whole number" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # argparse: --trials and --out are required; one line, exit 2, no usage block
    assert cli.main(["generate", "--cell", "iaf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neurodepth generate: error: the following arguments are required") and "\n" not in err


# ---------------------------------------------------------------- the L5PC through NEURON

@pytest.mark.neuron
def test_l5pc_short_trials_match_a_direct_simulation(tmp_path):
    from neurodepth_lib.cells import L5PC

    from neuron import h

    mine = L5PC("AMPA")  # a cell the user holds (only one L5PC can live in a process)
    report = nd.data.generate_dataset(tmp_path / "l5", cell="l5pc", condition="NMDA", n_trials=2, duration_ms=150,
                                seed=3, workers=0, progress=False)
    assert h.secondorder == 0  # the pipeline's Crank-Nicolson setting does not leak out of it
    assert mine._alive and mine.condition == "AMPA"  # reused, not destroyed, and handed back as it was
    ds = report.open()
    assert ds.outputs == ("soma_1ms", "spike_times_ms", "nexus_1ms")
    assert ds.n_channels == 1278
    assert ds.plan["simulation"]["dt_ms"] == 0.05 and ds.plan["simulation"]["secondorder"] == 2
    assert ds.plan["cell_params"]["morphology"]["name"] == "hay2011_cell1.asc"
    events = ds.inputs(1)
    assert events.n_events > 0
    h.secondorder = 2
    try:
        direct = nd.cells.simulation.simulate_trial(mine, events, condition="NMDA", dt_ms=0.05)
    finally:
        h.secondorder = 0
    # stored to 0.01 mV (dataset format 2): within half a step of the direct simulation
    np.testing.assert_allclose(ds.output("soma_1ms", 1), direct.v_soma_1ms, rtol=0, atol=0.005 + 1e-4)
    np.testing.assert_allclose(ds.output("nexus_1ms", 1), direct.v_nexus_1ms, rtol=0, atol=0.005 + 1e-4)
    np.testing.assert_array_equal(ds.spike_times(1), direct.spike_times_ms)
    v = ds.output("soma_1ms", 0)
    assert -95 < v.min() and v[:5].mean() == pytest.approx(-76, abs=3)  # starts from v_init
    # NEURON integrates every live section: a 640-compartment cell left alive would be simulated with every
    # trial of the small cells later tests build (the published-cell study took 318 s instead of 7)
    mine.destroy()
