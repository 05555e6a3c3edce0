"""The one training loop: the paper's losses, optimiser and schedule as data, checkpoints and resume.

Losses (paper_facts 2.2), per batch of windows::

    loss = w_spike * BCE(spike_logit, spikes) + w_soma * MSE(soma) + w_dend * MSE(dendritic) + L2

BCE is computed from logits (``binary_cross_entropy_with_logits``), the stable form of the paper's
sigmoid + BCE; means run over every (item, ms) of the window, including the first ``T - 1`` ms whose
receptive field reaches into the zero padding, as in the paper. The dendritic term is used only when the
model has a dendritic head *and* the batch carries dendritic targets.

L2: the paper's Keras layers carry ``kernel_regularizer=l2(1e-8)`` on every hidden convolution and on
the spike head. We add the same explicit penalty ``1e-8 * sum(w ** 2)`` per kernel to the loss (reported
as its own term) rather than using the optimiser's ``weight_decay``: it is the paper's formulation, it
touches exactly those kernels and no bias or BatchNorm parameter, and students can see its size.

Schedule: a :class:`Schedule` is a tuple of :class:`ScheduleStage` (steps, learning rate, loss weights).
:func:`paper_schedule` is the paper's 250 schedule epochs of 2,880 steps (720,000 steps);
:func:`schedule_for_scale` compresses the same shape for ``lab`` and ``quick``. The optimiser is Nadam
(``torch.optim.NAdam`` with Keras' epsilon 1e-7; its ``momentum_decay`` 0.004 is Keras' schedule decay).
The paper re-compiled its Keras model at each schedule epoch, which also restarted Nadam's moment
estimates every 2,880 steps; we keep one optimiser for the whole run.

Data: the loop takes any *batch sampler*, an object with ``sample(rng, batch_size, window_ms) -> dict``
returning torch tensors ``x`` (B, C, W) float32, ``spikes`` (B, W) float32 0/1, ``soma`` (B, W) float32
and optionally ``dendritic`` (B, K, W). :class:`InMemoryWindows` implements it for arrays in memory;
:class:`neurodepth_lib.datasets.WindowSampler` for datasets on disk.

Checkpoints (:func:`train` with ``checkpoint_path=P``):

- ``P.ckpt.pt``: everything needed to continue (weights, optimiser state, step, history, the numpy
  sampling RNG state as plain ints, torch's RNG state), written atomically every
  ``checkpoint_every_steps``. Rerunning :func:`train` with the same arguments continues from it and ends
  with the same weights as an uninterrupted run (on the same device and thread count).
- ``P.best.pt`` + ``P.best.json``: the weights with the best validation loss, as a model file that
  :func:`neurodepth_lib.models.load_model` reads.

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

from .models import TCN, TCNConfig, TCNOutput, _atomic_write, resolve_device, save_model
from .scales import check_scale

__all__ = [
    "ScheduleStage", "Schedule", "PAPER_STAGES", "paper_schedule", "compressed_schedule",
    "schedule_for_scale", "TrainingConfig", "TrainingHistory", "InMemoryWindows", "loss_terms",
    "l2_penalty", "validation_losses", "train", "checkpoint_paths", "check_batch",
]

CHECKPOINT_FORMAT = "neurodepth-training-checkpoint"
CHECKPOINT_VERSION = 1

# (schedule epochs, learning rate, loss weights [spike, soma, dendritic]); paper_facts 2.2
PAPER_STAGES = (
    (40, 1e-4, (1.0, 0.02, 5e-6)),
    (40, 3e-5, (2.0, 0.01, 3e-6)),
    (40, 1e-5, (4.0, 0.01, 1e-6)),
    (40, 3e-6, (8.0, 0.01, 1e-8)),
    (90, 1e-6, (9.0, 0.003, 1e-9)),
)
PAPER_STEPS_PER_EPOCH = 2880  # 10 Keras epochs x 6 files x 48 batches


# ---- schedule ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleStage:
    """``n_steps`` optimiser steps at ``learning_rate`` with loss weights ``(spike, soma, dendritic)``."""

    n_steps: int
    learning_rate: float
    loss_weights: tuple[float, float, float] = (1.0, 0.02, 5e-6)

    def __post_init__(self):
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, (int, np.integer)) or self.n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}")
        object.__setattr__(self, "n_steps", int(self.n_steps))
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.number)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate must be a positive number, got {lr!r}")
        object.__setattr__(self, "learning_rate", float(lr))
        try:
            w = tuple(float(v) for v in self.loss_weights)
        except (TypeError, ValueError):
            raise ValueError(f"loss_weights must be three numbers (spike, soma, dendritic), "
                             f"got {self.loss_weights!r}") from None
        if len(w) != 3 or not all(math.isfinite(v) and v >= 0 for v in w) or sum(w) == 0:
            raise ValueError(f"loss_weights must be three finite numbers >= 0, not all zero "
                             f"(spike, soma, dendritic), got {self.loss_weights!r}")
        object.__setattr__(self, "loss_weights", w)


@dataclass(frozen=True)
class Schedule:
    """A training schedule: stages run one after the other."""

    stages: tuple[ScheduleStage, ...]
    name: str = "custom"

    def __post_init__(self):
        stages = tuple(self.stages) if not isinstance(self.stages, ScheduleStage) else (self.stages,)
        if not stages:
            raise ValueError("a schedule needs at least one stage, got none")
        for i, s in enumerate(stages):
            if not isinstance(s, ScheduleStage):
                raise ValueError(f"stages[{i}] must be a ScheduleStage, got {type(s).__name__}")
        object.__setattr__(self, "stages", stages)

    @property
    def total_steps(self) -> int:
        return sum(s.n_steps for s in self.stages)

    def stage_at(self, step: int) -> tuple[int, ScheduleStage]:
        """``(index, stage)`` in force for 0-based optimiser step ``step``."""
        if step < 0 or step >= self.total_steps:
            raise ValueError(f"step {step} is outside the schedule's 0 .. {self.total_steps - 1}")
        end = 0
        for i, s in enumerate(self.stages):
            end += s.n_steps
            if step < end:
                return i, s
        raise AssertionError("unreachable")  # pragma: no cover

    def to_dict(self) -> dict:
        return {"name": self.name, "stages": [
            {"n_steps": s.n_steps, "learning_rate": s.learning_rate, "loss_weights": list(s.loss_weights)}
            for s in self.stages]}

    @classmethod
    def from_dict(cls, data: dict) -> "Schedule":
        return cls(tuple(ScheduleStage(int(s["n_steps"]), float(s["learning_rate"]), tuple(s["loss_weights"]))
                         for s in data["stages"]), name=str(data.get("name", "custom")))

    def table(self) -> str:
        """A plain text table of the stages."""
        lines = [f"schedule {self.name!r}: {self.total_steps} steps",
                 f"{'stage':>5} {'steps':>8} {'lr':>9}  loss weights [spike, soma, dendritic]"]
        for i, s in enumerate(self.stages):
            w = ", ".join(f"{v:g}" for v in s.loss_weights)
            lines.append(f"{i:>5} {s.n_steps:>8} {s.learning_rate:>9.2g}  [{w}]")
        return "\n".join(lines)


def paper_schedule(steps_per_epoch: int = PAPER_STEPS_PER_EPOCH) -> Schedule:
    """The paper's Nadam schedule (paper_facts 2.2): 250 schedule epochs of ``steps_per_epoch`` steps
    (720,000 steps of batch 8 at the default), learning rate 1e-4 -> 1e-6 while the spike loss is
    up-weighted 1 -> 9 and the dendritic loss fades from 5e-6 to 1e-9."""
    if isinstance(steps_per_epoch, bool) or int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}")
    return Schedule(tuple(ScheduleStage(epochs * int(steps_per_epoch), lr, w) for epochs, lr, w in PAPER_STAGES),
                    name="paper")


def compressed_schedule(total_steps: int, lr_scale: float = 1.0, name: str = "compressed") -> Schedule:
    """The paper's schedule squeezed into ``total_steps`` steps: the same stage proportions (40:40:40:40:90)
    and loss weights, learning rates multiplied by ``lr_scale`` (a short run needs larger steps)."""
    if isinstance(total_steps, bool) or int(total_steps) != total_steps or total_steps < len(PAPER_STAGES):
        raise ValueError(f"total_steps must be an integer >= {len(PAPER_STAGES)} (one per stage), "
                         f"got {total_steps!r}")
    if not (isinstance(lr_scale, (int, float)) and math.isfinite(lr_scale) and lr_scale > 0):
        raise ValueError(f"lr_scale must be a positive number, got {lr_scale!r}")
    total_steps = int(total_steps)
    epochs = np.array([e for e, _, _ in PAPER_STAGES], dtype=float)
    bounds = np.round(np.cumsum(epochs) / epochs.sum() * total_steps).astype(int)
    steps = np.maximum(np.diff(np.concatenate([[0], bounds])), 1)
    steps[-1] = total_steps - steps[:-1].sum()  # exact total; the last stage is the longest
    # rounded to 12 digits so that 3e-5 x 10 prints as 0.0003
    return Schedule(tuple(ScheduleStage(int(n), float(f"{lr * lr_scale:.12g}"), w)
                          for n, (_, lr, w) in zip(steps, PAPER_STAGES)),
                    name=name)


# (steps, learning-rate multiplier): a short run needs larger steps than the paper's 1e-4 -> 1e-6
_SCALE_SCHEDULES = {"quick": (50, 30.0), "lab": (2000, 10.0)}


def schedule_for_scale(scale: str, total_steps: int | None = None, lr_scale: float | None = None) -> Schedule:
    """The schedule for a scale: ``paper`` = :func:`paper_schedule`; ``lab`` = 2,000 steps of the same shape
    with learning rates x 10 (1e-3 -> 1e-5); ``quick`` = 50 steps with learning rates x 30 (3e-3 -> 3e-5),
    enough for a small network to leave its initial state. ``total_steps`` / ``lr_scale``
    override the scale's values (``paper`` with ``total_steps`` is compressed at ``lr_scale`` 1)."""
    scale = check_scale(scale)
    if scale == "paper" and total_steps is None:
        if lr_scale not in (None, 1, 1.0):
            raise ValueError("lr_scale applies to compressed schedules; give total_steps too")
        return paper_schedule()
    steps, lr = _SCALE_SCHEDULES.get(scale, (PAPER_STEPS_PER_EPOCH * 250, 1.0))
    return compressed_schedule(steps if total_steps is None else total_steps,
                               lr if lr_scale is None else lr_scale, name=scale)


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


# ---- in-memory batch sampler ------------------------------------------------------------------------
class InMemoryWindows:
    """Random training windows from trials held in memory, drawn the paper's way (paper_facts 2.2).

    Each batch item takes a random trial (with replacement) and a window end ``t_end`` in
    ``[max(min_end_ms, window_ms), T]`` (distinct within a batch when there are enough choices); the
    window covers ``[t_end - window_ms, t_end)``. With ``min_end_ms = 500`` a window never ends inside the
    warm-up.

    Parameters
    ----------
    inputs : (N, C, T) 0/1 array (uint8, bool or float), numpy or torch.
    spikes : (N, T) 0/1 spike target.
    soma : (N, T) somatic target (mV, already clipped and shifted).
    dendritic : optional (N, K, T) dendritic target.
    min_end_ms : earliest window end, ms.
    """

    def __init__(self, inputs, spikes, soma, dendritic=None, min_end_ms: int = 500):
        self.inputs = _as_numpy(inputs, "inputs")
        self.spikes = _as_numpy(spikes, "spikes").astype(np.float32, copy=False)
        self.soma = _as_numpy(soma, "soma").astype(np.float32, copy=False)
        self.dendritic = None if dendritic is None else _as_numpy(dendritic, "dendritic").astype(np.float32,
                                                                                                 copy=False)
        if self.inputs.ndim != 3:
            raise ValueError(f"inputs must have shape (trials, channels, time), got {self.inputs.shape}")
        n, _, t = self.inputs.shape
        if n < 1 or t < 1:
            raise ValueError(f"inputs must hold at least one trial and one ms, got shape {self.inputs.shape}")
        for name, arr in (("spikes", self.spikes), ("soma", self.soma)):
            if arr.shape != (n, t):
                raise ValueError(f"{name} must have shape (trials, time) = {(n, t)} to match inputs, "
                                 f"got {arr.shape}")
        if self.dendritic is not None and (self.dendritic.ndim != 3 or self.dendritic.shape[0] != n
                                           or self.dendritic.shape[2] != t):
            raise ValueError(f"dendritic must have shape (trials, components, time) = ({n}, K, {t}), "
                             f"got {self.dendritic.shape}")
        if not np.isin(self.spikes, (0.0, 1.0)).all():
            raise ValueError("spikes must hold only 0 and 1 (one bin per ms)")
        if not np.isfinite(self.soma).all() or (self.dendritic is not None and not np.isfinite(self.dendritic).all()):
            raise ValueError("soma and dendritic targets must be finite (found NaN or inf)")
        if self.inputs.dtype != np.bool_ and not np.isfinite(self.inputs).all():
            raise ValueError("inputs must be finite")
        if isinstance(min_end_ms, bool) or int(min_end_ms) != min_end_ms or not 0 <= min_end_ms <= t:
            raise ValueError(f"min_end_ms must be an integer in [0, {t}] (the trials last {t} ms), "
                             f"got {min_end_ms!r}")
        self.min_end_ms = int(min_end_ms)

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[0]

    @property
    def n_channels(self) -> int:
        return self.inputs.shape[1]

    @property
    def duration_ms(self) -> int:
        return self.inputs.shape[2]

    @property
    def n_dendritic(self) -> int:
        return 0 if self.dendritic is None else self.dendritic.shape[1]

    def window_end_range(self, window_ms: int) -> tuple[int, int]:
        """Smallest and largest window end (inclusive) for ``window_ms``-long windows."""
        if isinstance(window_ms, bool) or int(window_ms) != window_ms or window_ms < 1:
            raise ValueError(f"window_ms must be a positive integer, got {window_ms!r}")
        if window_ms > self.duration_ms:
            raise ValueError(f"window_ms={window_ms} is longer than the trials ({self.duration_ms} ms)")
        return max(self.min_end_ms, int(window_ms)), self.duration_ms

    def windows(self, trials, ends_ms, window_ms: int) -> dict:
        """The batch of windows ``[end - window_ms, end)`` of the given trials, as torch tensors."""
        trials, ends_ms = np.asarray(trials, dtype=np.int64), np.asarray(ends_ms, dtype=np.int64)
        idx = ends_ms[:, None] - window_ms + np.arange(window_ms)[None, :]  # (B, W) time indices
        x = self.inputs[trials[:, None], :, idx]  # advanced indexing puts the channel axis last
        batch = {
            "x": torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 2, 1)), dtype=np.float32)),
            "spikes": torch.from_numpy(np.ascontiguousarray(self.spikes[trials[:, None], idx])),
            "soma": torch.from_numpy(np.ascontiguousarray(self.soma[trials[:, None], idx])),
        }
        if self.dendritic is not None:
            d = self.dendritic[trials[:, None], :, idx]
            batch["dendritic"] = torch.from_numpy(np.ascontiguousarray(np.transpose(d, (0, 2, 1))))
        return batch

    def sample(self, rng: np.random.Generator, batch_size: int, window_ms: int) -> dict:
        """A random batch (see the class docstring); ``rng`` is a numpy Generator."""
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        lo, hi = self.window_end_range(window_ms)
        batch_size = int(batch_size)
        trials = rng.integers(0, self.n_trials, size=batch_size)
        n_ends = hi - lo + 1
        ends = lo + rng.choice(n_ends, size=batch_size, replace=batch_size > n_ends)
        return self.windows(trials, ends, int(window_ms))

    def full_trial(self, i: int) -> dict:
        """Trial ``i`` whole, with a batch axis of 1 (torch tensors, as :meth:`sample` returns them)."""
        if not 0 <= int(i) < self.n_trials:
            raise ValueError(f"trial index {i} out of range 0 .. {self.n_trials - 1}")
        return self.windows([int(i)], [self.duration_ms], self.duration_ms)


def _as_numpy(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return a


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


def l2_penalty(model: TCN, coefficient: float) -> torch.Tensor:
    """``coefficient * sum(w ** 2)`` over the kernels the paper penalises (:meth:`TCN.l2_weights`)."""
    weights = model.l2_weights()
    return coefficient * sum(w.pow(2).sum() for w in weights)


def check_batch(batch, config: TCNConfig, batch_size: int, window_ms: int, where: str = "sampler",
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
def validation_losses(model: TCN, sampler, *, n_batches: int, batch_size: int, window_ms: int,
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
    (the latter written as ``P.best.pt`` + ``P.best.json`` by :func:`neurodepth_lib.models.save_model`)."""
    p = Path(checkpoint_path)
    if p.name.endswith(".ckpt.pt"):
        p = p.with_name(p.name[: -len(".ckpt.pt")])
    elif p.suffix == ".pt":
        p = p.with_suffix("")
    return p.with_name(p.name + ".ckpt.pt"), p.with_name(p.name + ".best")


def _make_optimizer(model: TCN, config: TrainingConfig, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "nadam":
        return torch.optim.NAdam(model.parameters(), lr=lr, eps=1e-7)  # Keras' epsilon
    return torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)


def _validate_arguments(model, train_sampler, valid_sampler, config: TrainingConfig) -> None:
    if not isinstance(model, TCN):
        raise TypeError(f"model must be a neurodepth_lib.models.TCN, got {type(model).__name__}")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    t_rf = model.config.receptive_field_ms
    if config.window_ms < t_rf:
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


def _cpu_state(model: TCN) -> dict:
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
    _atomic_write(path, buf.getvalue())


def _load_checkpoint(path: Path, model: TCN, config: TrainingConfig) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file; atomic writes make this rare
        raise ValueError(f"cannot read training checkpoint {path}: {err}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a neurodepth training checkpoint")
    if ckpt.get("model_config") != model.config.to_dict():
        raise ValueError(f"checkpoint {path} was made for model {TCNConfig.from_dict(ckpt['model_config']).name} "
                         f"with another configuration than {model.config.name}; pass resume=False or "
                         f"another checkpoint_path")
    saved = TrainingConfig.from_dict(ckpt["training_config"])
    diff = [k for k in _RESUME_FIELDS if getattr(saved, k) != getattr(config, k)]
    if diff:
        raise ValueError(f"checkpoint {path} was made with different training settings ({', '.join(diff)}); "
                         f"resuming would not continue the same run: pass resume=False or another checkpoint_path")
    return ckpt


def train(model: TCN, train_sampler, valid_sampler=None, config: TrainingConfig | None = None,
          checkpoint_path: str | os.PathLike | None = None, resume: bool = True) -> TrainingHistory:
    """Train ``model`` on windows from ``train_sampler`` following ``config.schedule``.

    Parameters
    ----------
    model : a :class:`~neurodepth_lib.models.TCN`; trained in place and moved to ``config.device``.
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


# ---- training on a dataset directory ----------------------------------------------------------------
# Glue for chapters 04-05 and ``neurodepth train``: a dataset directory (neurodepth_lib.datasets) goes in,
# a model file whose card says what it was trained on comes out. The loop above does the work.

# Small teaching architectures next to the paper's (models.paper_configs): (kernels in ms, width)
TEACHING_ARCHITECTURES = {
    "tiny": ((15, 9), 8),          # T = 23 ms, ~155 k parameters on 1,278 inputs: tests and quick scale
    "lab": ((35, 15, 15, 15), 32),  # T = 77 ms, ~1.5 M parameters: minutes of training on 2 cores
}


def architecture_names() -> list[str]:
    """Names :func:`make_architecture` knows: the paper's (``large``, ``small``, ``fit_cnn``) and ours."""
    from .models import paper_configs

    return sorted(set(paper_configs(n_inputs=1)) | set(TEACHING_ARCHITECTURES))


def make_architecture(name: str = "fit_cnn", *, n_inputs: int = 1278, n_dendritic: int = 0,
                      kernel_sizes=None, depth: int | None = None, kernel_ms: int | None = None,
                      first_kernel_ms: int | None = None, widths=None, **overrides) -> TCNConfig:
    """A :class:`~neurodepth_lib.models.TCNConfig` from a preset name, optionally reshaped.

    Parameters
    ----------
    name : ``"large"`` (7x128x153), ``"small"`` (1x128x43), ``"fit_cnn"`` (3x64x100; the paper's
        ``fit_CNN.py`` default), ``"lab"`` (4x32, kernels 35/15/15/15, T = 77 ms) or ``"tiny"`` (2x8, T = 23 ms).
    n_inputs, n_dendritic : input channels and dendritic-head channels (0 = no dendritic head).
    kernel_sizes : every layer's kernel (ms); overrides the preset's and ``depth``.
    depth, kernel_ms, first_kernel_ms : or build the kernels as ``(first_kernel_ms,) + (kernel_ms,) *
        (depth - 1)``. ``kernel_ms`` alone sets every layer's kernel (the first too); what is not given
        comes from the preset.
    widths : one int for every layer, or one per layer; default the preset's width.
    overrides : any other :class:`TCNConfig` field (e.g. ``spike_bias_init``).
    """
    from .models import paper_configs

    presets = paper_configs(n_inputs=n_inputs, n_dendritic=n_dendritic)
    if name in presets:
        base = presets[name]
    elif name in TEACHING_ARCHITECTURES:
        k, w = TEACHING_ARCHITECTURES[name]
        base = TCNConfig(n_inputs=n_inputs, kernel_sizes=k, widths=w, n_dendritic=n_dendritic)
    else:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(architecture_names())} "
                         f"(and reshape it with kernel_sizes / depth / widths)")
    kernels = base.kernel_sizes
    if kernel_sizes is not None:
        if isinstance(kernel_sizes, (int, np.integer)):
            kernel_sizes = (int(kernel_sizes),) * (depth or 1)
        kernels = tuple(kernel_sizes)
        if depth is not None and len(kernels) != depth:
            raise ValueError(f"kernel_sizes has {len(kernels)} layers but depth={depth}")
    elif depth is not None or kernel_ms is not None or first_kernel_ms is not None:
        d = base.depth if depth is None else depth
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        later = kernel_ms if kernel_ms is not None else (base.kernel_sizes[1] if base.depth > 1
                                                          else base.kernel_sizes[0])
        first = first_kernel_ms if first_kernel_ms is not None else (
            base.kernel_sizes[0] if kernel_ms is None or base.depth == 1 else kernel_ms)
        kernels = (first,) + (later,) * (int(d) - 1)
    if widths is None:
        widths = base.widths[0] if len(set(base.widths)) == 1 else base.widths
        if not isinstance(widths, int) and len(widths) != len(kernels):
            raise ValueError(f"preset {name!r} has per-layer widths {widths}; give widths for "
                             f"{len(kernels)} layers")
    return base.replace(kernel_sizes=tuple(kernels), widths=widths if isinstance(widths, int) else tuple(widths),
                        **overrides)


def spike_log_odds(spikes, floor: float = 1e-4) -> float:
    """``log(p / (1 - p))`` of the fraction ``p`` of 1-ms bins holding a spike (``p`` kept in
    ``[floor, 1 - floor]``): the spike head's bias that makes an untrained network predict the data's base
    rate in every millisecond."""
    p = float(np.clip(np.mean(np.asarray(spikes, dtype=np.float64)), floor, 1.0 - floor))
    return float(math.log(p / (1.0 - p)))


def dataset_fingerprint(dataset) -> dict:
    """What identifies a dataset directory, for model cards: its name and path, the plan id (sha256 of what
    made it), the sha256 of ``manifest.json`` (which lists every shard's sha256), cell, condition, size."""
    from .datasets import MANIFEST_NAME, TrialDataset, file_sha256, open_dataset

    ds = dataset if isinstance(dataset, TrialDataset) else open_dataset(dataset)
    return {"name": ds.path.name, "path": str(ds.path), "plan_id": ds.manifest["plan_id"],
            "manifest_sha256": file_sha256(ds.path / MANIFEST_NAME), "cell": ds.cell,
            "condition": ds.condition, "n_trials": int(len(ds)), "duration_ms": int(ds.duration_ms),
            "n_channels": int(ds.n_channels), "complete": ds.complete,
            # a dataset still being generated changes its manifest: name the shards this model saw
            **({} if ds.complete else {"shards_used": ds.shard_checksums})}


@dataclass
class FitResult:
    """What :func:`train_on_dataset` returns: the trained ``model`` (eval mode, best weights when a
    validation set was given), its ``history``, the samplers (their ``transform`` holds the target rules),
    the trial indices used, and ``model_path`` / ``card`` of the written model file (None without ``out``)."""

    model: TCN
    history: TrainingHistory
    train_sampler: object
    valid_sampler: object | None
    train_trials: np.ndarray
    valid_trials: np.ndarray
    model_path: Path | None
    card: dict


def _run_paths(out: Path) -> dict:
    return {"run": out.with_name(out.name + ".run.json"), "history": out.with_name(out.name + ".history.json"),
            "train_cache": out.with_name(out.name + ".train-inputs.h5"),
            "valid_cache": out.with_name(out.name + ".valid-inputs.h5")}


def _describe_data(entry: dict | None) -> str:
    """``dataset`` / ``valid_dataset`` of a run record in a few words, for error messages."""
    if entry is None:
        return "none"
    return f"{len(entry['trials'])} trials of {entry.get('name')} (plan {str(entry.get('plan_id'))[:12]})"


def train_on_dataset(train_data, out=None, *, trials=None, valid_data=None, valid_trials=None,
                     valid_fraction: float = 0.1, split_seed: int = 0,
                     architecture="fit_cnn", dendritic: bool | None = None, spike_bias=None,
                     config: TrainingConfig | None = None, scale: str = "lab", seed: int = 0,
                     resume: bool = True, workers: int = 0, cache_inputs: bool = True,
                     input_cache_dir=None, weights_dtype: str = "float32", progress: bool = True,
                     card: dict | None = None) -> FitResult:
    """Train a TCN on a dataset directory with the paper's targets, losses and schedule; write a model file.

    Parameters
    ----------
    train_data : a dataset directory (or :class:`~neurodepth_lib.datasets.TrialDataset`).
    out : model prefix: writes ``<out>.pt`` + ``<out>.json`` (the model and its card), and while training
        ``<out>.ckpt.pt`` (resumable checkpoint), ``<out>.best.*`` (best validation weights),
        ``<out>.run.json`` (what this run trains on), ``<out>.history.json`` and input caches. Rerunning
        the same call after a kill continues where the last checkpoint left off. None = no files.
    trials : use only these trials of the training dataset (default all), e.g. a subset of a large set.
    valid_data : a separate validation dataset (``valid_trials``: which of its trials; default all);
        default: hold out ``valid_fraction`` of the training trials (drawn with ``split_seed``; at least
        one trial when there are two or more).
    architecture : a preset name (:func:`make_architecture`), a :class:`TCNConfig`, or a built :class:`TCN`.
    dendritic : train the dendritic head on whitened PCA components of the dendritic voltages (paper 1.5);
        None = when the dataset recorded them. A preset gets a head of the transform's size (20 NMDA, 30 AMPA).
    spike_bias : the spike head's initial bias: ``"data"`` = the log-odds of the training spike rate,
        ``"paper"`` = the architecture's (-2.0, the paper's), or a number. None = ``"paper"`` at paper
        scale, else ``"data"``: with -2.0 the untrained network predicts a 12 % spike probability in every
        millisecond against a data rate near 0.2 %, and in a short run the quickest way down that
        over-prediction is a negative read-out weight, which short runs do not undo. A deviation from the
        paper that only changes the starting point. Not applied to a built :class:`TCN`.
    config : :class:`TrainingConfig`; default ``TrainingConfig.for_scale(scale, seed=seed,
        restore_best=True)`` (batch 8, 400-ms windows, Nadam, the scale's schedule).
    scale : ``quick``, ``lab`` or ``paper``: the default schedule and spike-bias rule.
    seed : seeds the weights' initialisation and the window sampling (when ``config`` is not given).
    workers : processes that regenerate the inputs from their recipes (0 = this process).
    cache_inputs : keep the regenerated inputs beside ``out`` (``<out>.train-inputs.h5``) for reruns.
    input_cache_dir : keep them instead in this directory, shared by many runs on the same trials (sweeps).
    weights_dtype : how the final weights are stored (``"float16"`` halves the file, for shipping; the
        returned model then holds the stored, rounded weights). Checkpoints stay float32.
    card : extra JSON-able entries for the model card.

    Returns
    -------
    :class:`FitResult`. The card records the dataset fingerprints (:func:`dataset_fingerprint`) and trials,
    the target rules, the architecture, the training configuration (schedule included) and a summary of
    the run; ``neurodepth_lib.assessment.record_metrics`` adds evaluation metrics to it.
    """
    import json

    from .datasets import TrialDataset, WindowSampler, input_cache_path, open_dataset, split_trials
    from .models import TCN as _TCN
    from .models import check_weights_dtype

    check_weights_dtype(weights_dtype)  # before any long computation
    config = config or TrainingConfig.for_scale(scale, seed=seed, restore_best=True, progress=progress)
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    scale = check_scale(scale)
    if not 0.0 <= float(valid_fraction) < 1.0:
        raise ValueError(f"valid_fraction must lie in [0, 1), got {valid_fraction!r}")
    if spike_bias is None:
        spike_bias = "paper" if scale == "paper" else "data"
    if not (spike_bias in ("data", "paper") or (isinstance(spike_bias, (int, float)) and not isinstance(spike_bias, bool)
                                                 and math.isfinite(spike_bias))):
        raise ValueError(f"spike_bias must be 'data', 'paper' or a number, got {spike_bias!r}")
    ds = train_data if isinstance(train_data, TrialDataset) else open_dataset(train_data)
    vds = None if valid_data is None else (valid_data if isinstance(valid_data, TrialDataset)
                                           else open_dataset(valid_data))
    if vds is not None and (vds.n_channels != ds.n_channels or vds.cell != ds.cell):
        raise ValueError(f"the validation dataset ({vds.cell}, {vds.n_channels} inputs) does not match the "
                         f"training dataset ({ds.cell}, {ds.n_channels} inputs)")
    pool = np.arange(len(ds)) if trials is None else np.unique(np.asarray(trials, dtype=int))
    if pool.size == 0 or pool.min() < 0 or pool.max() >= len(ds):
        raise ValueError(f"trials must be indices in [0, {len(ds)}) of the training dataset, got {trials!r}")
    n = pool.size
    if vds is None:
        train_pos, valid_pos = split_trials(n, float(valid_fraction), int(split_seed))
        if valid_fraction > 0 and valid_pos.size == 0 and n >= 2:
            order = np.random.default_rng(int(split_seed)).permutation(n)
            train_pos, valid_pos = np.sort(order[1:]), np.sort(order[:1])
        train_idx, valid_idx = pool[train_pos], pool[valid_pos]
    else:
        train_idx = pool
        valid_idx = np.arange(len(vds)) if valid_trials is None else np.unique(np.asarray(valid_trials, dtype=int))
        if valid_idx.size == 0 or valid_idx.min() < 0 or valid_idx.max() >= len(vds):
            raise ValueError(f"valid_trials must be indices in [0, {len(vds)}) of the validation dataset, "
                             f"got {valid_trials!r}")
    if dendritic is None:
        dendritic = "dend_1ms" in ds.outputs
    dendritic = bool(dendritic)

    paths = None
    if out is not None:
        out = Path(out)
        if out.suffix in (".pt", ".json"):
            out = out.with_suffix("")
        out.parent.mkdir(parents=True, exist_ok=True)
        paths = _run_paths(out)
    fingerprint = dataset_fingerprint(ds)
    valid_fingerprint = dataset_fingerprint(vds) if vds is not None else None
    run = {"dataset": {**fingerprint, "trials": train_idx.tolist()},
           "valid_dataset": None if valid_idx.size == 0 else
           {**(valid_fingerprint or fingerprint), "trials": valid_idx.tolist()},
           "dendritic": dendritic, "spike_bias": spike_bias, "seed": int(config.seed)}
    ckpt_file = checkpoint_paths(out)[0] if out is not None else None
    if paths is not None and resume and ckpt_file.exists() and paths["run"].exists():
        before = json.loads(paths["run"].read_text())
        for key in ("dataset", "valid_dataset"):
            a, b = before.get(key), run.get(key)
            same = (a is None and b is None) or (a is not None and b is not None and a["plan_id"] == b["plan_id"]
                                                 and a["trials"] == b["trials"])
            if not same:
                raise ValueError(f"{ckpt_file} belongs to a run on other data: its {key.replace('_', ' ')} was "
                                 f"{_describe_data(a)}, now {_describe_data(b)} (a dataset that grew, or another "
                                 f"validation choice); pass resume=False (--no-resume) to start over, or "
                                 f"another out")

    window_ms = config.window_ms
    caches = {"train": paths["train_cache"] if (paths and cache_inputs) else None,
              "valid": paths["valid_cache"] if (paths and cache_inputs) else None}
    if input_cache_dir is not None:
        caches = {"train": input_cache_path(input_cache_dir, ds, train_idx),
                  "valid": input_cache_path(input_cache_dir, vds if vds is not None else ds, valid_idx)}
    train_sampler = WindowSampler(ds, trials=train_idx, dendritic=dendritic, window_ms=window_ms,
                                  cache_path=caches["train"],
                                  workers=workers, progress=progress, seed=config.seed)
    valid_sampler = None
    if valid_idx.size:
        vsrc = vds if vds is not None else ds
        valid_sampler = WindowSampler(vsrc, trials=valid_idx, transform=train_sampler.transform,
                                      dendritic=dendritic and "dend_1ms" in vsrc.outputs, pca=train_sampler.pca,
                                      window_ms=window_ms, seed=config.seed + 1,
                                      cache_path=caches["valid"],
                                      workers=workers, progress=progress)

    rate_logit = spike_log_odds(train_sampler.spikes[:, train_sampler.transform.warmup_ms:])
    if isinstance(architecture, _TCN):
        model = architecture
        if model.config.n_inputs != ds.n_channels:
            raise ValueError(f"the model expects {model.config.n_inputs} inputs but the dataset has {ds.n_channels}")
    else:
        if isinstance(architecture, str):
            model_config = make_architecture(architecture, n_inputs=ds.n_channels,
                                             n_dendritic=train_sampler.n_dendritic)
        elif isinstance(architecture, TCNConfig):
            model_config = architecture
        else:
            raise TypeError(f"architecture must be a preset name, a TCNConfig or a TCN, got "
                            f"{type(architecture).__name__}")
        if model_config.n_inputs != ds.n_channels:
            raise ValueError(f"the architecture has n_inputs={model_config.n_inputs} but the dataset has "
                             f"{ds.n_channels} input channels")
        if spike_bias == "data":
            model_config = model_config.replace(spike_bias_init=round(rate_logit, 6))
        elif spike_bias != "paper":
            model_config = model_config.replace(spike_bias_init=float(spike_bias))
        torch.manual_seed(config.seed)  # the initial weights depend on the seed only
        model = _TCN(model_config)
    if model.config.n_dendritic and model.config.n_dendritic != train_sampler.n_dendritic:
        raise ValueError(f"the model's dendritic head has {model.config.n_dendritic} channels but the data serve "
                         f"{train_sampler.n_dendritic} dendritic components"
                         + ("" if train_sampler.n_dendritic else " (no dendritic voltages recorded, or "
                            "dendritic=False): use n_dendritic=0"))
    run["model_config"] = model.config.to_dict()
    if paths is not None:
        _atomic_write(paths["run"], (json.dumps(run, indent=1, sort_keys=True) + "\n").encode())

    history = train(model, train_sampler, valid_sampler, config, checkpoint_path=out, resume=resume)

    best = history.best_step is not None and config.restore_best
    valid_at_best = None
    if history.best_step is not None:
        i = history.valid_step.index(history.best_step)
        valid_at_best = {"spike": history.valid_spike[i], "soma": history.valid_soma[i],
                         "dendritic": history.valid_dendritic[i], "total": history.valid_loss[i]}
    full_card = {
        "dataset": run["dataset"], "valid_dataset": run["valid_dataset"],
        "targets": train_sampler.transform.to_dict(),
        "dendritic_pca_components": train_sampler.n_dendritic,
        "training": {
            "config": config.to_dict(), "scale": scale, "steps_done": history.steps_done,
            "completed": history.completed, "weights": "best validation" if best else "last",
            "best_by": history.best_by, "best_step": history.best_step, "best_valid": history.best_valid,
            "wall_time_s": round(history.wall_time_total_s, 2), "device": history.device,
            "resumed_at_steps": list(history.resumed_at_steps),
            "spike_bias_rule": spike_bias if not isinstance(architecture, _TCN) else "given model",
            "train_spike_probability_per_ms": float(1.0 / (1.0 + math.exp(-rate_logit))),
            "history_file": paths["history"].name if paths else None,
        },
        "metrics": {"valid_losses_at_best": valid_at_best},
        **(card or {}),
    }
    if paths is not None:
        _atomic_write(paths["history"], (json.dumps(history.to_dict(), allow_nan=False) + "\n").encode())
        _, card_path = save_model(out, model, full_card, weights_dtype=weights_dtype)
        if weights_dtype != "float32":  # the returned model is the one in the file
            from .models import load_model

            model.load_state_dict(load_model(out, map_location=None).state_dict())
        model.card = json.loads(card_path.read_text())
        model.model_path = str(out)
    else:
        model.card = full_card  # what load_model would attach: the target rules travel with the model
    return FitResult(model=model, history=history, train_sampler=train_sampler, valid_sampler=valid_sampler,
                     train_trials=train_idx, valid_trials=valid_idx, model_path=out, card=full_card)


__all__ += ["TEACHING_ARCHITECTURES", "architecture_names", "make_architecture", "spike_log_odds",
            "dataset_fingerprint", "FitResult", "train_on_dataset"]
