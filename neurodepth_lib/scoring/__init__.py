"""Scoring: the paper's metrics (:mod:`.metrics`), its evaluation protocol on numpy arrays (:mod:`.protocol`)
and the glue that runs a trained model over a dataset and scores it (:mod:`.assess`).

The metrics and the protocol need only numpy (and scipy): importing them does not load torch. The names of
:mod:`.assess`, which runs networks, are loaded on first use.
"""
import importlib

from .metrics import *  # noqa: F403
from .protocol import *  # noqa: F403


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    module = importlib.import_module(f"{__name__}.assess")
    if name == "assess":
        return module
    if name in module.__all__:
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
