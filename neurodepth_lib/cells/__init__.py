"""NEURON cells: our mechanisms (``mod/*.mod``), vendored morphologies and the Hay L5 pyramidal cell.

``ensure_mechanisms()`` compiles and loads the mechanisms; ``L5PC`` builds the cell of Beniaguev, Segev &
London (2021) (see :mod:`neurodepth_lib.cells.l5pc`). NEURON itself is imported only when a cell is built
or the mechanisms are loaded.
"""
from __future__ import annotations

import importlib

from .mechanisms import MOD_DIR, ensure_mechanisms

__all__ = ["MOD_DIR", "ensure_mechanisms", "L5PC", "L5PCParams", "SegmentTable", "CONDITIONS",
           "DEFAULT_MORPHOLOGY", "load_morphology"]

_LAZY = {"L5PC": "l5pc", "L5PCParams": "l5pc", "SegmentTable": "l5pc", "CONDITIONS": "l5pc",
         "DEFAULT_MORPHOLOGY": "morphology", "load_morphology": "morphology"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
