"""The ``neurodepth`` command is a shell: each sub-command parses its flags and makes one call into the library,
which owns every default and every check. These tests replace that call and look at what it received."""
import subprocess
import sys
from pathlib import Path

import pytest

import neurodepth_lib as nd
from neurodepth_lib import _parallel, cli


class Called(Exception):
    """Raised by a replaced library call once it has recorded its arguments."""


def capture(monkeypatch, module, name):
    calls = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        raise Called(name)

    monkeypatch.setattr(module, name, fake)
    return calls


class FakeClient:
    def __init__(self, address):
        self.address, self.closed = address, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True


@pytest.fixture(autouse=True)
def raise_internal_errors(monkeypatch):
    """The replaced library calls raise ``Called``: let it through (the command reports a bug as one line
    otherwise; tests/test_reliability.py checks that)."""
    monkeypatch.setenv("NEURODEPTH_DEBUG", "1")


@pytest.fixture
def dask(monkeypatch):
    """``_parallel.dask_client`` replaced: records the clients the command asked for."""
    made = []

    def dask_client(address):
        if not address:
            return None
        made.append(FakeClient(address))
        return made[-1]

    monkeypatch.setattr(_parallel, "dask_client", dask_client)
    return made


def run_error(argv, capsys) -> str:
    """Run a command that must fail as a user error: exit 2 and exactly one line on stderr."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


# ---------------------------------------------------------------- generate

def test_generate_forwards_the_shipped_command(monkeypatch, dask, tmp_path):
    calls = capture(monkeypatch, nd.data.generation, "generate_dataset")
    out = str(tmp_path / "nmda")
    with pytest.raises(Called):
        cli.main(["generate", "--cell", "l5pc", "--condition", "NMDA", "--trials", "100", "--duration-ms", "6000",
                  "--seed", "3000", "--trials-per-shard", "8", "--out", out])
    (args, kw), = calls
    assert args == (out,)
    assert kw == dict(cell="l5pc", condition="NMDA", n_trials=100, duration_ms=6000, seed=3000, trials_per_shard=8,
                      client=None, record_dendrites=False, record_soma_0125ms=False, simulation=None, progress=True,
                      input_settings=None)
    assert dask == []


def test_generate_leaves_defaults_to_the_library_and_sends_work_to_dask(monkeypatch, dask, tmp_path):
    calls = capture(monkeypatch, nd.data.generation, "generate_dataset")
    with pytest.raises(Called):
        cli.main(["generate", "--cell", "teaching", "--trials", "4", "--out", str(tmp_path / "t"), "--workers", "0",
                  "--dt-ms", "0.025", "--secondorder", "0", "--cvode", "--record-dendrites", "--no-progress",
                  "--scheduler", "tcp://somewhere:8786"])
    (_, kw), = calls
    assert "duration_ms" not in kw and "seed" not in kw and "trials_per_shard" not in kw  # the library's defaults
    assert kw["workers"] == 0 and kw["record_dendrites"] and kw["progress"] is False
    assert kw["simulation"] == {"dt_ms": 0.025, "secondorder": 0, "use_cvode": True}
    client, = dask  # made by _parallel.dask_client, and closed afterwards even though the call failed
    assert client.address == "tcp://somewhere:8786" and kw["client"] is client and client.closed


# the shipped out-of-distribution test sets (issue 20; data/lab/make_ood_datasets.sh) and their --ood settings
OOD_SETS = {"l5pc_nmda_test_ood_clustered_sync": "clustered,synchronous",
            "l5pc_nmda_test_ood_clustered_no_inhibition": "clustered,no_inhibition",
            "l5pc_nmda_test_ood_high_rate": "high_rate"}


def shipped_manifest(name):
    manifest = nd.data.assets.manifest_of(nd.data.assets.path_of(name))
    if manifest is None:
        pytest.skip(f"{name} is not in this checkout")
    return manifest


@pytest.mark.neuron
@pytest.mark.parametrize("name, kinds", OOD_SETS.items())
def test_generate_ood_makes_the_plan_of_the_shipped_ood_set(name, kinds, monkeypatch, dask, tmp_path):
    """The command 'assets regenerate' prints for a shipped OOD set carries --ood, and the plan it hands the
    library has the shipped set's plan id: the same trials, bit for bit (nothing is simulated here)."""
    manifest = shipped_manifest(name)
    argv = nd.data.asset_records.regenerate_command(name, tmp_path / "remade")
    assert argv[argv.index("--ood") + 1] == kinds
    calls = capture(monkeypatch, nd.data.generation, "generate_dataset")
    with pytest.raises(Called):
        cli.main(argv[1:])
    (_, kw), = calls
    assert kw["input_settings"].ood.kinds == tuple(kinds.split(","))
    assert nd.data.planned_id(**kw) == manifest["plan_id"]
    # without the flag the plan is the in-distribution test set's (same seed), not the OOD set's
    plain = dict(kw, input_settings=None)
    assert nd.data.planned_id(**plain) != manifest["plan_id"]


@pytest.mark.neuron
def test_assets_regenerate_dry_run_shows_the_ood_flag(capsys, tmp_path):
    shipped_manifest("l5pc_nmda_test_ood_high_rate")
    out = tmp_path / "remade"
    assert cli.main(["assets", "regenerate", "l5pc_nmda_test_ood_high_rate", "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith("neurodepth generate --cell l5pc --condition NMDA --trials 28 ")
    assert " --seed 3000 " in printed and " --ood high_rate --out " in printed
    assert not out.exists()


@pytest.mark.parametrize("value, message", [
    ("clustered,sideways", "unknown OOD setting 'sideways'; choose one or more of clustered, synchronous, "
                           "no_inhibition, high_rate, comma-separated"),
    ("", "unknown OOD setting ''"),
    ("high_rate,high_rate", "OOD settings must be distinct"),
])
def test_generate_refuses_a_bad_ood_setting_before_anything_runs(value, message, monkeypatch, capsys, tmp_path):
    calls = capture(monkeypatch, nd.data.generation, "generate_dataset")
    built = capture(monkeypatch, nd.data.generation, "ood_input_settings")
    err = run_error(["generate", "--trials", "1", "--ood", value, "--out", str(tmp_path / "x")], capsys)
    assert err.startswith("neurodepth generate: error: argument --ood: ") and message in err
    assert calls == [] and built == [] and not (tmp_path / "x").exists()


def test_the_ood_names_the_parser_offers_are_the_library_s():
    from neurodepth_lib.cli import _data

    assert _data._OOD_KINDS == nd.inputs.OOD_KINDS


def test_clustered_input_needs_a_cell_with_a_morphology(monkeypatch, capsys, tmp_path):
    calls = capture(monkeypatch, nd.data.generation, "generate_dataset")
    err = run_error(["generate", "--cell", "iaf", "--trials", "1", "--ood", "clustered", "--out", str(tmp_path / "x")],
                    capsys)
    assert "OOD setting 'clustered' groups a cell's segments by their 3-D positions" in err
    assert "'iaf' is not a NEURON cell" in err
    assert calls == [] and not (tmp_path / "x").exists()


def test_a_scheduler_that_does_not_answer_is_one_line(monkeypatch, capsys, tmp_path):
    distributed = pytest.importorskip("distributed")

    def refused(address, **kwargs):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr(distributed, "Client", refused)
    err = run_error(["generate", "--trials", "2", "--out", str(tmp_path / "x"), "--scheduler", "tcp://nowhere:1"],
                    capsys)
    assert err.startswith("neurodepth generate: error: no Dask scheduler answers at 'tcp://nowhere:1'")


def test_a_dataset_failing_its_checksums_is_a_user_error_other_runtime_errors_are_not(monkeypatch, capsys, tmp_path):
    from neurodepth_lib.data.shards import IntegrityError

    def broken(*args, **kwargs):
        raise IntegrityError("shard_00000.h5 does not match its sha256")

    monkeypatch.setattr(nd.data.generation, "generate_dataset", broken)
    argv = ["generate", "--trials", "2", "--out", str(tmp_path / "x")]
    assert run_error(argv, capsys) == "neurodepth generate: error: shard_00000.h5 does not match its sha256"

    def crashed(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(nd.data.generation, "generate_dataset", crashed)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(argv)  # NEURODEPTH_DEBUG=1: raised
    monkeypatch.delenv("NEURODEPTH_DEBUG")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("neurodepth generate: internal error: RuntimeError: a bug (full traceback in ")
    trace = Path(err.split("full traceback in ", 1)[1].split(";")[0])
    assert "Traceback" in trace.read_text()
    trace.unlink()


# ---------------------------------------------------------------- train

LAB_TRAIN = ["train", "data/lab/l5pc_nmda_train", "--allow-incomplete", "--valid", "data/lab/l5pc_nmda_valid",
             "--split-seed", "0", "--seed", "0", "--scale", "lab", "--steps", "3000", "--threads", "1",
             "--weights-dtype", "float16", "--no-progress", "--out", "runs/d1", "--depth", "1", "--kernel", "77",
             "--width", "24"]


def test_train_forwards_the_shipped_command_as_fitspec_fields(monkeypatch):
    calls = capture(monkeypatch, nd.fit, "train_on_dataset")
    threads = []
    import torch

    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    with pytest.raises(Called):
        cli.main(LAB_TRAIN)
    (args, kw), = calls
    assert args == ("data/lab/l5pc_nmda_train", "runs/d1") and threads == [1]
    provenance, log = kw.pop("provenance"), kw.pop("log")
    assert kw == dict(allow_incomplete=True, valid_data="data/lab/l5pc_nmda_valid", split_seed=0, seed=0,
                      scale="lab", steps=3000, weights_dtype="float16", progress=False, depth=1, kernel_ms=77,
                      widths=(24,), resume=True)
    assert provenance["argv"] == ["neurodepth", *LAB_TRAIN] and provenance["versions"]["torch"]
    assert log is print
    # every forwarded name is a field of the spec, and together they make a valid one
    spec = nd.fit.FitSpec(**kw)
    assert spec.training_config().schedule.total_steps == 3000 and spec.reshaping == {
        "depth": 1, "kernel_ms": 77, "widths": (24,)}


def test_train_flags_map_to_their_fields(monkeypatch):
    calls = capture(monkeypatch, nd.fit, "train_on_dataset")
    with pytest.raises(Called):
        cli.main(["train", "ds", "--out", "m", "--arch", "lab", "--kernels", "45,19,19", "--first-kernel", "45",
                  "--width", "64,32,32", "--dendritic", "no", "--spike-bias", "-2.5", "--lr-scale", "3",
                  "--batch-size", "4", "--window-ms", "200", "--device", "cpu", "--workers", "2",
                  "--valid-fraction", "0.2", "--train-trials", "40", "--no-resume", "--no-evaluate"])
    (_, kw), = calls
    kw.pop("provenance"), kw.pop("log")
    assert kw == dict(architecture="lab", kernel_sizes=(45, 19, 19), first_kernel_ms=45, widths=(64, 32, 32),
                      dendritic=False, spike_bias="-2.5", lr_scale=3.0, batch_size=4, window_ms=200, device="cpu",
                      workers=2, valid_fraction=0.2, first_trials=40, resume=False, progress=True,
                      allow_incomplete=False)
    assert nd.fit.FitSpec(**kw).spike_bias == -2.5  # the library reads the number, once
    calls.clear()
    with pytest.raises(Called):
        cli.main(["train", "ds", "--out", "m", "--dendritic", "auto"])
    assert "dendritic" not in calls[0][1]  # auto: the library decides from the dataset


def test_train_after_the_library_call_scores_validation_unless_told_not_to(monkeypatch, capsys):
    class Result:
        valid_sampler, model, model_path = object(), object(), Path("runs/m")

    monkeypatch.setattr(nd.fit, "train_on_dataset", lambda *a, **k: Result())
    scored = []
    monkeypatch.setattr(nd.scoring, "score_validation", lambda fit, log: scored.append(fit))
    assert cli.main(["train", "ds", "--out", "runs/m", "--no-evaluate"]) == 0 and scored == []
    assert cli.main(["train", "ds", "--out", "runs/m"]) == 0 and len(scored) == 1
    assert "model written: runs/m.pt and runs/m.json" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--spike-bias", "nonsense"], "--spike-bias must be 'data', 'paper' or a number, got 'nonsense'"),
    (["--train-trials", "0"], "--train-trials must be a positive whole number, got 0"),
    (["--weights-dtype", "int8"], "--weights-dtype must be one of ['float16', 'float32'], got 'int8'"),
    (["--valid-fraction", "1"], "--valid-fraction must lie in [0, 1), got 1.0"),
    (["--batch-size", "0"], "--batch-size must be a positive whole number, got 0"),
    (["--steps", "3"], "--steps must be an integer >= 5"),
    (["--arch", "huge"], "unknown architecture 'huge'"),
    (["--threads", "0"], "--threads must be a positive whole number, got 0"),
])
def test_bad_train_flags_are_one_line_before_any_data_is_read(flags, message, monkeypatch, capsys, tmp_path):
    def no_reading(*args, **kwargs):
        raise AssertionError("a dataset was opened before the arguments were checked")

    monkeypatch.setattr(nd.fit.on_dataset, "open_dataset", no_reading)
    err = run_error(["train", str(tmp_path / "not_there"), "--out", str(tmp_path / "m"), *flags], capsys)
    assert err.startswith("neurodepth train: error: " + message), err
    assert not (tmp_path / "m.run.json").exists()


# ---------------------------------------------------------------- the spec

@pytest.mark.parametrize("field, value", [
    ("trials", []), ("trials", [-1, 2]), ("first_trials", 0), ("valid_trials", [0]), ("valid_fraction", 1.0),
    ("split_seed", -1), ("depth", 0), ("kernel_ms", 2.5), ("dendritic", "yes"), ("spike_bias", "zero"),
    ("spike_bias", float("nan")), ("scale", "huge"), ("steps", 0), ("steps", 3), ("lr_scale", -1.0),
    ("batch_size", True), ("window_ms", 0), ("device", "gpu"), ("seed", -2), ("resume", "no"), ("workers", -1),
    ("weights_dtype", "int8"), ("progress", None), ("card", ["not", "a", "dict"]), ("log", "print"),
])
def test_fitspec_errors_name_the_field(field, value):
    with pytest.raises(nd.fit.FitSpecError) as info:
        nd.fit.FitSpec(**{field: value})
    assert info.value.field == field and str(info.value).startswith(field), str(info.value)


def test_fitspec_is_checked_before_data_and_prints_what_differs(tmp_path):
    with pytest.raises(nd.fit.FitSpecError, match="first_trials and trials"):
        nd.fit.train_on_dataset(tmp_path / "missing", trials=[0, 1], first_trials=2)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['epochs'\]"):
        nd.fit.train_on_dataset(tmp_path / "missing", epochs=3)
    with pytest.raises(nd.fit.FitSpecError, match="reshapes a preset"):
        nd.fit.FitSpec(architecture=nd.nets.make_architecture("tiny"), depth=2)
    spec = nd.fit.FitSpec(architecture="lab", first_trials=64, spike_bias="-3")
    assert str(spec) == "FitSpec(first_trials=64, architecture='lab', spike_bias=-3.0)"
    assert spec.replace(scale="paper").spike_bias_rule == -3.0
    assert nd.fit.FitSpec().spike_bias_rule == "data" and nd.fit.FitSpec(scale="paper").spike_bias_rule == "paper"
    with pytest.raises(TypeError, match="unknown FitSpec field"):
        spec.replace(epochs=3)
    # a given TrainingConfig is the schedule: the spec's schedule fields must stay unset
    config = nd.fit.TrainingConfig(seed=4)
    assert spec.training_config(config) is config
    with pytest.raises(nd.fit.FitSpecError, match="^steps is part of the training configuration"):
        spec.replace(steps=50).training_config(config)
    with pytest.raises(nd.fit.FitSpecError, match="^seed=1 but the given config has seed=4"):
        spec.replace(seed=1).training_config(config)


# ---------------------------------------------------------------- evaluate

def test_evaluate_forwards_the_protocol_and_the_trials(monkeypatch):
    opened = []
    monkeypatch.setattr(nd.data, "open_dataset", lambda path, **kw: opened.append((path, kw)) or "DATASET")
    calls = capture(monkeypatch, nd.scoring, "evaluate_model")
    with pytest.raises(Called):
        cli.main(["evaluate", "runs/m", "data/test", "--trials", "0-2,5", "--all-trials", "--subsets", "4",
                  "--start-ms", "300", "--allow-incomplete", "--batch-size", "2"])
    (args, kw), = calls
    assert args == ("runs/m", "DATASET") and opened == [("data/test", {"allow_incomplete": True})]
    assert kw["trials"] == [0, 1, 2, 5] and kw["batch_size"] == 2 and kw["device"] == "auto"
    assert "target_fpr" not in kw and "workers" not in kw
    assert kw["config"] == nd.scoring.EvaluationConfig(start_ms=300, spike_count_range=None, n_subsets=4)
    calls.clear()
    with pytest.raises(Called):
        cli.main(["evaluate", "runs/m", "data/test", "--spike-range", "1,9"])
    assert calls[0][1]["config"] == nd.scoring.EvaluationConfig(spike_count_range=(1, 9))
    assert calls[0][1]["config"].spike_count_per_ms is None                 # a range of one's own: per trial
    calls.clear()
    with pytest.raises(Called):                                             # the paper's, scaled by default
        cli.main(["evaluate", "runs/m", "data/test"])
    assert calls[0][1]["config"].applied_range(2000) == (0, 8)
    calls.clear()
    with pytest.raises(Called):
        cli.main(["evaluate", "runs/m", "data/test", "--spike-range-per-trial"])
    assert calls[0][1]["config"].applied_range(2000) == (0, 24)
    calls.clear()
    with pytest.raises(Called):
        cli.main(["evaluate", "runs/m", "data/test", "--spike-range", "0,10", "--spike-range-per-ms", "1000"])
    assert calls[0][1]["config"].applied_range(2000) == (0, 20)
    assert cli.main(["evaluate", "runs/m", "data/test", "--spike-range-per-ms", "1000", "--spike-range-per-trial"]) == 2


# ---------------------------------------------------------------- sweep, how-deep, notebooks

def test_sweep_builds_the_grid_and_uses_the_dask_client(monkeypatch, dask):
    calls = capture(monkeypatch, nd.studies, "run_sweep")
    with pytest.raises(Called):
        cli.main(["sweep", "--out", "runs/s", "--data", "NMDA=a,b", "--data", "AMPA=c,d", "--depths", "1", "3",
                  "--T", "77", "--steps", "100", "--train-trials", "64", "--scheduler", "tcp://here:1"])
    (args, kw), = calls
    assert args == ("runs/s", {"NMDA": ("a", "b"), "AMPA": ("c", "d")},
                    nd.studies.SweepGrid(depths=(1, 3), receptive_fields_ms=(77,)))
    client, = dask
    assert kw == dict(client=client, allow_incomplete=False, progress=True, steps=100, train_trials=64)
    assert client.closed


def test_how_deep_forwards_and_a_malformed_data_flag_is_one_line(monkeypatch, dask, capsys):
    calls = capture(monkeypatch, nd.studies, "how_deep")
    with pytest.raises(Called):
        cli.main(["how-deep", "--out", "runs/h", "--cell", "iaf", "--depths", "1", "2", "--seeds", "0",
                  "--tolerance", "0.01", "--no-progress"])
    assert calls[0] == ((), dict(out_dir="runs/h", client=None, progress=False, cell="iaf", depths=(1, 2),
                                 seeds=(0,), tolerance=0.01))
    assert "must look like CONDITION=TRAIN_DIR,TEST_DIR" in run_error(
        ["sweep", "--out", "runs/s", "--data", "NMDA=a"], capsys)


def test_notebooks_forwards_the_scale_and_fails_on_a_failed_check(monkeypatch, capsys):
    seen = []

    def run_all(out, scale=None, notebooks=None):
        seen.append((out, scale, [p.stem[:2] for p in notebooks]))
        return [{"notebook": "00_welcome", "checks": [{"passed": True}]},
                {"notebook": "01_integrate_and_fire", "checks": [{"passed": False}]}]

    monkeypatch.setattr(nd.nb, "run_all", run_all)
    assert cli.main(["notebooks", "--scale", "quick", "--out", "o", "--only", "00", "01"]) == 1
    assert seen == [("o", "quick", ["00", "01"])]
    assert "01_integrate_and_fire" in capsys.readouterr().err


# ---------------------------------------------------------------- the shell stays light

def test_help_loads_no_layer_of_the_library():
    code = ("import sys\nfrom neurodepth_lib import cli\ncli.build_parser().format_help()\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'h5py', 'neuron', 'distributed', 'papermill') "
            "if m in sys.modules)\nassert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
