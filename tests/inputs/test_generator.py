"""InputEvents, the paper's rate recipes (settings) and the generator: nd.inputs.events, .settings, .generator."""

import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib import inputs
from neurodepth_lib.inputs import InputEvents, InputGroup, InputSettings, generate_inputs


def test_events_sorted_and_dense_round_trip():
    ev = InputEvents(channel=[3, 0, 2], time_ms=[5, 5, 1], n_channels=4, duration_ms=10)
    assert ev.time_ms.tolist() == [1, 5, 5] and ev.channel.tolist() == [2, 0, 3]
    dense = ev.to_dense()
    assert dense.shape == (4, 10) and dense.sum() == 3 and dense[2, 1] == 1
    assert InputEvents.from_dense(dense) == ev
    assert ev.crop(2, 10) == InputEvents([0, 3], [3, 3], 4, 8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(channel=[4], time_ms=[0]), "channel 4 is out of range"),
    (dict(channel=[0], time_ms=[10]), "outside the trial"),
    (dict(channel=[0], time_ms=[-1]), "outside the trial"),
    (dict(channel=[1, 1], time_ms=[2, 2]), "same \\(channel, ms\\) bin"),
    (dict(channel=[0, 1], time_ms=[2]), "equal length"),
    (dict(channel=[0], time_ms=[1.5]), "whole numbers"),
])
def test_events_reject_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputEvents(n_channels=4, duration_ms=10, **kwargs)


def test_checksum_is_deterministic_and_sensitive():
    ev = InputEvents([0, 1], [2, 3], 2, 5)
    assert ev.checksum() == InputEvents([1, 0], [3, 2], 2, 5).checksum()
    assert ev.checksum() != InputEvents([0, 1], [2, 4], 2, 5).checksum()
    assert ev.checksum() != InputEvents([0, 1], [2, 3], 2, 6).checksum()


def test_generator_is_deterministic_per_seed():
    s = inputs.iaf_input_settings()
    a, b, c = (generate_inputs(s, 2000, seed) for seed in (5, 5, 6))
    assert a == b and a.checksum() == b.checksum()
    assert a != c


def test_iaf_mean_rates_follow_the_paper_ranges():
    # E ~ U(0, 50) spikes per 100 ms over 80 synapses -> 25 / 80 / 100 per ms = 3.125 Hz per synapse.
    s = inputs.iaf_input_settings()
    dense = inputs.stack_dense(inputs.generate_many(s, 6000, range(40)))
    exc_hz = dense[:, :80].mean() * 1000
    inh_hz = dense[:, 80:].mean() * 1000
    assert exc_hz == pytest.approx(3.125, rel=0.05)
    # I ~ U(max(0, E - 50), E - 15) with negatives set to ~0. For E < 50 the low end is 0, so
    # E[I] = integral_15^50 (E - 15) / 2 dE / 50 = 35**2 / 4 / 50 = 6.125 per 100 ms over 20 synapses.
    assert inh_hz == pytest.approx(6.125 / 20 / 100 * 1000, rel=0.06)


def test_iaf_inhibitory_totals_obey_the_paper_rule():
    s = inputs.iaf_input_settings()
    for seed in range(10):
        _, details = generate_inputs(s, 3000, seed, return_details=True)
        exc, inh = details.coarse_totals_per_100ms["all"]
        negative = exc - 15 < 0
        assert np.all(inh[negative] == pytest.approx(1e-4))
        ok = ~negative
        assert np.all(inh[ok] >= np.maximum(0, exc[ok] - 50) - 1e-9)
        assert np.all(inh[ok] <= exc[ok] - 15 + 1e-9)
        assert 5 <= details.interval_ms < 120 and 20 <= details.sigma_ms < 120


def test_rates_are_shared_in_proportion_to_size_and_halved_at_edges():
    group = InputGroup("tree", exc_channels=(0, 1), inh_channels=(), exc_sizes=(1.0, 3.0),
                       exc_total_per_100ms=(40.0, 40.0), inh_minus_exc_per_100ms=(0, 0))
    s = InputSettings(n_channels=2, groups=(group,), interval_choices_ms=(50,), sigma_choices_ms=(40,),
                      noise_range=(1.0, 1.0))
    _, d = generate_inputs(s, 3000, 0, return_details=True)
    middle = d.rate_per_ms[:, 1000:2000].mean(axis=1)
    assert middle == pytest.approx([0.1, 0.3], rel=1e-3)  # 40 per 100 ms, split 1:3
    # 'same'-size zero-padded smoothing halves the rate at both trial edges
    assert d.rate_per_ms[:, 0] == pytest.approx(middle / 2, rel=0.05)
    assert d.rate_per_ms[:, -1] == pytest.approx(middle / 2, rel=0.05)


def test_doubly_stochastic_sampling_has_the_rate_as_its_mean():
    group = InputGroup("g", exc_channels=tuple(range(50)), inh_channels=(),
                       exc_total_per_100ms=(100.0, 100.0), inh_minus_exc_per_100ms=(0, 0))
    s = InputSettings(n_channels=50, groups=(group,), interval_choices_ms=(50,), sigma_choices_ms=(25,),
                      noise_range=(1.0, 1.0))
    ev = generate_inputs(s, 20000, 3)
    rate = ev.to_dense()[:, 1000:-1000].mean()
    assert rate == pytest.approx(100 / 50 / 100, rel=0.03)  # 0.02 spikes per ms per channel


def test_tree_settings_use_the_paper_ranges():
    seg = np.arange(10)
    s = inputs.tree_input_settings({"basal": (seg[:4], np.full(4, 20.0)),
                                    "apical": (seg[4:], np.full(6, 30.0))}, "AMPA")
    assert s.n_channels == 20
    basal, apical = s.groups
    assert basal.exc_total_per_100ms == (0.0, 1900.0) and apical.exc_total_per_100ms == (0.0, 2000.0)
    assert basal.inh_channels == (10, 11, 12, 13)
    assert InputSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown condition 'GABA'"):
        inputs.tree_input_settings({"basal": (seg, np.ones(10))}, "GABA")


@pytest.mark.parametrize("make, message", [
    (lambda: InputGroup("g", (0,), (), (-5.0, 10.0), (0, 0)), "non-negative"),
    (lambda: InputGroup("g", (0,), (), (10.0, 5.0), (0, 0)), "low <= high"),
    (lambda: InputGroup("g", (0, 1), (), (0, 1), (0, 0), exc_sizes=(1.0,)), "exc_sizes"),
    (lambda: InputSettings(2, (InputGroup("g", (0, 5), (), (0, 1), (0, 0)),)), "channel 5"),
    (lambda: InputSettings(2, (InputGroup("a", (0,), (), (0, 1), (0, 0)),
                               InputGroup("b", (0,), (), (0, 1), (0, 0)))), "more than one group"),
    (lambda: generate_inputs(inputs.iaf_input_settings(), 0, 1), "duration_ms"),
    (lambda: generate_inputs(inputs.iaf_input_settings(), 100, -1), "seed"),
])
def test_bad_settings_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_hay_rates_carry_over_per_um_of_dendrite():
    """One rule for every cell's rates (teaching cell, published cells): the Hay tree's ranges x length ratio."""
    hay = nd.inputs.HAY_ADJUSTED_LENGTH_UM
    paper = nd.inputs.L5PC_RATE_RANGES_PER_100MS
    assert nd.inputs.hay_rates_for_tree("NMDA", hay["basal"], like="basal") == paper["NMDA"]["basal"]
    half = nd.inputs.hay_rates_for_tree("AMPA", hay["apical"] / 2, like="apical", factor=3.0)
    assert half == ((0.0, 3000.0), (-2475.0, 225.0))
    both = nd.inputs.hay_rates_for_tree("NMDA", hay["basal"] + hay["apical"])      # both Hay trees together
    assert both == ((0.0, 1600.0), (-1200.0, 400.0))
    with pytest.raises(ValueError, match="like must be"):
        nd.inputs.hay_rates_for_tree("NMDA", 100.0, like="tuft")


def test_the_teaching_cell_still_makes_its_shipped_data():
    """The shipped teaching-cell sets were made before the rate rule moved here: same plan id, same trials."""
    from neurodepth_lib.data import assets

    for condition in ("NMDA", "AMPA"):
        shipped = assets.manifest_of(assets.path_of(f"teaching_{condition.lower()}_train"))
        assert shipped["plan_id"] == nd.data.planned_id(cell="teaching", condition=condition, n_trials=96,
                                                        duration_ms=6000, seed=1, trials_per_shard=4)


# ----------------------------------------------------------------------------------------------------
# Out-of-distribution inputs (issue 20 part 3)
# ----------------------------------------------------------------------------------------------------

# Pinned before the OOD options existed (the same calls on the code of commit 37453a5): the training
# generator's recipe and events must not move, or every shipped dataset's plan id and inputs would.
IAF_DICT_SHA256 = "404754e3b24a82bd2147fce7c1ee2aeda108452138b5740bca1f5df371008dba"
IAF_EVENTS_SHA256 = {0: "b01a2aa1d248baa47456d5a6fc67578977e5d1d45d07ec446ad8c68964bb7f5c",
                     12345: "060cb04fe39e4d12e3f2035a2dbd7af9f232b5d924ef1bf7637b885969dc3b41"}


def test_training_settings_describe_and_generate_as_before_the_ood_options():
    import hashlib
    import json

    s = inputs.iaf_input_settings()
    assert s.ood is None and "ood" not in s.to_dict()
    digest = hashlib.sha256(json.dumps(s.to_dict(), sort_keys=True).encode()).hexdigest()
    assert digest == IAF_DICT_SHA256
    for seed, checksum in IAF_EVENTS_SHA256.items():
        assert generate_inputs(s, 2000, seed).checksum() == checksum


def test_the_l5pc_still_plans_its_shipped_test_set():
    """The Hay cell's shipped NMDA test set: same plan (input recipe included), same plan id."""
    from neurodepth_lib.data import assets

    shipped = assets.manifest_of(assets.path_of("l5pc_nmda_test"))
    assert shipped["plan_id"] == nd.data.planned_id(cell="l5pc", condition="NMDA", n_trials=100,
                                                    duration_ms=6000, seed=3000, trials_per_shard=8)
    assert "ood" not in shipped["plan"]["input_settings"]
