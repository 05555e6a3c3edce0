"""The model families by kind: one place that knows every architecture, so that model files, the training
loop, prediction and scoring handle a TCN and an ELM alike.

A family is a config class (frozen dataclass with ``to_dict``/``from_dict``/``replace``, ``n_inputs``,
``n_dendritic``, ``spike_bias_init``, ``name`` and ``receptive_field_ms``) and a module class built from it
(``config``, ``forward(x) -> TCNOutput``, ``check_input``, ``l2_weights``). A config's ``to_dict`` names its
kind (``"kind": "elm"``); a dict without one is a TCN's (every card written before the ELM existed).

``count_parameters`` and ``macs_per_ms`` here accept any family; :mod:`neurodepth_lib.nets` exports these.
"""
from __future__ import annotations

from torch import nn

from . import tcn as _tcn
from .elm import ELM, ELMConfig
from .tcn import TCN, TCNConfig

__all__ = ["MODEL_KINDS", "kind_of", "is_model", "is_model_config", "is_recurrent", "model_config_from_dict",
           "build_model", "count_parameters", "macs_per_ms", "describe_architecture"]

MODEL_KINDS: dict[str, tuple[type, type]] = {"tcn": (TCNConfig, TCN), "elm": (ELMConfig, ELM)}
_CONFIGS = tuple(config for config, _ in MODEL_KINDS.values())
_MODELS = tuple(model for _, model in MODEL_KINDS.values())


def is_model(obj) -> bool:
    """True for a network of a known family (a :class:`TCN` or an :class:`ELM`)."""
    return isinstance(obj, _MODELS)


def is_model_config(obj) -> bool:
    """True for a config of a known family (:class:`TCNConfig` or :class:`ELMConfig`)."""
    return isinstance(obj, _CONFIGS)


def _config(obj):
    if is_model(obj):
        return obj.config
    if is_model_config(obj):
        return obj
    raise TypeError(f"expected a network or a network config ({', '.join(c.__name__ for c in _CONFIGS)}), "
                    f"got {type(obj).__name__}")


def kind_of(obj) -> str:
    """``"tcn"`` or ``"elm"`` for a network or its config."""
    config = _config(obj)
    return next(kind for kind, (cls, _) in MODEL_KINDS.items() if isinstance(config, cls))


def is_recurrent(obj) -> bool:
    """True when the network carries a state through time (the ELM): its training windows need not cover
    ``receptive_field_ms``, and a trace cut into pieces must pass the state on."""
    return bool(getattr(_config(obj), "recurrent", False))


def model_config_from_dict(data: dict):
    """The config a ``to_dict`` (a model card's ``config``) describes; ``kind`` picks the family (none = TCN)."""
    if not isinstance(data, dict):
        raise TypeError(f"a model config must be a dict, got {type(data).__name__}")
    kind = data.get("kind", "tcn")
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(MODEL_KINDS)}")
    config_cls = MODEL_KINDS[kind][0]
    return config_cls.from_dict({k: v for k, v in data.items() if k != "kind"} if kind == "tcn" else data)


def build_model(config) -> nn.Module:
    """The network a config describes (initialised from torch's global RNG)."""
    if not is_model_config(config):
        raise TypeError(f"build_model needs a network config, got {type(config).__name__}")
    return MODEL_KINDS[kind_of(config)][1](config)


def count_parameters(model_or_config, trainable_only: bool = True) -> int:
    """Trainable parameters of a network (any ``nn.Module``), or of the one a config would build (the TCN's
    formula is :func:`neurodepth_lib.nets.tcn.count_parameters`, the ELM's :meth:`ELMConfig.count_parameters`)."""
    if isinstance(model_or_config, ELMConfig):
        return model_or_config.count_parameters()
    return _tcn.count_parameters(model_or_config, trainable_only)


def macs_per_ms(config) -> int:
    """Multiply-accumulates per 1-ms output step of a network or config (TCN: its convolutions and heads; ELM:
    one step of its equations)."""
    config = _config(config)
    if isinstance(config, ELMConfig):
        return config.macs_per_ms()
    return _tcn.macs_per_ms(config)


def describe_architecture(config) -> str:
    """One line naming the architecture and its sizes, for logs."""
    config = _config(config)
    if isinstance(config, TCNConfig):
        return (f"{config.name} (kernels {list(config.kernel_sizes)}, widths {list(config.widths)}"
                f"{', dendritic head ' + str(config.n_dendritic) if config.n_dendritic else ''})")
    return config.describe()
