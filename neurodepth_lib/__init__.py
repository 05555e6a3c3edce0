"""neurodepth: reproduce Beniaguev, Segev & London (Neuron 2021) in a teaching setting.

Submodules are imported on first use, so ``import neurodepth_lib as nd`` is cheap and does not load
torch or NEURON until a module that needs them is touched (``nd.models``, ``nd.simulation``).

Layers, lowest first (a module only imports modules above it in this list)::

    scales, inputs  ->  iaf, cells, simulation  ->  datasets  ->  generation
        ->  sparse, models  ->  training  ->  evaluation  ->  assessment, assets  ->  sweeps, analysis
        ->  plots, widgets  ->  nb, cli
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "scales", "inputs", "iaf", "cells", "simulation", "datasets", "generation", "sparse", "models",
    "training", "evaluation", "assessment", "assets", "sweeps", "analysis", "plots", "widgets", "nb", "cli",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
