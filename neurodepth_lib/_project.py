"""Where the project lives: its repository (defined once, in ``pyproject.toml``'s ``[project.urls]``), the
tagged release that matches this version, and the one cache folder on this machine.

Everything that points at the repository is derived from here: the asset download URL
(:mod:`neurodepth_lib.data.assets`), the notebooks' badges and Colab install cell (``tools/sync_notebooks.py``).
The URL is read from the installed package's metadata, so a wheel knows it as well as a source checkout.
"""
from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path

import pooch

from . import __version__

__all__ = ["DISTRIBUTION", "VERSION", "CACHE_DIR_ENV", "cache_dir", "checkout_folder", "repository_url",
           "release_tag", "raw_url"]

DISTRIBUTION = "neurodepth"
VERSION = __version__
CACHE_DIR_ENV = "NEURODEPTH_CACHE_DIR"


def cache_dir(*parts: str) -> Path:
    """The one cache folder of the collection (downloaded assets, compiled NEURON mechanisms), or a folder in
    it: ``$NEURODEPTH_CACHE_DIR`` when set, else the OS cache folder (``~/.cache/neurodepth`` on Linux, which
    honours ``$XDG_CACHE_HOME``). Nothing is created here."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    return (Path(env).expanduser() if env else Path(pooch.os_cache(DISTRIBUTION))).joinpath(*parts)


def checkout_folder(name: str) -> Path | None:
    """The folder ``name`` (``"data"``, ``"notebooks"``) of the source checkout this package runs from, or None
    when it runs from an install without one (a wheel ships the library only)."""
    root = Path(__file__).resolve().parent.parent
    folder = root / name
    return folder if (root / "pyproject.toml").is_file() and folder.is_dir() else None


def repository_url() -> str:
    """The ``Repository`` entry of ``[project.urls]``, e.g. ``https://github.com/<owner>/<name>``."""
    try:
        entries = metadata(DISTRIBUTION).get_all("Project-URL") or []
    except PackageNotFoundError:
        raise RuntimeError("the neurodepth distribution is not installed, so its repository URL is unknown: "
                           "install it (pip install -e . in a checkout)") from None
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip().rstrip("/")
    raise RuntimeError("pyproject.toml's [project.urls] has no Repository entry")


def release_tag(version: str = __version__) -> str:
    """The git tag of a release: ``v`` and the version."""
    return f"v{version}"


def raw_url(path: str = "", version: str = __version__) -> str:
    """The URL of a file of the repository at the tagged release (GitHub's raw file server)."""
    repo = repository_url()
    if not repo.startswith("https://github.com/"):
        raise RuntimeError(f"raw files are served for GitHub repositories only, not {repo}")
    owner_name = repo[len("https://github.com/"):]
    return f"https://raw.githubusercontent.com/{owner_name}/{release_tag(version)}/{path.lstrip('/')}"
