"""Small data of two conditions for the reliability tests (issue 19): the I&F neuron registered a second time
as ``iaf2`` with two condition labels, so datasets, models and records of "NMDA" and "AMPA" take seconds."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import neurodepth_lib as nd
from neurodepth_lib.cells.iaf import IAF_MODEL
from neurodepth_lib.cells.registry import register_cell

CELL = "iaf2"


def register() -> None:
    register_cell(dataclasses.replace(IAF_MODEL, name=CELL, conditions=("NMDA", "AMPA")), replace=True)


def make_dataset(path: Path, condition: str, seed: int, n_trials: int = 6) -> Path:
    register()
    nd.data.generate_dataset(path, cell=CELL, condition=condition, n_trials=n_trials, duration_ms=1500, seed=seed,
                             workers=0, progress=False)
    return Path(path)


def make_world(root: Path) -> dict:
    """``{"nmda": dir, "ampa": dir, "nmda_test": dir, "model": prefix}``: a tiny TCN trained on ``nmda``."""
    world = {"nmda": make_dataset(root / "nmda", "NMDA", 1), "ampa": make_dataset(root / "ampa", "AMPA", 2),
             "nmda_test": make_dataset(root / "nmda_test", "NMDA", 3)}
    nd.fit.train_on_dataset(world["nmda"], root / "model", architecture="tiny", steps=5, scale="quick",
                            progress=False, resume=False)
    world["model"] = root / "model"
    return world
