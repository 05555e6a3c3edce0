"""How generation drives a NEURON cell class: one cell per process, built once and reused for every trial.

:func:`neuron_cell_model` turns a cell class (the L5PC, the teaching cell, or any class with the same
attributes) into a registered :class:`~neurodepth_lib.cells.registry.CellModel`. The model's functions are
``functools.partial`` objects over the module-level functions below, so a spawned process or a Dask worker
receives them by reference and builds its own cell on first use.

What a cell class must offer: :class:`~neurodepth_lib.cells.contract.NeuronCell` (what
:class:`~neurodepth_lib.cells.synaptic_cell.SynapticCell` gives its subclasses; both built-in cells are ones),
plus ``__init__(condition, params)`` and ``live()`` (the one live cell of the class). Reusing the live cell
keeps a notebook's ``cell`` alive.

A cell that is not a class in a module (a published model loaded from hoc files,
:func:`neurodepth_lib.cells.from_neuron_model`) comes through :func:`cell_model_from_source`: a picklable
*source* object with ``cell(condition, cell_params)`` (this process's cell, built once) and
``describe(condition, cell_params)``.
"""
from __future__ import annotations

import importlib
import threading
import weakref
from dataclasses import asdict, fields
from functools import partial
from pathlib import Path

import numpy as np

from .._io import file_sha256
from .registry import CellModel, register_cell
from .simulation import SimulationParams, simulate_trial

__all__ = ["L5PC_GENERATION_SIMULATION", "neuron_cell_model", "cell_model_from_source", "note_built", "built_cell",
           "L5PC_MODEL", "TEACHING_MODEL"]

_NEURON_LOCK = threading.Lock()  # NEURON is not thread-safe: one trial at a time per process
_WORKER_CELLS: dict = {}         # per process: the built cell of each kind, kept alive between tasks
_BUILT = weakref.WeakSet()       # the cells this module built (a user's own cell it reuses is not among them)

# How the pipeline integrates the L5PC: fixed step 0.05 ms with NEURON's Crank-Nicolson scheme
# (h.secondorder = 2). Per step it costs the same as backward Euler, and it is second-order accurate: on a
# bursting trial where backward Euler at 0.05 ms (0.025 ms) moved a spike by 6.5 ms (2.4 ms) against CVODE
# at default or 10x tighter tolerances, Crank-Nicolson at 0.05 ms moved it by 1.4 ms and every other spike by
# at most 0.4 ms; at 0.025 ms every spike was within 0.25 ms. It is half the cost of 0.025 ms and, over both
# cores, several times the authors' CVODE recipe (benchmarks/bench_generation.py measures both). Override
# with simulation={"dt_ms": 0.025}, {"secondorder": 0} or {"use_cvode": True}; the plan records the choice.
L5PC_GENERATION_SIMULATION = {"dt_ms": 0.05, "secondorder": 2}


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _class(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def _params(module: str, params_class: str, label: str, cell_params: dict):
    cls = _class(module, params_class)
    names = {f.name for f in fields(cls)}
    unknown = set(cell_params) - names
    if unknown:
        raise ValueError(f"unknown {label} parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in cell_params.items()})


def _describe(module: str, params_class: str, label: str, condition, cell_params):
    """Every parameter, JSON-able. A morphology file is named by its file name and sha256 (its path differs
    between machines, its content does not)."""
    out = {k: _jsonable(v) for k, v in asdict(_params(module, params_class, label, cell_params)).items()}
    if "morphology" in out:
        morph = Path(out["morphology"])
        out["morphology"] = {"name": morph.name, "sha256": file_sha256(morph)}
    return out


def _cell(module: str, cell_class: str, params_class: str, label: str, condition, cell_params):
    """This process's cell with these parameters: the live one if it matches, else built (once)."""
    params = _params(module, params_class, label, cell_params)
    cls = _class(module, cell_class)
    cell = cls.live()
    if cell is None or cell.params != params:
        cell = cls(condition, params)
        _BUILT.add(cell)
    _WORKER_CELLS[module] = cell
    return cell


def note_built(cell) -> None:
    """Record a cell built on generation's behalf (a source object's ``cell()`` calls this), so that it is
    retired when a cell of another kind is simulated in this process."""
    _BUILT.add(cell)


def _get_cell(spec, condition, cell_params):
    """A class spec ``(module, cell_class, params_class, label)``'s cell, or a source object's."""
    cell = _cell(*spec, condition, cell_params) if isinstance(spec, tuple) else spec.cell(condition, cell_params)
    _retire_others(cell)
    return cell


def _retire_others(keep) -> None:
    """Destroy the cells this module built for other kinds of cell. NEURON integrates every section in the
    process, so an idle cell left from an earlier kind would be simulated with every trial of ``keep`` (an idle
    640-compartment L5PC beside a 17-compartment cell makes each of its trials tens of times slower). A user's
    own cells are never destroyed here."""
    for cell in list(_BUILT):
        if cell is not keep and getattr(cell, "_alive", False):
            cell.destroy()
    for key in [k for k, c in _WORKER_CELLS.items() if c is not keep and not getattr(c, "_alive", False)]:
        del _WORKER_CELLS[key]


def _input_settings(spec, condition, cell_params):
    with _NEURON_LOCK:
        return _get_cell(spec, condition, cell_params).input_settings(condition)


def built_cell(model: CellModel, condition=None, cell_params=None):
    """This process's NEURON cell of ``model`` (a model made by :func:`neuron_cell_model` or
    :func:`cell_model_from_source`), built once as generation builds it and reused: for what a cell's
    :class:`~neurodepth_lib.cells.registry.CellModel` does not carry, such as its segments' 3-D positions.
    Raises ``ValueError`` for a cell that is not a NEURON cell (the I&F)."""
    made_here = getattr(model.input_settings, "func", None) is _input_settings
    if not (isinstance(model, CellModel) and made_here):
        raise ValueError(f"cell {getattr(model, 'name', model)!r} is not a NEURON cell: it has no built cell "
                         f"(segments, morphology)")
    with _NEURON_LOCK:
        return _get_cell(model.input_settings.args[0], condition, dict(cell_params or {}))


def _simulation_defaults(defaults: dict, simulation):
    simulation = {**defaults, **simulation}
    names = {f.name for f in fields(SimulationParams)}
    unknown = set(simulation) - names
    if unknown:
        raise ValueError(f"unknown simulation parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    order = simulation.get("secondorder", 0)
    if isinstance(order, bool) or order not in (0, 1, 2):
        raise ValueError(f"secondorder must be 0 (backward Euler), 1 or 2 (Crank-Nicolson), got {order!r}")
    return {**asdict(SimulationParams(**{**simulation, "secondorder": int(order)}))}


def _simulate(spec, events_list, condition, cell_params, simulation, record):
    params = SimulationParams(**simulation)  # secondorder is set for each trial only, then restored
    out = []
    with _NEURON_LOCK:
        cell = _get_cell(spec, condition, cell_params)
        previous_condition = cell.condition
        for events in events_list:
            r = simulate_trial(cell, events, condition=condition, params=params,
                               record_dendrites="dend_1ms" in record)
            trial = {"soma_1ms": r.v_soma_1ms, "spike_times_ms": r.spike_times_ms}
            for key, value in (("nexus_1ms", r.v_nexus_1ms), ("soma_0125ms", r.v_soma_0125ms),
                               ("dend_1ms", r.v_dend_1ms)):
                if key in record:
                    trial[key] = value
            out.append(trial)
        if previous_condition is not None:
            cell.set_condition(previous_condition)  # a reused cell is handed back as it was
    return out


def neuron_cell_model(name: str, *, module: str, cell_class: str, params_class: str, conditions: tuple,
                      label: str | None = None, simulation_defaults: dict | None = None,
                      default_trials_per_shard: int = 16, rate_param: str | None = None) -> CellModel:
    """A :class:`CellModel` for the NEURON cell class ``cell_class`` defined in the importable ``module``
    (a dotted path, e.g. ``"mylab.cells"``), with its frozen parameter dataclass ``params_class`` there too.

    ``simulation_defaults`` are the integration settings used unless a plan overrides them (default:
    :data:`L5PC_GENERATION_SIMULATION`). The model records the nexus voltage by default and can record the
    0.125-ms soma trace and every dendritic segment. ``rate_param``: the field of the parameter class that
    scales the cell's input rates, if any (what :func:`neurodepth_lib.cells.calibration.calibrate_inputs`
    varies).
    """
    spec = (module, cell_class, params_class, label or name)
    return CellModel(
        name=name, conditions=tuple(conditions), describe=partial(_describe, *spec[:1], *spec[2:]),
        input_settings=partial(_input_settings, spec), simulate=partial(_simulate, spec),
        simulation_defaults=partial(_simulation_defaults, dict(simulation_defaults or L5PC_GENERATION_SIMULATION)),
        recordable=("nexus_1ms", "soma_0125ms", "dend_1ms"), always_recorded=("nexus_1ms",),
        default_trials_per_shard=default_trials_per_shard, rate_param=rate_param)


def _describe_source(source, condition, cell_params):
    return source.describe(condition, cell_params)


def cell_model_from_source(name: str, source, *, conditions: tuple, simulation_defaults: dict | None = None,
                           default_trials_per_shard: int = 16, rate_param: str | None = None,
                           calibrated: bool = True) -> CellModel:
    """A :class:`CellModel` whose cells come from ``source``: a picklable object (a frozen dataclass of plain
    data whose class is importable) with ``cell(condition, cell_params)``, this process's
    :class:`~neurodepth_lib.cells.contract.NeuronCell` (built once, reused), and ``describe(condition,
    cell_params)``, every parameter JSON-able. Spawned and Dask workers rebuild the cell from it."""
    return CellModel(
        name=name, conditions=tuple(conditions), describe=partial(_describe_source, source),
        input_settings=partial(_input_settings, source), simulate=partial(_simulate, source),
        simulation_defaults=partial(_simulation_defaults, dict(simulation_defaults or L5PC_GENERATION_SIMULATION)),
        recordable=("nexus_1ms", "soma_0125ms", "dend_1ms"), always_recorded=("nexus_1ms",),
        default_trials_per_shard=default_trials_per_shard, rate_param=rate_param, calibrated=calibrated)


L5PC_MODEL = register_cell(neuron_cell_model(
    "l5pc", module=f"{__package__}.l5pc", cell_class="L5PC", params_class="L5PCParams", label="L5PC",
    conditions=("NMDA", "AMPA", "AMPA_SK"), default_trials_per_shard=8))
TEACHING_MODEL = register_cell(neuron_cell_model(
    "teaching", module=f"{__package__}.teaching", cell_class="TeachingCell", params_class="TeachingCellParams",
    label="teaching-cell", conditions=("NMDA", "AMPA"), default_trials_per_shard=16, rate_param="rate_scale"))
