"""Fixtures shared by the reliability tests of several layers (tests/conditions.py makes their small data)."""
from __future__ import annotations

import pytest

from neurodepth_lib.scoring import assess
from tests import conditions


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Two-condition I&F datasets and a tiny model trained on the NMDA one (see :func:`conditions.make_world`)."""
    return conditions.make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def model(world, tmp_path):
    """A fresh copy of the world's model files (the tests write into its card)."""
    return conditions.copy_model(world, tmp_path)


@pytest.fixture
def no_predictions(monkeypatch):
    """Fail the test if a model is run over trials (the checks must come first)."""
    def boom(*args, **kwargs):
        raise AssertionError("predicted before the arguments were checked")

    monkeypatch.setattr(assess, "predict_trials", boom)
