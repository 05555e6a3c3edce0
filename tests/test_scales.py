"""The scale contract (neurodepth_lib/scales.py): quick / lab / paper and their precedence."""
import pytest

from neurodepth_lib.scales import by_scale, resolve_scale


def test_scale_precedence(monkeypatch):
    monkeypatch.delenv("NEURODEPTH_SCALE", raising=False)
    assert resolve_scale("lab") == "lab"           # the parameters cell's literal
    assert resolve_scale(None) == "lab"            # nothing given: the default
    monkeypatch.setenv("NEURODEPTH_SCALE", "quick")
    assert resolve_scale("lab") == "quick"         # the environment beats the literal
    assert resolve_scale("paper") == "paper"       # papermill's -p beats the environment
    assert resolve_scale(" QUICK ") == "quick"


def test_unknown_scale_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        resolve_scale("huge")
    monkeypatch.setenv("NEURODEPTH_SCALE", "fast")
    with pytest.raises(ValueError, match="NEURODEPTH_SCALE"):
        resolve_scale("lab")
    with pytest.raises(ValueError):
        by_scale("tiny", quick=1, lab=2, paper=3)
    assert by_scale("paper", quick=1, lab=2, paper=3) == 3
