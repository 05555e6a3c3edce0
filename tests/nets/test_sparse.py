"""The sparse-input first layer: equal to the dense causal convolution (outputs and gradients) on random
sparse inputs of many shapes, its event index, its memory layout, and the TCN's choice between the two
paths. Speed is measured by benchmarks/bench_surrogate.py, not here."""
import json

import numpy as np
import pytest
import torch

import neurodepth_lib as nd

torch.set_num_threads(1)


def sparse_input(shape, density, seed=0, values=False, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < density).to(dtype)
    if values:  # non-binary entries (e.g. weighted events): the sparse path multiplies by them
        x = x * (torch.rand(shape, generator=g, dtype=dtype) * 3 - 1)
    return x


def reference(x, weight, bias, grad_out):
    """The dense causal convolution, its output and its gradients (w.r.t. weight, bias, and x)."""
    x = x.clone().to(weight.dtype).requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    b = None if bias is None else bias.detach().clone().requires_grad_(True)
    out = nd.nets.sparse.dense_causal_conv1d(x, w, b)
    out.backward(grad_out)
    return out.detach(), w.grad, None if b is None else b.grad, x.grad


def by_hand(x, weight, bias):
    """out[b, o, t] = bias[o] + sum_{c,k} w[o, c, k] x[b, c, t - (K-1) + k], with explicit loops."""
    B, C, T = x.shape
    O, _, K = weight.shape
    out = np.zeros((B, O, T))
    xn, wn = x.double().numpy(), weight.double().numpy()
    for t in range(T):
        for k in range(K):
            s = t - (K - 1) + k
            if s >= 0:
                out[:, :, t] += np.einsum("bc,oc->bo", xn[:, :, s], wn[:, :, k])
    if bias is not None:
        out += bias.double().numpy()[None, :, None]
    return out


# (batch, channels, time, taps, out_channels, density): both algorithms (all taps at once for
# taps * out <= 512, tap by tap beyond), kernels longer than the input, single channels and steps
CASES = [
    (1, 1, 1, 1, 1, 1.0),
    (2, 3, 5, 1, 2, 0.5),
    (3, 7, 11, 5, 4, 0.3),
    (2, 5, 3, 6, 3, 0.5),        # kernel longer than the trace
    (4, 50, 40, 9, 7, 0.05),
    (16, 100, 120, 80, 1, 0.003),  # the one-unit I&F network's layer (0.3 % of inputs active)
    (2, 60, 70, 12, 64, 0.02),   # 768 numbers per tap row: tap by tap
    (3, 130, 50, 45, 16, 0.01),  # 720: tap by tap
    (1, 40, 90, 33, 130, 0.03),  # batch 1 (grad_out's table must not become a strided view)
    (5, 20, 30, 4, 200, 0.1),
]


@pytest.mark.parametrize("B,C,T,K,O,p", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sparse_equals_dense_outputs_and_gradients(B, C, T, K, O, p, dtype):
    g = torch.Generator().manual_seed(B * 1000 + C + K)
    x = sparse_input((B, C, T), p, seed=K, dtype=dtype)
    weight = torch.randn(O, C, K, generator=g, dtype=dtype)
    bias = torch.randn(O, generator=g, dtype=dtype)
    grad_out = torch.randn(B, O, T, generator=g, dtype=dtype)
    ref_out, ref_gw, ref_gb, _ = reference(x, weight, bias, grad_out)

    w = weight.clone().requires_grad_(True)
    b = bias.clone().requires_grad_(True)
    out = nd.nets.sparse.sparse_causal_conv1d(x, w, b)
    out.backward(grad_out)
    # float64: equal to rounding; float32: sums of up to C*K terms of size ~1 in another order
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=2e-5)
    assert out.shape == (B, O, T) and out.dtype == dtype
    torch.testing.assert_close(out, ref_out, **tol)
    torch.testing.assert_close(w.grad, ref_gw, **tol)
    torch.testing.assert_close(b.grad, ref_gb, **tol)
    if dtype == torch.float64:  # and both equal the definition written out by hand
        np.testing.assert_allclose(out.detach().numpy(), by_hand(x, weight, bias), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("K,O", [(5, 3), (20, 40)])
def test_non_binary_inputs_are_weighted(K, O):
    x = sparse_input((3, 17, 25), 0.2, seed=1, values=True, dtype=torch.float64)
    assert not bool(((x == 0) | (x == 1)).all())
    g = torch.Generator().manual_seed(2)
    weight = torch.randn(O, 17, K, generator=g, dtype=torch.float64)
    grad_out = torch.randn(3, O, 25, generator=g, dtype=torch.float64)
    ref_out, ref_gw, _, _ = reference(x, weight, None, grad_out)
    w = weight.clone().requires_grad_(True)
    out = nd.nets.sparse.sparse_causal_conv1d(x, w)
    out.backward(grad_out)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(w.grad, ref_gw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("K,O", [(4, 2), (9, 70)])
def test_gradcheck(K, O):
    x = sparse_input((2, 6, 13), 0.3, seed=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    w = torch.randn(O, 6, K, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(O, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w_, b_: nd.nets.sparse.sparse_causal_conv1d(x, w_, b_), (w, b))


def test_input_gradient_when_asked_equals_dense():
    x = sparse_input((2, 9, 21), 0.1, seed=5, dtype=torch.float64)
    g = torch.Generator().manual_seed(6)
    weight = torch.randn(3, 9, 7, generator=g, dtype=torch.float64)
    grad_out = torch.randn(2, 3, 21, generator=g, dtype=torch.float64)
    _, _, _, ref_gx = reference(x, weight, None, grad_out)
    xs = x.clone().requires_grad_(True)
    nd.nets.sparse.sparse_causal_conv1d(xs, weight).backward(grad_out)
    torch.testing.assert_close(xs.grad, ref_gx, rtol=1e-10, atol=1e-10)


def test_no_events_gives_the_bias_and_zero_weight_gradient():
    for K, O in ((3, 2), (30, 40)):
        w = torch.randn(O, 5, K, requires_grad=True)
        b = torch.randn(O, requires_grad=True)
        out = nd.nets.sparse.sparse_causal_conv1d(torch.zeros(2, 5, 8), w, b)
        assert torch.equal(out, b.detach()[None, :, None].expand(2, O, 8))
        out.sum().backward()
        assert torch.equal(w.grad, torch.zeros_like(w))
        assert torch.equal(b.grad, torch.full((O,), 16.0))


def test_causal_and_deterministic():
    x = sparse_input((2, 30, 60), 0.05, seed=7)
    w = torch.randn(16, 30, 10)
    out = nd.nets.sparse.sparse_causal_conv1d(x, w)
    assert torch.equal(out, nd.nets.sparse.sparse_causal_conv1d(x, w))  # bit for bit: resumed training stays exact
    x2 = x.clone()
    x2[:, :, 40:] = (torch.rand(2, 30, 20) < 0.5).float()  # change only the future of t = 39
    assert torch.equal(nd.nets.sparse.sparse_causal_conv1d(x2, w)[..., :40], out[..., :40])


def test_find_events_indexes_every_non_zero_bin():
    x = sparse_input((3, 11, 17), 0.15, seed=8)
    ev = nd.nets.sparse.find_events(x)
    nz = x.nonzero()
    assert ev.n_events == nz.shape[0] and ev.shape == (3, 11, 17)
    assert ev.value_by_row is None and ev.value_by_channel is None  # binary input: no multiplications
    assert ev.density == nz.shape[0] / x.numel()
    # rows (b * T + t) in non-decreasing order, and row_ptr points at each row's first event
    rows = nz[:, 0] * 17 + nz[:, 2]
    counts = torch.bincount(rows, minlength=3 * 17)
    assert torch.equal(ev.row_ptr, torch.cumsum(counts, 0) - counts)
    assert torch.equal(torch.sort(ev.channel_by_row).values, torch.sort(nz[:, 1]).values)
    # channel order: the events of channel c sit at channel_ptr[c] ..
    got = sorted(zip(ev.batch_by_channel.tolist(), ev.time_by_channel.tolist()))
    assert got == sorted(zip(nz[:, 0].tolist(), nz[:, 2].tolist()))
    ch = torch.repeat_interleave(torch.arange(11), torch.bincount(nz[:, 1], minlength=11))
    assert torch.all(x[ev.batch_by_channel, ch, ev.time_by_channel] == 1)
    # an input denser than max_density is not indexed
    assert nd.nets.sparse.find_events(x, max_density=0.05) is None
    assert nd.nets.sparse.find_events(x, max_density=0.5) is not None
    assert nd.nets.sparse.find_events(torch.zeros(1, 3, 4)).n_events == 0
    xv = x * 2
    assert torch.all(nd.nets.sparse.find_events(xv).value_by_row == 2)


def test_bad_arguments_are_named():
    w = torch.randn(4, 5, 3)
    with pytest.raises(ValueError, match="channels"):
        nd.nets.sparse.sparse_causal_conv1d(torch.zeros(1, 6, 10), w)
    with pytest.raises(ValueError, match="batch, channels, time"):
        nd.nets.sparse.sparse_causal_conv1d(torch.zeros(5, 10), w)
    with pytest.raises(ValueError, match="bias"):
        nd.nets.sparse.sparse_causal_conv1d(torch.zeros(1, 5, 10), w, torch.zeros(3))
    with pytest.raises(ValueError, match="events were found"):
        nd.nets.sparse.sparse_causal_conv1d(torch.zeros(1, 5, 10), w, events=nd.nets.sparse.find_events(torch.zeros(2, 5, 10)))
    with pytest.raises(ValueError, match="first_layer"):
        nd.nets.sparse.choose_path(torch.zeros(1, 5, 10), "fast")


def test_tap_major_layout_keeps_values_and_gradients():
    conv = torch.nn.Conv1d(6, 4, 5)
    before = conv.weight.detach().clone()
    nd.nets.sparse.tap_major_(conv)
    assert nd.nets.sparse.is_tap_major(conv.weight) and not conv.weight.is_contiguous()
    assert torch.equal(conv.weight, before) and conv.weight.shape == (4, 6, 5)
    x = sparse_input((2, 6, 9), 0.2, seed=9)
    nd.nets.sparse.sparse_causal_conv1d(x, conv.weight, conv.bias).sum().backward()
    assert nd.nets.sparse.is_tap_major(conv.weight.grad)  # returned in the weight's layout: no transposed copy
    w = before.clone().requires_grad_(True)
    nd.nets.sparse.dense_causal_conv1d(x, w, conv.bias.detach()).sum().backward()
    torch.testing.assert_close(conv.weight.grad, w.grad)


# ---- the TCN's first layer --------------------------------------------------------------------------
def small(**kw):
    base = dict(n_inputs=40, kernel_sizes=(9, 4), widths=(12, 6), n_dendritic=2)
    base.update(kw)
    return nd.nets.TCNConfig(**base)


def randomised(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


@pytest.mark.parametrize("config", [small(), small(kernel_sizes=(30, 3), widths=(40, 8)),
                                    nd.nets.one_unit_config(n_inputs=40, kernel_ms=20)])
def test_tcn_paths_agree_in_outputs_and_gradients(config):
    x = sparse_input((4, 40, 80), 0.02, seed=10)
    models_ = {mode: randomised(nd.nets.TCN(config.replace(first_layer=mode)), seed=1).train()
               for mode in ("dense", "sparse", "auto")}
    outs, grads = {}, {}
    for mode, net in models_.items():
        out = net(x)
        loss = out.spike_logit.sigmoid().mean() + out.soma.square().mean()
        if out.dendritic is not None:
            loss = loss + out.dendritic.abs().mean()
        loss.backward()
        outs[mode] = out
        grads[mode] = {k: p.grad for k, p in net.named_parameters()}
    assert models_["auto"].hidden[0].last_path == "sparse"
    assert models_["sparse"].hidden[0].last_path == "sparse"
    assert models_["dense"].hidden[0].last_path == "dense"
    for mode in ("sparse", "auto"):
        torch.testing.assert_close(outs[mode].spike_logit, outs["dense"].spike_logit, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(outs[mode].soma, outs["dense"].soma, rtol=1e-5, atol=1e-5)
        for k, g in grads["dense"].items():
            torch.testing.assert_close(grads[mode][k], g, rtol=1e-4, atol=1e-5, msg=k)


def test_auto_picks_sparse_only_for_sparse_inputs_without_input_gradient():
    net = nd.nets.TCN(small()).eval()
    sparse_x = sparse_input((2, 40, 50), 0.01, seed=11)
    dense_x = sparse_input((2, 40, 50), 0.5, seed=11)
    assert net.first_layer_path(sparse_x) == "sparse"
    assert net.first_layer_path(dense_x) == "dense"
    with torch.no_grad():
        net(sparse_x)
        assert net.hidden[0].last_path == "sparse"
        net(dense_x)
        assert net.hidden[0].last_path == "dense"
    # the threshold itself
    at = torch.zeros(1, 40, 50)
    at.view(-1)[: int(nd.nets.sparse.SPARSE_MAX_DENSITY * at.numel())] = 1
    assert net.first_layer_path(at) == "sparse"
    at.view(-1)[: int(nd.nets.sparse.SPARSE_MAX_DENSITY * at.numel()) + 1] = 1
    assert net.first_layer_path(at) == "dense"
    # saliency maps need d(output)/d(input), which is dense: auto takes the dense path, forced sparse works
    xg = sparse_x.clone().requires_grad_(True)
    assert net.first_layer_path(xg) == "dense"
    net(xg).soma.sum().backward()
    assert net.hidden[0].last_path == "dense"
    forced = nd.nets.TCN(small(first_layer="sparse")).eval()
    forced.load_state_dict(net.state_dict())
    xs = sparse_x.clone().requires_grad_(True)
    forced(xs).soma.sum().backward()
    assert forced.hidden[0].last_path == "sparse"
    torch.testing.assert_close(xs.grad, xg.grad, rtol=1e-5, atol=1e-6)
    # uint8 and bool inputs work without a float copy
    with torch.no_grad():
        ref = net(sparse_x).soma
        torch.testing.assert_close(net(sparse_x.to(torch.uint8)).soma, ref)
        torch.testing.assert_close(net(sparse_x.bool()).soma, ref)


def test_set_first_layer_switches_without_touching_weights():
    net = randomised(nd.nets.TCN(small(first_layer="dense")), seed=2).eval()
    assert net.hidden[0].conv.weight.is_contiguous()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = sparse_input((2, 40, 30), 0.03, seed=12)
    with torch.no_grad():
        dense_out = net(x).soma
        net.set_first_layer("sparse")
        assert net.config.first_layer == "sparse" and nd.nets.sparse.is_tap_major(net.hidden[0].conv.weight)
        torch.testing.assert_close(net(x).soma, dense_out, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        net.set_first_layer("dense")
        assert net.hidden[0].conv.weight.is_contiguous()
        torch.testing.assert_close(net(x).soma, dense_out)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])
    with pytest.raises(ValueError, match="first_layer"):
        net.set_first_layer("fast")


def test_config_field_is_optional_in_cards_and_validated(tmp_path):
    with pytest.raises(ValueError, match="first_layer"):
        nd.nets.TCNConfig(first_layer="gpu")
    assert "first_layer" not in nd.nets.TCNConfig().to_dict()  # the default: cards look as before
    d = nd.nets.TCNConfig(first_layer="dense").to_dict()
    assert d["first_layer"] == "dense" and nd.nets.TCNConfig.from_dict(json.loads(json.dumps(d))).first_layer == "dense"
    # a card written before the field existed loads, with the default
    net = randomised(nd.nets.TCN(small()), seed=3)
    nd.nets.save_model(tmp_path / "net", net)
    card = json.loads((tmp_path / "net.json").read_text())
    assert "first_layer" not in card["config"]
    loaded = nd.nets.load_model(tmp_path / "net")
    assert loaded.config.first_layer == "auto" and nd.nets.sparse.is_tap_major(loaded.hidden[0].conv.weight)
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_weight_files_do_not_depend_on_the_memory_layout(tmp_path):
    a = randomised(nd.nets.TCN(small()), seed=4)
    b = nd.nets.TCN(small(first_layer="dense"))
    b.load_state_dict(a.state_dict())
    assert not a.hidden[0].conv.weight.is_contiguous() and b.hidden[0].conv.weight.is_contiguous()
    nd.nets.save_model(tmp_path / "a", a)
    nd.nets.save_model(tmp_path / "b", b)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_initialisation_does_not_depend_on_the_path():
    torch.manual_seed(5)
    a = nd.nets.TCN(small())
    torch.manual_seed(5)
    b = nd.nets.TCN(small(first_layer="dense"))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_training_takes_the_same_steps_on_both_paths():
    """A few optimiser steps of the one-unit network on I&F-like inputs (0.3 % active): the weights
    follow the same trajectory whichever way the first layer is computed."""
    rng = np.random.default_rng(0)
    n, c, t = 6, 100, 700
    x = (rng.random((n, c, t)) < 0.003).astype(np.uint8)
    drive = np.cumsum(x[:, :80].sum(1) - x[:, 80:].sum(1), axis=1) * 0.1
    soma = (drive - drive.mean()).astype(np.float32)
    spikes = (rng.random((n, t)) < 0.01).astype(np.float32)
    sampler = nd.fit.InMemoryWindows(x, spikes, soma, warmup_ms=500)
    schedule = nd.fit.Schedule((nd.fit.ScheduleStage(5, 3e-3, (1.0, 0.003, 0.0)),))
    cfg = nd.fit.TrainingConfig(schedule=schedule, batch_size=4, window_ms=500, seed=0, progress=False,
                                  validate_every_steps=100, device="cpu")
    nets, histories = {}, {}
    for mode in ("dense", "auto"):
        torch.manual_seed(0)
        nets[mode] = nd.nets.TCN(nd.nets.one_unit_config().replace(first_layer=mode))
        histories[mode] = nd.fit.train(nets[mode], sampler, None, cfg)
    assert nets["auto"].hidden[0].last_path == "sparse"
    np.testing.assert_allclose(histories["auto"].loss, histories["dense"].loss, rtol=1e-4)
    for k, v in nets["dense"].state_dict().items():
        torch.testing.assert_close(nets["auto"].state_dict()[k], v, rtol=1e-4, atol=1e-5, msg=k)
    before = nd.nets.TCN(nd.nets.one_unit_config()).hidden[0].conv.weight
    assert not torch.allclose(nets["auto"].hidden[0].conv.weight, before)  # it did train


def test_whole_trace_inference_in_chunks_matches_one_pass():
    net = randomised(nd.nets.TCN(small()), seed=6).eval()
    x = sparse_input((2, 40, 300), 0.01, seed=13)
    whole = nd.nets.predict_full_trace(net, x)
    chunked = nd.nets.predict_full_trace(net, x, chunk_ms=70)
    dense = nd.nets.predict_full_trace(_dense_copy(net), x)
    np.testing.assert_allclose(chunked.soma, whole.soma, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(whole.soma, dense.soma, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(whole.spike_probability, dense.spike_probability, rtol=1e-5, atol=1e-6)


def _dense_copy(net):
    other = nd.nets.TCN(net.config.replace(first_layer="dense"))
    other.load_state_dict(net.state_dict())
    return other.eval()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_sparse_on_gpu_equals_dense():  # pragma: no cover - runs only where there is a GPU
    x = sparse_input((2, 30, 50), 0.02, seed=14).cuda()
    w = torch.randn(16, 30, 7, device="cuda")
    torch.testing.assert_close(nd.nets.sparse.sparse_causal_conv1d(x, w), nd.nets.sparse.dense_causal_conv1d(x, w), rtol=1e-5, atol=1e-5)
    assert nd.nets.sparse.choose_path(x, "auto") == "dense"
