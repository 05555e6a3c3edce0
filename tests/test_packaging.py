"""The project's own files must agree on what gets installed."""
import re
import subprocess
import sys
from pathlib import Path

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


def test_conda_and_binder_environments_pin_the_same_packages():
    conda = pip_requirements(ROOT / "environment.yml")
    binder = pip_requirements(ROOT / "binder" / "environment.yml")
    assert pins(conda) == pins(binder) and pins(conda)
    assert sorted(conda) == sorted(binder)


def test_environments_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values()
                                      for d in extra]
    assert pins(deps) == pins(pip_requirements(ROOT / "environment.yml"))
    assert pins(deps) == {"torch": "2.13.0", "neuron": "9.0.2"}
    names = lambda reqs: {re.split(r"[<>=\[]", r)[0].lower() for r in reqs}  # noqa: E731
    assert names(deps) == names(pip_requirements(ROOT / "environment.yml"))


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
