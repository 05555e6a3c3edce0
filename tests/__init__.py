"""Tests, laid out like the package: tests/<folder>/ tests neurodepth_lib/<folder>/ (see CONTRIBUTING.md)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path: str):
    """A repository script that is not part of the package (tools/, benchmarks/, data/lab/), imported as a module
    from its path relative to the repository root, so that its functions can be tested directly."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
