"""What to train on and how: :class:`FitSpec`, the validated settings of
:func:`neurodepth_lib.fit.train_on_dataset` (one frozen dataclass, checked before any data is read).
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from .._checks import non_negative_int, positive_float, positive_int
from ..data.store import TrialDataset
from ..nets.files import check_weights_dtype
from ..nets.predict import resolve_device
from ..nets.presets import make_architecture
from ..nets.kinds import is_model, is_model_config
from ..scales import check_scale
from .loop import TrainingConfig
from .schedule import schedule_for_scale

__all__ = ["FitSpecError", "FitSpec"]


class FitSpecError(ValueError):
    """A :class:`FitSpec` field holds a value it cannot take. ``field`` names it; the message starts with
    that name (``neurodepth train`` shows the flag instead, e.g. ``--train-trials``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


_RESHAPING = ("kernel_sizes", "depth", "kernel_ms", "first_kernel_ms", "widths")
_SCHEDULE = ("steps", "lr_scale", "batch_size", "window_ms", "device")


def _indices(value, name: str):
    """Trial indices as a ``range`` (kept: it prints short) or a sorted tuple of distinct ints >= 0."""
    if value is None:
        return None
    if isinstance(value, range) and value.step > 0:
        out = value
    else:
        try:
            arr = np.asarray(list(value) if not isinstance(value, np.ndarray) else value)
        except TypeError:
            raise FitSpecError(name, f"{name} must be trial indices (a list, range or array), got {value!r}") from None
        if arr.ndim != 1 or (arr.size and (arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer))):
            raise FitSpecError(name, f"{name} must be whole-number trial indices, got {value!r}")
        out = tuple(int(i) for i in np.unique(arr))
    if len(out) == 0:
        raise FitSpecError(name, f"{name} selects no trial")
    if min(out) < 0:
        raise FitSpecError(name, f"{name} must be indices >= 0, got {value!r}")
    return out


def _spike_bias(value):
    """``None``, ``"data"``, ``"paper"`` or a finite float (a string holding a number, as a command line
    gives it, is read as that number)."""
    if value is None or value in ("data", "paper"):
        return value
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(number)):
        raise FitSpecError("spike_bias", f"spike_bias must be 'data', 'paper' or a number, got {value!r}")
    return float(number)


@dataclass(frozen=True)
class FitSpec:
    """What :func:`train_on_dataset` trains on and how. Validated once, when made, before any data is read;
    ``print(spec)`` shows the fields that differ from the defaults. A bad value raises :class:`FitSpecError`
    naming the field (or the ``ValueError`` of the rule that owns it, e.g. an unknown architecture).

    What to train on
    ----------------
    trials : indices of the training dataset's trials to use (default all), e.g. a subset of a large set.
    first_trials : or use its first N trials (fixes the trials while a dataset is still being generated);
        at most the dataset's (finished) trials. Not with ``trials``.
    valid_data : a separate validation dataset (directory or :class:`~neurodepth_lib.data.TrialDataset`);
        ``valid_trials``: which of its trials (default all). Without it, ``valid_fraction`` of the training
        trials (in [0, 1); at least one trial when there are two or more) is held out, drawn with
        ``split_seed``.
    allow_incomplete : accept datasets still being generated (their finished shards; recorded in the card).
    allow_mismatch : accept a validation dataset of another cell or condition than the training dataset
        (refused by default, before any data is read); the mismatch is recorded in the card.

    The network
    -----------
    architecture : a preset name (:func:`~neurodepth_lib.nets.make_architecture`: ``large``, ``small``,
        ``fit_cnn``, ``lab``, ``tiny``, or the ELM family's ``elm`` and ``branch_elm``), a :class:`TCNConfig` or
        :class:`~neurodepth_lib.nets.ELMConfig`, or a built :class:`TCN` or :class:`~neurodepth_lib.nets.ELM`.
    kernel_sizes, depth, kernel_ms, first_kernel_ms, widths : reshape a preset (kernels in ms; widths in
        filters, one number or one per layer); see ``make_architecture``. A preset gets ``n_inputs`` from
        the dataset and a dendritic head of the target transform's size (20 components NMDA, 30 AMPA).
    dendritic : train the dendritic head on whitened PCA components of the dendritic voltages (paper 1.5);
        None = when the dataset recorded them.
    spike_bias : the spike head's initial bias: ``"data"`` = the log-odds of the training spike rate,
        ``"paper"`` = the architecture's (-2.0, the paper's), or a number (a numeric string is read as one).
        None = ``"paper"`` at paper scale, else ``"data"``: with -2.0 the untrained network predicts a 12 %
        spike probability in every millisecond against a data rate near 0.2 %, and in a short run the
        quickest way down that over-prediction is a negative read-out weight, which short runs do not undo.
        A deviation from the paper that only changes the starting point. Not applied to a built network.

    The schedule (when no ``config`` is given to :func:`train_on_dataset`)
    -----------------------------------------------------------------------------
    scale : ``quick``, ``lab`` or ``paper``: the schedule (:func:`schedule_for_scale`) and the spike-bias rule.
    steps : total optimiser steps: the scale's schedule compressed to this length (None = the scale's).
    lr_scale : learning-rate multiplier of a compressed schedule (None = the scale's: x30 quick, x10 lab).
    batch_size : windows per step (None = 8, the paper's). window_ms : window length in ms (None = 400).
    device : ``"auto"`` (GPU when PyTorch sees one), ``"cpu"``, ``"cuda:1"``... (None = auto).
    seed : seeds the weights' initialisation and the window sampling (None = 0, or the given config's).
    With a ``config``, leave ``steps`` ... ``device`` at None and ``seed`` at None or ``config.seed``.

    The run
    -------
    resume : continue from ``<out>.ckpt.pt`` when it exists (False: start afresh).
    workers : processes that regenerate the inputs from their recipes (0 = this process).
    cache_inputs : keep the regenerated inputs beside ``out`` (``<out>.train-inputs.h5``) for reruns.
    input_cache_dir : keep them instead in this directory, shared by many runs on the same trials (sweeps).
    weights_dtype : how the final weights are stored (``"float16"`` halves the file, for shipping; the
        returned model then holds the stored, rounded weights). Checkpoints stay float32.
    progress : progress bars (inputs, and training when no config is given).
    card : extra JSON-able entries for the model card.
    provenance : how the run was started (e.g. ``{"argv": [...], "versions": {...}}``); written into the
        card under ``provenance`` with ``cores``, ``platform`` and ``wall_s`` (training seconds) added.
    log : called with a few lines of text: what is trained and the schedule before training, the outcome
        after (``print`` in the ``neurodepth`` command; None = silent).
    """

    trials: object = None
    first_trials: int | None = None
    valid_data: object = None
    valid_trials: object = None
    valid_fraction: float = 0.1
    split_seed: int = 0
    allow_incomplete: bool = False
    allow_mismatch: bool = False
    architecture: object = "fit_cnn"
    kernel_sizes: object = None
    depth: int | None = None
    kernel_ms: int | None = None
    first_kernel_ms: int | None = None
    widths: object = None
    dendritic: bool | None = None
    spike_bias: object = None
    scale: str = "lab"
    steps: int | None = None
    lr_scale: float | None = None
    batch_size: int | None = None
    window_ms: int | None = None
    device: str | None = None
    seed: int | None = None
    resume: bool = True
    workers: int = 0
    cache_inputs: bool = True
    input_cache_dir: object = None
    weights_dtype: str = "float32"
    progress: bool = True
    card: dict | None = None
    provenance: dict | None = None
    log: Callable[[str], None] | None = None

    def __post_init__(self):
        def set_(name, value):
            object.__setattr__(self, name, value)

        def check(name, rule, optional=True):
            value = getattr(self, name)
            if value is None and optional:
                return
            try:
                set_(name, rule(value, name))
            except ValueError as err:
                raise FitSpecError(name, str(err)) from None

        def flag(name, optional=False):
            value = getattr(self, name)
            if not (isinstance(value, (bool, np.bool_)) or (optional and value is None)):
                raise FitSpecError(name, f"{name} must be True or False{' or None' if optional else ''}, "
                                         f"got {value!r}")
            set_(name, None if value is None else bool(value))

        for name in ("allow_incomplete", "allow_mismatch", "resume", "cache_inputs", "progress"):
            flag(name)
        flag("dendritic", optional=True)
        # what to train on
        set_("trials", _indices(self.trials, "trials"))
        check("first_trials", positive_int)
        if self.trials is not None and self.first_trials is not None:
            raise FitSpecError("first_trials", "first_trials and trials both choose the training trials: give one")
        if not (self.valid_data is None or isinstance(self.valid_data, (str, os.PathLike, TrialDataset))):
            raise FitSpecError("valid_data", f"valid_data must be a dataset directory or a TrialDataset, got "
                                             f"{type(self.valid_data).__name__}")
        set_("valid_trials", _indices(self.valid_trials, "valid_trials"))
        if self.valid_trials is not None and self.valid_data is None:
            raise FitSpecError("valid_trials", "valid_trials chooses trials of valid_data: give valid_data too "
                                               "(or valid_fraction to hold out training trials)")
        vf = self.valid_fraction
        if isinstance(vf, bool) or not isinstance(vf, (int, float, np.floating)) or not 0.0 <= float(vf) < 1.0:
            raise FitSpecError("valid_fraction", f"valid_fraction must lie in [0, 1), got {vf!r}")
        set_("valid_fraction", float(vf))
        check("split_seed", non_negative_int, optional=False)
        # the network
        for name in ("kernel_sizes", "widths"):  # sequences become tuples: the spec stays hashable and printable
            value = getattr(self, name)
            if value is not None and not isinstance(value, (int, np.integer, str)):
                set_(name, tuple(value))
        for name in ("depth", "kernel_ms", "first_kernel_ms"):
            check(name, positive_int)
        arch = self.architecture
        if isinstance(arch, str):
            make_architecture(arch, n_inputs=1, **self.reshaping)  # its own errors: unknown name, bad shape
        elif is_model_config(arch) or is_model(arch):
            given = [n for n in _RESHAPING if getattr(self, n) is not None]
            if given:
                raise FitSpecError(given[0], f"{given[0]} reshapes a preset: architecture must be a preset name, "
                                             f"got a {type(arch).__name__}")
        else:
            raise TypeError(f"architecture must be a preset name, a network config (TCNConfig, ELMConfig) or a "
                            f"network (TCN, ELM), got {type(arch).__name__}")
        set_("spike_bias", _spike_bias(self.spike_bias))
        # the schedule
        try:
            set_("scale", check_scale(self.scale))
        except ValueError as err:
            raise FitSpecError("scale", f"scale: {err}") from None
        check("steps", positive_int)
        check("lr_scale", positive_float)
        check("batch_size", positive_int)
        check("window_ms", positive_int)
        check("seed", non_negative_int)
        if not (self.device is None or isinstance(self.device, str)):
            raise FitSpecError("device", f"device must be a string ('auto', 'cpu', 'cuda', 'cuda:1'...), "
                                         f"got {self.device!r}")
        if self.device is not None:
            try:  # a device that is not here fails now, not after the inputs are regenerated
                resolve_device(self.device)
            except ValueError as err:
                raise FitSpecError("device", str(err)) from None
        try:  # the rest of the schedule's rules live in TrainingConfig and schedule_for_scale
            self.training_config()
        except ValueError as err:  # they name their own argument: say which field it is
            text = str(err).replace("total_steps", "steps", 1)
            if text.split()[0] in _SCHEDULE:
                raise FitSpecError(text.split()[0], text) from None
            raise
        # the run
        check("workers", non_negative_int, optional=False)
        if not (self.input_cache_dir is None or isinstance(self.input_cache_dir, (str, os.PathLike))):
            raise FitSpecError("input_cache_dir", f"input_cache_dir must be a directory, got {self.input_cache_dir!r}")
        try:
            check_weights_dtype(self.weights_dtype)
        except ValueError as err:
            raise FitSpecError("weights_dtype", str(err)) from None
        for name in ("card", "provenance"):
            if not (getattr(self, name) is None or isinstance(getattr(self, name), dict)):
                raise FitSpecError(name, f"{name} must be a dict of JSON-able entries, got "
                                         f"{type(getattr(self, name)).__name__}")
        if not (self.log is None or callable(self.log)):
            raise FitSpecError("log", f"log must be a function of one string (e.g. print) or None, got {self.log!r}")

    # ---- derived values ------------------------------------------------------------------------------
    @property
    def reshaping(self) -> dict:
        """The preset-reshaping options that were given, as ``make_architecture`` keywords."""
        return {n: getattr(self, n) for n in _RESHAPING if getattr(self, n) is not None}

    @property
    def spike_bias_rule(self):
        """``spike_bias`` with None resolved: ``"paper"`` at paper scale, else ``"data"``."""
        if self.spike_bias is None:
            return "paper" if self.scale == "paper" else "data"
        return self.spike_bias

    def training_config(self, config: TrainingConfig | None = None) -> TrainingConfig:
        """The :class:`TrainingConfig` this spec trains with: ``config`` when given (then the schedule fields
        must be unset and ``seed`` unset or equal to ``config.seed``), else the scale's with restore-best:
        ``TrainingConfig.for_scale(scale, schedule=schedule_for_scale(scale, steps, lr_scale), ...)``."""
        if config is not None:
            if not isinstance(config, TrainingConfig):
                raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
            for name in _SCHEDULE:
                if getattr(self, name) is not None:
                    raise FitSpecError(name, f"{name} is part of the training configuration, and a config was "
                                             f"given: set it in the config (config.replace(...)) or drop the config")
            if self.seed is not None and self.seed != config.seed:
                raise FitSpecError("seed", f"seed={self.seed} but the given config has seed={config.seed}")
            return config
        given = {n: getattr(self, n) for n in ("batch_size", "window_ms", "device") if getattr(self, n) is not None}
        return TrainingConfig.for_scale(self.scale, schedule=schedule_for_scale(self.scale, self.steps, self.lr_scale),
                                        seed=self.seed or 0, restore_best=True, progress=self.progress, **given)

    # ---- conveniences --------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def replace(self, **changes) -> FitSpec:
        """A copy with ``changes`` (FitSpec fields), validated again."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise TypeError(f"unknown FitSpec field(s) {unknown}; the fields are {', '.join(self.field_names())}")
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        changed = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not f.default and not (type(value) is type(f.default) and value == f.default):
                changed.append(f"{f.name}={value!r}")
        return f"FitSpec({', '.join(changed)})"
