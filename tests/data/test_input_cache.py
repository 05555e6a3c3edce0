"""The training input cache (``<out>.train-inputs.h5``) is checked against the dataset's recorded per-trial
input sha256 on every load: a damaged cache is rebuilt, saying so, and never trained on."""
import h5py
import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib.data.input_cache import load_event_cache
from tests import conditions


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = conditions.make_dataset(tmp_path_factory.mktemp("cache") / "d", "NMDA", seed=5, n_trials=4)
    with nd.data.open_dataset(path) as ds:
        yield ds


def _events(cache):
    return cache.channel.copy(), cache.time_ms.copy(), cache.offsets.copy()


def test_a_sound_cache_is_reused(dataset, tmp_path, recwarn):
    trials = np.arange(4)
    first = load_event_cache(dataset, trials, tmp_path / "c.h5", progress=False)
    again = load_event_cache(dataset, trials, tmp_path / "c.h5", progress=False)
    for a, b in zip(_events(first), _events(again)):
        np.testing.assert_array_equal(a, b)
    assert not [w for w in recwarn if "input cache" in str(w.message)]


@pytest.mark.parametrize("damage", ["zero_times", "zero_channels", "drop_checksums", "garbage"])
def test_a_damaged_cache_is_rebuilt_saying_so(dataset, tmp_path, damage):
    trials = np.arange(4)
    path = tmp_path / "c.h5"
    good = _events(load_event_cache(dataset, trials, path, progress=False))
    if damage == "garbage":
        path.write_bytes(b"not hdf5 at all")
    else:
        with h5py.File(path, "r+") as f:
            if damage == "drop_checksums":
                del f["checksums"]
            else:
                name = "time_ms" if damage == "zero_times" else "channel"
                data = f[name][()]
                data[: data.size // 2] = 0  # zero part of it: the key still matches
                f[name][...] = data
    with pytest.warns(UserWarning, match="input cache .* is damaged .*rebuilding"):
        rebuilt = load_event_cache(dataset, trials, path, progress=False)
    for a, b in zip(good, _events(rebuilt)):
        np.testing.assert_array_equal(a, b)
    fresh = load_event_cache(dataset, trials, path, progress=False)  # and the file on disk is sound again
    np.testing.assert_array_equal(fresh.time_ms, good[1])
