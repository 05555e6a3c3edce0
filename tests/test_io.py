"""Shared helpers (neurodepth_lib/_io.py): atomic writes."""
import pytest

import neurodepth_lib as nd


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "a.json"
    nd._io.atomic_write_text(target, "old")

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        nd._io.atomic_write_text(target, Boom())  # write() refuses a non-string
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
