"""Out-of-distribution inputs: nd.inputs.ood and the settings that switch them on."""
import dataclasses

import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib import inputs
from neurodepth_lib.inputs import InputGroup, InputSettings, generate_inputs


def _toy_tree(n_segments=120, seed=0):
    """A toy cell: two trees of segments scattered in 3-D in 12 well-separated blobs, the paper's NMDA rates."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-500, 500, size=(12, 3))
    blob = np.arange(n_segments) % 12
    xyz = centres[blob] + rng.normal(0, 5, size=(n_segments, 3))
    seg = np.arange(n_segments)
    half = n_segments // 2
    base = inputs.tree_input_settings({"basal": (seg[:half], np.full(half, 20.0)),
                                       "apical": (seg[half:], np.full(n_segments - half, 20.0))}, "NMDA")
    return base, xyz, blob


def test_kmeans_finds_well_separated_clusters_and_is_deterministic():
    _, xyz, blob = _toy_tree()
    labels = inputs.kmeans_labels(xyz, 12)
    assert np.array_equal(labels, inputs.kmeans_labels(xyz, 12))
    # the same partition as the blobs (up to the numbering), numbered by first appearance
    assert len({(a, b) for a, b in zip(labels, blob)}) == 12
    assert labels[0] == 0 and np.all(np.diff(np.unique(labels, return_index=True)[1]) > 0)
    with pytest.raises(ValueError, match="k must be"):
        inputs.kmeans_labels(xyz, 0)


def _clustered_toy(**options):
    base, xyz, _ = _toy_tree()
    clusters = inputs.segment_clusters(inputs.kmeans_labels(xyz, 12), base.n_channels)
    return base, inputs.ood_settings(base, "clustered", clusters=clusters, **options)


def test_clustered_input_reaches_only_a_few_chosen_clusters():
    _, s = _clustered_toy()
    assert s.ood.max_active_clusters == 3  # floor(0.3 x 12)
    counts = set()
    for seed in range(40):
        ev, d = generate_inputs(s, 3000, seed, return_details=True)
        active = d.ood["active_clusters"]
        counts.add(len(active))
        allowed = np.zeros(s.n_channels, dtype=bool)
        allowed[[c for k in active for c in s.ood.clusters[k]]] = True
        assert allowed[ev.channel].all()                      # no event outside the chosen clusters
        assert (d.rate_per_ms[~allowed] == 0).all()
        # every chosen cluster is driven (some excitatory event on it)
        assert all(np.isin(s.ood.clusters[k], ev.channel).any() for k in active)
    assert counts == {1, 2, 3}                                # 1 .. 30 % of the 12 clusters, all drawn


def test_clustered_input_keeps_each_trees_total():
    """Only space changes: a tree's total rate per interval is the training trial's, shared by fewer synapses."""
    base, s = _clustered_toy()
    base = dataclasses.replace(base, noise_range=(1.0, 1.0))
    s = dataclasses.replace(s, noise_range=(1.0, 1.0))
    for seed in range(5):
        _, d0 = generate_inputs(base, 2000, seed, return_details=True)
        _, d = generate_inputs(s, 2000, seed, return_details=True)
        for g in s.groups:
            exc = list(g.exc_channels)
            if d.rate_per_ms[exc].sum() > 0:                  # a tree with an active cluster
                assert d.rate_per_ms[exc].sum(axis=0) == pytest.approx(d0.rate_per_ms[exc].sum(axis=0), rel=1e-4)


def test_synchronous_input_oscillates_at_the_drawn_period():
    group = InputGroup("g", exc_channels=tuple(range(200)), inh_channels=(),
                       exc_total_per_100ms=(2000.0, 2000.0), inh_minus_exc_per_100ms=(0, 0))
    base = InputSettings(n_channels=200, groups=(group,), interval_choices_ms=(50,), sigma_choices_ms=(25,),
                         noise_range=(1.0, 1.0))
    s = inputs.ood_settings(base, "synchronous")
    duration = 6000
    periods = []
    for seed in range(6):
        ev, d = generate_inputs(s, duration, seed, return_details=True)
        period = d.ood["sync_period_ms"]
        periods.append(period)
        assert 15 <= period <= 300
        count = np.bincount(ev.time_ms, minlength=duration)[200:-200].astype(float)  # events per ms, all channels
        power = np.abs(np.fft.rfft(count - count.mean())) ** 2
        freq = np.fft.rfftfreq(count.size, d=1.0)                                   # cycles per ms
        assert abs(freq[np.argmax(power)] - 1 / period) <= 1.5 / count.size          # the peak is 1 / period
        # the mean stays the training one (2000 per 100 ms = 20 per ms)
        assert count.mean() == pytest.approx(20.0, rel=0.1)
        # depth 1: the sinusoid adds the variance of 20 x sin, 20**2 / 2 = 200 (events per ms)**2, to the
        # training trial's counting noise
        base_count = np.bincount(generate_inputs(base, duration, seed).time_ms, minlength=duration)[200:-200]
        assert np.var(count) - np.var(base_count) == pytest.approx(200.0, rel=0.15)
    assert len(set(np.round(periods))) == len(periods)        # a new period per trial


def test_no_inhibition_silences_inhibition_and_keeps_excitation():
    base, _, _ = _toy_tree()
    s = inputs.ood_settings(base, "no_inhibition")
    inh = [c for g in s.groups for c in g.inh_channels]
    for seed in range(5):
        ev = generate_inputs(s, 3000, seed)
        train = generate_inputs(base, 3000, seed)
        assert not np.isin(ev.channel, inh).any()
        assert np.isin(train.channel, inh).any()
        # the excitatory events are exactly the training trial's (the same draws, only inhibition removed)
        keep = ~np.isin(train.channel, inh)
        assert np.array_equal(ev.channel, train.channel[keep]) and np.array_equal(ev.time_ms, train.time_ms[keep])


def test_high_rates_lie_above_the_training_range():
    base, _, _ = _toy_tree()
    s = inputs.ood_settings(base, "high_rate")
    rates = []
    for seed in range(20):
        ev, d = generate_inputs(s, 6000, seed, return_details=True)
        for g in s.groups:
            exc, inh = d.coarse_totals_per_100ms[g.name]
            assert exc.min() >= 800 and exc.max() <= 1200                 # NMDA training max 800, x (1, 1.5)
            assert np.all(inh <= exc + 200 + 1e-9)                         # the training rule on the new E
        dense = ev.to_dense()[:, 1000:-1000]
        rates.append(dense[[c for g in s.groups for c in g.exc_channels]].sum(axis=0).mean())
    # events per ms on both trees: mean 2 x 1000 / 100 = 20, above the training maximum's 2 x 800 / 100 = 16
    assert np.mean(rates) == pytest.approx(20.0, rel=0.05)
    assert min(rates) > 16.0


def test_ood_settings_round_trip_and_reproduce():
    base, s = _clustered_toy()
    s = inputs.ood_settings(base, ("synchronous", "clustered", "no_inhibition"), clusters=s.ood.clusters)
    assert s.ood.kinds == ("clustered", "synchronous", "no_inhibition")    # one order
    assert InputSettings.from_dict(s.to_dict()) == s
    assert s.to_dict()["ood"]["kinds"] == ["clustered", "synchronous", "no_inhibition"]
    a, b = generate_inputs(s, 2000, 7), generate_inputs(InputSettings.from_dict(s.to_dict()), 2000, 7)
    assert a == b and a != generate_inputs(s, 2000, 8)


@pytest.mark.parametrize("make, message", [
    (lambda b: inputs.ood_settings(b, "loud"), "OOD kinds"),
    (lambda b: inputs.ood_settings(b, ()), "OOD kinds"),
    (lambda b: inputs.ood_settings(b, "clustered"), "needs clusters"),
    (lambda b: inputs.ood_settings(b, "clustered", clusters=[(0, 1), (1, 2)]), "disjoint"),
    (lambda b: inputs.ood_settings(b, "clustered", clusters=[(0, 100000)]), "out of range"),
    (lambda b: inputs.ood_settings(b, "synchronous", sync_depth=1.5), "sync_depth"),
    (lambda b: inputs.ood_settings(b, "synchronous", sync_period_ms=(0, 10)), "positive"),
    (lambda b: inputs.ood_settings(b, "clustered", clusters=[(0,)], max_cluster_fraction=0), "max_cluster"),
    (lambda b: inputs.ood_settings(inputs.ood_settings(b, "high_rate"), "no_inhibition"), "already"),
])
def test_bad_ood_options_are_rejected(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(_toy_tree()[0])


def test_an_ood_dataset_goes_through_the_normal_pipeline(tmp_path):
    """generate_dataset takes OOD settings as input_settings: the recipe is in the plan, and the stored
    trials regenerate from it."""
    s = inputs.ood_settings(inputs.iaf_input_settings(), ("no_inhibition", "high_rate"))
    kwargs = dict(cell="iaf", n_trials=4, duration_ms=1000, seed=5, trials_per_shard=2)
    assert nd.data.planned_id(**kwargs, input_settings=s) != nd.data.planned_id(**kwargs)
    report = nd.data.generate_dataset(tmp_path / "ood", workers=0, progress=False, input_settings=s, **kwargs)
    with report.open() as ds:
        assert ds.manifest["plan"]["input_settings"]["ood"]["kinds"] == ["no_inhibition", "high_rate"]
        assert ds.inputs(3) == generate_inputs(s, 1000, nd.data.trial_seed(5, 3))
        assert ds.inputs(3).channel.max() < 80                           # channels 80.. are inhibitory


def test_the_l5pc_clusters_and_ood_settings():
    """The Hay cell's 639 segments in 64 K-means clusters of their 3-D centres, each with both synapses."""
    from neurodepth_lib.cells import L5PC

    cell = L5PC("NMDA")
    s = inputs.cell_ood_settings(cell, ("clustered", "synchronous"), "NMDA")
    clusters = s.ood.clusters
    assert len(clusters) == 64 and s.ood.max_active_clusters == 19
    assert sorted(c for cl in clusters for c in cl) == list(range(1278))
    assert all(set(cl) == {c + 639 for c in cl if c < 639} | {c for c in cl if c < 639} for cl in clusters)
    xyz = inputs.segment_xyz_um(cell)
    assert xyz[5] == pytest.approx(cell.location_xyz_um(cell._segment_objects[5]), abs=1e-3)
    assert inputs.cell_ood_settings(cell, ("clustered", "synchronous"), "NMDA") == s     # reproducible plan
