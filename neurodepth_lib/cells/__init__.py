"""Cells: the cell contract and registry, the integrate-and-fire neuron, and NEURON cells (our mechanisms,
the vendored Hay morphology, the Hay L5 pyramidal cell, a small teaching cell) with one-trial simulation.

``get_cell("l5pc")`` gives a registered :class:`CellModel` (what generation needs; :class:`NeuronCell` is what
one built NEURON cell offers, :mod:`.contract`); ``from_neuron_model(...)`` or ``load_spec("cell.toml")`` makes
one from a published model's hoc and ``.mod`` files (:mod:`.published`); ``ensure_mechanisms()``
compiles and loads our mechanisms (the paper's synapses and the Hay channels, two libraries: each cell loads
only the ones it declares, :mod:`.mechanisms`); ``L5PC("NMDA")`` builds the cell of Beniaguev, Segev & London (2021)
(:mod:`.l5pc`). NEURON itself is imported only when a NEURON module below is first used, so that
``import neurodepth_lib.cells`` stays cheap for the integrate-and-fire neuron. Nothing here imports torch.
"""
from __future__ import annotations

import importlib

from .contract import NeuronCell
from .mechanisms import MOD_DIR, ensure_cell_mechanisms, ensure_mechanisms, ensure_model_mechanisms
from .registry import CELLS, CellModel, get_cell, register_cell, resolve_cell

__all__ = ["MOD_DIR", "ensure_mechanisms", "ensure_model_mechanisms", "ensure_cell_mechanisms", "CELLS", "CellModel", "NeuronCell", "get_cell",
           "register_cell", "resolve_cell", "from_neuron_model", "load_spec", "PublishedCell", "calibrate_inputs",
           "SynapticCell", "L5PC",
           "L5PCParams", "SegmentTable", "TeachingCell", "TeachingCellParams", "DEFAULT_MORPHOLOGY",
           "load_morphology", "iaf", "simulation", "l5pc", "teaching", "morphology", "synapses"]

# name -> module that defines it; the modules import NEURON, so they load on first use
_LAZY = {"SynapticCell": "synaptic_cell", "L5PC": "l5pc", "L5PCParams": "l5pc", "SegmentTable": "l5pc", "TeachingCell": "teaching",
         "TeachingCellParams": "teaching", "DEFAULT_MORPHOLOGY": "morphology", "load_morphology": "morphology",
         "from_neuron_model": "published", "load_spec": "published", "PublishedCell": "published",
         "calibrate_inputs": "calibration"}
_SUBMODULES = ("iaf", "simulation", "l5pc", "teaching", "morphology", "synapses", "neuron_adapter", "spikes",
               "synaptic_cell", "published", "calibration", "contract")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
