#!/usr/bin/env python3
"""Build the student versions of the chapters: every exercise keeps its stub, every solution cell is replaced
by a one-line pointer to the full chapter (the Neuromatch way: stub and solution come from one source, the
committed notebook, and the student version is derived from it, never edited by hand).

    python tools/student_notebooks.py                     # into build/student_notebooks/
    python tools/student_notebooks.py --out handout/      # anywhere else

A student version runs top to bottom like the full chapter: no cell after a solution uses a name that only a
solution defines (checked here, and by tests/test_notebooks.py). Needs no installed package.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_notebooks import ROOT, _lines, project  # noqa: E402  (a sibling script, not a package)

DEFAULT_OUT = ROOT / "build" / "student_notebooks"


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _defined_and_used(source: str) -> tuple[set[str], set[str]]:
    """Names a cell binds at its top level (assignments, defs, imports) and names it reads anywhere."""
    tree = ast.parse(source)
    defined, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else used).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return defined, used


def solution_only_names_used_later(nb: dict) -> dict[int, set[str]]:
    """{cell index: names it reads that only solution cells define}: what would break in a student version."""
    solution_names, other_names, broken = set(), set(), {}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        # IPython's magics and shell lines are not Python: read each as a `pass` at its indentation
        source = re.sub(r"^(\s*)[%!].*$", r"\1pass", "".join(cell["source"]), flags=re.M)
        defined, used = _defined_and_used(source)
        if "solution" in _tags(cell):
            solution_names |= defined
            continue
        missing = (used - defined) & (solution_names - other_names)
        if missing:
            broken[i] = missing
        other_names |= defined
    return broken


def student_version(nb: dict, notebook_name: str, owner_name: str, tag: str) -> dict:
    """The notebook with each solution cell replaced by a Markdown pointer to the full chapter."""
    url = f"https://github.com/{owner_name}/blob/{tag}/notebooks/{notebook_name}"
    student = copy.deepcopy(nb)
    cells, n = [], 0
    for cell in student["cells"]:
        if "solution" in _tags(cell):
            n += 1
            cells.append({"cell_type": "markdown", "id": cell.get("id", f"solution-{n}") + "-pointer",
                          "metadata": {"tags": ["solution-pointer"]},
                          "source": _lines(f"*The solution is in the full chapter, [{notebook_name}]({url}), in a "
                                           "collapsed cell under this exercise's stub.*")})
        else:
            cells.append(cell)
    student["cells"] = cells
    return student


def build(out: Path, root: Path = ROOT) -> list[Path]:
    """Write one student version per chapter into ``out``; return their paths. Raises ``SystemExit`` naming the
    chapter and cell when removing a solution would break a later cell."""
    owner_name, _, tag = project(root)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        broken = solution_only_names_used_later(nb)
        if broken:
            where = "; ".join(f"cell {i} reads {sorted(names)}" for i, names in broken.items())
            raise SystemExit(f"{path.name}: without its solutions the chapter would break ({where}): define those "
                             "names outside the solution cells")
        target = out / path.name
        tmp = target.with_suffix(".ipynb.tmp")
        tmp.write_text(json.dumps(student_version(nb, path.name, owner_name, tag), indent=1, sort_keys=True,
                                  ensure_ascii=False) + "\n")
        tmp.replace(target)
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder to write (default: {DEFAULT_OUT})")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    args = parser.parse_args(argv)
    written = build(args.out.resolve(), args.root.resolve())
    print(f"{len(written)} student notebooks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
