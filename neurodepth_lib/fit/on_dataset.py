"""Training a TCN on a dataset directory with the paper's targets, losses and schedule; writing its model file.

:class:`FitSpec` says what to train on and how (validated once, before any data is read);
:func:`train_on_dataset` runs it. The ``neurodepth train`` command is argument parsing plus one call to it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from .._checks import non_negative_int, positive_float, positive_int
from .._io import atomic_write_bytes, file_sha256
from ..data.input_cache import input_cache_path
from ..data.shards import MANIFEST_NAME
from ..data.store import TrialDataset, open_dataset
from ..data.targets import split_trials
from ..nets.files import check_weights_dtype, load_model, save_model
from ..nets.presets import make_architecture
from ..nets.tcn import TCN, TCNConfig
from ..scales import check_scale
from .loop import TrainingConfig, TrainingHistory, checkpoint_paths, train
from .schedule import schedule_for_scale
from .windows import WindowSampler

__all__ = ["spike_log_odds", "dataset_fingerprint", "FitSpecError", "FitSpec", "FitResult", "train_on_dataset"]


def spike_log_odds(spikes, floor: float = 1e-4) -> float:
    """``log(p / (1 - p))`` of the fraction ``p`` of 1-ms bins holding a spike (``p`` kept in
    ``[floor, 1 - floor]``): the spike head's bias that makes an untrained network predict the data's base
    rate in every millisecond."""
    p = float(np.clip(np.mean(np.asarray(spikes, dtype=np.float64)), floor, 1.0 - floor))
    return float(math.log(p / (1.0 - p)))


def dataset_fingerprint(dataset) -> dict:
    """What identifies a dataset directory, for model cards: its name and path, the plan id (sha256 of what
    made it), the sha256 of ``manifest.json`` (which lists every shard's sha256), cell, condition, size."""
    ds = dataset if isinstance(dataset, TrialDataset) else open_dataset(dataset)
    return {"name": ds.path.name, "path": str(ds.path), "plan_id": ds.manifest["plan_id"],
            "manifest_sha256": file_sha256(ds.path / MANIFEST_NAME), "cell": ds.cell,
            "condition": ds.condition, "n_trials": int(len(ds)), "duration_ms": int(ds.duration_ms),
            "n_channels": int(ds.n_channels), "complete": ds.complete,
            # a dataset still being generated changes its manifest: name the shards this model saw
            **({} if ds.complete else {"shards_used": ds.shard_checksums})}


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

    The network
    -----------
    architecture : a preset name (:func:`~neurodepth_lib.nets.make_architecture`: ``large``, ``small``,
        ``fit_cnn``, ``lab``, ``tiny``), a :class:`TCNConfig`, or a built :class:`TCN`.
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
        A deviation from the paper that only changes the starting point. Not applied to a built TCN.

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

        for name in ("allow_incomplete", "resume", "cache_inputs", "progress"):
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
        elif isinstance(arch, (TCNConfig, TCN)):
            given = [n for n in _RESHAPING if getattr(self, n) is not None]
            if given:
                raise FitSpecError(given[0], f"{given[0]} reshapes a preset: architecture must be a preset name, "
                                             f"got a {type(arch).__name__}")
        else:
            raise TypeError(f"architecture must be a preset name, a TCNConfig or a TCN, got {type(arch).__name__}")
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

    def summary(self) -> str:
        """How the training went, in a line or two: steps, time, device, resumptions, best validation loss."""
        h = self.history
        lines = [f"{h.steps_done} of {h.total_steps} steps in {h.wall_time_total_s:.1f} s on {h.device}"
                 + (f" (resumed at step {', '.join(map(str, h.resumed_at_steps))})" if h.resumed_at_steps else "")]
        if h.best_step is not None:
            lines.append(f"best validation {h.best_by} loss {h.best_valid:.5f} at step {h.best_step}")
        return "\n".join(lines)


def _run_paths(out: Path) -> dict:
    return {"run": out.with_name(out.name + ".run.json"), "history": out.with_name(out.name + ".history.json"),
            "train_cache": out.with_name(out.name + ".train-inputs.h5"),
            "valid_cache": out.with_name(out.name + ".valid-inputs.h5")}


def _describe_data(entry: dict | None) -> str:
    """``dataset`` / ``valid_dataset`` of a run record in a few words, for error messages."""
    if entry is None:
        return "none"
    return f"{len(entry['trials'])} trials of {entry.get('name')} (plan {str(entry.get('plan_id'))[:12]})"


def _describe_model(config: TCNConfig, dataset: TrialDataset) -> str:
    return (f"training {config.name} (kernels {list(config.kernel_sizes)}, widths {list(config.widths)}"
            f"{', dendritic head ' + str(config.n_dendritic) if config.n_dendritic else ''}) on {dataset.path}")


def _open(data, allow_incomplete: bool) -> TrialDataset:
    return data if isinstance(data, TrialDataset) else open_dataset(data, allow_incomplete=allow_incomplete)


def _training_pool(spec: FitSpec, ds: TrialDataset) -> np.ndarray:
    """The training dataset's trials this run uses (before the validation split)."""
    if spec.first_trials is not None:
        if spec.first_trials > len(ds):
            raise FitSpecError("first_trials", f"first_trials must be between 1 and the {len(ds)} "
                                               f"{'finished ' if not ds.complete else ''}trials of {ds.path}, "
                                               f"got {spec.first_trials}")
        return np.arange(spec.first_trials)
    if spec.trials is None:
        return np.arange(len(ds))
    pool = np.asarray(spec.trials, dtype=int)
    if pool.max() >= len(ds):
        raise FitSpecError("trials", f"trials must be indices in [0, {len(ds)}) of the training dataset, "
                                     f"got {spec.trials!r}")
    return pool


def train_on_dataset(train_data, out=None, spec: FitSpec | None = None, *, config: TrainingConfig | None = None,
                     **overrides) -> FitResult:
    """Train a TCN on a dataset directory with the paper's targets, losses and schedule; write a model file.

    Parameters
    ----------
    train_data : a dataset directory (or :class:`~neurodepth_lib.data.TrialDataset`).
    out : model prefix: writes ``<out>.pt`` + ``<out>.json`` (the model and its card), and while training
        ``<out>.ckpt.pt`` (resumable checkpoint), ``<out>.best.*`` (best validation weights),
        ``<out>.run.json`` (what this run trains on), ``<out>.history.json`` and input caches. Rerunning
        the same call after a kill continues where the last checkpoint left off. None = no files.
    spec : a :class:`FitSpec`: what to train on and how (default ``FitSpec()``).
    config : a :class:`TrainingConfig` to train with instead of the one ``spec`` describes
        (:meth:`FitSpec.training_config`: the scale's schedule, batch 8, 400-ms windows, Nadam, restore best).
    overrides : FitSpec fields, e.g. ``train_on_dataset(ds, out, architecture="lab", trials=range(100))``;
        they replace the fields of ``spec``. Every field is checked before any data is read.

    Returns
    -------
    :class:`FitResult`. The card records the dataset fingerprints (:func:`dataset_fingerprint`) and trials,
    the target rules, the architecture, the training configuration (schedule included), a summary of the
    run and, when given, its provenance; ``neurodepth_lib.scoring.record_metrics`` adds evaluation metrics.
    """
    if spec is None:
        unknown = sorted(set(overrides) - set(FitSpec.field_names()))
        if unknown:
            raise TypeError(f"train_on_dataset() got unknown argument(s) {unknown}; the FitSpec fields are "
                            f"{', '.join(FitSpec.field_names())}")
        spec = FitSpec(**overrides)
    elif not isinstance(spec, FitSpec):
        raise TypeError(f"spec must be a FitSpec, got {type(spec).__name__}")
    elif overrides:
        spec = spec.replace(**overrides)
    config = spec.training_config(config)
    scale, spike_bias, log = spec.scale, spec.spike_bias_rule, spec.log or (lambda text: None)

    ds = _open(train_data, spec.allow_incomplete)
    vds = None if spec.valid_data is None else _open(spec.valid_data, spec.allow_incomplete)
    if vds is not None and (vds.n_channels != ds.n_channels or vds.cell != ds.cell):
        raise ValueError(f"the validation dataset ({vds.cell}, {vds.n_channels} inputs) does not match the "
                         f"training dataset ({ds.cell}, {ds.n_channels} inputs)")
    pool = _training_pool(spec, ds)
    n = pool.size
    if vds is None:
        train_pos, valid_pos = split_trials(n, spec.valid_fraction, spec.split_seed)
        if spec.valid_fraction > 0 and valid_pos.size == 0 and n >= 2:
            order = np.random.default_rng(spec.split_seed).permutation(n)
            train_pos, valid_pos = np.sort(order[1:]), np.sort(order[:1])
        train_idx, valid_idx = pool[train_pos], pool[valid_pos]
    else:
        train_idx = pool
        valid_idx = np.arange(len(vds)) if spec.valid_trials is None else np.asarray(spec.valid_trials, dtype=int)
        if valid_idx.max() >= len(vds):
            raise FitSpecError("valid_trials", f"valid_trials must be indices in [0, {len(vds)}) of the validation "
                                               f"dataset, got {spec.valid_trials!r}")
    dendritic = "dend_1ms" in ds.outputs if spec.dendritic is None else spec.dendritic

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
    if paths is not None and spec.resume and ckpt_file.exists() and paths["run"].exists():
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
    caches = {"train": paths["train_cache"] if (paths and spec.cache_inputs) else None,
              "valid": paths["valid_cache"] if (paths and spec.cache_inputs) else None}
    if spec.input_cache_dir is not None:
        caches = {"train": input_cache_path(spec.input_cache_dir, ds, train_idx),
                  "valid": input_cache_path(spec.input_cache_dir, vds if vds is not None else ds, valid_idx)}
    train_sampler = WindowSampler(ds, trials=train_idx, dendritic=dendritic, window_ms=window_ms,
                                  cache_path=caches["train"],
                                  workers=spec.workers, progress=spec.progress, seed=config.seed)
    valid_sampler = None
    if valid_idx.size:
        vsrc = vds if vds is not None else ds
        valid_sampler = WindowSampler(vsrc, trials=valid_idx, transform=train_sampler.transform,
                                      dendritic=dendritic and "dend_1ms" in vsrc.outputs, pca=train_sampler.pca,
                                      window_ms=window_ms, seed=config.seed + 1,
                                      cache_path=caches["valid"],
                                      workers=spec.workers, progress=spec.progress)

    rate_logit = spike_log_odds(train_sampler.spikes[:, train_sampler.transform.warmup_ms:])
    architecture = spec.architecture
    if isinstance(architecture, TCN):
        model = architecture
        if model.config.n_inputs != ds.n_channels:
            raise ValueError(f"the model expects {model.config.n_inputs} inputs but the dataset has {ds.n_channels}")
    else:
        if isinstance(architecture, str):  # the dataset decides the inputs and the dendritic head's size
            model_config = make_architecture(architecture, n_inputs=ds.n_channels,
                                             n_dendritic=train_sampler.n_dendritic, **spec.reshaping)
        else:
            model_config = architecture
        if model_config.n_inputs != ds.n_channels:
            raise ValueError(f"the architecture has n_inputs={model_config.n_inputs} but the dataset has "
                             f"{ds.n_channels} input channels")
        if spike_bias == "data":
            model_config = model_config.replace(spike_bias_init=round(rate_logit, 6))
        elif spike_bias != "paper":
            model_config = model_config.replace(spike_bias_init=float(spike_bias))
        torch.manual_seed(config.seed)  # the initial weights depend on the seed only
        model = TCN(model_config)
    if model.config.n_dendritic and model.config.n_dendritic != train_sampler.n_dendritic:
        raise ValueError(f"the model's dendritic head has {model.config.n_dendritic} channels but the data serve "
                         f"{train_sampler.n_dendritic} dendritic components"
                         + ("" if train_sampler.n_dendritic else " (no dendritic voltages recorded, or "
                            "dendritic=False): use n_dendritic=0"))
    run["model_config"] = model.config.to_dict()
    if paths is not None:
        atomic_write_bytes(paths["run"], (json.dumps(run, indent=1, sort_keys=True) + "\n").encode())

    log(_describe_model(model.config, ds))
    log(config.schedule.table())
    history = train(model, train_sampler, valid_sampler, config, checkpoint_path=out, resume=spec.resume)

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
            "spike_bias_rule": spike_bias if not isinstance(architecture, TCN) else "given model",
            "train_spike_probability_per_ms": float(1.0 / (1.0 + math.exp(-rate_logit))),
            "history_file": paths["history"].name if paths else None,
        },
        "metrics": {"valid_losses_at_best": valid_at_best},
        **({} if spec.provenance is None else {"provenance": {
            "cores": os.cpu_count(), "platform": platform.platform(), **spec.provenance,
            "wall_s": round(float(history.wall_time_total_s), 1)}}),
        **(spec.card or {}),
    }
    if paths is not None:
        atomic_write_bytes(paths["history"], (json.dumps(history.to_dict(), allow_nan=False) + "\n").encode())
        _, card_path = save_model(out, model, full_card, weights_dtype=spec.weights_dtype)
        if spec.weights_dtype != "float32":  # the returned model is the one in the file
            model.load_state_dict(load_model(out, map_location=None).state_dict())
        model.card = json.loads(card_path.read_text())
        model.model_path = str(out)
    else:
        model.card = full_card  # what load_model would attach: the target rules travel with the model
    result = FitResult(model=model, history=history, train_sampler=train_sampler, valid_sampler=valid_sampler,
                       train_trials=train_idx, valid_trials=valid_idx, model_path=out, card=full_card)
    log(result.summary())
    return result
