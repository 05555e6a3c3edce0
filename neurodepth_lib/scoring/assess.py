"""Score a trained network on held-out trials with the paper's protocol (chapters 04-05,
``neurodepth evaluate MODEL DATASET``).

This module is the glue between the layers: it runs a :class:`~neurodepth_lib.nets.TCN` (torch) over
whole trials of a dataset directory (:mod:`~neurodepth_lib.data`) and hands numpy arrays to
:func:`neurodepth_lib.scoring.evaluate`, which stays free of torch.

>>> from neurodepth_lib.scoring import evaluate_model
>>> a = evaluate_model("runs/l5pc_lab", "data/l5pc_test")          # doctest: +SKIP
>>> print(a.table())                                                         # doctest: +SKIP
>>> a.to_dict()["evaluation"]["auc"]                                         # doctest: +SKIP

How a trial is predicted. The network runs over each whole trial in one causal pass
(:func:`~neurodepth_lib.nets.predict_full_trace`); that equals the paper's stitched 400-ms windows at
every millisecond (tests/test_fitting.py checks it). The first ``T - 1`` ms (``T`` = receptive field) are
an edge where the network sees zeros before time 0; the protocol ignores the first 500 ms anyway.

Targets and units. The truth is built with the model's own target rules (the ``targets`` entry of its
card, written by :func:`neurodepth_lib.fit.train_on_dataset`; otherwise the paper's rules for the
dataset's cell): spikes in bins ``int(t - 0.5)``; the soma voltage clipped at -55 mV. The network's soma
output is in training units (mV minus the bias, -67.7 mV for the L5PC); it is shifted back to mV, so RMSE
and MAE are in mV of the clipped somatic voltage.
"""
from __future__ import annotations

import datetime
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

import torch
from tqdm.auto import tqdm

from ..data.input_cache import cached_inputs, materialise_inputs
from .._checks import finite_float, non_negative_int, positive_int
from ..data.store import TrialDataset, check_same_source, open_dataset
from ..data.targets import TargetTransform
from ..fit.windows import WindowSampler
from ..nets.files import load_model, read_model_card, update_model_card
from ..nets.predict import predict_full_trace, resolve_device
from ..nets.kinds import is_model
from . import protocol

__all__ = ["TrialPredictions", "Assessment", "predict_trials", "evaluate_model", "assess_predictions",
           "record_metrics", "transform_from_card", "score_validation"]


@dataclass(frozen=True, eq=False)


class TrialPredictions:
    """A network's predictions over whole trials, with the truth, all ``(n_trials, time)`` at 1 ms.

    ``trials``: dataset trial indices; ``spike_probability``; ``spike_true`` (0/1, bins ``int(t - 0.5)``);
    ``soma_pred_mV`` (the soma head's output + the target bias); ``soma_true_mV`` (the voltage clipped as
    in training); ``soma_raw_mV`` (unclipped, for plots); ``spike_times_ms`` (list of arrays);
    ``dendritic_pred`` ``(n, K, time)`` when the model has a dendritic head (whitened PCA units) and
    ``dendritic_true`` when the source served dendritic targets; ``transform``: the target rules used.
    """

    trials: np.ndarray
    spike_probability: np.ndarray
    spike_true: np.ndarray
    soma_pred_mV: np.ndarray
    soma_true_mV: np.ndarray
    soma_raw_mV: np.ndarray
    spike_times_ms: list
    transform: TargetTransform
    receptive_field_ms: int
    dendritic_pred: np.ndarray | None = None
    dendritic_true: np.ndarray | None = None

    @property
    def n_trials(self) -> int:
        return int(self.spike_probability.shape[0])

    @property
    def duration_ms(self) -> int:
        return int(self.spike_probability.shape[1])


def transform_from_card(card: dict | None) -> TargetTransform | None:
    """The target rules a model was trained with (its card's ``targets``), or None."""
    if not card or not isinstance(card.get("targets"), dict):
        return None
    return TargetTransform.from_dict(card["targets"])


def _load(model):
    if isinstance(model, (str, os.PathLike)):
        loaded = load_model(model)
        loaded.model_path = str(model)
        return loaded
    if not is_model(model):
        raise TypeError(f"model must be a network of the library (a TCN or an ELM) or the path of a model file, "
                        f"got {type(model).__name__}")
    return model


def _check_trials(trials, n: int, what: str) -> list[int]:
    """``trials`` as a list of distinct whole numbers in ``[0, n)``, or a ``ValueError`` before any work."""
    if isinstance(trials, (str, bytes)) or not hasattr(trials, "__iter__"):
        raise ValueError(f"trials must be a list of trial indices, got {trials!r}")
    out = []
    for t in trials:
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Integral):
            raise ValueError(f"trials must be whole-number indices, got {t!r}")
        if not 0 <= int(t) < n:
            raise ValueError(f"trial {int(t)} does not exist: there are {n} {what} (indices 0 to {n - 1})")
        out.append(int(t))
    if not out:
        raise ValueError("trials selects no trial")
    if len(set(out)) != len(out):
        raise ValueError("trials lists a trial more than once")
    return out


def predict_trials(model, data, *, trials=None, transform: TargetTransform | None = None, batch_size: int = 4,
                   device=None, workers: int = 0, input_cache_dir=None,
                   progress: bool = False) -> TrialPredictions:
    """Run ``model`` over whole trials of ``data`` and collect predictions and truth.

    Parameters
    ----------
    model : a network of the library (:class:`~neurodepth_lib.nets.TCN`, an ELM) or the path of a model file.
    data : a dataset directory, a :class:`~neurodepth_lib.data.TrialDataset`, or a
        :class:`~neurodepth_lib.fit.WindowSampler` (its trials, target rules and dendritic targets).
    trials : dataset trial indices (for a sampler: its rows); default all.
    transform : target rules; default the model card's, else the sampler's, else the paper's for the
        dataset's cell (an unknown soma bias, the I&F rule, is then fitted on these trials).
    batch_size : trials per forward pass (memory: 1,278 x 6,000 float32 = 31 MB per L5PC trial).
    device : where to run (None = where the model is).
    workers : processes that regenerate the trials' inputs from their recipes first (a dataset path or
        TrialDataset only; 0 = this process, trial by trial).
    input_cache_dir : keep those inputs in a cache directory shared between calls (sweeps); default none.
    """
    model = _load(model)
    n_dend = model.config.n_dendritic
    rows_x, spikes_true, soma_true, soma_raw, times, dend_true, index = [], [], [], [], [], [], []
    if isinstance(data, WindowSampler):
        sampler = data
        transform = transform or transform_from_card(getattr(model, "card", None)) or sampler.transform
        rows = range(len(sampler.trials)) if trials is None else _check_trials(trials, len(sampler.trials), "rows")
        if sampler.n_channels != model.config.n_inputs:
            raise ValueError(f"the data have {sampler.n_channels} inputs but the model expects {model.config.n_inputs}")

        def item(r):
            b = sampler.full_trial(r, as_torch=False)
            d = b.get("dendritic")
            return (b["x"][0], b["soma_mV"], b["spike_times_ms"], None if d is None else d[0], b["trial"])
    else:
        ds = data if isinstance(data, TrialDataset) else open_dataset(data)
        if ds.n_channels != model.config.n_inputs:
            raise ValueError(f"dataset {ds.path.name} has {ds.n_channels} input channels but the model expects "
                             f"{model.config.n_inputs}")
        rows = range(len(ds)) if trials is None else _check_trials(trials, len(ds), f"trials of {ds.path.name}")
        transform = transform or transform_from_card(getattr(model, "card", None)) or \
            TargetTransform.paper(ds.cell, ds.condition)
        if transform.soma_bias_mV is None:
            transform = transform.fit_bias(ds.output("soma_1ms", i) for i in rows)

        events = {}
        if input_cache_dir is not None:
            events = dict(zip(rows, cached_inputs(ds, rows, input_cache_dir, workers=int(workers or 0),
                                                  progress=progress)))
        elif workers and int(workers) > 1 and len(rows) > 1:
            events = dict(zip(rows, materialise_inputs(ds, rows, workers=int(workers), progress=progress)))

        def item(i):
            e = events.pop(i) if i in events else ds.inputs(i)
            return (e.to_dense(np.uint8), ds.output("soma_1ms", i), ds.spike_times(i), None, i)
    rows = list(rows)
    if not rows:
        raise ValueError("no trials to predict")
    it = rows
    if progress:
        it = tqdm(rows, desc="predicting trials", unit="trial")
    preds_p, preds_v, preds_d = [], [], []

    def flush():
        if not rows_x:
            return
        pred = predict_full_trace(model, torch.as_tensor(np.stack(rows_x)), device=device)
        preds_p.append(pred.spike_probability)
        preds_v.append(pred.soma)
        if pred.dendritic is not None:
            preds_d.append(pred.dendritic)
        rows_x.clear()

    for r in it:
        x, v, t, d, i = item(r)
        duration = x.shape[-1]
        rows_x.append(x)
        soma_raw.append(np.asarray(v, np.float32))
        soma_true.append(np.minimum(np.asarray(v, np.float64), transform.soma_clip_mV))
        spikes_true.append(transform.spike_target(np.asarray(t), duration).astype(np.uint8))
        times.append(np.asarray(t))
        index.append(int(i))
        if d is not None:
            dend_true.append(d)
        if len(rows_x) >= int(batch_size):
            flush()
    flush()
    return TrialPredictions(
        trials=np.asarray(index), spike_probability=np.concatenate(preds_p).astype(np.float64),
        spike_true=np.stack(spikes_true), soma_pred_mV=np.concatenate(preds_v).astype(np.float64)
        + transform.soma_bias_mV,
        soma_true_mV=np.stack(soma_true), soma_raw_mV=np.stack(soma_raw), spike_times_ms=times,
        transform=transform, receptive_field_ms=model.config.receptive_field_ms,
        dendritic_pred=np.concatenate(preds_d) if (n_dend and preds_d) else None,
        dendritic_true=np.stack(dend_true) if dend_true and len(dend_true) == len(index) else None)


def _finite_or_none(x):
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


@dataclass(frozen=True, eq=False)
class Assessment:
    """What :func:`evaluate_model` measured: the protocol's ``result``
    (:class:`~neurodepth_lib.protocol.EvaluationResult`), the ``temporal_precision`` histogram (None when
    it cannot be computed), the ``predictions``, and where the model and the data came from."""

    result: protocol.EvaluationResult
    temporal_precision: protocol.TemporalPrecision | None
    predictions: TrialPredictions = field(repr=False)
    model: dict
    dataset: dict

    def table(self) -> str:
        """The results as plain text: provenance, the protocol's table, the temporal precision."""
        m, d = self.model, self.dataset
        lines = [f"model {m.get('name')} ({m.get('n_parameters'):,} parameters, T = {m.get('receptive_field_ms')} ms)"
                 + (f" from {m['path']}" if m.get("path") else ""),
                 f"data  {d.get('name')}: {d.get('n_trials_predicted')} trials of {d.get('duration_ms')} ms"
                 + (f" (cell {d['cell']}" + (f", {d['condition']}" if d.get("condition") else "") + ")"
                    if d.get("cell") else "")]
        if d.get("training_overlap"):
            lines.append(f"WARNING: {d['training_overlap']} of these trials were used to train this model")
        lines.append(self.result.table())
        tp = self.temporal_precision
        if tp is not None and not np.any(tp.rate_hz > 0):
            lines.append(f"temporal precision: no predicted spike at the ROC point with FP ~ {100 * tp.fpr:.2g} % "
                         f"(too few bins or spikes to threshold there)")
        elif tp is not None:
            peak = int(np.argmax(tp.rate_hz))
            far = np.abs(tp.lags_ms) > 25
            lines += ["temporal precision (threshold at the ROC point with FP ~ "
                      f"{100 * tp.fpr:.2g} %, TP {tp.tpr:.3f})",
                      f"  predicted-spike rate around true spikes peaks at {tp.rate_hz[peak]:.0f} Hz, lag "
                      f"{int(tp.lags_ms[peak]):+d} ms; {tp.rate_hz[far].mean():.1f} Hz beyond +-25 ms "
                      f"({tp.n_true_spikes} true spikes)"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self, include_roc: bool | int = False) -> dict:
        """A JSON-able dict: ``model``, ``dataset``, ``evaluation`` (the protocol's numbers; ``include_roc``
        as in :meth:`~neurodepth_lib.protocol.EvaluationResult.to_dict`) and ``temporal_precision`` (lags,
        smoothed rate in Hz, threshold and its ROC point)."""
        tp = self.temporal_precision
        out = {"model": self.model, "dataset": self.dataset,
               "evaluation": self.result.to_dict(include_roc=include_roc),
               "temporal_precision": None if tp is None else {
                   "lags_ms": tp.lags_ms.tolist(), "rate_hz": tp.rate_hz.tolist(), "threshold": tp.threshold,
                   "fpr": tp.fpr, "tpr": tp.tpr, "n_true_spikes": tp.n_true_spikes}}
        return _finite_or_none(out)

    def summary(self) -> dict:
        """The headline numbers (for receipts and model cards)."""
        r = self.result
        return _finite_or_none({
            "auc": r.auc, "auc_std": r.auc_std,
            **{f"tp_at_{100 * x:g}pct_fp": v for x, v in r.tp_at_fp.items()},
            "partial_auc": r.partial_auc,
            # the headline soma numbers are the calibrated ones, as the paper's; the raw ones are kept, labelled
            "soma_calibrated_explained_variance_pct": r.soma_calibrated_explained_variance_pct,
            "soma_calibrated_rmse_mV": r.soma_calibrated_rmse_mV,
            "soma_calibrated_mae_mV": r.soma_calibrated_mae_mV,
            "soma_raw_explained_variance_pct": r.soma_explained_variance_pct,
            "soma_raw_rmse_mV": r.soma_rmse_mV, "soma_raw_mae_mV": r.soma_mae_mV,
            "n_trials_kept": r.n_trials_kept, "n_spikes": r.n_spikes, "filter": r.filter_name})


def _data_info(data, preds: TrialPredictions, card: dict | None) -> dict:
    info = {"n_trials_predicted": preds.n_trials, "duration_ms": preds.duration_ms,
            "trials": preds.trials.tolist()}
    ds = data.dataset if isinstance(data, WindowSampler) else (
        data if isinstance(data, TrialDataset) else open_dataset(data))
    # the whole set (every trial of the dataset, or every row of a sampler): only such a run is a headline
    n_all = len(data.trials) if isinstance(data, WindowSampler) else len(ds)
    info["n_trials_available"] = int(n_all)
    info["all_trials"] = bool(preds.n_trials == n_all and len(set(preds.trials.tolist())) == n_all)
    info.update({"name": ds.path.name, "path": str(ds.path), "plan_id": ds.manifest["plan_id"],
                 "cell": ds.cell, "condition": ds.condition})
    # trials whose windows the weights were fitted on (validation trials only chose the checkpoint)
    trained = (card or {}).get("dataset") or {}
    if trained.get("plan_id") == info["plan_id"]:
        info["training_overlap"] = int(len(set(trained.get("trials", [])) & set(info["trials"])))
    return info


def evaluate_model(model, data, *, config: protocol.EvaluationConfig | None = None, trials=None,
                   transform: TargetTransform | None = None, target_fpr: float = 0.002, batch_size: int = 4,
                   device=None, workers: int = 0, input_cache_dir=None, progress: bool = False,
                   allow_mismatch: bool = False) -> Assessment:
    """Predict whole held-out trials and score them with the paper's protocol (paper_facts 3.1).

    Parameters
    ----------
    model : a network of the library (TCN or ELM) or the path of a model file.
    data : a dataset directory, a TrialDataset or a WindowSampler (see :func:`predict_trials`).
    config : :class:`~neurodepth_lib.protocol.EvaluationConfig` (default the paper's: t >= 500 ms, trials
        with 0-24 spikes per 6 s, scaled to the trials' length, TP at 0.1 % and 0.25 % FP, AUC up to 1 % FP,
        12 subsets of 67 %).
    trials : which trials (dataset indices, or sampler rows); default all.
    target_fpr : the ROC point at which the temporal-precision histogram thresholds (paper 0.2 %).
    batch_size, device, workers, input_cache_dir, progress : see :func:`predict_trials`.
    allow_mismatch : score data of another cell or condition than the model was trained on (refused by
        default, before anything is predicted); the mismatch is recorded in ``Assessment.dataset``.

    Every argument, the trials, the device and the model's receptive field against the trials' length are
    checked before any trial is predicted.

    Returns
    -------
    :class:`Assessment`: ``.table()`` prints, ``.to_dict()`` is JSON-able. Evaluating on trials the model
    was trained on (same dataset plan and trial indices, per its card) is flagged in both and warned about.
    """
    # every check before any trial is predicted
    target_fpr = finite_float(target_fpr, "target_fpr")
    if not 0.0 < target_fpr < 1.0:
        raise ValueError(f"target_fpr must lie in (0, 1), got {target_fpr!r}")
    batch_size = positive_int(batch_size, "batch_size")
    workers = non_negative_int(workers, "workers")
    config = protocol.EvaluationConfig() if config is None else config
    if not isinstance(config, protocol.EvaluationConfig):
        raise TypeError(f"config must be an EvaluationConfig, got {type(config).__name__}")
    if device is not None:
        resolve_device(device)
    model = _load(model)
    if not isinstance(data, WindowSampler) and not isinstance(data, TrialDataset):
        data = open_dataset(data)
    ds = data.dataset if isinstance(data, WindowSampler) else data
    mismatch = check_same_source((getattr(model, "card", None) or {}).get("dataset"), ds.source,
                                 expected_what="the model was trained on data that", actual_what="the dataset",
                                 allow_mismatch=allow_mismatch)
    n = len(data.trials) if isinstance(data, WindowSampler) else len(ds)
    if trials is not None:
        trials = _check_trials(trials, n, "rows" if isinstance(data, WindowSampler) else f"trials of {ds.path.name}")
    rf = int(model.config.receptive_field_ms)
    if rf > ds.duration_ms:
        raise ValueError(f"the model's receptive field ({rf} ms) is longer than the {ds.duration_ms}-ms trials of "
                         f"{ds.path.name}: no output sees a whole input window")
    if rf - 1 > config.start_ms:
        warnings.warn(f"the model's receptive field ({rf} ms) reaches before time 0 for the first {rf - 1} ms, but "
                      f"scoring starts at {config.start_ms} ms: part of the score is the zero-padded edge",
                      stacklevel=2)
    preds = predict_trials(model, data, trials=trials, transform=transform, batch_size=batch_size,
                           device=device, workers=workers, input_cache_dir=input_cache_dir, progress=progress)
    a = assess_predictions(preds, model, data, config=config, target_fpr=target_fpr)
    if mismatch is not None:
        a.dataset["mismatch"] = mismatch
    return a


def assess_predictions(preds: TrialPredictions, model, data, *, config: protocol.EvaluationConfig | None = None,
                       target_fpr: float = 0.002) -> Assessment:
    """:func:`evaluate_model` on predictions already made by :func:`predict_trials` (``model`` and
    ``data`` are the ones that made them: they are only described, not run again)."""
    model = _load(model)
    config = config or protocol.EvaluationConfig()
    result = protocol.evaluate(preds.spike_probability, preds.spike_true, preds.soma_pred_mV,
                                 preds.soma_true_mV, config)
    kept = np.asarray(result.kept_trials, dtype=int)
    tp = None
    try:
        tp = protocol.temporal_precision_histogram(preds.spike_probability[kept], preds.spike_true[kept],
                                                     target_fpr=target_fpr, start_ms=config.start_ms)
    except ValueError:
        pass  # e.g. no spike after the warm-up in the kept trials: the histogram is undefined
    card = getattr(model, "card", None)
    model_info = {"name": model.config.name, "n_parameters": int(sum(p.numel() for p in model.parameters())),
                  "receptive_field_ms": model.config.receptive_field_ms,
                  "path": getattr(model, "model_path", None), "weights_sha256": (card or {}).get("weights_sha256")}
    data_info = _data_info(data, preds, card)
    if data_info.get("training_overlap"):
        warnings.warn(f"{data_info['training_overlap']} of the evaluated trials were used to train this model: "
                      "the numbers are not a held-out evaluation", stacklevel=2)
    return Assessment(result=result, temporal_precision=tp, predictions=preds, model=model_info,
                      dataset=data_info)


_NOT_A_KEY = ("history", "valid_losses_at_best")


def record_metrics(model_path, assessment: Assessment, key: str = "test", *, command=None) -> dict:
    """Append ``assessment`` to a model card's record and rewrite the card atomically (weights untouched).

    Nothing is overwritten: every evaluation is appended to ``metrics.history`` (its headline numbers, the
    dataset, trials, command and time). ``metrics[key]`` (e.g. ``metrics.test``, the layout cards have
    always had) is the headline: it is set only by an evaluation on every trial of a dataset of the model's
    own cell and condition; a subset of trials or mismatched data goes to the history only. A headline
    written before the history existed is moved into the history before it is replaced. ``command``: how
    the evaluation was started (e.g. the argv). Returns the card (``card["metrics"]["history"][-1]
    ["headline"]`` says whether ``metrics[key]`` changed).
    """
    if not isinstance(key, str) or not key or key in _NOT_A_KEY:
        raise ValueError(f"key must be a name such as 'test' (not one of {_NOT_A_KEY}), got {key!r}")
    metrics = dict(read_model_card(model_path).get("metrics") or {})
    history = list(metrics.get("history") or [])
    d = assessment.dataset
    numbers_ = {**assessment.summary(), "dataset": d.get("name"), "plan_id": d.get("plan_id"),
                "trials": d.get("trials"), "config": assessment.result.config.to_dict()}
    headline = bool(d.get("all_trials", True)) and not d.get("mismatch")
    for k, old in metrics.items():  # headlines recorded before there was a history: keep them
        if k not in _NOT_A_KEY and isinstance(old, dict) and not any(h.get("key") == k for h in history):
            history.append({"key": k, **old, "recorded_before_history": True})
    history.append({"key": str(key), **numbers_, "headline": headline,
                    "dataset_path": d.get("path"), "cell": d.get("cell"), "condition": d.get("condition"),
                    "all_trials": bool(d.get("all_trials", True)), "mismatch": d.get("mismatch"),
                    "command": None if command is None else [str(a) for a in command],
                    "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    if headline:
        metrics[str(key)] = numbers_
    metrics["history"] = history
    return update_model_card(model_path, metrics=_finite_or_none(metrics))


def score_validation(fit, log=print):
    """Score a finished fit's validation trials with the paper's protocol (every trial, no error bars) and
    record the result in its model card under ``metrics.valid``; returns the :class:`Assessment` (None when
    the fit had no validation trials, or when they cannot be scored, e.g. no spike in them: ``log`` says why).
    ``fit`` is what :func:`neurodepth_lib.fit.train_on_dataset` returned."""
    if fit.valid_sampler is None:
        return None
    try:
        a = evaluate_model(fit.model, fit.valid_sampler,
                           config=protocol.EvaluationConfig(spike_count_range=None, n_subsets=0),
                           allow_mismatch=bool((fit.card or {}).get("allow_mismatch")))
    except ValueError as err:
        log(f"validation trials not scored: {err}")
        return None
    if fit.model_path is not None:
        record_metrics(fit.model_path, a, key="valid")
    log("validation trials (all trials, no error bars):")
    log(a.result.table())
    return a
