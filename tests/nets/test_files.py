"""Model files that are not ours are refused, saying so, without ever suggesting ``weights_only=False``; a card
asking for absurd sizes is refused before anything is allocated."""
import hashlib
import json
import pickle

import pytest
import torch

import neurodepth_lib as nd


class Evil:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.fixture
def model(tmp_path):
    net = nd.nets.TCN(nd.nets.make_architecture("tiny", n_inputs=10))
    nd.nets.save_model(tmp_path / "m", net)
    return tmp_path / "m"


def _replace_weights(prefix, data: bytes):
    prefix.with_name("m.pt").write_bytes(data)
    card = json.loads(prefix.with_name("m.json").read_text())
    card["weights_sha256"] = hashlib.sha256(data).hexdigest()  # a card made to match: the sha256 is no defence
    prefix.with_name("m.json").write_text(json.dumps(card))


@pytest.mark.parametrize("payload", ["pickle", "torch_object", "garbage", "not_a_dict"])
def test_a_foreign_or_malicious_weights_file_is_refused_plainly(model, payload, capsys):
    import io
    buf = io.BytesIO()
    if payload == "pickle":
        buf.write(pickle.dumps(Evil()))
    elif payload == "torch_object":
        torch.save({"w": Evil()}, buf)
    elif payload == "garbage":
        buf.write(b"\x00" * 100)
    else:
        torch.save([torch.zeros(2)], buf)
    _replace_weights(model, buf.getvalue())
    with pytest.raises(ValueError, match="is not a neurodepth weights file") as err:
        nd.nets.load_model(model)
    assert "weights_only=False" not in str(err.value) and err.value.__cause__ is None
    assert "this ran" not in capsys.readouterr().out


def test_a_card_asking_for_huge_widths_is_refused_before_allocating(model):
    card = json.loads(model.with_name("m.json").read_text())
    card["config"]["widths"] = [200_000, 200_000]
    model.with_name("m.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"do not fit the architecture .* the card asks for \(200000"):
        nd.nets.load_model(model)


def test_a_card_without_an_architecture_is_a_value_error(model):
    card = json.loads(model.with_name("m.json").read_text())
    del card["config"]
    model.with_name("m.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="holds no valid architecture"):
        nd.nets.load_model(model)


def test_our_own_files_still_load(model):
    assert isinstance(nd.nets.load_model(model), nd.nets.TCN)
    shipped = nd.data.assets.data_root() / "lab" / "models" / "l5pc_nmda_tcn"
    if shipped.with_suffix(".pt").exists():
        assert nd.nets.load_model(shipped).config.n_inputs == 1278
