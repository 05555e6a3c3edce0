"""The cell contract: what generation needs from a cell (:class:`CellModel`), and the registry of cells by name.

The built-in cells register themselves when their module is imported; :func:`get_cell` imports it on first
use, so a name works without importing anything first: ``"iaf"`` (:mod:`.iaf`), ``"l5pc"`` and ``"teaching"``
(:mod:`.neuron_adapter`).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable


__all__ = ["CellModel", "register_cell", "get_cell", "resolve_cell", "CELLS"]


@dataclass(frozen=True)
class CellModel:
    """How to make inputs for a cell and simulate trials of it.

    Functions must be importable module-level functions (spawned workers and Dask workers receive the
    model by reference).

    Attributes
    ----------
    name : registry key (``--cell`` on the command line).
    conditions : allowed conditions; ``(None,)`` for a cell without conditions.
    describe : ``(condition, cell_params) -> dict``: every parameter of the cell, JSON-able (goes into the
        plan); raises ``ValueError`` on bad ``cell_params``.
    input_settings : ``(condition, cell_params) -> InputSettings``: the paper's inputs for this cell.
    simulate : ``(events_list, condition, cell_params, simulation, record) -> list of dict``: outputs of
        each trial (``soma_1ms``, ``spike_times_ms`` and the recorded extras; see
        :data:`neurodepth_lib.data.shards.OUTPUT_DTYPES`).
    simulation_defaults : ``(simulation) -> dict``: the integration settings, completed and validated.
    recordable : which optional outputs this cell can record (``nexus_1ms``, ``soma_0125ms``, ``dend_1ms``).
    always_recorded : optional outputs recorded by default.
    default_trials_per_shard : shard size when none is given.
    rate_param : the ``cell_params`` entry that scales every input rate (e.g. ``rate_factor``), or None: what
        :func:`neurodepth_lib.cells.calibration.calibrate_inputs` varies to put the output firing in range.
    calibrated : False when the input rates have not been fitted to this cell (a published model whose spec
        gives no ``rate_factor``): :func:`neurodepth_lib.studies.how_deep` then calibrates them first.

    What one built NEURON cell offers these functions is :class:`neurodepth_lib.cells.contract.NeuronCell`.
    """

    name: str
    conditions: tuple
    describe: Callable
    input_settings: Callable
    simulate: Callable
    simulation_defaults: Callable
    recordable: tuple = ()
    always_recorded: tuple = ()
    default_trials_per_shard: int = 16
    rate_param: str | None = None
    calibrated: bool = True


CELLS: dict[str, CellModel] = {}
_BUILTIN = {"iaf": "iaf", "l5pc": "neuron_adapter", "teaching": "neuron_adapter"}  # name -> module in cells/


def register_cell(model: CellModel, *, replace: bool = False) -> CellModel:
    """Add a cell to the registry (``replace=True`` to overwrite one)."""
    if not isinstance(model, CellModel):
        raise TypeError(f"model must be a CellModel, got {type(model).__name__}")
    if model.name in CELLS and not replace:
        raise ValueError(f"a cell named {model.name!r} is already registered (pass replace=True)")
    CELLS[model.name] = model
    return model


def get_cell(cell) -> CellModel:
    """The registered :class:`CellModel` for a name (or the model itself)."""
    if isinstance(cell, CellModel):
        return cell
    if cell not in CELLS and cell in _BUILTIN:
        importlib.import_module(f"{__package__}.{_BUILTIN[cell]}")  # registers it
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(sorted(set(CELLS) | set(_BUILTIN)))}, "
                         "a cell spec file (path/to/cell.toml) or package.module:factory (or register_cell a new one)")
    return CELLS[cell]


def resolve_cell(cell) -> CellModel:
    """A cell as the command line and notebooks give it: a :class:`CellModel`, a registered name
    (``"teaching"``), the path of a TOML spec of a published model (``cells/my_cell.toml``, read by
    :func:`neurodepth_lib.cells.published.load_spec`) or ``"package.module:factory"`` (a function returning a
    ``CellModel``, e.g. made with :func:`neurodepth_lib.cells.from_neuron_model`)."""
    if isinstance(cell, CellModel):
        return cell
    if isinstance(cell, os.PathLike) or (isinstance(cell, str) and cell.endswith(".toml")):
        return importlib.import_module(f"{__package__}.published").load_spec(cell)
    if isinstance(cell, str) and ":" in cell:
        module, _, attr = cell.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot load the cell factory {cell!r}: {err}") from None
        made = factory if isinstance(factory, CellModel) else (factory() if callable(factory) else factory)
        if not isinstance(made, CellModel):
            raise TypeError(f"the cell factory {cell} must return a CellModel (e.g. from "
                            f"neurodepth_lib.cells.from_neuron_model), got {type(made).__name__}")
        return made
    return get_cell(cell)
