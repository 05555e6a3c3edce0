"""``how_deep`` checks every argument before the first trial is simulated."""
import pytest

import neurodepth_lib as nd
from neurodepth_lib.studies import depth


@pytest.fixture
def no_generation(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("data were generated before the arguments were checked")

    monkeypatch.setattr(depth, "generate_dataset", boom)


@pytest.mark.parametrize("kwargs, message", [
    (dict(depths=(0,)), "depths entry must be a positive whole number"),
    (dict(tolerance=-1), "tolerance must be a finite number >= 0"),
    (dict(tolerance=float("nan")), "tolerance must be a finite number >= 0"),
    (dict(width=float("nan")), "width must be a positive whole number"),
    (dict(steps=2), "steps must be an integer >= 5"),
    (dict(n_test_trials=0), "n_trials must be a positive whole number"),
    (dict(duration_ms=float("nan")), "duration_ms must be a positive whole number"),
    (dict(workers=-2), "workers must be a whole number >= 0"),
])
def test_bad_arguments_fail_before_any_data_are_made(tmp_path, no_generation, kwargs, message):
    with pytest.raises(ValueError, match=message):
        nd.studies.how_deep("iaf", tmp_path / "h", progress=False, **kwargs)
    assert not (tmp_path / "h").exists()


def test_an_output_that_is_a_file_is_refused(tmp_path, no_generation):
    (tmp_path / "h").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        nd.studies.how_deep("iaf", tmp_path / "h", progress=False)


def test_depth_report_refuses_a_nan_tolerance():
    rows = [{"condition": "c", "depth": 1, "seed": 0, "auc": 0.9}]
    with pytest.raises(ValueError, match="tolerance"):
        nd.studies.depth_report(rows, "c", tolerance=float("nan"))


def test_an_unscoreable_test_set_is_an_error_before_any_training(tmp_path, monkeypatch):
    # the order: data, then the check, then the sweep (which must not start)
    monkeypatch.setattr(depth, "generate_dataset", lambda *a, **k: None)

    def unscoreable(test_dir, evaluation):
        raise ValueError("the test set cannot be scored")

    def no_sweep(*a, **k):
        raise AssertionError("the sweep started on a test set that cannot be scored")

    monkeypatch.setattr(depth, "_check_scoreable", unscoreable)
    monkeypatch.setattr(depth, "run_sweep", no_sweep)
    with pytest.raises(ValueError, match="cannot be scored"):
        nd.studies.how_deep("iaf", tmp_path / "h", calibrate=False, progress=False)


def test_the_scoreable_check_reads_the_filter_and_the_warm_up(tmp_path):
    path = tmp_path / "iaf"
    nd.data.generate_dataset(path, cell="iaf", n_trials=3, duration_ms=1500, seed=1, workers=0, progress=False)
    counts = nd.data.open_dataset(path).spike_counts()
    assert counts.sum() > 0                                  # the I&F neuron fires: the default filter scores it
    depth._check_scoreable(path, nd.scoring.EvaluationConfig(spike_count_range=None))
    # a filter that keeps only silent trials leaves nothing to score, and the message says what to change
    with pytest.raises(ValueError, match=r"cannot be scored: \d of its 3 trials pass .* no output spike after the "
                                         r"first 500 ms.*more or longer test trials"):
        depth._check_scoreable(path, nd.scoring.EvaluationConfig(spike_count_range=(0, 0)))
