"""Dataset format 2: voltages stored as whole 0.01-mV steps (int16, shuffle + gzip), read back exactly;
format 1 (float32) still read, and re-encoded into format 2 byte for byte as generation writes it."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

import neurodepth_lib as nd
from neurodepth_lib._io import file_sha256
from neurodepth_lib.data import shards

KW = dict(cell="iaf", n_trials=9, duration_ms=1200, seed=11, trials_per_shard=4, workers=0, progress=False)


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    out = tmp_path_factory.mktemp("v2") / "ds"
    nd.data.generate_dataset(out, **KW)
    return out


def test_quantisation_is_to_a_hundredth_of_a_millivolt():
    v = np.array([-70.004, -70.005, -70.006, 12.345678, -0.001, 327.67, -327.68])
    q = shards.quantize_mV(v)
    assert q.dtype == np.dtype("<i2")
    back = shards.dequantize_mV(q)
    assert back.dtype == np.float32
    assert np.max(np.abs(back - v)) <= 0.005 + 1e-6          # rounding moves a voltage by at most 0.005 mV
    assert back[3] == np.float32(12.35) and back[0] == np.float32(-70.0)
    with pytest.raises(ValueError, match="outside -327.68..327.67 mV"):
        shards.quantize_mV(np.array([0.0, 400.0]), "trial 3: soma_1ms")


def test_voltages_are_stored_compactly_and_read_back_within_0_005_mV(v2):
    ds = nd.data.open_dataset(v2)
    assert ds.manifest["format_version"] == shards.FORMAT_VERSION == 2
    with h5py.File(v2 / "shard_00000.h5", "r") as f:
        dset = f["soma_1ms"]
        assert dset.dtype == np.dtype("<i2") and dset.compression == "gzip" and dset.shuffle
        assert dset.chunks == (1, KW["duration_ms"]) and dset.attrs["step_mV"] == 0.01
    # the stored trace is the simulation rounded to 0.01 mV (the I&F is deterministic: simulate again)
    params = nd.cells.iaf.IAFParams()
    for i in (0, 5, 8):
        truth = nd.cells.iaf.simulate(ds.inputs(i), params).v_mV[0]
        got = ds.output("soma_1ms", i)
        assert got.dtype == np.float32 and got.shape == truth.shape
        assert np.max(np.abs(got - truth)) <= 0.005 + 1e-5
        assert np.array_equal(ds.trial(i).soma_1ms, got)


def test_reencoding_a_format_2_dataset_gives_the_same_bytes(v2, tmp_path):
    out = nd.data.reencode_dataset(v2, tmp_path / "again", progress=False)
    for p in sorted(v2.glob("shard_*.h5")):
        assert file_sha256(out / p.name) == file_sha256(p), p.name
    assert (out / "manifest.json").read_bytes() == (v2 / "manifest.json").read_bytes()
    last = json.loads((out / "provenance.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "reencode" and last["from_format"] == 2


def _as_format_1(src, dst):
    """The same dataset written the way format 1 did: float32 voltages, no filters, hashes over float32."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for entry in manifest["shards"]:
        path = dst / entry["name"]
        with h5py.File(src / entry["name"], "r") as f_in, h5py.File(path, "w", libver=shards.H5_LIBVER) as f:
            for key in sorted(f_in.attrs):
                f.attrs[key] = f_in.attrs[key]
            f.attrs["format_version"] = 1
            offsets = f_in["spike_offsets"][()]
            hashes = []
            for j in range(f_in["trial_index"].shape[0]):
                stored = {"soma_1ms": shards.dequantize_mV(f_in["soma_1ms"][j]),
                          "spike_times_ms": f_in["spike_times_ms"][offsets[j]:offsets[j + 1]]}
                hashes.append(shards.trial_output_sha256(stored).encode())
            for name in ("trial_index", "input_seed", "input_sha256", "spike_times_ms", "spike_offsets"):
                f.create_dataset(name, data=f_in[name][()], track_times=False)
            f.create_dataset("output_sha256", data=np.asarray(hashes, "S64"), track_times=False)
            f.create_dataset("soma_1ms", data=shards.dequantize_mV(f_in["soma_1ms"][()]), track_times=False)
        entry.update(sha256=file_sha256(path), size_bytes=path.stat().st_size)
    manifest["format_version"] = 1
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def test_format_1_is_read_and_reencoded_into_what_generation_writes(v2, tmp_path):
    v1 = _as_format_1(v2, tmp_path / "v1")
    old, new = nd.data.open_dataset(v1), nd.data.open_dataset(v2)
    assert old.manifest["format_version"] == 1
    with h5py.File(v1 / "shard_00000.h5", "r") as f:
        assert f["soma_1ms"].dtype == np.float32
    for i in range(len(old)):
        assert np.array_equal(old.output("soma_1ms", i), new.output("soma_1ms", i))
    assert old.verify(inputs=True)["trials"] == KW["n_trials"]
    out = nd.data.reencode_dataset(v1, tmp_path / "v2again", progress=False)
    for p in sorted(v2.glob("shard_*.h5")):
        assert file_sha256(out / p.name) == file_sha256(p), p.name
    # generation will not resume a format-1 directory in format 2: it says how to re-encode
    with pytest.raises(ValueError, match="format 1.*neurodepth reencode"):
        nd.data.generate_dataset(v1, **KW)


def test_reencoding_refuses_damaged_data(v2, tmp_path):
    copy = tmp_path / "damaged"
    shutil.copytree(v2, copy)
    with h5py.File(copy / "shard_00001.h5", "r+") as f:
        f["soma_1ms"][0, 10] = f["soma_1ms"][0, 10] + 1
    with pytest.raises(nd.data.IntegrityError, match="shard_00001.h5"):
        nd.data.reencode_dataset(copy, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="must differ"):
        nd.data.reencode_dataset(v2, v2, progress=False)


def test_reencode_from_the_command_line(v2, tmp_path, capsys):
    from neurodepth_lib import cli

    v1 = _as_format_1(v2, tmp_path / "v1")
    assert cli.main(["reencode", str(v1), "--out", str(tmp_path / "new"), "--no-progress"]) == 0
    assert "9 trials" in capsys.readouterr().out
    assert file_sha256(tmp_path / "new" / "shard_00002.h5") == file_sha256(v2 / "shard_00002.h5")
    assert cli.main(["reencode", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
