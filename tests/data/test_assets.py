"""Shipped assets: datasets still being generated, byte-level verification, regeneration from provenance,
and the same for datasets read as a fixed set of shards (sweeps, parallel input materialisation)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurodepth_lib import cli
import neurodepth_lib as nd
from neurodepth_lib.data import assets


def _iaf(out, n_trials=4, seed=5, duration_ms=600):
    nd.data.generate_dataset(out, cell="iaf", n_trials=n_trials, duration_ms=duration_ms, seed=seed, trials_per_shard=2,
                       workers=0, progress=False)
    return out


def _unfinish(directory: Path, shard_index: int) -> None:
    """Make a finished dataset look like one whose generation stopped before shard ``shard_index``."""
    manifest = json.loads((directory / "manifest.json").read_text())
    entry = manifest["shards"][shard_index]
    (directory / entry["name"]).unlink()
    entry.update(sha256=None, size_bytes=None, n_spikes=None)
    nd.data.write_manifest(directory, manifest)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv(nd.data.assets.DATA_DIR_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def shipped(data_root, monkeypatch):
    """An I&F dataset registered as a shipped asset (the L5PC ones cost minutes to make)."""
    monkeypatch.setitem(nd.data.assets.ASSETS, "toy_train", nd.data.assets.Asset("dataset", "lab/toy_train", None, "toy"))
    return _iaf(data_root / "lab" / "toy_train")


def test_a_dataset_still_being_generated_is_used_only_when_asked(shipped):
    _unfinish(shipped, 1)
    assert nd.data.assets.status("toy_train") == "incomplete"
    assert nd.data.assets.find("toy_train") is None
    assert nd.data.assets.find("toy_train", allow_incomplete=True) == shipped
    with pytest.raises(nd.data.IntegrityError, match="incomplete"):
        nd.data.open_dataset(shipped)
    ds = nd.data.open_dataset(shipped, allow_incomplete=True)
    assert len(ds) == 2 and ds.n_planned == 4 and not ds.complete
    assert list(ds.shard_checksums) == ["shard_00000.h5"]
    # nothing finished at all: not even a partial dataset to offer
    _unfinish(shipped, 0)
    assert nd.data.assets.find("toy_train", allow_incomplete=True) is None


def test_a_view_of_named_shards_keeps_trial_numbers_while_the_dataset_grows(tmp_path):
    full = nd.data.open_dataset(_iaf(tmp_path / "full", n_trials=6))
    grow = _iaf(tmp_path / "grow", n_trials=6)
    _unfinish(grow, 0)  # shards finish out of order: 1 and 2 are there, 0 is not yet
    early = nd.data.open_dataset(grow, allow_incomplete=True)
    names = early.shard_names
    assert names == ["shard_00001.h5", "shard_00002.h5"]
    _iaf(grow, n_trials=6)  # the generation resumes and finishes shard 0
    now = nd.data.open_dataset(grow)
    view = nd.data.open_dataset(grow, shards=names)
    assert len(now) == 6 and len(view) == 4
    # trial 0 of the view is still planned trial 2, the first trial of shard 1
    np.testing.assert_array_equal(view.trial(0).soma_1ms, full.trial(2).soma_1ms)
    with pytest.raises(nd.data.IntegrityError, match="no longer finished"):
        nd.data.open_dataset(grow, shards=["shard_00009.h5"])


def test_inputs_of_an_incomplete_dataset_materialise_the_same_in_parallel(tmp_path):
    grow = _iaf(tmp_path / "grow", n_trials=6)
    _unfinish(grow, 1)
    ds = nd.data.open_dataset(grow, allow_incomplete=True)
    serial = nd.data.materialise_inputs(ds, range(len(ds)))
    parallel = nd.data.materialise_inputs(ds, range(len(ds)), workers=2)
    assert [e.checksum() for e in parallel] == [e.checksum() for e in serial]


def test_verify_checks_every_byte_and_names_the_damaged_file(shipped, data_root, capsys):
    [result] = nd.data.asset_records.verify(["toy_train"])
    assert result.state == "ok" and not result.problems and "4/4 trials" in result.detail
    _unfinish(shipped, 1)
    [result] = nd.data.asset_records.verify(["toy_train"])
    assert result.state == "partial" and "2/4 trials" in result.detail
    shard = shipped / "shard_00000.h5"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # one flipped bit of a trace: the size is unchanged
    shard.write_bytes(bytes(data))
    [result] = nd.data.asset_records.verify(["toy_train"])
    assert result.failed and "shard_00000.h5" in result.problems[0]
    assert cli.main(["assets", "verify", "toy_train"]) == 1
    assert "FAILED: toy_train" in capsys.readouterr().out
    # a missing asset is reported, not failed
    [missing] = nd.data.asset_records.verify(["l5pc_ampa_valid"])
    assert missing.state == "missing" and not missing.failed


def test_verify_checks_model_weights_and_registry_pins(data_root, monkeypatch):
    prefix = data_root / "lab" / "models" / "toy"
    monkeypatch.setitem(nd.data.assets.ASSETS, "toy_model", nd.data.assets.Asset("model", "lab/models/toy", None, "toy"))
    prefix.parent.mkdir(parents=True)
    nd.nets.save_model(prefix, nd.nets.TCN(nd.nets.TCNConfig(n_inputs=10, kernel_sizes=(5,), widths=(2,))))
    [result] = nd.data.asset_records.verify(["toy_model"])
    assert result.state == "ok" and "not pinned yet" in result.detail
    card_sha = nd._io.file_sha256(prefix.with_suffix(".json"))
    monkeypatch.setitem(nd.data.assets.ASSETS, "toy_model", nd.data.assets.Asset("model", "lab/models/toy", card_sha, "toy"))
    assert nd.data.asset_records.verify(["toy_model"])[0].state == "ok"
    weights = prefix.with_suffix(".pt")
    weights.write_bytes(weights.read_bytes() + b"\0")
    [result] = nd.data.asset_records.verify(["toy_model"])
    assert result.failed and "toy.pt" in result.problems[0]
    monkeypatch.setitem(nd.data.assets.ASSETS, "toy_model", nd.data.assets.Asset("model", "lab/models/toy", "0" * 64, "toy"))
    assert any("pinned" in p for p in nd.data.asset_records.verify(["toy_model"])[0].problems)


def test_a_dataset_regenerates_byte_identical_from_its_manifest(shipped, tmp_path, capsys):
    argv = nd.data.asset_records.regenerate_command("toy_train", tmp_path / "again")
    assert argv[:2] == ["neurodepth", "generate"] and "--seed" in argv and argv[-1] == str(tmp_path / "again")
    assert cli.main(["assets", "regenerate", "toy_train", "--out", str(tmp_path / "again"), "--workers", "0"]) == 0
    original, again = nd.data.read_manifest(shipped), nd.data.read_manifest(tmp_path / "again")
    assert again["plan_id"] == original["plan_id"]
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in original["shards"]]
    # the run is logged beside the data: the command and every shard's wall time
    log = [json.loads(line) for line in (tmp_path / "again" / nd.data.PROVENANCE_NAME).read_text().splitlines()]
    assert log[0]["event"] == "run" and log[0]["cores"] >= 1
    assert sorted(r["name"] for r in log if r["event"] == "shard") == ["shard_00000.h5", "shard_00001.h5"]
    assert all(r["total_s"] > 0 for r in log if r["event"] == "shard")
    # regenerating into its own directory only resumes: nothing is redone
    _unfinish(shipped, 1)
    assert cli.main(["assets", "regenerate", "toy_train", "--workers", "0"]) == 0
    assert nd.data.read_manifest(shipped) == original


def test_a_trained_model_records_the_command_that_remakes_it(shipped, data_root, monkeypatch, capsys):
    prefix = data_root / "lab" / "models" / "toy"
    monkeypatch.setitem(nd.data.assets.ASSETS, "toy_model", nd.data.assets.Asset("model", "lab/models/toy", None, "toy"))
    args = ["train", str(shipped), "--out", str(prefix), "--arch", "tiny", "--scale", "quick", "--steps", "6",
            "--no-progress", "--no-evaluate", "--device", "cpu"]
    assert cli.main(args) == 0
    provenance = nd.nets.read_model_card(prefix)["provenance"]
    assert provenance["argv"] == ["neurodepth", *args] and provenance["wall_s"] >= 0
    assert provenance["versions"]["torch"]
    assert nd.data.asset_records.regenerate_command("toy_model") == ["neurodepth", *args]
    assert cli.main(["assets", "regenerate", "toy_model"]) == 2  # never over the shipped weights
    assert "give --out" in capsys.readouterr().err
    elsewhere = nd.data.asset_records.regenerate_command("toy_model", data_root / "other")
    assert elsewhere[elsewhere.index("--out") + 1] == str(data_root / "other")


def test_training_on_a_dataset_still_being_generated_names_the_shards_it_saw(shipped, tmp_path):
    _unfinish(shipped, 1)
    assert cli.main(["train", str(shipped), "--out", str(tmp_path / "m"), "--arch", "tiny", "--scale", "quick",
                     "--steps", "6", "--no-progress", "--no-evaluate", "--device", "cpu"]) == 2
    assert cli.main(["train", str(shipped), "--out", str(tmp_path / "m"), "--arch", "tiny", "--scale", "quick",
                     "--steps", "6", "--no-progress", "--no-evaluate", "--device", "cpu",
                     "--allow-incomplete"]) == 0
    dataset = nd.nets.read_model_card(tmp_path / "m")["dataset"]
    assert dataset["complete"] is False and list(dataset["shards_used"]) == ["shard_00000.h5"]


def test_a_sweep_on_growing_data_keeps_the_shards_it_started_with(tmp_path):
    train = _iaf(tmp_path / "train", n_trials=6, duration_ms=2000)
    test = _iaf(tmp_path / "test", n_trials=4, seed=6, duration_ms=2000)
    _unfinish(train, 2)
    data = {"IAF": (str(train), str(test))}
    grid = nd.studies.SweepGrid(depths=(1,), widths=(2,), receptive_fields_ms=(11,), seeds=(0,))
    with pytest.raises(nd.data.IntegrityError, match="incomplete"):
        nd.studies.run_sweep(tmp_path / "sweep", data, grid, steps=5, scale="quick", workers=0, progress=False)
    nd.studies.run_sweep(tmp_path / "sweep", data, grid, steps=5, scale="quick", workers=0, allow_incomplete=True,
                     progress=False)
    caches = sorted(p.name for p in (tmp_path / "sweep" / nd.studies.INPUT_CACHE_DIR).iterdir())
    assert len(caches) == 3  # training, validation and test trials: made once, shared by later runs
    frozen = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["shards"]["IAF"]
    assert frozen[0] == ["shard_00000.h5", "shard_00001.h5"]
    _iaf(train, n_trials=6, duration_ms=2000)  # the data finish growing; a resumed sweep still trains on the first 4 trials
    grid2 = nd.studies.SweepGrid(depths=(1, 2), widths=(2,), receptive_fields_ms=(11,), seeds=(0,))
    res = nd.studies.run_sweep(tmp_path / "sweep", data, grid2, steps=5, scale="quick", workers=0, progress=False)
    assert res.runs_made == 1 and res.runs_skipped == 1
    assert sorted(p.name for p in (tmp_path / "sweep" / nd.studies.INPUT_CACHE_DIR).iterdir()) == caches
    card = nd.nets.read_model_card(tmp_path / "sweep" / "runs" / "IAF_D2xW2xT11_s0" / "model")
    assert list(card["dataset"]["shards_used"]) == frozen[0]


def test_every_shipped_asset_matches_its_recorded_checksums():
    """The lab assets committed to this repository: every shard, weight file and pin is intact."""
    results = nd.data.asset_records.verify()
    assert {r.name for r in results} == set(nd.data.assets.ASSETS)
    failed = [str(r) for r in results if r.failed]
    assert not failed, "\n".join(failed)
    shipped = [r for r in results if r.state in ("ok", "partial")]
    assert sum(r.size_bytes for r in shipped) < nd.data.assets.BUDGET_BYTES


def _toy_table(data_root, monkeypatch, name: str, file_name: str, text: str, record: dict):
    """A result table in the data root with its provenance record, registered (and pinned) as asset ``name``."""
    table = data_root / "lab" / "sweeps" / file_name
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(text)
    (table.parent / f"{file_name}.provenance.json").write_text(json.dumps(record))
    monkeypatch.setitem(nd.data.assets.ASSETS, name, nd.data.assets.Asset("file", f"lab/sweeps/{file_name}",
                                                                          nd._io.file_sha256(table), "toy"))
    return table


def test_a_merged_result_names_every_command_that_made_it(data_root, monkeypatch, capsys):
    """A table merged from several sweeps (the Hay sweep) must not let its first command pass for the whole."""
    first = ["neurodepth", "sweep", "--depths", "1", "--out", "runs/a"]
    second = ["neurodepth", "sweep", "--depths", "4", "--widths", "8", "--out", "runs/a"]
    third = ["neurodepth", "sweep", "--depths", "1", "--out", "runs/b"]
    record = {"argv": first, "commands": {"AMPA": [first, second], "NMDA": [third]}, "made_by": "make_it.sh"}
    _toy_table(data_root, monkeypatch, "toy_merged", "merged.csv", "run_id,auc\nA,0.9\nB,0.8\n", record)
    assert nd.data.asset_records.recorded_commands("toy_merged") == [first, second, third]
    assert cli.main(["assets", "regenerate", "toy_merged", "--out", "/tmp/elsewhere", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "made by 3 commands and a merge (make_it.sh)" in out and "one part only" in out
    assert "--widths 8" in out and "runs/b" in out
    assert out.strip().splitlines()[-1].endswith("--out /tmp/elsewhere")  # the one that would run


def test_a_table_made_by_a_study_script_says_which_script_to_run(data_root, monkeypatch):
    """The data-scaling table is made by data/lab/scaling_study.py, not by one neurodepth command."""
    script = ["python", "data/lab/scaling_study.py", "NMDA", "--sizes", "100", "200"]
    _toy_table(data_root, monkeypatch, "toy_study", "study.csv", "run_id,auc\nA,0.9\n", {"made_by": script})
    with pytest.raises(ValueError, match=r"made by a script.*python data/lab/scaling_study.py NMDA --sizes 100 200"):
        nd.data.asset_records.regenerate_command("toy_study")


def test_a_result_file_is_verified_and_remade_from_its_provenance(data_root, monkeypatch):
    argv = ["neurodepth", "sweep", "--depths", "1", "--out", "runs/toy"]
    table = _toy_table(data_root, monkeypatch, "toy_table", "toy.csv", "run_id,auc\nA,0.9\n", {"argv": argv})
    assert nd.data.assets.find("toy_table") == table and nd.data.asset_records.verify(["toy_table"])[0].state == "ok"
    assert nd.data.asset_records.regenerate_command("toy_table") == argv
    assert nd.data.asset_records.regenerate_command("toy_table", "/tmp/elsewhere")[-1] == "/tmp/elsewhere"
    assert nd.data.asset_records.recorded_commands("toy_table") == [argv]  # made by one command: nothing more to say
    table.write_text("run_id,auc\nA,0.99\n")  # an edited number is caught
    assert nd.data.asset_records.verify(["toy_table"])[0].failed
    with pytest.raises(ValueError, match="does not match"):
        nd.data.assets.find("toy_table")


def test_a_shipped_dataset_stands_in_only_for_the_very_dataset_asked_for(tmp_path, monkeypatch, capsys):
    """choose_dataset(same_plan=True): the asset is used for exactly its own plan (06's teaching-cell data with
    SEED = 0); another seed or size is simulated, and a line says why."""
    monkeypatch.setenv(assets.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setitem(assets.ASSETS, "tiny_iaf", assets.Asset("dataset", "lab/tiny_iaf"))
    plan = dict(cell="iaf", n_trials=2, duration_ms=300, seed=1, workers=0, progress=False)
    nd.data.generate_dataset(tmp_path / "data" / "lab" / "tiny_iaf", **plan)
    same = assets.choose_dataset("tiny_iaf", tmp_path / "mine", same_plan=True, **plan)
    assert same.shipped and not (tmp_path / "mine").exists()
    assert nd.data.planned_id(**plan) == assets.manifest_of(assets.path_of("tiny_iaf"))["plan_id"]
    other = assets.choose_dataset("tiny_iaf", tmp_path / "mine", same_plan=True, **{**plan, "seed": 2})
    assert not other.shipped and other.dataset.path == (tmp_path / "mine").resolve()
    assert "not the dataset this run asks for" in capsys.readouterr().out
    # without same_plan the asset is taken as it is, whatever the fallback's plan
    assert assets.choose_dataset("tiny_iaf", tmp_path / "x", **{**plan, "seed": 2}).shipped


@pytest.mark.parametrize("small, grown", [("l5pc_nmda_train", "l5pc_nmda_train_2000")])
def test_each_grown_training_set_begins_with_the_shipped_smaller_one_trial_for_trial(small, grown):
    """Issue 16 grows the training sets at the same seeds: the data-scaling study's nested sizes and its
    comparison with the 400/200-trial sweep rest on the grown set's first trials being those very trials
    (and a smaller set can be replaced by the first trials of its grown set: the 200-trial AMPA set passed
    this check, all 200 trials, before it was retired on 2026-12-06)."""
    a = nd.data.open_dataset(assets.find(small))
    b = nd.data.open_dataset(assets.find(grown, allow_incomplete=True), allow_incomplete=True)
    assert len(b) >= len(a) > 0
    for i in range(len(a)):
        assert a.input_sha256(i) == b.input_sha256(i), f"{grown} trial {i}: other inputs than {small}'s"
        for name in ("soma_1ms", "nexus_1ms", "spike_times_ms"):
            assert np.array_equal(a.output(name, i), b.output(name, i)), f"{grown} trial {i}: another {name}"
