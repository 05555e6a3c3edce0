"""Small data of two conditions for the reliability tests (issue 19): the I&F neuron registered a second time
as ``iaf2`` with two condition labels, so datasets, models and records of "NMDA" and "AMPA" take seconds."""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import threading
from pathlib import Path

import neurodepth_lib as nd
from neurodepth_lib import _io
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


def copy_model(world: dict, where: Path) -> Path:
    """A fresh copy of the world's model files in ``where`` (for tests that write into its card)."""
    for suffix in (".pt", ".json"):
        shutil.copy(world["model"].with_name("model" + suffix), where / ("model" + suffix))
    return where / "model"


@contextlib.contextmanager
def lock_held(path: Path, what: str):
    """Hold ``path`` locked (as another process writing ``what`` would) for the duration of the block."""
    held, release = threading.Event(), threading.Event()

    def holder():
        with _io.exclusive_lock(path, what):
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        held.wait(10)
        yield
    finally:
        release.set()
        t.join()
