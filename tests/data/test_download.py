"""Lab assets where no checkout holds them: downloaded by pooch from a server (here one on 127.0.0.1), every
file checked against the registry before it is used; offline, a wrong hash and a corrupted download each give
one clear error that names the file and the way out; the registry agrees with the checkout's assets."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import neurodepth_lib as nd
from neurodepth_lib import cli
from tests.local_server import LocalServer

assets = nd.data.assets
CHECKOUT = Path(__file__).resolve().parents[2] / "data"
SMALL = "l5pc_reference"  # 0.7 MB and a README: the smallest asset with a companion file


@pytest.fixture
def mirror(tmp_path):
    """A copy of the small asset's files as the repository serves them (paths relative to data/)."""
    root = tmp_path / "mirror"
    for rel in assets.files_of(SMALL):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CHECKOUT / rel, root / rel)
    return root


@pytest.fixture
def elsewhere(tmp_path, monkeypatch, mirror):
    """A pip install's view: an empty data root, a fresh cache, downloads allowed, the mirror served."""
    server = LocalServer(mirror)
    monkeypatch.setenv(assets.DATA_DIR_ENV, str(tmp_path / "no_checkout"))
    monkeypatch.setenv(assets.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(assets.ASSETS_URL_ENV, server.url)
    monkeypatch.delenv(assets.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(assets, "_USED", {})
    yield server
    server.stop()


def test_the_registry_lists_every_pinned_file_of_the_checkout():
    assert assets.read_registry() == assets.registry_entries(CHECKOUT), \
        "neurodepth_lib/data/registry.txt is stale: run `neurodepth assets registry --write`"
    # every pinned asset can be downloaded, its pinning file first; growing ones cannot
    for name, asset in assets.ASSETS.items():
        files = assets.files_of(name)
        assert bool(files) == (asset.sha256 is not None), name
        if files:
            assert assets.read_registry()[files[0]] == asset.sha256


def test_an_asset_is_downloaded_checked_and_then_read_from_the_cache(elsewhere, tmp_path):
    where = assets.fetch(SMALL, progress=False)
    assert where == tmp_path / "cache" / nd.__version__ / "reference" / "l5pc_reference.npz"
    assert nd._io.file_sha256(where) == assets.ASSETS[SMALL].sha256
    assert (where.parent / "README.md").is_file()
    assert assets.used()[SMALL]["source"] == "downloaded"
    asked = len(elsewhere.requests)
    assert asked == 2
    assert assets.find(SMALL) == where and assets.used()[SMALL]["source"] == "cache"
    assert len(elsewhere.requests) == asked  # nothing asked of the server again


def test_a_dataset_and_a_model_download_whole_and_open(elsewhere, mirror):
    for name in ("model_l5pc_ampa_fcn", "l5pc_ampa_valid"):
        for rel in assets.files_of(name):
            (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CHECKOUT / rel, mirror / rel)
    chosen = assets.choose_dataset("l5pc_ampa_valid", max_trials=3)
    assert chosen.source == "downloaded" and chosen.shipped and chosen.n_trials == 3
    assert len(chosen.dataset) == 25  # every shard came, and open_dataset checked each against the manifest
    model = nd.nets.load_model(assets.find("model_l5pc_ampa_fcn"))  # weights checked against the card
    assert model.card["name"]


def test_offline_fetch_names_the_file_and_the_way_out_and_find_falls_back(elsewhere, capsys):
    elsewhere.stop()
    with pytest.raises(assets.AssetUnavailable) as err:
        assets.fetch(SMALL, progress=False)
    message = str(err.value)
    assert "could not download reference/l5pc_reference.npz" in message and "no connection" in message
    assert assets.ASSETS_URL_ENV in message and assets.DATA_DIR_ENV in message
    assert assets.find(SMALL) is None  # a notebook falls back ...
    assert "note: could not download" in capsys.readouterr().err  # ... and says why in one line
    assert not any(assets.cache_root().rglob("*.npz"))


def test_offline_mode_downloads_nothing(elsewhere, monkeypatch):
    monkeypatch.setenv(assets.OFFLINE_ENV, "1")
    with pytest.raises(assets.AssetUnavailable, match=f"{assets.OFFLINE_ENV} forbids downloads"):
        assets.fetch(SMALL, progress=False)
    assert elsewhere.requests == []


def test_a_file_that_differs_from_its_hash_is_never_used(elsewhere, mirror):
    served = mirror / "reference" / "l5pc_reference.npz"
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF  # corrupted in transit, or another file on the server
    served.write_bytes(bytes(data))
    with pytest.raises(assets.AssetChecksumError, match="reference/l5pc_reference.npz .* does not match its sha256"):
        assets.fetch(SMALL, progress=False)
    cached = assets.cache_root() / "reference"
    assert not (cached / "l5pc_reference.npz").exists()  # not moved into place ...
    assert list(cached.iterdir()) == []  # ... and no temporary file left behind (the pinned file comes first)


def test_a_wrong_hash_in_the_registry_is_a_clear_error(elsewhere, monkeypatch):
    registry = assets.read_registry()
    registry["reference/README.md"] = "0" * 64
    monkeypatch.setattr(assets, "read_registry", lambda: registry)
    with pytest.raises(assets.AssetChecksumError, match="reference/README.md"):
        assets.fetch(SMALL, progress=False)


def test_a_damaged_cached_file_is_downloaded_again(elsewhere):
    where = assets.fetch(SMALL, progress=False)
    where.write_bytes(b"damaged")
    assert assets.fetch(SMALL, progress=False) == where
    assert nd._io.file_sha256(where) == assets.ASSETS[SMALL].sha256
    assert assets.used()[SMALL]["source"] == "downloaded"


def test_the_command_fetches_and_reports_errors_in_one_line(elsewhere, capsys, monkeypatch):
    assert cli.main(["assets", "fetch", SMALL, "--no-progress"]) == 0
    assert "downloaded" in capsys.readouterr().out
    elsewhere.stop()
    assert cli.main(["assets", "fetch", "model_l5pc_ampa_tcn", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("neurodepth assets: error: could not download lab/models/l5pc_ampa_tcn.json")
    # a dataset still being generated is not pinned, so not downloadable
    monkeypatch.setitem(assets.ASSETS, "toy_growing", assets.Asset("dataset", "lab/toy_growing", None, "toy"))
    assert cli.main(["assets", "fetch", "toy_growing"]) == 2
    assert "cannot be downloaded" in capsys.readouterr().err
