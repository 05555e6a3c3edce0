"""Prediction straight from input events (``nets.predict_events``, ``sparse.index_events`` / ``trial_events``):
the same outputs as the dense path for a TCN and for the ELM family, on random trials and on a stored test-set
trial regenerated from its recipe; no dense array on the way; clear errors for events outside the trace or the
model's channels, for two events in one bin, and for trials of another length. Speed is measured by
``benchmarks/bench_surrogate.py --matched-accuracy``, not here."""
import numpy as np
import pytest
import torch

import neurodepth_lib as nd
from neurodepth_lib import inputs
from neurodepth_lib.nets import sparse

torch.set_num_threads(1)


def random_trials(n_trials, n_channels, duration_ms, density, seed=0):
    """InputEvents of random 0/1 trials (what the generator and the datasets hand out)."""
    rng = np.random.default_rng(seed)
    return [inputs.InputEvents.from_dense((rng.random((n_channels, duration_ms)) < density).astype(np.uint8))
            for _ in range(n_trials)]


def assert_same_prediction(a, b, tol=1e-5):
    np.testing.assert_allclose(a.soma, b.soma, rtol=0, atol=tol)
    np.testing.assert_allclose(a.spike_probability, b.spike_probability, rtol=0, atol=tol)
    assert (a.dendritic is None) == (b.dendritic is None)
    if a.dendritic is not None:
        np.testing.assert_allclose(a.dendritic, b.dendritic, rtol=0, atol=tol)


def eval_model(net):
    """Eval mode with non-trivial BatchNorm statistics (a freshly built TCN's are 0 and 1)."""
    g = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.eval()


MODELS = {
    "tcn": lambda: nd.nets.TCN(nd.nets.TCNConfig(n_inputs=40, kernel_sizes=(9, 5, 5), widths=16, n_dendritic=3)),
    "fcn_all_taps": lambda: nd.nets.TCN(nd.nets.TCNConfig(n_inputs=40, kernel_sizes=(12,), widths=4)),
    "elm": lambda: nd.nets.ELM(nd.nets.ELMConfig(n_inputs=40, n_memory=4, mlp_hidden=6)),
    "branch_elm": lambda: nd.nets.ELM(nd.nets.ELMConfig(n_inputs=40, n_memory=4, n_branches=5,
                                                        synapses_per_branch=12, n_dendritic=2)),
    "branch_elm_learned_tau_s": lambda: nd.nets.ELM(nd.nets.ELMConfig(n_inputs=40, n_memory=4, n_branches=5,
                                                                      learn_tau_s=True)),
    "elm_learned_tau_s": lambda: nd.nets.ELM(nd.nets.ELMConfig(n_inputs=40, n_memory=4, learn_tau_s=True)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_events_give_the_dense_paths_outputs(name):
    torch.manual_seed(0)
    net = eval_model(MODELS[name]())
    trials = random_trials(3, 40, 90, 0.03, seed=1)
    X = inputs.stack_dense(trials)
    is_tcn = nd.nets.kind_of(net) == "tcn"
    if is_tcn:
        net.set_first_layer("dense")
    else:
        net.config = net.config.replace(synapse_path="dense")
    dense = nd.nets.predict_full_trace(net, X)
    got = nd.nets.predict_events(net, trials)  # the events path whatever the dense input's setting
    want_path = "elementwise" if name == "elm_learned_tau_s" else "events"
    assert (net.hidden[0].last_path if is_tcn else net.last_path) == want_path
    assert got.soma.shape == (3, 90) and got.spike_probability.shape == (3, 90)
    assert_same_prediction(got, dense)
    # one trial in, one trace out; batches of any size; (channel, time) arrays instead of InputEvents
    one = nd.nets.predict_events(net, trials[1])
    assert one.soma.shape == (90,)
    assert_same_prediction(one, nd.nets.predict_full_trace(net, X[1]))
    assert_same_prediction(nd.nets.predict_events(net, trials, batch_size=2), dense)
    pairs = [(t.channel, t.time_ms) for t in trials]
    assert_same_prediction(nd.nets.predict_events(net, pairs, duration_ms=90), dense)
    assert not np.array_equal(got.soma[0], got.soma[1])  # different trials, different outputs


def test_the_events_path_builds_no_dense_array(monkeypatch):
    """Neither a non-zero search nor a dense input array: the index comes from the events themselves."""
    torch.manual_seed(0)
    net = eval_model(MODELS["tcn"]())
    trials = random_trials(2, 40, 60, 0.05, seed=2)
    want = nd.nets.predict_full_trace(net, inputs.stack_dense(trials))

    def refuse(*args, **kwargs):
        raise AssertionError("the events path must not look for events in a dense array")

    monkeypatch.setattr(sparse, "find_events", refuse)
    monkeypatch.setattr(inputs.InputEvents, "to_dense", refuse)
    monkeypatch.setattr(inputs, "stack_dense", refuse)
    assert_same_prediction(nd.nets.predict_events(net, trials), want)


def test_index_matches_find_events_on_the_dense_array():
    trials = random_trials(3, 11, 17, 0.15, seed=8)
    X = torch.as_tensor(inputs.stack_dense(trials))
    found = sparse.find_events(X)
    given = sparse.trial_events(trials)
    assert given.shape == found.shape == (3, 11, 17)
    for field in ("channel_by_row", "row_ptr", "batch_by_channel", "time_by_channel", "channel_ptr"):
        assert torch.equal(getattr(given, field), getattr(found, field)), field
    assert given.value_by_row is None and given.value_by_channel is None
    assert torch.equal(given.to_dense(torch.uint8), X)
    # the inference index leaves the channel order out and fills it in on demand, identically
    lean = sparse.trial_events(trials, channel_order=False)
    assert lean.channel_ptr is None and lean.batch_by_channel is None
    full = lean.with_channel_order()
    for field in ("batch_by_channel", "time_by_channel", "channel_ptr"):
        assert torch.equal(getattr(full, field), getattr(found, field)), field


def test_order_does_not_matter_and_values_weigh_events():
    trials = random_trials(2, 9, 25, 0.2, seed=4)
    b = np.concatenate([np.full(t.n_events, i) for i, t in enumerate(trials)])
    c = np.concatenate([t.channel for t in trials])
    t = np.concatenate([t.time_ms for t in trials])
    perm = np.random.default_rng(0).permutation(len(c))
    sorted_ev = sparse.index_events(b, c, t, (2, 9, 25))
    shuffled = sparse.index_events(b[perm], c[perm], t[perm], (2, 9, 25))
    for field in ("channel_by_row", "row_ptr", "batch_by_channel", "time_by_channel", "channel_ptr"):
        assert torch.equal(getattr(sorted_ev, field), getattr(shuffled, field)), field
    # weighted events: the first layer multiplies by the values, as on a dense array holding them
    w = torch.randn(3, 9, 4, dtype=torch.float64)
    vals = np.random.default_rng(1).random(len(c)) * 2 - 0.5
    ev = sparse.index_events(b[perm], c[perm], t[perm], (2, 9, 25), values=vals[perm])
    dense = torch.zeros(2, 9, 25, dtype=torch.float64)
    dense[b, c, t] = torch.as_tensor(vals)
    torch.testing.assert_close(sparse.sparse_causal_conv1d(ev, w), sparse.dense_causal_conv1d(dense, w))


def test_weight_gradients_from_events_equal_the_dense_ones():
    """Training could take events too: the backward pass indexes the channel order when it needs it."""
    trials = random_trials(2, 30, 40, 0.05, seed=5)
    X = torch.as_tensor(inputs.stack_dense(trials)).float()
    w = torch.randn(8, 30, 7, dtype=torch.float32, requires_grad=True)
    bias = torch.randn(8, requires_grad=True)
    g = torch.randn(2, 8, 40)
    ev = sparse.trial_events(trials, channel_order=False)
    sparse.sparse_causal_conv1d(ev, w, bias).backward(g)
    got = w.grad.clone(), bias.grad.clone()
    w.grad = bias.grad = None
    sparse.dense_causal_conv1d(X, w, bias).backward(g)
    torch.testing.assert_close(got[0], w.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[1], bias.grad, rtol=1e-4, atol=1e-5)


def test_bad_events_are_refused_with_the_reason():
    torch.manual_seed(0)
    net = MODELS["tcn"]().eval()
    ok = (np.array([0, 5, 39]), np.array([0, 10, 59]))
    nd.nets.predict_events(net, ok, duration_ms=60)  # fine
    cases = [
        ((np.array([0, 5]), np.array([3, 60])), r"time 60 \(event 1 of the batch, trial 0\) is outside \[0, 60\)"),
        ((np.array([0, 5]), np.array([-1, 3])), r"time -1 .* outside \[0, 60\)"),
        ((np.array([40, 5]), np.array([3, 4])), r"channel 40 .* outside \[0, 40\)"),
        ((np.array([-2]), np.array([3])), r"channel -2 .* outside \[0, 40\)"),
        ((np.array([3, 3]), np.array([7, 7])), r"two events fall in one bin: trial 0, channel 3, time 7 ms"),
        ((np.array([1, 2]), np.array([0.5, 3.0])), r"whole numbers"),
        ((np.array([1, 2]), np.array([3])), r"differ in length"),
    ]
    for events, match in cases:
        with pytest.raises(ValueError, match=match):
            nd.nets.predict_events(net, events, duration_ms=60)
    # the trial is named within a list (and within a batch, counted from the list's start)
    with pytest.raises(ValueError, match=r"trial 1\)"):
        nd.nets.predict_events(net, [ok, (np.array([2]), np.array([60]))], duration_ms=60)
    with pytest.raises(ValueError, match=r"count from trial 2"):
        nd.nets.predict_events(net, [ok, ok, (np.array([2]), np.array([60]))], duration_ms=60, batch_size=2)
    # arrays need a length; InputEvents of another length or channel count are refused, not cropped
    with pytest.raises(ValueError, match="duration_ms"):
        nd.nets.predict_events(net, ok)
    trials = random_trials(2, 40, 60, 0.05)
    with pytest.raises(ValueError, match=r"trial 0 has duration_ms=60, not 50 \(crop it first"):
        nd.nets.predict_events(net, trials, duration_ms=50)
    with pytest.raises(ValueError, match=r"trial 1 has duration_ms=70, not 60"):
        nd.nets.predict_events(net, [trials[0], random_trials(1, 40, 70, 0.05)[0]])
    with pytest.raises(ValueError, match=r"n_channels=30, not 40"):
        nd.nets.predict_events(net, random_trials(1, 30, 60, 0.05))
    with pytest.raises(ValueError, match="no trials"):
        nd.nets.predict_events(net, [])
    with pytest.raises(TypeError, match="TCN or an ELM"):
        nd.nets.predict_events(torch.nn.Linear(2, 2), trials)
    with pytest.raises(TypeError, match="trial 0 must be an InputEvents"):
        nd.nets.predict_events(net, ["events"], duration_ms=60)
    with pytest.raises(ValueError, match="channels but the model expects"):
        net(sparse.trial_events(random_trials(1, 30, 60, 0.05)))


def _stored_trial():
    test_dir = nd.data.assets.path_of("l5pc_nmda_test")
    if not (test_dir / "manifest.json").exists():
        pytest.skip("needs the shipped Hay NMDA test set (a clone's data/lab)")
    ds = nd.data.open_dataset(test_dir)
    return ds.inputs(0).crop(0, 700)  # regenerated from its recipe and checksum-verified


def test_a_stored_trial_gives_the_dense_paths_outputs():
    """A real test-set trial (1,278 synapses, about 1 % of the bins active), regenerated from its recipe: the
    shipped TCN (when present) and an ELM and a Branch-ELM predict the same from its events as from its
    dense array."""
    trial = _stored_trial()
    X = trial.to_dense()[None]
    nets = {}
    path = nd.data.assets.path_of("model_l5pc_nmda_tcn")
    if path is not None and path.with_suffix(".pt").exists():
        nets["shipped TCN"] = nd.nets.load_model(path)
    torch.manual_seed(1)
    nets["TCN 2x16"] = eval_model(nd.nets.TCN(nd.nets.TCNConfig(kernel_sizes=(35, 15), widths=16)))
    nets["ELM"] = nd.nets.ELM(nd.nets.ELMConfig(n_memory=6)).eval()
    nets["Branch-ELM"] = nd.nets.ELM(nd.nets.ELMConfig(n_memory=8, n_branches=45, synapses_per_branch=100)).eval()
    for label, net in nets.items():
        if nd.nets.kind_of(net) == "tcn":
            net.set_first_layer("dense")
        else:
            net.config = net.config.replace(synapse_path="dense")
        dense = nd.nets.predict_full_trace(net, X)
        got = nd.nets.predict_events(net, [trial])
        assert_same_prediction(got, dense, tol=1e-4)
        assert np.ptp(got.soma) > 0, label  # the trial moves the output
