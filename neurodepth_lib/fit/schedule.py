"""The paper's learning-rate and loss-weight schedule as data, and its compressed forms for each scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..scales import check_scale

__all__ = ["PAPER_STAGES", "PAPER_STEPS_PER_EPOCH", "ScheduleStage", "Schedule", "paper_schedule",
           "compressed_schedule", "schedule_for_scale"]


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


