"""The scale contract: one word, ``quick``, ``lab`` or ``paper``, sizes every notebook and command.

- ``quick``: CI and nbval; seconds per notebook, every code path on tiny sizes.
- ``lab``: the default; minutes per notebook on 2 cores, real results.
- ``paper``: the study's own sizes; hours, a cluster or a GPU.

Precedence (DESIGN.md section 4): a papermill ``-p SCALE ...`` beats the environment variable
``NEURODEPTH_SCALE``, which beats the literal in the notebook's parameters cell. Papermill injects its
value as a plain assignment after the parameters cell, so the only way a notebook can tell an override
from the literal is that it differs from the notebook's default: :func:`resolve_scale` treats a value
that differs from ``default`` as explicit. (Passing ``-p SCALE lab`` while ``NEURODEPTH_SCALE`` is set
therefore yields the environment's value.)
"""
from __future__ import annotations

import os
from typing import TypeVar

SCALES = ("quick", "lab", "paper")
DEFAULT_SCALE = "lab"
ENV_VAR = "NEURODEPTH_SCALE"

T = TypeVar("T")


def check_scale(scale: str) -> str:
    """Return ``scale`` normalised to lower case, or raise ``ValueError`` naming the valid choices."""
    if not isinstance(scale, str) or scale.strip().lower() not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    return scale.strip().lower()


def resolve_scale(value: str | None = None, default: str = DEFAULT_SCALE) -> str:
    """Resolve the scale a notebook or command should run at.

    ``value`` is what the notebook's parameters cell (possibly overridden by papermill) holds, or what a
    command-line flag says (``None`` when not given). A value different from ``default`` is explicit and
    wins; otherwise ``$NEURODEPTH_SCALE`` wins when set; otherwise the default.
    """
    default = check_scale(default)
    if value is not None:
        value = check_scale(value)
        if value != default:
            return value
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        try:
            return check_scale(env)
        except ValueError as err:
            raise ValueError(f"environment variable {ENV_VAR}={env!r}: {err}") from None
    return value if value is not None else default


def by_scale(scale: str, *, quick: T, lab: T, paper: T) -> T:
    """Pick the value for ``scale``: ``by_scale(s, quick=2, lab=200, paper=12000)``."""
    return {"quick": quick, "lab": lab, "paper": paper}[check_scale(scale)]
