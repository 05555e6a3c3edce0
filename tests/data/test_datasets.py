"""Dataset directories (manifest + HDF5 shards), integrity errors, training targets and windows."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib.inputs import InputEvents, InputGroup, InputSettings


# ---------------------------------------------------------------- a toy cell with dendrites (in-process only)

def _toy_settings(condition, cell_params):
    group = InputGroup("all", exc_channels=(0, 1, 2), inh_channels=(3,), exc_total_per_100ms=(20.0, 60.0),
                       inh_minus_exc_per_100ms=(-20.0, 0.0))
    return InputSettings(n_channels=4, groups=(group,), interval_choices_ms=(30, 50),
                         sigma_choices_ms=(25, 40))


def _toy_simulate(events_list, condition, cell_params, simulation, record):
    """Soma: -70 mV plus 5 mV per excitatory event in the last 10 ms; a 'spike' 0.75 ms after every
    channel-0 event; six 'dendritic' traces that are mixtures of two smoothed input drives."""
    out = []
    for ev in events_list:
        x = ev.to_dense(float)
        k = np.ones(10)
        drive = np.stack([np.convolve(x[c], k)[: ev.duration_ms] for c in range(4)])
        soma = -70.0 + 5.0 * drive[:3].sum(0) - 3.0 * drive[3]
        trial = {"soma_1ms": soma, "spike_times_ms": ev.time_ms[ev.channel == 0] + 0.75}
        if "dend_1ms" in record:
            mix = np.array([[1, 0], [2, 0], [0, 1], [0, 3], [1, 1], [1, -1]], float)
            trial["dend_1ms"] = -70.0 + mix @ np.stack([drive[:3].sum(0), drive[3]])
        out.append(trial)
    return out


TOY = nd.cells.CellModel(name="toy", conditions=(None,), describe=lambda c, p: {"toy": 1},
                  input_settings=_toy_settings, simulate=_toy_simulate,
                  simulation_defaults=lambda s: dict(s), recordable=("dend_1ms",), default_trials_per_shard=4)


@pytest.fixture(scope="module")
def iaf_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("iaf") / "ds"
    nd.data.generate_dataset(out, cell="iaf", n_trials=12, duration_ms=1500, seed=7, trials_per_shard=5,
                       workers=0, progress=False)
    return out


@pytest.fixture(scope="module")
def toy_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "ds"
    nd.data.generate_dataset(out, cell=TOY, n_trials=6, duration_ms=900, seed=3, workers=0, progress=False,
                       record_dendrites=True)
    return out


# ---------------------------------------------------------------- format

def test_layout_dtypes_and_round_trip(iaf_ds):
    ds = nd.data.open_dataset(iaf_ds)
    assert len(ds) == 12 and ds.shard_names == ["shard_00000.h5", "shard_00001.h5", "shard_00002.h5"]
    manifest = json.loads((iaf_ds / "manifest.json").read_text())
    assert manifest["complete"] and [s["n_trials"] for s in manifest["shards"]] == [5, 5, 2]
    assert manifest["plan"]["inputs"] == "recipe" and manifest["plan"]["seed"] == 7
    assert manifest["versions"]["numpy"] == np.__version__
    with h5py.File(iaf_ds / "shard_00001.h5", "r") as f:
        # format 2: voltages as whole 0.01-mV steps (tests/data/test_format.py has the details)
        assert f["soma_1ms"].dtype == np.int16 and f["soma_1ms"].shape == (5, 1500)
        assert f["spike_times_ms"].dtype == np.float64
        assert "event_channel" not in f  # generated inputs are stored as their recipe
        assert f["trial_index"][()].tolist() == [5, 6, 7, 8, 9]
    # trial 6 is row 1 of shard 1; its inputs regenerate from the recorded seed
    t = ds.trial(6)
    assert t.shard == "shard_00001.h5" and t.input_seed == nd.data.trial_seed(7, 6)
    from neurodepth_lib.inputs import generate_inputs, iaf_input_settings

    events = generate_inputs(iaf_input_settings(), 1500, nd.data.trial_seed(7, 6))
    assert t.inputs == events
    sim = nd.cells.iaf.simulate(events)
    assert t.soma_1ms.dtype == np.float32
    np.testing.assert_allclose(t.soma_1ms, sim.v_mV[0], rtol=0, atol=0.005 + 1e-5)  # stored to 0.01 mV
    np.testing.assert_array_equal(t.spike_times_ms, np.flatnonzero(sim.spikes[0]))
    counts = ds.spike_counts()
    assert counts[6] == sim.spikes[0].sum() and len(counts) == 12
    assert ds.verify() == {"shards": 3, "trials": 12}


def test_trial_seeds_are_independent_per_dataset_seed():
    seeds = {nd.data.trial_seed(s, i) for s in range(3) for i in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)
    assert nd.data.trial_seed(1, 2) == nd.data.trial_seed(1, 2)


def test_truncated_shard_is_named(iaf_ds, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(iaf_ds, copy)
    path = copy / "shard_00001.h5"
    path.write_bytes(path.read_bytes()[:3000])
    ds = nd.data.open_dataset(copy)
    ds.trial(0)  # other shards still read
    with pytest.raises(nd.data.IntegrityError, match=r"shard_00001\.h5.*truncated"):
        ds.trial(5)


def test_altered_shard_names_shard_and_trial(iaf_ds, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(iaf_ds, copy)
    with h5py.File(copy / "shard_00002.h5", "r+") as f:
        f["soma_1ms"][1, 700] += 1.0  # same size, different bytes: global trial 11
    ds = nd.data.open_dataset(copy)
    with pytest.raises(nd.data.IntegrityError, match=r"shard_00002\.h5.*sha256.*trial 11 "):
        ds.output("soma_1ms", 10)
    with pytest.raises(nd.data.IntegrityError, match=r"shard_00002\.h5"):
        nd.data.open_dataset(copy).verify()


def test_drifted_input_stream_is_a_loud_error(iaf_ds, monkeypatch):
    ds = nd.data.open_dataset(iaf_ds)
    real = nd.viz.widgets.generate_inputs

    def drifted(settings, duration_ms, seed):
        e = real(settings, duration_ms, seed)
        return InputEvents(e.channel[1:], e.time_ms[1:], e.n_channels, e.duration_ms)  # one event lost

    monkeypatch.setattr(nd.data.store, "generate_inputs", drifted)
    with pytest.raises(nd.data.IntegrityError, match=r"shard_00000\.h5, trial 3 .*checksum"):
        ds.inputs(3)


def test_edited_plan_and_incomplete_dataset_are_refused(iaf_ds, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(iaf_ds, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["plan"]["seed"] = 8
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(nd.data.IntegrityError, match="plan was edited"):
        nd.data.open_dataset(copy)
    manifest["plan"]["seed"] = 7
    manifest["shards"][1].update(sha256=None, size_bytes=None, n_spikes=None)
    manifest["complete"] = False
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(nd.data.IntegrityError, match="incomplete"):
        nd.data.open_dataset(copy)
    part = nd.data.open_dataset(copy, allow_incomplete=True)
    assert len(part) == 7 and part.trial_numbers().tolist() == [0, 1, 2, 3, 4, 10, 11]


def test_write_shard_refuses_bad_outputs(tmp_path):
    attrs = {"duration_ms": 10}
    good = {"soma_1ms": np.zeros(10), "spike_times_ms": np.array([1.5])}
    with pytest.raises(ValueError, match="shape"):
        nd.data.write_shard(tmp_path / "s.h5", attrs=attrs, trial_index=[0], input_seed=[0], input_sha256=["0" * 64],
                      outputs=[{"soma_1ms": np.zeros(9), "spike_times_ms": np.zeros(0)}])
    with pytest.raises(ValueError, match="NaN"):
        nd.data.write_shard(tmp_path / "s.h5", attrs=attrs, trial_index=[0], input_seed=[0], input_sha256=["0" * 64],
                      outputs=[{"soma_1ms": np.full(10, np.nan), "spike_times_ms": np.zeros(0)}])
    assert not list(tmp_path.iterdir())  # nothing left behind, not even a temporary file
    entry = nd.data.write_shard(tmp_path / "s.h5", attrs=attrs, trial_index=[0], input_seed=[0],
                          input_sha256=["0" * 64], outputs=[good])
    assert entry["sha256"] == nd._io.file_sha256(tmp_path / "s.h5") and entry["n_spikes"] == [1]


def test_dendrites_are_float16_and_external_events_are_stored(toy_ds, tmp_path):
    ds = nd.data.open_dataset(toy_ds)
    assert "dend_1ms" in ds.outputs
    with h5py.File(toy_ds / ds.shard_names[0], "r") as f:
        assert f["dend_1ms"].dtype == np.float16 and f["dend_1ms"].shape == (4, 6, 900)
    t = ds.trial(2, dendrites=True)
    expected = _toy_simulate([t.inputs], None, {}, {}, ("dend_1ms",))[0]["dend_1ms"]
    assert np.max(np.abs(t.dend_1ms - expected)) < 0.07  # float16 step is 0.0625 mV near -70 mV

    given = [ds.inputs(i) for i in range(3)]
    nd.data.generate_dataset(tmp_path / "ext", cell=TOY, inputs=given, duration_ms=900, workers=0, progress=False)
    ext = nd.data.open_dataset(tmp_path / "ext")
    assert ext.inputs_stored_as == "events" and ext.plan["seed"] is None
    with h5py.File(tmp_path / "ext" / "shard_00000.h5", "r") as f:
        assert f["event_channel"].dtype == np.int32 and (f["input_seed"][()] == -1).all()
    for i in range(3):
        assert ext.inputs(i) == given[i]
        np.testing.assert_array_equal(ext.output("soma_1ms", i), ds.output("soma_1ms", i))


# ---------------------------------------------------------------- targets (paper_facts 1.5, 1.8)

def test_target_rules_follow_the_paper():
    l5 = nd.data.TargetTransform.paper("l5pc", "NMDA")
    assert (l5.soma_clip_mV, l5.soma_bias_mV, l5.n_dend_components, l5.warmup_ms) == (-55.0, -67.7, 20, 500)
    assert nd.data.TargetTransform.paper("l5pc", "AMPA").n_dend_components == 30
    # spike at t goes to bin int(t - 0.5)
    assert l5.spike_bins(np.array([10.3, 10.5, 10.9, 11.5, 0.2]), 100).tolist() == [9, 10, 10, 11, 0]
    v = np.array([-80.0, -67.7, -55.0, -54.0, 30.0])
    np.testing.assert_allclose(l5.soma_target(v), [-12.3, 0.0, 12.7, 12.7, 12.7], atol=1e-5)
    fi = nd.data.TargetTransform.paper("iaf")
    assert fi.soma_clip_mV == -54.9 and fi.soma_bias_mV is None and fi.spike_bin_offset_ms == 0.0
    assert fi.spike_bins(np.array([7.0, 8.0]), 100).tolist() == [7, 8]
    with pytest.raises(ValueError, match="fit_bias"):
        fi.soma_target(v)
    trials = [np.r_[np.full(500, 0.0), np.full(100, -60.0)], np.r_[np.full(500, 0.0), np.full(100, -50.0)]]
    assert fi.fit_bias(trials).soma_bias_mV == pytest.approx((-60.0 - 54.9) / 2)


def test_sampler_windows_follow_the_paper(iaf_ds):
    ds = nd.data.open_dataset(iaf_ds)
    train = np.arange(10)
    s = nd.fit.WindowSampler(ds, trials=train)
    # the I&F bias is the clipped training mean after warm-up
    clipped = np.minimum(np.stack([ds.output("soma_1ms", i) for i in train])[:, 500:].astype(float), -54.9)
    assert s.transform.soma_bias_mV == pytest.approx(clipped.mean(), rel=1e-6)
    # windows [t_end - 400, t_end) with t_end in [500, duration), distinct within a batch (paper_facts 2.2)
    assert s.end_range(400) == (500, 1500)
    rows, ends = s.draw(np.random.default_rng(1), 1000, 400)
    assert len(set(ends)) == 1000 and ends.min() == 500 and ends.max() == 1499
    assert set(rows) == set(range(10))
    rows, ends = s.draw(np.random.default_rng(2), 3000, 400)  # more than the range: with replacement
    assert ends.min() == 500 and ends.max() == 1499
    batch = s.sample(np.random.default_rng(1), 6, 400)
    rows, ends = s.draw(np.random.default_rng(1), 6, 400)
    assert batch["x"].shape == (6, 100, 400) and batch["spikes"].shape == (6, 400)
    assert str(batch["x"].dtype) == "torch.float32" and set(batch) == {"x", "spikes", "soma"}
    for b, (r, e) in enumerate(zip(rows, ends)):
        trial = int(train[r])
        start = e - 400
        dense = ds.inputs(trial).to_dense(np.float32)[:, start:e]
        np.testing.assert_array_equal(batch["x"][b].numpy(), dense)
        v = ds.output("soma_1ms", trial)[start:e]
        np.testing.assert_allclose(batch["soma"][b].numpy(), np.minimum(v, -54.9) - s.transform.soma_bias_mV,
                                   atol=1e-5)
        spikes = np.zeros(400)
        times = ds.spike_times(trial)
        inside = times[(times >= start) & (times < e)]
        spikes[(inside - start).astype(int)] = 1  # I&F spikes sit on the grid: bin = t
        np.testing.assert_array_equal(batch["spikes"][b].numpy(), spikes)
    # a validation sampler reuses the training bias
    valid = nd.fit.WindowSampler(ds, trials=[10, 11], transform=s.transform)
    assert valid.transform.soma_bias_mV == s.transform.soma_bias_mV
    full = valid.full_trial(1)
    assert full["x"].shape == (1, 100, 1500) and full["trial"] == 11
    assert full["spikes"].sum().item() == len(ds.spike_times(11))
    item = s[3]
    assert item["x"].shape == (100, 400) and len(s) == 10
    np.testing.assert_array_equal(s[3]["soma"].numpy(), item["soma"].numpy())  # deterministic per index
    with pytest.raises(ValueError, match="window_ms"):
        s.sample(np.random.default_rng(0), 2, 1500)


def test_spike_bins_of_l5pc_times_in_windows(toy_ds):
    ds = nd.data.open_dataset(toy_ds)
    transform = nd.data.TargetTransform(soma_bias_mV=-67.7, warmup_ms=100)
    s = nd.fit.WindowSampler(ds, transform=transform)
    out = s.windows([0], [900], 900)
    times = ds.spike_times(0)  # event time + 0.75 -> bin int(t - 0.5) = event time
    expected = np.zeros(900)
    expected[np.trunc(times - 0.5).astype(int)] = 1
    np.testing.assert_array_equal(out["spikes"][0], expected)
    np.testing.assert_array_equal(np.flatnonzero(out["spikes"][0]),
                                  np.unique(ds.inputs(0).time_ms[ds.inputs(0).channel == 0]))


def test_dendritic_pca_targets(toy_ds, tmp_path):
    ds = nd.data.open_dataset(toy_ds)
    transform = nd.data.TargetTransform(soma_bias_mV=-67.7, warmup_ms=100, n_dend_components=2)
    s = nd.fit.WindowSampler(ds, transform=transform, dendritic=True, cache_path=tmp_path / "cache.h5")
    pca = s.pca
    assert pca.n_components == 2
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(2), atol=1e-8)
    # whitened on the training samples after warm-up: zero mean, unit variance (before the +-3 clip)
    z = np.concatenate([(pca.components @ (np.minimum(ds.output("dend_1ms", i).astype(float)[:, 100:], 2.0)
                                           - pca.mean[:, None])) / pca.scale[:, None] for i in range(len(ds))],
                       axis=1)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=1), 1, rtol=1e-6)
    # the toy traces are rank 2: two components explain everything
    batch = s.sample(np.random.default_rng(0), 3, 200)
    assert batch["dendritic"].shape == (3, 2, 200) and float(batch["dendritic"].abs().max()) <= 3.0
    assert (tmp_path / "cache.h5").exists()
    again = nd.fit.WindowSampler(ds, transform=transform, dendritic=True, pca=pca, cache_path=tmp_path / "cache.h5")
    np.testing.assert_array_equal(again.windows([1], [500], 200)["x"], s.windows([1], [500], 200)["x"])
    assert again.windows([1], [500], 200)["x"].sum() > 0
    restored = nd.data.WhitenedPCA.from_dict(json.loads(json.dumps(pca.to_dict())))
    np.testing.assert_allclose(restored.transform(ds.output("dend_1ms", 0)), pca.transform(ds.output("dend_1ms", 0)))
    with pytest.raises(ValueError, match="no dendritic"):
        nd.fit.WindowSampler(_no_dend(tmp_path), transform=transform, dendritic=True)


def _no_dend(tmp_path):
    out = tmp_path / "nodend"
    nd.data.generate_dataset(out, cell=TOY, n_trials=2, duration_ms=700, seed=1, workers=0, progress=False)
    return nd.data.TrialDataset(out)


def test_datasets_imports_without_torch():
    import subprocess
    import sys

    # torch is hidden as if not installed (a finder that refuses it: scipy, which the data layer imports, does
    # not accept a None entry in sys.modules)
    code = ("import importlib.abc, sys\n"
            "class NoTorch(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ModuleNotFoundError(f'No module named {name!r} (hidden by the test)')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import neurodepth_lib.data, neurodepth_lib.data.generation\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parallel_materialisation_gives_the_same_events(iaf_ds):
    ds = nd.data.open_dataset(iaf_ds)
    serial = nd.data.materialise_inputs(ds, range(12))
    parallel = nd.data.materialise_inputs(ds, range(12), workers=2)
    assert serial == parallel and all(e.n_events > 0 for e in serial)
