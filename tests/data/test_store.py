"""Which cell and condition a dataset is of (``TrialDataset.source``) and the one rule that datasets, models
and records must agree on it (``check_same_source``)."""
import json

import pytest

import neurodepth_lib as nd
from neurodepth_lib.data.store import MismatchError, check_same_source
from tests import conditions

NMDA = {"cell": "l5pc", "condition": "NMDA", "name": "l5pc_nmda_test"}
AMPA = {"cell": "l5pc", "condition": "AMPA", "name": "l5pc_ampa_test"}


def test_same_cell_and_condition_pass():
    assert check_same_source(NMDA, dict(NMDA, name="other"), expected_what="a", actual_what="b") is None
    assert check_same_source(NMDA, dict(NMDA, condition="nmda"), expected_what="a", actual_what="b") is None
    assert check_same_source(None, AMPA, expected_what="a model built in memory", actual_what="b") is None


def test_a_mismatch_names_both_sides_or_is_recorded_when_allowed():
    with pytest.raises(MismatchError, match=r"the dataset is l5pc/AMPA \(l5pc_ampa_test\) but the model's data is "
                                            r"l5pc/NMDA \(l5pc_nmda_test\).*allow_mismatch=True"):
        check_same_source(NMDA, AMPA, expected_what="the model's data", actual_what="the dataset")
    assert issubclass(MismatchError, ValueError)  # one line in the command
    record = check_same_source(NMDA, AMPA, expected_what="x", actual_what="y", allow_mismatch=True)
    assert record["allowed"] and record["expected"]["condition"] == "NMDA" and record["actual"]["condition"] == "AMPA"
    with pytest.raises(MismatchError, match="iaf"):
        check_same_source(NMDA, {"cell": "iaf", "condition": None}, expected_what="x", actual_what="y")
    with pytest.raises(TypeError):
        check_same_source(NMDA, AMPA, expected_what="x", actual_what="y", allow_mismatch="yes")


def test_a_dataset_knows_its_cell_condition_and_recorded_input_hashes(tmp_path):
    path = conditions.make_dataset(tmp_path / "d", "AMPA", seed=4, n_trials=2)
    with nd.data.open_dataset(path) as ds:
        assert ds.source == {"name": "d", "path": str(path), "cell": conditions.CELL, "condition": "AMPA"}
        assert ds.input_sha256(1) == ds.inputs(1).checksum()


def test_a_manifest_with_a_deleted_key_is_an_integrity_error_not_a_key_error(tmp_path):
    path = conditions.make_dataset(tmp_path / "d", "NMDA", seed=4, n_trials=2)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["complete"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(nd.data.IntegrityError, match="damaged: it lacks 'complete'"):
        nd.data.open_dataset(path)
    (path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(nd.data.IntegrityError, match="not a"):
        nd.data.open_dataset(path)
