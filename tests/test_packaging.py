"""The project's own files must agree on what gets installed."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def pip_requirements(env_file: Path) -> list[str]:
    lines = env_file.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = []
    for line in lines[start + 1:]:
        m = re.match(r"^\s{6}- (\S+)", line)
        if not m:
            break
        reqs.append(m.group(1))
    return reqs


def pins(reqs) -> dict:
    return dict(r.split("==") for r in reqs if "==" in r)


def names(reqs) -> set:
    return {re.split(r"[<>=\[;\s]", r)[0].lower() for r in reqs}


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def extra_requirements(extra: str) -> list[str]:
    """An extra's requirements, with ``neurodepth[a,b]`` (an extra naming others) expanded."""
    out = []
    for req in EXTRAS[extra]:
        m = re.fullmatch(r"neurodepth\[([\w,\s-]+)\]", req)
        out += [r for e in m.group(1).split(",") for r in extra_requirements(e.strip())] if m else [req]
    return out


def declared_extras(env_file: Path) -> list[str]:
    """The extras an environment file says it holds (its ``# extras: a, b`` line)."""
    line = next(line for line in env_file.read_text().splitlines() if line.startswith("# extras:"))
    return [e.strip() for e in line.split(":", 1)[1].split(",") if e.strip()]


ENV_FILES = [ROOT / "environment.yml", ROOT / "binder" / "environment.yml"]


def test_conda_and_binder_environments_pin_the_same_packages():
    conda, binder = (pip_requirements(f) for f in ENV_FILES)
    assert pins(conda) == pins(binder) == {"torch": "2.13.0", "neuron": "9.0.2"}
    assert set(binder) <= set(conda)


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_environments_hold_the_dependencies_and_the_extras_they_name(env_file):
    extras = declared_extras(env_file)
    assert extras and set(extras) <= set(EXTRAS)
    expected = PROJECT["dependencies"] + [r for e in extras for r in extra_requirements(e)]
    assert sorted(pip_requirements(env_file)) == sorted(expected)
    assert pins(PROJECT["dependencies"]) == {"torch": "2.13.0", "neuron": "9.0.2"}


def test_extras_are_roles_and_make_setup_installs_them_all():
    every = {r for extra in EXTRAS for r in extra_requirements(extra) if extra != "all"}
    assert set(extra_requirements("all")) == every  # `all` is every role
    assert not names(every) & names(PROJECT["dependencies"])  # a package has one role
    setup = re.search(r"^\$\(VENV\)/.installed:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.MULTILINE | re.DOTALL).group(0)
    assert 'pip install -e ".[all]"' in setup  # make run needs notebooks (and dask), make test the rest


# what each extra's distributions are imported as (the rest: the distribution's name)
MODULES = {"dask": ["dask", "distributed"], "scikit-learn": ["sklearn"], "import-linter": ["importlinter"],
           "jupyterlab": ["jupyterlab", "jupyter_server"]}


def test_every_module_imports_without_the_extras():
    hidden = sorted({m for extra in EXTRAS for name in names(extra_requirements(extra))
                     for m in MODULES.get(name, [name.replace("-", "_")])})
    code = f"""
import importlib, pkgutil, sys
for name in {hidden!r}:
    sys.modules[name] = None  # import fails as if not installed
import neurodepth_lib
modules = sorted(m.name for m in pkgutil.walk_packages(neurodepth_lib.__path__, "neurodepth_lib."))
for name in modules:
    importlib.import_module(name)
print(len(modules), "modules")
from neurodepth_lib import _parallel
try:
    _parallel.dask_client("tcp://127.0.0.1:1")
except ImportError as err:
    assert 'pip install "neurodepth[dask]"' in str(err), err
else:
    raise AssertionError("no ImportError without dask")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "modules" in out.stdout


def test_binder_post_build_installs_the_package():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post and "ensure_mechanisms" in post


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci


def test_command_line_entry_point_is_installed():
    out = subprocess.run([sys.executable, "-m", "neurodepth_lib.cli", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "generate" in out.stdout and "notebooks" in out.stdout
