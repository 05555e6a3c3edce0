"""Model files: the weights and a JSON model card.

:func:`save_model` writes ``<path>.pt`` (a ``state_dict``: tensors only) and ``<path>.json`` (a model
card: the network's config (a :class:`TCNConfig`, or an :class:`ELMConfig` marked ``"kind": "elm"``), the
parameter count, the sha256 of the ``.pt`` file, and whatever the caller adds). :func:`load_model` rebuilds
the network of the card's kind and loads the weights with ``torch.load(..., weights_only=True)``: nothing is
unpickled.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write_bytes
from .kinds import build_model, count_parameters, is_model, macs_per_ms, model_config_from_dict

CARD_FORMAT = "neurodepth-model"
CARD_FORMAT_VERSION = 1

__all__ = ["CARD_FORMAT", "CARD_FORMAT_VERSION", "WEIGHT_DTYPES", "check_weights_dtype", "save_model", "read_model_card", "update_model_card",
           "load_model"]


# ---- model files ------------------------------------------------------------------------------------
def _model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".pt", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".pt"), p.with_name(p.name + ".json")


WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def check_weights_dtype(weights_dtype: str) -> str:
    """``weights_dtype`` if it is a storage type :func:`save_model` knows, else a ``ValueError``."""
    if weights_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weights_dtype must be one of {sorted(WEIGHT_DTYPES)}, got {weights_dtype!r}")
    return weights_dtype


def _state_dict_bytes(model: nn.Module, weights_dtype: str = "float32") -> bytes:
    buf = io.BytesIO()
    # a plain dict of contiguous CPU tensors, so that weights_only loading works, files move between devices,
    # and the bytes do not depend on how a weight is laid out in memory (the first layer's may be tap-major)
    dtype = WEIGHT_DTYPES[weights_dtype]
    torch.save({k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
                for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


_RESERVED_CARD_KEYS = ("format", "format_version", "config", "name", "n_parameters", "receptive_field_ms",
                       "macs_per_ms", "weights_file", "weights_sha256", "weights_dtype")


def save_model(path: str | os.PathLike, model: nn.Module, card: dict | None = None, *,
               weights_dtype: str = "float32") -> tuple[Path, Path]:
    """Write ``<path>.pt`` (the ``state_dict``) and ``<path>.json`` (the model card), each atomically.

    Parameters
    ----------
    path : file name without suffix (a trailing ``.pt`` or ``.json`` is dropped).
    model : a :class:`TCN` or an :class:`~neurodepth_lib.nets.ELM`.
    card : JSON-able extra information (dataset manifest hash, training schedule, metrics...). It may not
        use the reserved keys the card already holds: ``format``, ``config``, ``n_parameters``, ...
    weights_dtype : ``"float32"`` (default) or ``"float16"``: half the file, for shipping (the L5PC's first
        layer holds most of the weights). :func:`load_model` returns float32 weights either way, so a
        float16 file is the model it describes: evaluate it after loading.

    Returns
    -------
    (weights_path, card_path)
    """
    if not is_model(model):
        raise TypeError(f"save_model needs a TCN or an ELM, got {type(model).__name__}")
    card = {} if card is None else card
    if not isinstance(card, dict):
        raise TypeError(f"card must be a dict, got {type(card).__name__}")
    clash = sorted(set(card) & set(_RESERVED_CARD_KEYS))
    if clash:
        raise ValueError(f"card keys {clash} are reserved (the card fills them in itself)")
    check_weights_dtype(weights_dtype)
    weights_path, card_path = _model_paths(path)
    data = _state_dict_bytes(model, weights_dtype)
    full = {
        "format": CARD_FORMAT, "format_version": CARD_FORMAT_VERSION,
        "name": model.config.name, "config": model.config.to_dict(),
        "n_parameters": count_parameters(model), "receptive_field_ms": model.config.receptive_field_ms,
        "macs_per_ms": macs_per_ms(model.config),
        "weights_file": weights_path.name, "weights_sha256": hashlib.sha256(data).hexdigest(),
        "weights_dtype": weights_dtype, **card,
    }
    try:
        text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"the model card must be JSON-able (plain numbers, strings, lists, dicts; no NaN): {err}") \
            from None
    # weights first: a card never points to weights that are not there yet
    atomic_write_bytes(weights_path, data)
    atomic_write_bytes(card_path, (text + "\n").encode())
    return weights_path, card_path


def read_model_card(path: str | os.PathLike) -> dict:
    """The JSON model card written by :func:`save_model` (``path`` with or without suffix)."""
    _, card_path = _model_paths(path)
    if not card_path.exists():
        raise FileNotFoundError(f"no model card {card_path} (save_model writes <path>.pt and <path>.json)")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"model card {card_path} is not valid JSON: {err}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ValueError(f"{card_path} is not a neurodepth model card (format != {CARD_FORMAT!r})")
    if card.get("format_version") != CARD_FORMAT_VERSION:
        raise ValueError(f"{card_path} has format_version {card.get('format_version')!r}; this library "
                         f"reads version {CARD_FORMAT_VERSION}")
    return card


def update_model_card(path: str | os.PathLike, **fields) -> dict:
    """Set top-level ``fields`` of a model card (metrics, provenance...) and rewrite it atomically; the
    weights are untouched and the reserved keys cannot change. Returns the new card."""
    clash = sorted(set(fields) & set(_RESERVED_CARD_KEYS))
    if clash:
        raise ValueError(f"card keys {clash} are reserved (save_model fills them in)")
    card = {**read_model_card(path), **fields}
    try:
        text = json.dumps(card, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"the model card must be JSON-able (no NaN): {err}") from None
    atomic_write_bytes(_model_paths(path)[1], (text + "\n").encode())
    return card


def _read_state(weights_path: Path, data: bytes) -> dict:
    """The tensors of a weights file, read with ``weights_only=True``; anything else is refused (nothing is
    unpickled, and no advice to unpickle it is passed on)."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (not a zip), EOFError...: not our file
        raise ValueError(f"{weights_path} is not a neurodepth weights file: it holds something other than plain "
                         f"tensors ({type(err).__name__}); it was not loaded. Use model files written by "
                         f"neurodepth (save_model / neurodepth train) from a source you trust") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ValueError(f"{weights_path} is not a neurodepth weights file (not a dict of named tensors)")
    return state


def _check_shapes(config, state: dict, weights_path: Path, card_path: Path) -> None:
    """Refuse a card whose architecture does not fit the weights, before building it: the network is laid
    out on the ``meta`` device (no memory), so a card asking for absurd sizes costs nothing."""
    try:
        with torch.device("meta"):
            skeleton = build_model(config)
    except Exception:  # pragma: no cover - a layer that cannot be laid out on meta: load_state_dict checks
        return
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want != have:
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        k = diff[0]
        raise ValueError(f"weights {weights_path} do not fit the architecture in {card_path} ({config.name}): "
                         f"{len(diff)} tensor(s) differ, e.g. {k!r}: the card asks for {want.get(k)}, the file "
                         f"holds {have.get(k)}")


def load_model(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> nn.Module:
    """Rebuild the network (a :class:`TCN` or an :class:`~neurodepth_lib.nets.ELM`, by the card's ``config``)
    from ``<path>.json`` and load ``<path>.pt`` with ``weights_only=True``.

    The model is returned in eval mode; its card is available as ``model.card``. Raises
    ``FileNotFoundError`` when a file is missing and ``ValueError`` when the weights do not belong to the
    card (checksum or parameter names/shapes differ).
    """
    weights_path, card_path = _model_paths(path)
    card = read_model_card(path)
    if not weights_path.exists():
        raise FileNotFoundError(f"model card {card_path} found but its weights {weights_path} are missing")
    data = weights_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if card.get("weights_sha256") not in (None, digest):
        raise ValueError(f"{weights_path} does not match its card {card_path}: sha256 {digest[:12]}... != "
                         f"{str(card['weights_sha256'])[:12]}... (files from different saves?)")
    state = _read_state(weights_path, data)
    try:
        config = model_config_from_dict(card["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"model card {card_path} holds no valid architecture ('config'): {err}") from None
    _check_shapes(config, state, weights_path, card_path)  # before allocating what the card asks for
    model = build_model(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"weights {weights_path} do not fit the architecture in {card_path} "
                         f"({config.name}): {err}") from None
    if map_location is not None:
        model.to(map_location)
    model.card = card
    return model.eval()


