"""Issue 19, end to end through the ``neurodepth`` command: wrong data refused before any work, records
appended, every user error one line and exit 2 (never a traceback) with nothing written, and a fuzz test of
the argument parsing."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodepth_lib as nd
from neurodepth_lib import cli
from tests import conditions


def one_line_error(argv, capsys, code=2) -> str:
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- 1. wrong data, lost records

def test_evaluate_on_the_other_condition_is_refused_and_the_card_kept(world, model, capsys, no_predictions):
    before = model.with_name("model.json").read_bytes()
    err = one_line_error(["evaluate", model, world["ampa"], "--trials", "0-5", "--record", "test"], capsys)
    assert "the dataset is iaf2/AMPA (ampa) but the model was trained on data that is iaf2/NMDA (nmda)" in err
    assert "--allow-mismatch" in err and model.with_name("model.json").read_bytes() == before


def test_evaluate_appends_records_and_a_subset_keeps_the_headline(world, model, capsys):
    assert cli.main(["evaluate", str(model), str(world["nmda_test"]), "--all-trials", "--subsets", "0",
                     "--record", "test"]) == 0
    assert "under metrics.test" in capsys.readouterr().out
    assert cli.main(["evaluate", str(model), str(world["nmda_test"]), "--all-trials", "--subsets", "0",
                     "--trials", "0-2", "--record", "test"]) == 0
    assert "metrics.test unchanged" in capsys.readouterr().out
    assert cli.main(["evaluate", str(model), str(world["ampa"]), "--all-trials", "--subsets", "0",
                     "--allow-mismatch", "--record", "test"]) == 0
    metrics = json.loads(model.with_name("model.json").read_text())["metrics"]
    assert metrics["test"]["trials"] == list(range(6)) and metrics["test"]["dataset"] == "nmda_test"
    history = metrics["history"]
    assert [(h["dataset"], h["headline"]) for h in history] == [("nmda_test", True), ("nmda_test", False),
                                                               ("ampa", False)]
    assert history[1]["command"][:2] == ["neurodepth", "evaluate"] and history[2]["mismatch"]["allowed"]


def test_train_and_sweep_refuse_the_other_condition(world, tmp_path, capsys):
    err = one_line_error(["train", world["nmda"], "--valid", world["ampa"], "--arch", "tiny", "--steps", "5",
                          "--out", tmp_path / "m"], capsys)
    assert "validation dataset is iaf2/AMPA" in err
    err = one_line_error(["sweep", "--out", tmp_path / "s", "--data", f"NMDA={world['ampa']},{world['ampa']}",
                          "--steps", "5"], capsys)
    assert "data['NMDA'] is iaf2/AMPA" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- 5, 6, 7. checks before compute, one line

@pytest.mark.parametrize("extra, message", [
    (["--trials", "0-100"], "trial 6 does not exist: there are 6 trials"),
    (["--trials", "-1"], "trial indices are whole numbers >= 0"),
    (["--trials", "5-2"], "ends before it starts"),
    (["--target-fpr", "nan"], "target_fpr must be a finite number"),
    (["--json", "."], "--json '.' is a directory"),
])
def test_evaluate_checks_before_predicting(world, capsys, no_predictions, extra, message):
    assert message in one_line_error(["evaluate", world["model"], world["nmda_test"], *extra], capsys)


def test_a_foreign_weights_file_is_one_line_without_weights_only_advice(world, tmp_path, capsys):
    import hashlib
    import pickle

    shutil.copy(world["model"].with_name("model.json"), tmp_path / "m.json")
    data = pickle.dumps({"x": os.system})  # a global: unpickling it would hand over a function
    (tmp_path / "m.pt").write_bytes(data)
    card = json.loads((tmp_path / "m.json").read_text())
    card["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "m.json").write_text(json.dumps(card))
    err = one_line_error(["evaluate", tmp_path / "m", world["nmda_test"]], capsys)
    assert "is not a neurodepth weights file" in err and "weights_only" not in err


def test_a_manifest_with_a_deleted_key_is_one_line(world, tmp_path, capsys):
    shutil.copytree(world["nmda_test"], tmp_path / "d")
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    del manifest["complete"]
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(manifest))
    assert "lacks 'complete'" in one_line_error(["evaluate", world["model"], tmp_path / "d"], capsys)


@pytest.mark.parametrize("argv, message", [
    (["train", "{nmda}", "--kernels", "9000", "--steps", "5", "--out", "{tmp}/m"], "--kernels: the network's receptive field is 9000 ms"),
    (["how-deep", "--cell", "iaf", "--depths", "0", "--out", "{tmp}/h"], "depths entry must be a positive whole number"),
    (["how-deep", "--cell", "iaf", "--tolerance", "-1", "--out", "{tmp}/h"], "tolerance must be a finite number >= 0"),
    (["sweep", "--data", "NMDA={nmda},{nmda_test}", "--threads", "0", "--out", "{tmp}/s"], "threads_per_run must be a positive"),
    (["generate", "--cell", "iaf", "--trials", "2", "--out", "{tmp}/file"], "is a file, not a directory"),
    (["how-deep", "--cell", "iaf", "--out", "{tmp}/file"], "is a file, not a directory"),
    (["sweep", "--data", "NMDA={nmda},{nmda_test}", "--out", "{tmp}/file"], "is a file, not a directory"),
    (["train", "{nmda}", "--out", "{tmp}/file/m"], "is a file"),
])
def test_user_errors_are_one_line_before_any_work(world, tmp_path, capsys, argv, message):
    (tmp_path / "file").write_text("")
    argv = [a.format(tmp=tmp_path, **world) for a in argv]
    assert message in one_line_error(argv, capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_on_a_missing_gpu_fails_before_reading_data(tmp_path, capsys):
    err = one_line_error(["train", tmp_path / "no_data", "--device", "cuda", "--out", tmp_path / "m"], capsys)
    assert "--device 'cuda' requested but CUDA is not available" in err


def test_a_concurrent_generation_is_one_line(tmp_path, capsys):
    out = tmp_path / "d"
    with conditions.lock_held(out / ".generate.lock", "the dataset"):
        err = one_line_error(["generate", "--cell", "iaf", "--trials", "2", "--duration-ms", "500", "--workers", "0",
                              "--out", out], capsys)
    assert "another process is writing the dataset" in err and not (out / "manifest.json").exists()


def test_an_internal_error_is_one_line_and_a_traceback_file(monkeypatch, capsys, tmp_path):
    def crash(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(nd.data.generation, "generate_dataset", crash)
    err = one_line_error(["generate", "--trials", "2", "--out", tmp_path / "d"], capsys, code=1)
    assert err.startswith("neurodepth generate: internal error: KeyError: 'a bug' (full traceback in ")
    trace = Path(err.split("full traceback in ", 1)[1].split(";")[0])
    assert "Traceback" in trace.read_text()
    trace.unlink()


# ---------------------------------------------------------------- 8. assets regenerate from anywhere

def test_assets_regenerate_prints_a_command_that_works_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["assets", "regenerate", "model_l5pc_nmda_tcn", "--out", "remade", "--dry-run"]) == 0
    argv = capsys.readouterr().out.strip().splitlines()[-1].split()
    dataset = Path(argv[2])
    card = json.loads(nd.data.assets.path_of("model_l5pc_nmda_tcn").with_suffix(".json").read_text())
    trained_on = card["dataset"]["name"]   # the set the shipped model was trained on, named by its card
    assert dataset.is_absolute() and dataset == nd.data.assets.data_root() / "lab" / trained_on
    assert Path(argv[argv.index("--valid") + 1]).is_absolute() and argv[argv.index("--out") + 1] == "remade"


# ---------------------------------------------------------------- fuzz: the argument parsing

JUNK = st.one_of(st.sampled_from(["0", "-1", "-3", "nan", "inf", "-inf", "1e400", "2.7", "", " ", "x", "--",
                                  "0,0", "3-1", "NMDA", "a=b", "1,2,3", "9" * 30]),
                 st.text(alphabet="-0123456789.,=:xnaNMD ", max_size=8))
FLAGS = {
    "generate": ["--cell", "--condition", "--trials", "--duration-ms", "--seed", "--workers", "--trials-per-shard",
                 "--dt-ms", "--secondorder"],
    "train": ["--valid-fraction", "--arch", "--kernels", "--depth", "--kernel", "--width", "--steps", "--batch-size",
              "--window-ms", "--seed", "--split-seed", "--device", "--workers", "--scale", "--spike-bias",
              "--train-trials", "--lr-scale", "--weights-dtype"],
    "evaluate": ["--trials", "--spike-range", "--start-ms", "--subsets", "--subset-fraction", "--seed", "--target-fpr",
                 "--batch-size", "--device", "--roc-points", "--workers"],
    "sweep": ["--depths", "--widths", "--T", "--seeds", "--steps", "--workers", "--threads", "--train-trials", "--data"],
    "how-deep": ["--cell", "--condition", "--train-trials", "--test-trials", "--duration-ms", "--depths", "--width",
                 "--T", "--seeds", "--steps", "--tolerance", "--workers"],
}
INVALID = {  # one of these comes last: the command line is invalid whatever came before
    "generate": st.sampled_from([["--trials", "0"], ["--trials", "x"], ["--duration-ms", "nan"], ["--cell", "nope"],
                                 ["--seed", "-1"], ["--workers", "-1"], ["--trials-per-shard", "0"]]),
    "train": st.sampled_from([["--kernels", "0"], ["--steps", "0"], ["--valid-fraction", "1"], ["--arch", "nope"],
                              ["--spike-bias", "nan"], ["--batch-size", "-1"], ["--device", "nope"]]),
    "evaluate": st.sampled_from([["--trials", "-1"], ["--trials", "x"], ["--target-fpr", "nan"],
                                 ["--batch-size", "0"], ["--spike-range", "x"]]),
    "sweep": st.sampled_from([["--depths", "0"], ["--threads", "0"], ["--data", "NMDA"], ["--steps", "1"]]),
    "how-deep": st.sampled_from([["--depths", "0"], ["--tolerance", "-1"], ["--width", "0"], ["--tolerance", "nan"],
                                 ["--steps", "0"]]),
}
BASE = {"generate": ["--out", "out"], "train": ["data", "--out", "out/m"], "evaluate": ["model", "data"],
        "sweep": ["--out", "out", "--data", "NMDA=a,b"], "how-deep": ["--cell", "iaf", "--out", "out"]}


@st.composite
def invalid_command_lines(draw):
    command = draw(st.sampled_from(sorted(FLAGS)))
    pairs = draw(st.lists(st.tuples(st.sampled_from(FLAGS[command]), JUNK), max_size=3))
    return [command, *BASE[command], *[x for pair in pairs for x in pair], *draw(INVALID[command])]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=invalid_command_lines())
def test_fuzz_invalid_command_lines_are_one_line_exit_2_and_write_nothing(argv, capsys, monkeypatch):
    monkeypatch.delenv("NEURODEPTH_DEBUG", raising=False)
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.chdir(tmp)
        rc = cli.main(argv)
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert rc == 2, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)
        assert err.startswith("neurodepth"), (argv, err)
        assert os.listdir(tmp) == [], (argv, os.listdir(tmp))
