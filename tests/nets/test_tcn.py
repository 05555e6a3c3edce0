"""Tests of the TCN family: shapes, causality, receptive field, counts pinned to the paper, model files,
and whole-trace inference against the paper's overlapping windows."""
import json

import numpy as np
import pytest
import torch

import neurodepth_lib as nd

torch.set_num_threads(1)


def small_config(**kw):
    base = dict(n_inputs=12, kernel_sizes=(5, 3, 4), widths=(6, 5, 4), n_dendritic=3)
    base.update(kw)
    return nd.nets.TCNConfig(**base)


def binary_inputs(shape, p=0.2, seed=0):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


def trained_like(model, seed=0):
    """Give BatchNorm non-trivial running statistics and the weights larger values, so tests of
    inference compare networks whose layers all matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g))
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return model.eval()


# ---- config ------------------------------------------------------------------------------------------
def test_config_derived_properties_and_names():
    large = nd.nets.paper_configs()["large"]
    assert large.depth == 7
    assert large.kernel_sizes == (45,) + (19,) * 6
    assert large.widths == (128,) * 7
    assert large.receptive_field_ms == 153
    assert large.name == "TCN__DxWxT_7x128x153"
    assert nd.nets.paper_configs()["small"].name == "FCN__DxWxT_1x128x43"
    assert nd.nets.paper_configs()["fit_cnn"].name == "TCN__DxWxT_3x64x100"
    # every kernel after the first of size 1: an FCN (paper_facts 2.1), T = 45
    assert nd.nets.TCNConfig(kernel_sizes=(45, 1), widths=128).name == "FCN__DxWxT_2x128x45"
    assert nd.nets.TCNConfig(kernel_sizes=(25, 1, 1), widths=(256, 256, 256)).name == "FCN__DxWxT_3x256x25"
    assert small_config().receptive_field_ms == 4 + 2 + 3 + 1
    assert nd.nets.TCNConfig(kernel_sizes=(1,), widths=3).receptive_field_ms == 1


def test_config_round_trip_through_json():
    c = small_config(activation="linear", batch_norm=False, spike_bias_init=-3.0)
    d = json.loads(json.dumps(c.to_dict()))
    assert nd.nets.TCNConfig.from_dict(d) == c
    with pytest.raises(ValueError, match="unknown TCNConfig field"):
        nd.nets.TCNConfig.from_dict({**d, "kernel_size": [3]})
    assert c.replace(widths=7).widths == (7, 7, 7)


def test_one_unit_config_is_the_papers_figure_1_network():
    c = nd.nets.one_unit_config()
    assert (c.n_inputs, c.kernel_sizes, c.widths) == (100, (80,), (1,))
    assert c.activation == "linear" and not c.batch_norm and c.n_dendritic == 0
    assert (c.hidden_init_std, c.hidden_bias_init, c.spike_bias_init) == (0.25, 0.1, -2.5)
    net = nd.nets.TCN(c).requires_grad_(False)
    assert torch.all(net.hidden[0].conv.bias == 0.1)
    assert torch.all(net.spike_head.bias == -2.5)
    w = net.hidden[0].conv.weight
    assert w.abs().max() <= 0.5 + 1e-7  # truncated at 2 std
    assert 0.15 < w.std() < 0.3  # a 2-std truncated normal has 0.88 of the nominal std
    # a linear single unit: the output is an affine function of the input
    x = torch.from_numpy(binary_inputs((2, 100, 200))).float()
    h = net.features(x)
    y = net.features(2 * x)
    assert torch.allclose(y - h, net.features(x) - net.features(torch.zeros_like(x)), atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_sizes=(5, 0)), r"kernel_sizes\[1\] must be an integer >= 1"),
    (dict(kernel_sizes=()), "at least one layer"),
    (dict(kernel_sizes=(3.5,)), r"kernel_sizes\[0\]"),
    (dict(kernel_sizes=(5, 3), widths=(4, 4, 4)), "widths has 3 entries but kernel_sizes has 2"),
    (dict(widths=(4, 0, 4)), r"widths\[1\]"),
    (dict(activation="tanh"), "activation must be one of"),
    (dict(n_dendritic=-1), "n_dendritic"),
    (dict(n_inputs=0), "n_inputs"),
    (dict(hidden_init_std=-0.1), "hidden_init_std"),
    (dict(bn_momentum=2.0), "bn_momentum"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_config(**kwargs)


def test_paper_initialisation():
    torch.manual_seed(0)
    net = nd.nets.TCN(nd.nets.TCNConfig(n_inputs=200, kernel_sizes=(20, 10), widths=64, n_dendritic=20)).requires_grad_(False)
    w = net.hidden[0].conv.weight
    assert w.abs().max() <= 2 * 0.002 + 1e-9
    assert abs(float(w.std()) - 0.002 * 0.88) < 0.0002
    assert torch.all(net.spike_head.bias == -2.0)
    assert net.spike_head.weight.abs().max() <= 0.002 + 1e-9
    assert net.soma_head.weight.abs().max() <= 0.06 + 1e-9
    assert net.dendritic_head.weight.abs().max() <= 0.1 + 1e-9
    assert float(net.dendritic_head.weight.std()) > 0.02


# ---- the network -------------------------------------------------------------------------------------
def test_forward_shapes_and_dtypes():
    net = nd.nets.TCN(small_config())
    out = net(torch.from_numpy(binary_inputs((3, 12, 37))))  # uint8 is accepted and cast
    assert out.spike_logit.shape == (3, 37) and out.soma.shape == (3, 37)
    assert out.dendritic.shape == (3, 3, 37)
    assert out.spike_logit.dtype == torch.float32
    no_dend = nd.nets.TCN(small_config(n_dendritic=0))(torch.zeros(2, 12, 9))
    assert no_dend.dendritic is None
    # a kernel longer than the input is fine for the network itself: the left padding supplies zeros
    assert nd.nets.TCN(small_config())(torch.zeros(1, 12, 2)).soma.shape == (1, 2)


def test_order_is_conv_relu_batchnorm():
    net = nd.nets.TCN(nd.nets.TCNConfig(n_inputs=4, kernel_sizes=(3,), widths=5)).train()
    h = net.features(torch.from_numpy(binary_inputs((6, 4, 50), p=0.5)).float())
    # BN last: in training mode every channel is standardised over (batch, time)
    assert torch.allclose(h.mean(dim=(0, 2)), torch.zeros(5), atol=1e-5)
    net_nobn = nd.nets.TCN(nd.nets.TCNConfig(n_inputs=4, kernel_sizes=(3,), widths=5, batch_norm=False))
    h2 = net_nobn.features(torch.ones(1, 4, 10))
    assert torch.all(h2 >= 0)  # ReLU last when there is no BN


@pytest.mark.parametrize("batch_norm", [True, False])
def test_causality_and_receptive_field(batch_norm):
    cfg = small_config(batch_norm=batch_norm)
    net = trained_like(nd.nets.TCN(cfg))
    t_rf = cfg.receptive_field_ms
    x = torch.from_numpy(binary_inputs((2, 12, 60))).float()
    t0 = 30
    x2 = x.clone()
    x2[:, :, t0] = 1 - x2[:, :, t0]
    with torch.no_grad():
        a, b = net(x), net(x2)
    for field in ("spike_logit", "soma", "dendritic"):
        ya, yb = getattr(a, field), getattr(b, field)
        assert torch.equal(ya[..., :t0], yb[..., :t0]), f"{field} before t0 changed: not causal"
        diff = (ya - yb).abs()
        # the perturbation reaches t0 .. t0 + T - 1 and not beyond
        assert diff[..., t0].max() > 0
        assert diff[..., t0 + t_rf - 1].max() > 0
        assert torch.equal(ya[..., t0 + t_rf:], yb[..., t0 + t_rf:])


def test_check_input_errors():
    net = nd.nets.TCN(small_config())
    with pytest.raises(ValueError, match="has 13 channels but the model expects n_inputs=12"):
        net(torch.zeros(1, 13, 10))
    with pytest.raises(ValueError, match=r"\(batch, channels, time\)"):
        net(torch.zeros(12, 10))
    with pytest.raises(TypeError, match="torch.Tensor"):
        net(np.zeros((1, 12, 10)))
    with pytest.raises(TypeError, match="TCNConfig"):
        nd.nets.TCN({"n_inputs": 3})


# ---- counts ------------------------------------------------------------------------------------------
def test_parameter_counts_match_the_formula_and_the_paper():
    for cfg in [small_config(), small_config(batch_norm=False, n_dendritic=0), nd.nets.one_unit_config(),
                *nd.nets.paper_configs(n_dendritic=20).values()]:
        assert nd.nets.count_parameters(cfg) == nd.nets.count_parameters(nd.nets.TCN(cfg)), cfg.name
    small = nd.nets.paper_configs()["small"]
    assert abs(1278 * 128 * 43 - 7.03e6) < 0.01e6  # paper_facts 2.1: the first layer, ~7.03 M
    assert abs(nd.nets.count_parameters(small) - 7.03e6) < 0.01e6
    large = nd.nets.paper_configs()["large"]
    assert 8e6 < nd.nets.count_parameters(large) < 9.3e6  # "roughly 8-9 M" (paper_facts 2.1), 9.23 M here


def test_macs_per_ms_of_the_large_model():
    large = nd.nets.paper_configs()["large"]
    macs = nd.nets.macs_per_ms(large)
    assert abs(macs - 9.23e6) < 0.005e6  # performance_facts: 9.23 M MACs per 1-ms output step
    first = 1278 * 128 * 45
    assert 0.79 < first / macs < 0.81  # 80 % in the first layer
    assert nd.nets.macs_per_ms(nd.nets.TCN(small_config())) == nd.nets.macs_per_ms(small_config())
    assert nd.nets.macs_per_ms(nd.nets.one_unit_config()) == 100 * 80 + 2


# ---- model files -------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    net = trained_like(nd.nets.TCN(small_config()))
    wp, cp = nd.nets.save_model(tmp_path / "sub" / "net", net, {"dataset_sha256": "abc", "metrics": {"auc": 0.9}})
    assert wp.name == "net.pt" and cp.name == "net.json"
    assert not [p for p in wp.parent.iterdir() if p.name.endswith(".tmp")]
    card = json.loads(cp.read_text())
    assert card["name"] == net.config.name and card["n_parameters"] == nd.nets.count_parameters(net)
    assert card["dataset_sha256"] == "abc"
    loaded = nd.nets.load_model(tmp_path / "sub" / "net.pt")
    assert loaded.card["metrics"] == {"auc": 0.9}
    assert not loaded.training
    x = torch.from_numpy(binary_inputs((2, 12, 40))).float()
    with torch.no_grad():
        a, b = net(x), loaded(x)
    for ya, yb in zip(a, b):
        assert torch.equal(ya, yb)


def test_model_file_errors(tmp_path):
    net = nd.nets.TCN(small_config())
    with pytest.raises(ValueError, match="reserved"):
        nd.nets.save_model(tmp_path / "x", net, {"config": {}})
    with pytest.raises(TypeError, match="JSON-able"):
        nd.nets.save_model(tmp_path / "x", net, {"when": object()})
    with pytest.raises(FileNotFoundError, match="no model card"):
        nd.nets.load_model(tmp_path / "missing")
    nd.nets.save_model(tmp_path / "a", net)
    (tmp_path / "a.pt").unlink()
    with pytest.raises(FileNotFoundError, match="weights .* are missing"):
        nd.nets.load_model(tmp_path / "a")
    # weights of one save with the card of another
    nd.nets.save_model(tmp_path / "b", net)
    nd.nets.save_model(tmp_path / "c", nd.nets.TCN(small_config(widths=7)))
    (tmp_path / "c.pt").replace(tmp_path / "b.pt")
    with pytest.raises(ValueError, match="does not match its card"):
        nd.nets.load_model(tmp_path / "b")
    # same checksum field removed: the shape mismatch is still caught
    card = json.loads((tmp_path / "b.json").read_text())
    del card["weights_sha256"]
    (tmp_path / "b.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="do not fit the architecture"):
        nd.nets.load_model(tmp_path / "b")


# ---- inference ---------------------------------------------------------------------------------------
def test_full_trace_matches_batch_forward_and_chunking():
    net = trained_like(nd.nets.TCN(small_config()))
    x = binary_inputs((3, 12, 230))
    full = nd.nets.predict_full_trace(net, x)
    with torch.no_grad():
        out = net(torch.from_numpy(x).float())
    np.testing.assert_allclose(full.spike_probability, torch.sigmoid(out.spike_logit).numpy(), rtol=1e-6)
    assert full.dendritic.shape == (3, 3, 230)
    one = nd.nets.predict_full_trace(net, x[1])  # (C, T) gives (T,)
    assert one.soma.shape == (230,) and one.dendritic.shape == (3, 230)
    np.testing.assert_allclose(one.soma, full.soma[1], rtol=1e-5, atol=1e-6)
    chunked = nd.nets.predict_full_trace(net, x, chunk_ms=37)
    for a, b in zip(full, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    batched = nd.nets.predict_full_trace(net, x, batch_size=2, device="cpu")
    assert batched.dendritic.shape == (3, 3, 230)
    for a, b in zip(full, batched):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_overlapping_windows_agree_with_full_trace():
    cfg = nd.nets.TCNConfig(n_inputs=10, kernel_sizes=(15, 8, 8), widths=6, n_dendritic=2)  # T = 29
    net = trained_like(nd.nets.TCN(cfg))
    x = binary_inputs((2, 10, 1003))  # not a whole number of windows: the last one is zero-padded
    assert nd.nets.paper_overlap_ms(29, 100) == 50 and nd.nets.paper_overlap_ms(153, 400) == 154
    full = nd.nets.predict_full_trace(net, x)
    win = nd.nets.predict_overlapping_windows(net, x, window_ms=100)
    assert win.soma.shape == (2, 1003)
    # with an overlap > T every kept output sees its whole receptive field: equal everywhere
    for a, b in zip(full, win):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # too short an overlap: outputs just after each later window's start see zeros instead of input
    short = nd.nets.predict_overlapping_windows(net, x, window_ms=100, overlap_ms=5)
    np.testing.assert_allclose(short.soma[:, :100], full.soma[:, :100], rtol=1e-4, atol=1e-5)
    assert np.abs(short.soma[:, 100:] - full.soma[:, 100:]).max() > 1e-3


def test_inference_errors():
    net = nd.nets.TCN(small_config())  # T = 10
    with pytest.raises(ValueError, match="channels"):
        nd.nets.predict_full_trace(net, np.zeros((5, 40)))
    with pytest.raises(ValueError, match=r"\(channels, time\) or \(batch, channels, time\)"):
        nd.nets.predict_full_trace(net, np.zeros(40))
    with pytest.raises(ValueError, match="chunk_ms"):
        nd.nets.predict_full_trace(net, np.zeros((12, 40)), chunk_ms=0)
    with pytest.raises(ValueError, match="shorter than the model's receptive field"):
        nd.nets.predict_overlapping_windows(net, np.zeros((12, 40)), window_ms=8)
    with pytest.raises(ValueError, match="must be shorter than window_ms"):
        nd.nets.predict_overlapping_windows(net, np.zeros((12, 40)), window_ms=20, overlap_ms=20)
    with pytest.raises(ValueError, match="device"):
        nd.nets.resolve_device(3.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            nd.nets.resolve_device("cuda")
    assert nd.nets.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_float16_weight_files_are_half_the_size_and_load_as_the_rounded_model(tmp_path):
    torch.manual_seed(0)
    model = nd.nets.TCN(nd.nets.TCNConfig(n_inputs=300, kernel_sizes=(21, 5), widths=(8, 8))).eval()
    w32, _ = nd.nets.save_model(tmp_path / "m32", model)
    w16, card16 = nd.nets.save_model(tmp_path / "m16", model, weights_dtype="float16")
    assert w16.stat().st_size < 0.6 * w32.stat().st_size
    assert nd.nets.read_model_card(card16)["weights_dtype"] == "float16"
    loaded = nd.nets.load_model(tmp_path / "m16")
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert b.dtype == a.dtype, name  # computed in float32 again
        if a.is_floating_point():
            torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)
    x = (torch.rand(2, 300, 200) < 0.02).float()
    with torch.no_grad():
        p32, p16 = model(x).spike_logit, loaded(x).spike_logit
    assert float((p32 - p16).abs().max()) < 0.05  # rounding the weights to 11 bits moves the logits a little
    with pytest.raises(ValueError, match="weights_dtype"):
        nd.nets.save_model(tmp_path / "bad", model, weights_dtype="int8")
