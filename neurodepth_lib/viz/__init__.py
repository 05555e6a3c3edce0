"""Figures (plain matplotlib functions, all re-exported here: :mod:`.plots` for traces, training and scoring,
:mod:`.cell_plots` for cells and their inputs, :mod:`.filter_plots` for learned filters, :mod:`.learning` for
chapter 11) and the widgets that wrap them
(:mod:`.widgets`, imported on first use because its L5PC explorer loads NEURON)."""
import importlib

from .cell_plots import *  # noqa: F403
from .filter_plots import *  # noqa: F403
from .learning import *  # noqa: F403
from .plots import *  # noqa: F403


def __getattr__(name: str):
    if name == "widgets":
        return importlib.import_module(f"{__name__}.widgets")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
