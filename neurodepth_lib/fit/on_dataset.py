"""Training a TCN on a dataset directory with the paper's targets, losses and schedule; writing its model file.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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
from .windows import WindowSampler

__all__ = ["spike_log_odds", "dataset_fingerprint", "FitResult", "train_on_dataset"]


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
    train_data : a dataset directory (or :class:`~neurodepth_lib.data.TrialDataset`).
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
    the run; ``neurodepth_lib.scoring.record_metrics`` adds evaluation metrics to it.
    """
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
    if isinstance(architecture, TCN):
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
        model = TCN(model_config)
    if model.config.n_dendritic and model.config.n_dendritic != train_sampler.n_dendritic:
        raise ValueError(f"the model's dendritic head has {model.config.n_dendritic} channels but the data serve "
                         f"{train_sampler.n_dendritic} dendritic components"
                         + ("" if train_sampler.n_dendritic else " (no dendritic voltages recorded, or "
                            "dendritic=False): use n_dendritic=0"))
    run["model_config"] = model.config.to_dict()
    if paths is not None:
        atomic_write_bytes(paths["run"], (json.dumps(run, indent=1, sort_keys=True) + "\n").encode())

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
            "spike_bias_rule": spike_bias if not isinstance(architecture, TCN) else "given model",
            "train_spike_probability_per_ms": float(1.0 / (1.0 + math.exp(-rate_logit))),
            "history_file": paths["history"].name if paths else None,
        },
        "metrics": {"valid_losses_at_best": valid_at_best},
        **(card or {}),
    }
    if paths is not None:
        atomic_write_bytes(paths["history"], (json.dumps(history.to_dict(), allow_nan=False) + "\n").encode())
        _, card_path = save_model(out, model, full_card, weights_dtype=weights_dtype)
        if weights_dtype != "float32":  # the returned model is the one in the file
            model.load_state_dict(load_model(out, map_location=None).state_dict())
        model.card = json.loads(card_path.read_text())
        model.model_path = str(out)
    else:
        model.card = full_card  # what load_model would attach: the target rules travel with the model
    return FitResult(model=model, history=history, train_sampler=train_sampler, valid_sampler=valid_sampler,
                     train_trials=train_idx, valid_trials=valid_idx, model_path=out, card=full_card)

