"""Figures (:mod:`.plots`, plain matplotlib functions, all re-exported here) and the widgets that wrap them
(:mod:`.widgets`, imported on first use because its L5PC explorer loads NEURON)."""
import importlib

from .learning import *  # noqa: F403
from .plots import *  # noqa: F403


def __getattr__(name: str):
    if name == "widgets":
        return importlib.import_module(f"{__name__}.widgets")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
