"""``train_on_dataset``: every check before compute, data of one condition only (unless allowed, and then
recorded), and one run at a time per output prefix."""
import json

import pytest
import torch

import neurodepth_lib as nd
from neurodepth_lib import _io
from neurodepth_lib.data import input_cache
from neurodepth_lib.data.store import MismatchError
from tests import conditions

TINY = dict(architecture="tiny", steps=5, scale="quick", progress=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    conditions.register()
    return {"nmda": conditions.make_dataset(root / "nmda", "NMDA", 1),
            "ampa": conditions.make_dataset(root / "ampa", "AMPA", 2)}


@pytest.fixture
def no_inputs(monkeypatch):
    """Fail the test if any input is materialised: the checks must come first."""
    def boom(*args, **kwargs):
        raise AssertionError("inputs were materialised before the arguments were checked")

    monkeypatch.setattr(input_cache, "materialise_inputs", boom)


def test_a_validation_set_of_another_condition_is_refused_before_any_work(world, tmp_path, no_inputs):
    with pytest.raises(MismatchError, match="validation dataset is iaf2/AMPA .* training dataset is iaf2/NMDA"):
        nd.fit.train_on_dataset(world["nmda"], tmp_path / "m", valid_data=world["ampa"], **TINY)
    assert list(tmp_path.iterdir()) == []


def test_an_allowed_mismatch_is_recorded_in_the_card(world, tmp_path):
    fit = nd.fit.train_on_dataset(world["nmda"], tmp_path / "m", valid_data=world["ampa"], allow_mismatch=True,
                                  **TINY)
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["allow_mismatch"]["actual"]["condition"] == "AMPA" and fit.card["allow_mismatch"]["allowed"]
    a = nd.scoring.score_validation(fit, log=lambda text: None)  # scoring the recorded mismatch is allowed
    assert a is None or a.dataset["mismatch"]["allowed"]


@pytest.mark.parametrize("overrides, field, message", [
    (dict(kernel_sizes=(9000,)), "kernel_sizes", "receptive field is 9000 ms, longer than the 400-ms training window"),
    (dict(window_ms=2000), "window_ms", "longer than the 1500-ms trials"),
])
def test_sizes_the_data_fix_are_checked_before_inputs_are_made(world, tmp_path, no_inputs, overrides, field, message):
    with pytest.raises(nd.fit.FitSpecError, match=message) as err:
        nd.fit.train_on_dataset(world["nmda"], tmp_path / "m", **{**TINY, **overrides})
    assert err.value.field == field


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_that_is_not_here_fails_when_the_spec_is_made(world, tmp_path, no_inputs):
    with pytest.raises(nd.fit.FitSpecError, match="CUDA is not available") as err:
        nd.fit.train_on_dataset(world["nmda"], tmp_path / "m", device="cuda", **TINY)
    assert err.value.field == "device"


def test_an_output_that_is_a_directory_is_refused(world, tmp_path, no_inputs):
    (tmp_path / "m.pt").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        nd.fit.train_on_dataset(world["nmda"], tmp_path / "m", **TINY)


def test_a_second_run_on_a_locked_prefix_fails_at_once(world, tmp_path, no_inputs):
    out = tmp_path / "m"
    with conditions.lock_held(out.with_name("m.lock"), "the model"):  # as another process training it would
        with pytest.raises(_io.BusyError, match="another process is writing the model .* right now"):
            nd.fit.train_on_dataset(world["nmda"], out, seed=1, **TINY)
    assert not out.with_name("m.json").exists()


def test_resuming_a_checkpoint_of_another_seed_is_refused(world, tmp_path):
    out = tmp_path / "m"
    nd.fit.train_on_dataset(world["nmda"], out, seed=0, **TINY)
    ckpt = out.with_name("m.ckpt.pt")
    if not ckpt.exists():  # the run finished and dropped its checkpoint: make one as a killed run leaves it
        ckpt.write_bytes(b"")
    with pytest.raises(ValueError, match="belongs to a run with seed 0, not 1"):
        nd.fit.train_on_dataset(world["nmda"], out, seed=1, **TINY)
