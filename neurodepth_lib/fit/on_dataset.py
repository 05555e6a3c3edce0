"""Training a network (a TCN or an ELM) on a dataset directory with the paper's targets, losses and schedule;
writing its model file.

:class:`FitSpec` says what to train on and how (validated once, before any data is read);
:func:`train_on_dataset` runs it. The ``neurodepth train`` command is argument parsing plus one call to it.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write_bytes, check_output_path, exclusive_lock, file_sha256
from ..data import assets
from ..data.input_cache import input_cache_path
from ..data.shards import MANIFEST_NAME
from ..data.store import TrialDataset, check_same_source, open_dataset
from ..data.targets import split_trials
from ..nets.files import load_model, save_model
from ..nets.predict import resolve_device
from ..nets.kinds import build_model, describe_architecture, is_model, is_model_config, is_recurrent
from ..nets.presets import make_architecture
from .loop import TrainingConfig, TrainingHistory, checkpoint_paths, train
from .schedule import schedule_for_scale
from .spec import FitSpec, FitSpecError
from .windows import WindowSampler

__all__ = ["spike_log_odds", "dataset_fingerprint", "FitResult", "trials_of_run", "train_on_dataset",
           "ModelAndTest", "shipped_or_trained"]


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


@dataclass
class FitResult:
    """What :func:`train_on_dataset` returns: the trained ``model`` (eval mode, best weights when a
    validation set was given), its ``history``, the samplers (their ``transform`` holds the target rules),
    the trial indices used, and ``model_path`` / ``card`` of the written model file (None without ``out``)."""

    model: torch.nn.Module
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


def _describe_model(config, dataset: TrialDataset) -> str:
    return f"training {describe_architecture(config)} on {dataset.path}"


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


def trials_of_run(spec: FitSpec, ds: TrialDataset, vds: TrialDataset | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The trials a run of ``spec`` trains on (of ``ds``) and validates on (of ``vds``, or of ``ds`` when there
    is no validation dataset: ``valid_fraction`` of the training pool, split by ``split_seed``, at least one
    trial when the fraction is positive and the pool has two). :func:`train_on_dataset` reads exactly these,
    so a caller can prepare their inputs beforehand (a sweep fills its shared input cache once)."""
    pool = _training_pool(spec, ds)
    if vds is None:
        n = pool.size
        train_pos, valid_pos = split_trials(n, spec.valid_fraction, spec.split_seed)
        if spec.valid_fraction > 0 and valid_pos.size == 0 and n >= 2:
            order = np.random.default_rng(spec.split_seed).permutation(n)
            train_pos, valid_pos = np.sort(order[1:]), np.sort(order[:1])
        return pool[train_pos], pool[valid_pos]
    valid_idx = np.arange(len(vds)) if spec.valid_trials is None else np.asarray(spec.valid_trials, dtype=int)
    if valid_idx.max() >= len(vds):
        raise FitSpecError("valid_trials", f"valid_trials must be indices in [0, {len(vds)}) of the validation "
                                           f"dataset, got {spec.valid_trials!r}")
    return pool, valid_idx


def _architecture_config(spec: FitSpec, n_inputs: int):
    """The config of ``spec.architecture`` (a preset is built for ``n_inputs``)."""
    arch = spec.architecture
    if is_model(arch):
        return arch.config
    if is_model_config(arch):
        return arch
    return make_architecture(arch, n_inputs=n_inputs, **spec.reshaping)


def _check_fits_the_data(spec: FitSpec, config: TrainingConfig, ds: TrialDataset, vds) -> None:
    """Every size that the data fix, checked before any input is regenerated: the network's inputs, its
    receptive field against the window, the window against the trials."""
    arch = spec.architecture
    given = arch.config if is_model(arch) else arch if is_model_config(arch) else None
    if given is not None and given.n_inputs != ds.n_channels:
        raise ValueError(f"the architecture has n_inputs={given.n_inputs} but the dataset has {ds.n_channels} "
                         f"input channels")
    arch_config = _architecture_config(spec, ds.n_channels)
    rf = int(arch_config.receptive_field_ms)
    if config.window_ms < rf and not is_recurrent(arch_config):  # a recurrent model's window needs no cover
        field = "kernel_sizes" if spec.kernel_sizes is not None else "window_ms"
        raise FitSpecError(field, f"{field}: the network's receptive field is {rf} ms, longer than the "
                                  f"{config.window_ms}-ms training window: no output would see its whole input; "
                                  f"use smaller kernels or window_ms >= {rf}")
    for what, d in (("training", ds), ("validation", vds)):
        if d is not None and config.window_ms > d.duration_ms:
            raise FitSpecError("window_ms", f"window_ms={config.window_ms} is longer than the {d.duration_ms}-ms "
                                            f"trials of the {what} dataset {d.path.name}")


def train_on_dataset(train_data, out=None, spec: FitSpec | None = None, *, config: TrainingConfig | None = None,
                     **overrides) -> FitResult:
    """Train a network (a TCN or an ELM) on a dataset directory with the paper's targets, losses and schedule;
    write a model file.

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

    resolve_device(config.device)  # a device that is not here fails before any data is read
    ds = _open(train_data, spec.allow_incomplete)
    vds = None if spec.valid_data is None else _open(spec.valid_data, spec.allow_incomplete)
    mismatch = None
    if vds is not None:
        mismatch = check_same_source(ds.source, vds.source, expected_what="the training dataset",
                                     actual_what="the validation dataset", allow_mismatch=spec.allow_mismatch)
        if vds.n_channels != ds.n_channels:
            raise ValueError(f"the validation dataset ({vds.cell}, {vds.n_channels} inputs) does not match the "
                             f"training dataset ({ds.cell}, {ds.n_channels} inputs)")
    _check_fits_the_data(spec, config, ds, vds)
    train_idx, valid_idx = trials_of_run(spec, ds, vds)
    dendritic = "dend_1ms" in ds.outputs if spec.dendritic is None else spec.dendritic

    paths = None
    lock = contextlib.nullcontext()
    if out is not None:
        out = Path(out)
        if out.suffix in (".pt", ".json"):
            out = out.with_suffix("")
        check_output_path(out.with_name(out.name + ".pt"), "the model file", directory=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        paths = _run_paths(out)
        # one run at a time writes a model prefix: a second fails at once instead of mixing two runs' files
        lock = exclusive_lock(out.with_name(out.name + ".lock"), f"the model {out}")
    with lock:
        return _train_locked(spec, config, ds, vds, out, paths, train_idx, valid_idx, dendritic, mismatch)


def _train_locked(spec: FitSpec, config: TrainingConfig, ds: TrialDataset, vds, out, paths, train_idx, valid_idx,
                  dendritic: bool, mismatch) -> FitResult:
    """:func:`train_on_dataset` once everything is checked and it holds the output's lock."""
    scale, spike_bias, log = spec.scale, spec.spike_bias_rule, spec.log or (lambda text: None)
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
        if before.get("seed", run["seed"]) != run["seed"]:
            raise ValueError(f"{ckpt_file} belongs to a run with seed {before.get('seed')}, not {run['seed']}; pass "
                             f"resume=False (--no-resume) to start over, or another out")

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
    if is_model(architecture):
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
        model = build_model(model_config)
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
            "spike_bias_rule": spike_bias if not is_model(architecture) else "given model",
            "train_spike_probability_per_ms": float(1.0 / (1.0 + math.exp(-rate_logit))),
            "history_file": paths["history"].name if paths else None,
        },
        "metrics": {"valid_losses_at_best": valid_at_best},
        **({} if mismatch is None else {"allow_mismatch": mismatch}),
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


@dataclass
class ModelAndTest:
    """A trained model (its file prefix), the held-out data to score it on, and where the model came from."""

    model_path: Path
    test: "assets.ChosenData"
    source: str  # "shipped with the lab data (<where>)" or "trained in this notebook"


def shipped_or_trained(model_asset: str, test_asset: str, work_dir, *, train_data: dict, test_data: dict,
                       scale: str, use_shipped: bool = True, architecture: str | None = None,
                       n_steps: int | None = None, lr_scale: float | None = None, seed: int = 0,
                       max_test_trials: int | None = None, workers: int | None = None,
                       input_workers: int | None = None, cell: str = "l5pc",
                       condition: str = "NMDA") -> ModelAndTest:
    """A model and its held-out trials in one call. With ``use_shipped``, the lab model ``model_asset`` and
    the lab test set ``test_asset`` (from a checkout, or downloaded: :func:`neurodepth_lib.data.assets.find`),
    scored on their first ``max_test_trials`` trials (None: all). Otherwise, or when either is unavailable,
    ``train_data`` and ``test_data`` (``generate_dataset`` settings: trials, duration, seed, shard size) are
    simulated in ``work_dir`` and a model is trained there on the first, with the scale's schedule
    (``n_steps``, ``lr_scale``) and keeping its best validation weights. Rerunning resumes both."""
    work_dir = Path(work_dir)
    if use_shipped:
        model_path, test = assets.find(model_asset), None
        if model_path is not None:
            test = assets.choose_dataset(test_asset, None, max_trials=max_test_trials)
        if model_path is not None and test is not None:
            return ModelAndTest(Path(model_path), test,
                                f"shipped with the lab data ({assets.used()[model_asset]['source']})")
    simulate = dict(cell=cell, condition=condition, workers=workers, use_shipped=False)
    train_dir, _ = assets.dataset(None, work_dir / "train", **simulate, **train_data)
    test = assets.choose_dataset(None, work_dir / "test", use_shipped=False, cell=cell, condition=condition,
                                 workers=workers, **test_data)
    config = TrainingConfig.for_scale(
        scale, schedule=schedule_for_scale(scale, total_steps=n_steps, lr_scale=lr_scale), seed=seed,
        restore_best=True)
    train_on_dataset(train_dir, work_dir / "model", architecture=architecture, config=config, scale=scale,
                     workers=input_workers)
    return ModelAndTest(work_dir / "model", test, "trained in this notebook")
