"""The project's own files must agree on what gets installed."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import neurodepth_lib as nd

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
CONSTRAINTS = ROOT / "constraints.txt"


def names(reqs) -> set:
    return {canonicalize_name(Requirement(r).name) for r in reqs}


def extra_requirements(extra: str) -> list[str]:
    """An extra's requirements, with ``neurodepth[a,b]`` (an extra naming others) expanded."""
    out = []
    for req in EXTRAS[extra]:
        m = re.fullmatch(r"neurodepth\[([\w,\s-]+)\]", req)
        out += [r for e in m.group(1).split(",") for r in extra_requirements(e.strip())] if m else [req]
    return out


def locked() -> dict[str, str]:
    """constraints.txt: distribution name -> exact version."""
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            out[canonicalize_name(name)] = version.strip()
    return out


def test_pyproject_gives_ranges_and_constraints_pin_every_requirement_inside_them():
    every = PROJECT["dependencies"] + [r for e in EXTRAS if e != "all" for r in extra_requirements(e)]
    pins = locked()
    for text in every:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name} (run make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {req}"
    exact = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"] if "==" in r}
    assert exact == {"neuron"}  # only NEURON is pinned (our mechanisms); torch is a range a user's build may meet
    torch = next(Requirement(r) for r in PROJECT["dependencies"] if r.startswith("torch"))
    assert str(torch.specifier).startswith(">=") and torch.specifier.contains(pins["torch"])


def test_conda_and_binder_install_the_package_with_the_constraints_and_list_nothing_twice():
    conda = (ROOT / "environment.yml").read_text()
    assert "- -c constraints.txt" in conda and "- -e .[all]" in conda
    binder_env = (ROOT / "binder" / "environment.yml").read_text()
    post = (ROOT / "binder" / "postBuild").read_text()
    for text in (conda, binder_env):  # no package of pyproject.toml written again with a version
        assert not re.search(r"^\s*- (torch|neuron|numpy|jupyterlab)\b", text, re.MULTILINE), text
    # Binder has no GPU: torch's CPU build from PyTorch's index, pinned by the constraints, before the package
    torch_line, package_line = (line for line in post.splitlines() if line.startswith("python -m pip install"))
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_line and torch_line.endswith(" torch")
    assert "-c constraints.txt" in torch_line and "-c constraints.txt" in package_line
    assert '-e ".[dask,notebooks,lab]"' in package_line and "ensure_mechanisms" in post


def test_extras_are_roles_and_make_setup_installs_them_all_with_the_constraints():
    every = {r for extra in EXTRAS for r in extra_requirements(extra) if extra != "all"}
    assert set(extra_requirements("all")) == every  # `all` is every role
    assert not names(every) & names(PROJECT["dependencies"])  # a package has one role
    setup = re.search(r"^\$\(VENV\)/.installed:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.MULTILINE | re.DOTALL).group(0)
    assert "constraints.txt" in setup.splitlines()[0]  # a new lock reinstalls
    assert 'pip install -c constraints.txt -e ".[all]"' in setup  # make run needs notebooks (and dask), make test the rest


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


def _sync(*args, root=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "sync_notebooks.py"), "--root", str(root), *args],
                          capture_output=True, text=True, check=False)


def test_every_notebook_badge_and_install_cell_comes_from_pyproject():
    out = _sync("--check")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_notebook_that_disagrees_with_pyproject_is_named_and_fixed(tmp_path):
    for rel in ("pyproject.toml", "neurodepth_lib/__init__.py", "README.md", "notebooks/00_welcome.ipynb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((ROOT / rel).read_text())
    notebook = tmp_path / "notebooks" / "00_welcome.ipynb"
    tag = f"v{nd.__version__}"
    notebook.write_text(notebook.read_text().replace(f"@{tag}", "").replace(f"/{tag}/", "/main/"))
    out = _sync("--check", root=tmp_path)
    assert out.returncode == 1
    assert "notebooks/00_welcome.ipynb: badges differ" in out.stdout and "install cell differ" in out.stdout
    assert _sync(root=tmp_path).returncode == 0 and _sync("--check", root=tmp_path).returncode == 0
    assert notebook.read_text() == (ROOT / "notebooks" / "00_welcome.ipynb").read_text()
    assert f"git+https://github.com/neurodepth/neurodepth@{tag}" in notebook.read_text()


def test_an_expanded_solution_cell_is_named_and_collapsed_again(tmp_path):
    for rel in ("pyproject.toml", "neurodepth_lib/__init__.py", "README.md", "notebooks/00_welcome.ipynb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((ROOT / rel).read_text())
    notebook = tmp_path / "notebooks" / "00_welcome.ipynb"
    committed = notebook.read_text()
    assert '"source_hidden": true' in committed
    notebook.write_text(committed.replace('"source_hidden": true', '"source_hidden": false'))
    out = _sync("--check", root=tmp_path)
    assert out.returncode == 1 and "00_welcome.ipynb: solution cells are not collapsed" in out.stdout
    assert _sync(root=tmp_path).returncode == 0 and notebook.read_text() == committed


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci


def test_command_line_entry_point_is_installed():
    out = subprocess.run([sys.executable, "-m", "neurodepth_lib.cli", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "generate" in out.stdout and "notebooks" in out.stdout
