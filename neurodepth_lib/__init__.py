"""neurodepth: reproduce Beniaguev, Segev & London (Neuron 2021) in a teaching setting.

The package's folders are the pipeline, in data-flow order (docs/architecture.md draws it)::

    scales, inputs -> cells -> data -> nets -> fit -> scoring -> studies -> viz -> nb, cli

A layer imports only layers to its left (import-linter checks it in the test suite); ``_io`` (atomic
writes, hashes, a timer) and ``_parallel`` (one executor: a process pool or Dask) serve every layer.
Subpackages are imported on first use, so ``import neurodepth_lib as nd`` is cheap and does not load torch
or NEURON until a layer that needs them is touched (``nd.nets``, ``nd.cells.L5PC``).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("scales", "inputs", "cells", "data", "nets", "fit", "scoring", "studies", "viz", "nb", "cli")

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES or name in ("_io", "_parallel", "_checks"):
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
