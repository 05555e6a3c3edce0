"""Tests of the training loop: schedule, losses, window sampling, learning, checkpoints and resume."""
import json

import numpy as np
import pytest
import torch

import neurodepth_lib as nd

torch.set_num_threads(1)

N_IN = 10


def toy_neuron(n_trials=16, duration_ms=300, seed=0):
    """A causal toy neuron: the 'soma' is an exponentially filtered weighted sum of the inputs
    (tau 5 ms), and it 'spikes' where that exceeds a threshold. A small TCN can learn it exactly."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n_trials, N_IN, duration_ms)) < 0.08).astype(np.uint8)
    w = np.linspace(-1.0, 2.0, N_IN)
    drive = np.einsum("c,nct->nt", w, x.astype(float))
    kernel = np.exp(-np.arange(15) / 5.0)
    soma = np.stack([np.convolve(d, kernel)[:duration_ms] for d in drive])
    spikes = (soma > np.quantile(soma, 0.95)).astype(np.float32)
    return x, spikes, soma.astype(np.float32)


def tiny_config(**kw):
    base = dict(n_inputs=N_IN, kernel_sizes=(15, 3), widths=(8, 8))
    base.update(kw)
    return nd.nets.TCNConfig(**base)


def one_stage(n_steps, lr=1e-2, weights=(1.0, 0.1, 0.0)):
    return nd.fit.Schedule((nd.fit.ScheduleStage(n_steps, lr, weights),))


def fast_config(schedule, **kw):
    base = dict(schedule=schedule, batch_size=4, window_ms=60, device="cpu", progress=False,
                validate_every_steps=10, n_valid_batches=2, checkpoint_every_steps=10)
    base.update(kw)
    return nd.fit.TrainingConfig(**base)


class KilledAt:
    """Wraps a sampler and raises, like a killed process, on its ``n``-th call."""

    def __init__(self, sampler, n):
        self.sampler, self.n, self.calls = sampler, n, 0

    def sample(self, rng, batch_size, window_ms):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt("killed")
        return self.sampler.sample(rng, batch_size, window_ms)


# ---- schedule ---------------------------------------------------------------------------------------
def test_paper_schedule_matches_the_table():
    s = nd.fit.paper_schedule()
    assert s.total_steps == 720_000 and len(s.stages) == 5
    assert [st.n_steps for st in s.stages] == [40 * 2880] * 4 + [90 * 2880]
    assert [st.learning_rate for st in s.stages] == [1e-4, 3e-5, 1e-5, 3e-6, 1e-6]
    assert s.stages[0].loss_weights == (1.0, 0.02, 5e-6)
    assert s.stages[4].loss_weights == (9.0, 0.003, 1e-9)
    assert s.stage_at(0)[0] == 0 and s.stage_at(115_199)[0] == 0 and s.stage_at(115_200)[0] == 1
    assert s.stage_at(719_999)[0] == 4
    with pytest.raises(ValueError, match="outside the schedule"):
        s.stage_at(720_000)
    assert nd.fit.Schedule.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert nd.fit.paper_schedule(steps_per_epoch=10).total_steps == 2500


def test_compressed_schedules_keep_the_shape():
    for scale, steps in (("quick", 50), ("lab", 2000)):
        s = nd.fit.schedule_for_scale(scale)
        assert s.total_steps == steps
        ratios = [st.learning_rate / s.stages[0].learning_rate for st in s.stages]
        np.testing.assert_allclose(ratios, [1, 0.3, 0.1, 0.03, 0.01])
        assert [st.loss_weights for st in s.stages] == [w for _, _, w in nd.fit.PAPER_STAGES]
        assert s.stages[-1].n_steps == max(st.n_steps for st in s.stages)
    assert nd.fit.schedule_for_scale("lab").stages[0].learning_rate == 1e-3
    assert nd.fit.schedule_for_scale("paper") == nd.fit.paper_schedule()
    s = nd.fit.compressed_schedule(7)
    assert s.total_steps == 7 and all(st.n_steps >= 1 for st in s.stages)
    with pytest.raises(ValueError, match="total_steps"):
        nd.fit.compressed_schedule(3)
    with pytest.raises(ValueError, match="unknown scale"):
        nd.fit.schedule_for_scale("huge")


@pytest.mark.parametrize("make, match", [
    (lambda: nd.fit.Schedule(()), "at least one stage"),
    (lambda: nd.fit.ScheduleStage(0, 1e-3), "n_steps"),
    (lambda: nd.fit.ScheduleStage(5, -1e-3), "learning_rate"),
    (lambda: nd.fit.ScheduleStage(5, 1e-3, (1.0, 0.1)), "loss_weights"),
    (lambda: nd.fit.ScheduleStage(5, 1e-3, (0, 0, 0)), "loss_weights"),
    (lambda: nd.fit.TrainingConfig(batch_size=0), "batch_size"),
    (lambda: nd.fit.TrainingConfig(optimizer="sgd"), "optimizer"),
    (lambda: nd.fit.TrainingConfig(best_by="auc"), "best_by"),
    (lambda: nd.fit.TrainingConfig(grad_clip_norm=-1.0), "grad_clip_norm"),
    (lambda: nd.fit.TrainingConfig(device="tpu-9"), "device"),
])
def test_bad_settings_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_training_config_round_trip():
    c = nd.fit.TrainingConfig.for_scale("quick", seed=3, grad_clip_norm=1.0)
    assert c.schedule.total_steps == 50 and c.validate_every_steps == 5 and c.seed == 3
    assert nd.fit.TrainingConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert nd.fit.TrainingConfig.for_scale("paper").log_every_steps == 100


# ---- losses -----------------------------------------------------------------------------------------
def test_loss_terms_are_the_papers_losses():
    g = torch.Generator().manual_seed(0)
    logits, soma, dend = torch.randn(2, 7, generator=g), torch.randn(2, 7, generator=g), torch.randn(2, 3, 7, generator=g)
    batch = {"spikes": (torch.rand(2, 7, generator=g) < 0.3).float(), "soma": torch.randn(2, 7, generator=g),
             "dendritic": torch.randn(2, 3, 7, generator=g)}
    out = nd.nets.TCNOutput(logits, soma, dend)
    t = nd.fit.loss_terms(out, batch, (2.0, 0.5, 0.1))
    p = torch.sigmoid(logits)
    bce = -(batch["spikes"] * p.log() + (1 - batch["spikes"]) * (1 - p).log()).mean()
    assert torch.allclose(t["spike"], bce, atol=1e-6)
    assert torch.allclose(t["soma"], ((soma - batch["soma"]) ** 2).mean())
    assert torch.allclose(t["total"], 2 * bce + 0.5 * t["soma"] + 0.1 * t["dendritic"], atol=1e-6)
    # no dendritic head, or no dendritic target: no dendritic term
    assert nd.fit.loss_terms(nd.nets.TCNOutput(logits, soma, None), batch, (1, 1, 1))["dendritic"] is None
    no_target = {k: v for k, v in batch.items() if k != "dendritic"}
    assert nd.fit.loss_terms(out, no_target, (1, 1, 1))["dendritic"] is None


def test_l2_penalty_covers_hidden_kernels_and_spike_head():
    net = nd.nets.TCN(tiny_config()).requires_grad_(False)
    expected = sum(float((b.conv.weight ** 2).sum()) for b in net.hidden) + float((net.spike_head.weight ** 2).sum())
    assert abs(float(nd.fit.l2_penalty(net, 1e-8)) - 1e-8 * expected) < 1e-15


# ---- sampling ---------------------------------------------------------------------------------------
def test_in_memory_windows_follow_the_paper():
    x, spikes, soma = toy_neuron(n_trials=5, duration_ms=200)
    dend = np.random.default_rng(1).normal(size=(5, 3, 200)).astype(np.float32)
    s = nd.fit.InMemoryWindows(x, spikes, soma, dend, warmup_ms=120)
    assert (s.n_trials, s.n_channels, s.duration_ms, s.n_dendritic) == (5, N_IN, 200, 3)
    assert s.end_range(50) == (120, 200) and s.end_range(150) == (150, 200)  # half-open: [lo, T)
    rng = np.random.default_rng(0)
    b = s.sample(rng, 16, 50)
    assert b["x"].shape == (16, N_IN, 50) and b["x"].dtype == torch.float32
    assert b["spikes"].shape == (16, 50) and b["dendritic"].shape == (16, 3, 50)
    # each window is a verbatim slice [end - W, end) of one trial ending in the allowed range
    found = []
    for i in range(16):
        hits = [(n, e) for n in range(5) for e in range(120, 201)
                if np.array_equal(soma[n, e - 50:e], b["soma"][i].numpy())]
        assert hits, f"window {i} is not a slice of any trial"
        n, e = hits[0]
        assert np.array_equal(x[n, :, e - 50:e], b["x"][i].numpy())
        assert np.array_equal(dend[n, :, e - 50:e], b["dendritic"][i].numpy())
        found.append(e)
    assert len(set(found)) == 16  # window ends distinct within a batch when possible
    # more items than possible ends: drawn with replacement instead of failing
    assert s.sample(rng, 100, 150)["x"].shape == (100, N_IN, 150)
    full = s.full_trial(2)
    assert np.array_equal(full["soma"][0].numpy(), soma[2])


def test_in_memory_windows_errors():
    x, spikes, soma = toy_neuron(n_trials=3, duration_ms=100)
    with pytest.raises(ValueError, match="spikes must have shape"):
        nd.fit.InMemoryWindows(x, spikes[:, :50], soma, warmup_ms=0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        nd.fit.InMemoryWindows(x, spikes * 2, soma, warmup_ms=0)
    with pytest.raises(ValueError, match="finite"):
        nd.fit.InMemoryWindows(x, spikes, np.full_like(soma, np.nan), warmup_ms=0)
    with pytest.raises(ValueError, match="warmup_ms"):
        nd.fit.InMemoryWindows(x, spikes, soma)  # 500 ms warm-up does not fit 100-ms trials
    with pytest.raises(ValueError, match=r"inputs must have shape \(trials, channels, time\)"):
        nd.fit.InMemoryWindows(x[0], spikes, soma, warmup_ms=0)
    s = nd.fit.InMemoryWindows(x, spikes, soma, warmup_ms=0)
    with pytest.raises(ValueError, match="longer than the trials"):
        s.sample(np.random.default_rng(0), 2, 101)


# ---- training ---------------------------------------------------------------------------------------
def samplers(seed=0):
    x, spikes, soma = toy_neuron(seed=seed)
    xv, sv, vv = toy_neuron(n_trials=4, seed=seed + 100)
    return nd.fit.InMemoryWindows(x, spikes, soma, warmup_ms=60), nd.fit.InMemoryWindows(xv, sv, vv, warmup_ms=60)


def test_a_tiny_model_learns_the_toy_neuron():
    torch.manual_seed(0)
    net = nd.nets.TCN(tiny_config())
    train_s, valid_s = samplers()
    cfg = fast_config(one_stage(150), validate_every_steps=25)
    before = nd.fit.validation_losses(net, valid_s, n_batches=2, batch_size=4, window_ms=60,
                                  loss_weights=(1.0, 0.1, 0.0), seed=cfg.seed + 1_000_003)
    h = nd.fit.train(net, train_s, valid_s, cfg)
    assert h.completed and h.steps_done == 150 and len(h.step) == 150
    assert h.valid_step == [25, 50, 75, 100, 125, 150]
    # the soma target is a linear filter of the inputs: its MSE should collapse, and the spike BCE drop
    assert h.valid_soma[-1] < 0.2 * before["soma"], (before, h.valid_soma)
    assert h.valid_spike[-1] < 0.6 * before["spike"], (before, h.valid_spike)
    assert np.mean(h.loss[-10:]) < 0.5 * np.mean(h.loss[:10])
    assert h.best_step is not None and h.best_state_dict is not None
    json.dumps(h.to_dict())  # JSON-able
    assert not net.training


def test_resume_after_a_kill_gives_the_same_weights(tmp_path):
    schedule = nd.fit.Schedule((nd.fit.ScheduleStage(7, 5e-3, (1.0, 0.1, 0.0)), nd.fit.ScheduleStage(7, 1e-3, (2.0, 0.05, 0.0))))
    cfg = fast_config(schedule, validate_every_steps=3, checkpoint_every_steps=4, log_every_steps=3)
    train_s, valid_s = samplers()

    torch.manual_seed(1)
    straight = nd.nets.TCN(tiny_config())
    h_straight = nd.fit.train(straight, train_s, valid_s, cfg, checkpoint_path=tmp_path / "a")

    torch.manual_seed(1)
    killed = nd.nets.TCN(tiny_config())
    # call 1 is the probe batch; calls 2.. are steps 1..: dies during step 10, after the checkpoint at 8
    with pytest.raises(KeyboardInterrupt):
        nd.fit.train(killed, KilledAt(train_s, 11), valid_s, cfg, checkpoint_path=tmp_path / "b")
    ckpt, best = nd.fit.checkpoint_paths(tmp_path / "b")
    assert ckpt.exists() and best.with_name(best.name + ".json").exists()
    torch.manual_seed(123)  # a differently initialised model: everything must come from the checkpoint
    resumed = nd.nets.TCN(tiny_config())
    h_resumed = nd.fit.train(resumed, train_s, valid_s, cfg, checkpoint_path=tmp_path / "b")

    assert h_resumed.resumed_at_steps == [8]
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{k} differs after resume"
    for key in ("step", "loss", "loss_spike", "loss_soma", "learning_rate", "stage", "valid_step",
                "valid_loss", "best_step", "best_valid"):
        assert getattr(h_straight, key) == getattr(h_resumed, key), key
    # a finished run is not repeated
    again = nd.fit.train(nd.nets.TCN(tiny_config()), train_s, valid_s, cfg, checkpoint_path=tmp_path / "b")
    assert again.completed and again.step == h_straight.step
    # the best weights are a model file
    best_model = nd.nets.load_model(best)
    assert best_model.card["training"]["step"] == h_straight.best_step
    # another run's settings do not silently continue this one
    with pytest.raises(ValueError, match="different training settings"):
        nd.fit.train(nd.nets.TCN(tiny_config()), train_s, valid_s, fast_config(schedule, seed=5),
                 checkpoint_path=tmp_path / "b")
    with pytest.raises(ValueError, match="another configuration"):
        nd.fit.train(nd.nets.TCN(tiny_config(widths=5)), train_s, valid_s, cfg, checkpoint_path=tmp_path / "b")


def test_dendritic_head_and_restore_best(tmp_path):
    x, spikes, soma = toy_neuron(n_trials=6)
    dend = np.stack([soma, -soma], axis=1) / 5
    s = nd.fit.InMemoryWindows(x, spikes, soma, dend, warmup_ms=60)
    net = nd.nets.TCN(tiny_config(n_dendritic=2))
    cfg = fast_config(one_stage(6, weights=(1.0, 0.1, 1.0)), validate_every_steps=2, restore_best=True,
                      best_by="total")
    h = nd.fit.train(net, s, s, cfg)
    assert all(v is not None for v in h.loss_dendritic) and all(v is not None for v in h.valid_dendritic)
    best = h.best_state_dict
    for k, v in net.state_dict().items():
        assert torch.equal(v, best[k])


class BadSampler:
    def __init__(self, fix):
        self.fix = fix

    def sample(self, rng, batch_size, window_ms):
        b = {"x": torch.zeros(batch_size, N_IN, window_ms), "spikes": torch.zeros(batch_size, window_ms),
             "soma": torch.zeros(batch_size, window_ms)}
        self.fix(b)
        return b


@pytest.mark.parametrize("fix, match", [
    (lambda b: b.update(x=torch.zeros(4, N_IN + 1, 60)), r"'x' of shape \(4, 11, 60\), expected \(4, 10, 60\)"),
    (lambda b: b.update(soma=torch.zeros(4, 59)), "'soma' of shape"),
    (lambda b: b.pop("spikes"), "without"),
    (lambda b: b.update(spikes=torch.full((4, 60), 0.5)), "values other than 0 and 1"),
    (lambda b: b.update(soma=torch.full((4, 60), float("nan"))), "NaN"),
    (lambda b: b.update(soma=np.zeros((4, 60))), "torch tensors"),
])
def test_sampler_returning_wrong_batches_is_caught_before_training(fix, match):
    with pytest.raises(ValueError, match=match):
        nd.fit.train(nd.nets.TCN(tiny_config()), BadSampler(fix), None, fast_config(one_stage(3)))


def test_argument_errors():
    train_s, _ = samplers()
    net = nd.nets.TCN(tiny_config())
    with pytest.raises(ValueError, match="longer than the trials"):
        nd.fit.train(net, train_s, None, fast_config(one_stage(3), window_ms=400))
    with pytest.raises(ValueError, match="shorter than the model's receptive field"):
        nd.fit.train(net, train_s, None, fast_config(one_stage(3), window_ms=10))
    with pytest.raises(TypeError, match="sample"):
        nd.fit.train(net, object(), None, fast_config(one_stage(3)))
    with pytest.raises(ValueError, match="expects 12"):
        nd.fit.train(nd.nets.TCN(tiny_config(n_inputs=12)), train_s, None, fast_config(one_stage(3)))
    with pytest.raises(FloatingPointError, match="loss became"):
        nd.fit.train(net, train_s, None, fast_config(one_stage(3, lr=1e30)))
