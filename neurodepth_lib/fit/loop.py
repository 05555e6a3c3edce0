"""The one training loop: the paper's losses, optimiser and schedule as data, checkpoints and resume.

Losses (paper_facts 2.2), per batch of windows::

    loss = w_spike * BCE(spike_logit, spikes) + w_soma * MSE(soma) + w_dend * MSE(dendritic) + L2

BCE is computed from logits (``binary_cross_entropy_with_logits``), the stable form of the paper's
sigmoid + BCE; means run over every (item, ms) of the window, including the first ``T - 1`` ms whose
receptive field reaches into the zero padding, as in the paper (an ELM, :mod:`neurodepth_lib.nets.elm`,
starts every window from zero state: the same kind of edge, and no window-length rule). The dendritic term
is used only when the model has a dendritic head *and* the batch carries dendritic targets.

L2: the paper's Keras layers carry ``kernel_regularizer=l2(1e-8)`` on every hidden convolution and on
the spike head. We add the same explicit penalty ``1e-8 * sum(w ** 2)`` per kernel to the loss (reported
as its own term) rather than using the optimiser's ``weight_decay``: it is the paper's formulation, it
touches exactly those kernels and no bias or BatchNorm parameter, and students can see its size.

Schedule (:mod:`neurodepth_lib.fit.schedule`): a :class:`Schedule` is a tuple of :class:`ScheduleStage` (steps, learning rate, loss weights).
:func:`paper_schedule` is the paper's 250 schedule epochs of 2,880 steps (720,000 steps);
:func:`schedule_for_scale` compresses the same shape for ``lab`` and ``quick``. The optimiser is Nadam
(``torch.optim.NAdam`` with Keras' epsilon 1e-7; its ``momentum_decay`` 0.004 is Keras' schedule decay).
The paper re-compiled its Keras model at each schedule epoch, which also restarted Nadam's moment
estimates every 2,880 steps; we keep one optimiser for the whole run.

Data: the loop takes any *batch sampler*, an object with ``sample(rng, batch_size, window_ms) -> dict``
returning torch tensors ``x`` (B, C, W) float32, ``spikes`` (B, W) float32 0/1, ``soma`` (B, W) float32
and optionally ``dendritic`` (B, K, W). :mod:`neurodepth_lib.fit.windows` implements it for arrays in memory and for datasets on disk.

Checkpoints (:func:`train` with ``checkpoint_path=P``):

- ``P.ckpt.pt``: everything needed to continue (weights, optimiser state, step, history, the numpy
  sampling RNG state as plain ints, torch's RNG state), written atomically every
  ``checkpoint_every_steps``. Rerunning :func:`train` with the same arguments continues from it and ends
  with the same weights as an uninterrupted run (on the same device and thread count).
- ``P.best.pt`` + ``P.best.json``: the weights with the best validation loss, as a model file that
  :func:`neurodepth_lib.nets.load_model` reads.

Everything is stored as tensors and plain Python types, and loaded with ``weights_only=True``.
"""
from __future__ import annotations

import copy
import io
import math
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .._io import atomic_write_bytes
from ..nets.files import save_model
from ..nets.predict import resolve_device
from ..nets.kinds import is_model, is_recurrent, model_config_from_dict
from ..nets.tcn import TCNOutput
from ..scales import check_scale
from .schedule import Schedule, paper_schedule, schedule_for_scale

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "OPTIMIZERS", "BEST_BY", "TrainingConfig",
           "TrainingHistory", "loss_terms", "l2_penalty", "check_batch", "validation_losses",
           "checkpoint_paths", "train"]


CHECKPOINT_FORMAT = "neurodepth-training-checkpoint"
CHECKPOINT_VERSION = 1

# ---- configuration ----------------------------------------------------------------------------------
OPTIMIZERS = ("nadam", "adam")
BEST_BY = ("spike", "soma", "total")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train (defaults: the paper's batch, window, optimiser, L2 and schedule).

    Parameters
    ----------
    schedule : stages of (steps, learning rate, loss weights); default :func:`paper_schedule`.
    batch_size, window_ms : 8 windows of 400 ms per step (paper).
    optimizer : ``"nadam"`` (paper) or ``"adam"``.
    l2_per_layer : coefficient of the explicit L2 penalty on each penalised kernel (paper 1e-8).
    grad_clip_norm : clip the gradient's global norm to this value; None = no clipping (paper).
    device : ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    seed : seeds the window sampling (numpy) and torch at the start of a fresh run.
    validate_every_steps, n_valid_batches : validation losses on the same ``n_valid_batches`` batches
        (drawn with a fixed seed) every so many steps and at the end; 288 steps = one Keras epoch.
    best_by : which validation loss picks the best weights: ``"spike"`` (the unweighted BCE, the
        quantity the paper's checkpointing watched; default), ``"soma"`` (MSE) or ``"total"`` (weighted
        with the current stage's weights, which change between stages).
    restore_best : load the best weights into the model when training ends.
    checkpoint_every_steps : resumable checkpoint interval (when a checkpoint path is given).
    log_every_steps : training losses are averaged over this many steps per history entry.
    progress : show a tqdm progress bar.
    """

    schedule: Schedule = field(default_factory=paper_schedule)
    batch_size: int = 8
    window_ms: int = 400
    optimizer: str = "nadam"
    l2_per_layer: float = 1e-8
    grad_clip_norm: float | None = None
    device: str = "auto"
    seed: int = 0
    validate_every_steps: int = 288
    n_valid_batches: int = 16
    best_by: str = "spike"
    restore_best: bool = False
    checkpoint_every_steps: int = 288
    log_every_steps: int = 1
    progress: bool = True

    def __post_init__(self):
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(self.schedule).__name__}")
        for name in ("batch_size", "window_ms", "validate_every_steps", "n_valid_batches",
                     "checkpoint_every_steps", "log_every_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.best_by not in BEST_BY:
            raise ValueError(f"best_by must be one of {BEST_BY}, got {self.best_by!r}")
        if not (isinstance(self.l2_per_layer, (int, float)) and math.isfinite(self.l2_per_layer)
                and self.l2_per_layer >= 0):
            raise ValueError(f"l2_per_layer must be a number >= 0, got {self.l2_per_layer!r}")
        if self.grad_clip_norm is not None and not (isinstance(self.grad_clip_norm, (int, float))
                                                    and math.isfinite(self.grad_clip_norm) and self.grad_clip_norm > 0):
            raise ValueError(f"grad_clip_norm must be None or a positive number, got {self.grad_clip_norm!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        # only the spelling here: a config written on a GPU machine must still load on a CPU one
        # (availability is checked when training starts)
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string ('auto', 'cpu', 'cuda', 'cuda:1'...), got {self.device!r}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:1'..., got {self.device!r}") from None

    @classmethod
    def for_scale(cls, scale: str, **overrides) -> "TrainingConfig":
        """Defaults for a scale: the scale's schedule, validation every 1/10 of the run (at least every
        step at quick scale), history entries averaged over 100 steps at paper scale."""
        scale = check_scale(scale)
        schedule = overrides.pop("schedule", None) or schedule_for_scale(scale)
        n = schedule.total_steps
        every = max(1, n // 10) if scale != "paper" else 288
        defaults = dict(schedule=schedule, validate_every_steps=every, checkpoint_every_steps=every,
                        n_valid_batches={"quick": 2, "lab": 16, "paper": 144}[scale],
                        log_every_steps=100 if scale == "paper" else 1)
        return cls(**{**defaults, **overrides})

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["schedule"] = self.schedule.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainingConfig field(s) {unknown}")
        d = dict(data)
        if isinstance(d.get("schedule"), dict):
            d["schedule"] = Schedule.from_dict(d["schedule"])
        return cls(**d)


# fields that change the trajectory of the weights or the history: resuming with other values would
# not continue the same run
_RESUME_FIELDS = ("schedule", "batch_size", "window_ms", "optimizer", "l2_per_layer", "grad_clip_norm",
                  "seed", "validate_every_steps", "n_valid_batches", "best_by", "log_every_steps")


# ---- history ----------------------------------------------------------------------------------------
_TRAIN_KEYS = ("step", "loss", "loss_spike", "loss_soma", "loss_dendritic", "loss_l2", "learning_rate",
               "stage", "wall_time_s")
_VALID_KEYS = ("valid_step", "valid_loss", "valid_spike", "valid_soma", "valid_dendritic")


@dataclass
class TrainingHistory:
    """What happened during training; JSON-able through :meth:`to_dict`.

    Training entries (one per ``log_every_steps`` steps; losses are the mean over those steps): ``step``
    (steps done), ``loss`` (weighted total incl. L2), ``loss_spike`` (BCE), ``loss_soma`` (MSE, mV^2),
    ``loss_dendritic`` (MSE or None), ``loss_l2``, ``learning_rate``, ``stage``, ``wall_time_s`` (since
    the run began, summed over resumed sessions). Validation entries: ``valid_step``, ``valid_loss``
    (weighted with the stage's weights), ``valid_spike``, ``valid_soma``, ``valid_dendritic``
    (unweighted). ``best_step`` / ``best_valid`` locate the best weights by ``best_by``.
    The best weights themselves are in ``best_state_dict`` (not part of :meth:`to_dict`).
    """

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    loss_spike: list = field(default_factory=list)
    loss_soma: list = field(default_factory=list)
    loss_dendritic: list = field(default_factory=list)
    loss_l2: list = field(default_factory=list)
    learning_rate: list = field(default_factory=list)
    stage: list = field(default_factory=list)
    wall_time_s: list = field(default_factory=list)
    valid_step: list = field(default_factory=list)
    valid_loss: list = field(default_factory=list)
    valid_spike: list = field(default_factory=list)
    valid_soma: list = field(default_factory=list)
    valid_dendritic: list = field(default_factory=list)
    best_by: str = "spike"
    best_step: int | None = None
    best_valid: float | None = None
    total_steps: int = 0
    steps_done: int = 0
    completed: bool = False
    resumed_at_steps: list = field(default_factory=list)
    device: str = ""
    model_name: str = ""
    best_state_dict: dict | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        d = {f.name: copy.copy(getattr(self, f.name)) for f in fields(self) if f.name != "best_state_dict"}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingHistory":
        known = {f.name for f in fields(cls)} - {"best_state_dict"}
        return cls(**{k: copy.copy(v) for k, v in data.items() if k in known})

    @property
    def wall_time_total_s(self) -> float:
        return float(self.wall_time_s[-1]) if self.wall_time_s else 0.0


# ---- losses -----------------------------------------------------------------------------------------
def loss_terms(out: TCNOutput, batch: dict, loss_weights) -> dict:
    """The paper's loss terms for one batch: ``spike`` (BCE from logits), ``soma`` (MSE),
    ``dendritic`` (MSE, or None when the model has no dendritic head or the batch no targets) and their
    weighted sum ``total`` (without L2)."""
    w_spike, w_soma, w_dend = loss_weights
    spike = F.binary_cross_entropy_with_logits(out.spike_logit, batch["spikes"])
    soma = F.mse_loss(out.soma, batch["soma"])
    dend = None
    if out.dendritic is not None and batch.get("dendritic") is not None:
        dend = F.mse_loss(out.dendritic, batch["dendritic"])
    total = w_spike * spike + w_soma * soma
    if dend is not None:
        total = total + w_dend * dend
    return {"total": total, "spike": spike, "soma": soma, "dendritic": dend}


def l2_penalty(model: torch.nn.Module, coefficient: float) -> torch.Tensor:
    """``coefficient * sum(w ** 2)`` over the kernels the paper penalises (:meth:`TCN.l2_weights`; an ELM's
    :meth:`~neurodepth_lib.nets.ELM.l2_weights`: its MLP weights and spike read-out)."""
    weights = model.l2_weights()
    return coefficient * sum(w.pow(2).sum() for w in weights)


def check_batch(batch, config, batch_size: int, window_ms: int, where: str = "sampler",
                values: bool = False) -> None:
    """Raise ``ValueError`` unless ``batch`` is what the loop needs (see the module docstring)."""
    if not isinstance(batch, dict):
        raise ValueError(f"{where}.sample must return a dict with 'x', 'spikes', 'soma', got {type(batch).__name__}")
    missing = [k for k in ("x", "spikes", "soma") if k not in batch]
    if missing:
        raise ValueError(f"{where}.sample returned a dict without {missing} (keys: {sorted(batch)})")
    for k, v in batch.items():
        if v is not None and not isinstance(v, torch.Tensor):
            raise ValueError(f"{where}.sample returned {k!r} as {type(v).__name__}; torch tensors are needed")
    b, w = int(batch_size), int(window_ms)
    expect = {"x": (b, config.n_inputs, w), "spikes": (b, w), "soma": (b, w)}
    for k, shape in expect.items():
        if tuple(batch[k].shape) != shape:
            raise ValueError(f"{where}.sample returned {k!r} of shape {tuple(batch[k].shape)}, expected {shape} "
                             f"(batch {b}, {config.n_inputs} inputs, window {w} ms)")
    dend = batch.get("dendritic")
    if dend is not None and config.n_dendritic > 0 and tuple(dend.shape) != (b, config.n_dendritic, w):
        raise ValueError(f"{where}.sample returned 'dendritic' of shape {tuple(dend.shape)}, expected "
                         f"{(b, config.n_dendritic, w)} (the model's dendritic head has {config.n_dendritic} channels)")
    if values:
        s = batch["spikes"]
        if not torch.all((s == 0) | (s == 1)):
            raise ValueError(f"{where}.sample returned 'spikes' with values other than 0 and 1")
        for k in ("x", "soma", "dendritic"):
            v = batch.get(k)
            if v is not None and v.is_floating_point() and not torch.isfinite(v).all():
                raise ValueError(f"{where}.sample returned {k!r} with NaN or inf values")


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True).float() if isinstance(v, torch.Tensor) else v)
            for k, v in batch.items()}


@torch.no_grad()
def validation_losses(model: torch.nn.Module, sampler, *, n_batches: int, batch_size: int, window_ms: int,
                      loss_weights, seed: int = 0, device=None) -> dict:
    """Mean unweighted losses (``spike``, ``soma``, ``dendritic``) and the weighted ``total`` over
    ``n_batches`` batches drawn with a generator seeded by ``seed`` (the same batches on every call).
    The model is evaluated in eval mode and put back in its former mode."""
    device = next(model.parameters()).device if device is None else resolve_device(device)
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    sums = {"total": 0.0, "spike": 0.0, "soma": 0.0, "dendritic": 0.0}
    has_dend = False
    try:
        for _ in range(int(n_batches)):
            batch = sampler.sample(rng, batch_size, window_ms)
            check_batch(batch, model.config, batch_size, window_ms, where="valid_sampler")
            batch = _to_device(batch, device)
            terms = loss_terms(model(batch["x"]), batch, loss_weights)
            for k in sums:
                if terms[k] is not None:
                    sums[k] += float(terms[k])
            has_dend = has_dend or terms["dendritic"] is not None
    finally:
        model.train(was_training)
    out = {k: v / int(n_batches) for k, v in sums.items()}
    if not has_dend:
        out["dendritic"] = None
    return out


# ---- the loop ---------------------------------------------------------------------------------------
def checkpoint_paths(checkpoint_path: str | os.PathLike) -> tuple[Path, Path]:
    """``(resumable checkpoint, best-model prefix)`` for a checkpoint prefix: ``P.ckpt.pt`` and ``P.best``
    (the latter written as ``P.best.pt`` + ``P.best.json`` by :func:`neurodepth_lib.nets.save_model`)."""
    p = Path(checkpoint_path)
    if p.name.endswith(".ckpt.pt"):
        p = p.with_name(p.name[: -len(".ckpt.pt")])
    elif p.suffix == ".pt":
        p = p.with_suffix("")
    return p.with_name(p.name + ".ckpt.pt"), p.with_name(p.name + ".best")


def _make_optimizer(model: torch.nn.Module, config: TrainingConfig, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "nadam":
        return torch.optim.NAdam(model.parameters(), lr=lr, eps=1e-7)  # Keras' epsilon
    return torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)


def _validate_arguments(model, train_sampler, valid_sampler, config: TrainingConfig) -> None:
    if not is_model(model):
        raise TypeError(f"model must be a neurodepth_lib.nets.TCN or ELM, got {type(model).__name__}")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    t_rf = model.config.receptive_field_ms
    if config.window_ms < t_rf and not is_recurrent(model):  # a recurrent model's window needs no cover
        raise ValueError(f"window_ms={config.window_ms} is shorter than the model's receptive field "
                         f"({t_rf} ms): no output would see its whole input; use window_ms >= {t_rf}")
    for name, sampler in (("train_sampler", train_sampler), ("valid_sampler", valid_sampler)):
        if sampler is None:
            if name == "train_sampler":
                raise ValueError("train_sampler is required")
            continue
        if not callable(getattr(sampler, "sample", None)):
            raise TypeError(f"{name} must have a method sample(rng, batch_size, window_ms), "
                            f"got {type(sampler).__name__}")
        duration = getattr(sampler, "duration_ms", None)
        if isinstance(duration, (int, np.integer)) and config.window_ms > duration:
            raise ValueError(f"window_ms={config.window_ms} is longer than the trials of {name} ({duration} ms)")
        n_ch = getattr(sampler, "n_channels", None)
        if isinstance(n_ch, (int, np.integer)) and n_ch != model.config.n_inputs:
            raise ValueError(f"{name} serves {n_ch} input channels but the model expects {model.config.n_inputs}")
        # one probe batch, drawn from its own generator so that the training stream is untouched
        probe = sampler.sample(np.random.default_rng([config.seed, 99]), config.batch_size, config.window_ms)
        check_batch(probe, model.config, config.batch_size, config.window_ms, where=name, values=True)


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save_checkpoint(path: Path, *, model, optimizer, step, history, rng, accum, config) -> None:
    ckpt = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(), "training_config": config.to_dict(),
        "model_state": _cpu_state(model), "optimizer_state": optimizer.state_dict(),
        "step": int(step), "history": history.to_dict(),
        "best_state": history.best_state_dict,
        "numpy_rng_state": rng.bit_generator.state,  # a dict of plain ints and strings
        "torch_rng_state": torch.get_rng_state(),
        "cuda_rng_state": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "log_accumulator": dict(accum),
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, model: torch.nn.Module, config: TrainingConfig) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file; atomic writes make this rare
        raise ValueError(f"cannot read training checkpoint {path}: {err}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a neurodepth training checkpoint")
    if ckpt.get("model_config") != model.config.to_dict():
        raise ValueError(f"checkpoint {path} was made for model {model_config_from_dict(ckpt['model_config']).name} "
                         f"with another configuration than {model.config.name}; pass resume=False or "
                         f"another checkpoint_path")
    saved = TrainingConfig.from_dict(ckpt["training_config"])
    diff = [k for k in _RESUME_FIELDS if getattr(saved, k) != getattr(config, k)]
    if diff:
        raise ValueError(f"checkpoint {path} was made with different training settings ({', '.join(diff)}); "
                         f"resuming would not continue the same run: pass resume=False or another checkpoint_path")
    return ckpt


def train(model: torch.nn.Module, train_sampler, valid_sampler=None, config: TrainingConfig | None = None,
          checkpoint_path: str | os.PathLike | None = None, resume: bool = True) -> TrainingHistory:
    """Train ``model`` on windows from ``train_sampler`` following ``config.schedule``.

    Parameters
    ----------
    model : a :class:`~neurodepth_lib.nets.TCN` or :class:`~neurodepth_lib.nets.ELM`; trained in place and
        moved to ``config.device``.
    train_sampler, valid_sampler : batch samplers (see the module docstring); without a validation
        sampler no validation losses are recorded and no best weights are kept.
    config : :class:`TrainingConfig`; default the paper's settings (720,000 steps: give a shorter schedule,
        e.g. ``TrainingConfig.for_scale("quick")``).
    checkpoint_path : prefix of the checkpoint files (:func:`checkpoint_paths`); None = no files.
    resume : continue from ``<prefix>.ckpt.pt`` when it exists (an error if it belongs to another run);
        False starts afresh and overwrites it.

    Returns
    -------
    :class:`TrainingHistory`. Arguments are checked (including one probe batch from each sampler)
    before the first step. The model is left in eval mode on ``config.device``, with the last weights
    (or the best ones when ``config.restore_best``). A fresh run calls ``torch.manual_seed(config.seed)``.
    """
    config = TrainingConfig() if config is None else config
    _validate_arguments(model, train_sampler, valid_sampler, config)
    device = resolve_device(config.device)
    model.to(device)
    schedule = config.schedule
    total = schedule.total_steps
    optimizer = _make_optimizer(model, config, schedule.stages[0].learning_rate)
    rng = np.random.default_rng(config.seed)
    history = TrainingHistory(best_by=config.best_by, total_steps=total, device=str(device),
                              model_name=model.config.name)
    accum = {"n": 0, "loss": 0.0, "spike": 0.0, "soma": 0.0, "dendritic": 0.0, "l2": 0.0, "n_dend": 0}
    step, elapsed_before_s = 0, 0.0

    ckpt_file = best_prefix = None
    if checkpoint_path is not None:
        ckpt_file, best_prefix = checkpoint_paths(checkpoint_path)
    if ckpt_file is not None and resume and ckpt_file.exists():
        ckpt = _load_checkpoint(ckpt_file, model, config)
        model.load_state_dict(ckpt["model_state"])
        optimizer.load_state_dict(ckpt["optimizer_state"])
        step = int(ckpt["step"])
        history = TrainingHistory.from_dict(ckpt["history"])
        history.best_state_dict = ckpt.get("best_state")
        history.device = str(device)
        rng.bit_generator.state = ckpt["numpy_rng_state"]
        torch.set_rng_state(ckpt["torch_rng_state"])
        if ckpt.get("cuda_rng_state") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng_state"])
        accum = dict(ckpt["log_accumulator"])
        elapsed_before_s = history.wall_time_total_s
        if step < total:
            history.resumed_at_steps.append(step)
    else:
        torch.manual_seed(config.seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(config.seed)

    t_start = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before_s + time.perf_counter() - t_start

    def validate(stage_weights) -> None:
        v = validation_losses(model, valid_sampler, n_batches=config.n_valid_batches,
                              batch_size=config.batch_size, window_ms=config.window_ms,
                              loss_weights=stage_weights, seed=config.seed + 1_000_003, device=device)
        history.valid_step.append(step)
        history.valid_loss.append(v["total"])
        history.valid_spike.append(v["spike"])
        history.valid_soma.append(v["soma"])
        history.valid_dendritic.append(v["dendritic"])
        value = {"spike": v["spike"], "soma": v["soma"], "total": v["total"]}[config.best_by]
        if math.isfinite(value) and (history.best_valid is None or value < history.best_valid):
            history.best_valid, history.best_step = float(value), int(step)
            history.best_state_dict = _cpu_state(model)
            if best_prefix is not None:
                save_model(best_prefix, model, {
                    "training": {"step": int(step), "best_by": config.best_by, "valid": v,
                                 "config": config.to_dict()}})

    progress = None
    if config.progress and step < total:
        from tqdm.auto import tqdm
        progress = tqdm(total=total, initial=step, desc=f"training {model.config.name}", unit="step")
    model.train()
    try:
        while step < total:
            stage_index, stage = schedule.stage_at(step)
            for group in optimizer.param_groups:
                group["lr"] = stage.learning_rate
            batch = train_sampler.sample(rng, config.batch_size, config.window_ms)
            check_batch(batch, model.config, config.batch_size, config.window_ms, where="train_sampler")
            batch = _to_device(batch, device)
            out = model(batch["x"])
            terms = loss_terms(out, batch, stage.loss_weights)
            l2 = l2_penalty(model, config.l2_per_layer) if config.l2_per_layer > 0 else torch.zeros((), device=device)
            loss = terms["total"] + l2
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} at step {step} (stage {stage_index}, "
                                         f"lr {stage.learning_rate:g}); try a smaller learning rate or grad_clip_norm")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            optimizer.step()
            step += 1

            accum["n"] += 1
            accum["loss"] += loss.item()
            accum["spike"] += terms["spike"].item()
            accum["soma"] += terms["soma"].item()
            accum["l2"] += l2.item()
            if terms["dendritic"] is not None:
                accum["dendritic"] += terms["dendritic"].item()
                accum["n_dend"] += 1
            if step % config.log_every_steps == 0 or step == total:
                n = accum["n"]
                history.step.append(step)
                history.loss.append(accum["loss"] / n)
                history.loss_spike.append(accum["spike"] / n)
                history.loss_soma.append(accum["soma"] / n)
                history.loss_dendritic.append(accum["dendritic"] / accum["n_dend"] if accum["n_dend"] else None)
                history.loss_l2.append(accum["l2"] / n)
                history.learning_rate.append(stage.learning_rate)
                history.stage.append(stage_index)
                history.wall_time_s.append(elapsed())
                accum = {k: 0 if k in ("n", "n_dend") else 0.0 for k in accum}
                if progress is not None:
                    progress.set_postfix(loss=f"{history.loss[-1]:.4g}", stage=stage_index, refresh=False)
            if valid_sampler is not None and (step % config.validate_every_steps == 0 or step == total):
                validate(stage.loss_weights)
            history.steps_done = step
            history.completed = step == total
            if ckpt_file is not None and (step % config.checkpoint_every_steps == 0 or step == total):
                _save_checkpoint(ckpt_file, model=model, optimizer=optimizer, step=step, history=history,
                                 rng=rng, accum=accum, config=config)
            if progress is not None:
                progress.update(1)
    finally:
        if progress is not None:
            progress.close()
    history.steps_done = step
    history.completed = step == total
    if config.restore_best and history.best_state_dict is not None:
        model.load_state_dict(history.best_state_dict)
    model.eval()
    return history


