"""Notebook plumbing: set-up, visible self-checks, receipts, and headless batch runs.

Every notebook starts with::

    ctx = nd.nb.setup("01_integrate_and_fire", scale=SCALE, seed=SEED)

which resolves the scale (:mod:`neurodepth_lib.scales`), seeds ``random``, numpy and torch, sets the
thread count, and prints the versions that matter. Results a test should check are written with
``ctx.write_receipt(...)``: a small JSON named ``<notebook>.receipt.json`` in ``$NEURODEPTH_RECEIPT_DIR``
or, when that is unset, the kernel's working directory (papermill runs put it beside the executed notebook).

Sizes a user may override are literals in the parameters cell (``None``: the scale's default) resolved by
``ctx.sizes(...)`` from the one table, :data:`neurodepth_lib.scales.NOTEBOOK_SIZES`. Files a notebook makes go
to ``ctx.work_dir()``: ``neurodepth_work/<notebook>/<scale>_seed<seed>`` beside it (or under ``$NEURODEPTH_WORK``).

A number a notebook computes is never typed into its prose: tables and verdicts that quote results are
rendered from them with :func:`fmt`, :func:`markdown_table` and :func:`show_markdown`.
"""
from __future__ import annotations

import json
import os
import platform
import random
import shutil
import sys
import time
from collections import namedtuple
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import matplotlib as mpl
import numpy as np
import torch
from IPython import get_ipython
from IPython.display import Markdown, display

from . import __version__, _project
from ._io import Timer, atomic_write_text
from .data import assets
from .scales import by_scale, check_scale, resolve_scale, resolve_sizes

RECEIPT_DIR_ENV = "NEURODEPTH_RECEIPT_DIR"
RECEIPT_SUFFIX = ".receipt.json"
WORK_DIR_ENV = "NEURODEPTH_WORK"
WORK_DIR_NAME = "neurodepth_work"


def versions() -> dict:
    """Versions of Python and of the libraries the collection uses (``None`` when not installed)."""
    out = {"neurodepth": __version__, "python": platform.python_version()}
    # read from the installed metadata: importing NEURON or torch just for a version would be slow
    for dist in ("numpy", "torch", "neuron", "matplotlib", "h5py", "dask", "scikit-learn"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def hardware() -> dict:
    """CPU cores and GPU (if torch sees one)."""
    info = {"cpu_cores": os.cpu_count(), "gpu": None}
    try:
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    return info


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def receipt_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    directory = directory or os.environ.get(RECEIPT_DIR_ENV) or os.getcwd()
    return Path(directory) / f"{name}{RECEIPT_SUFFIX}"


@dataclass
class NotebookContext:
    """What :func:`setup` resolved; ``ctx.by_scale(quick=..., lab=..., paper=...)`` picks sizes."""

    name: str
    scale: str
    seed: int
    rng: np.random.Generator
    timer: Timer = field(default_factory=lambda: Timer().start(), repr=False)
    checks: list = field(default_factory=list)
    resolved_sizes: dict = field(default_factory=dict)   # what :meth:`sizes` resolved, for the receipt
    recorded: dict = field(default_factory=dict)         # what :meth:`record` kept, for the receipt

    def by_scale(self, *, quick, lab, paper):
        return by_scale(self.scale, quick=quick, lab=lab, paper=paper)

    def sizes(self, **knobs):
        """Resolve the parameters cell's size knobs (``None``: the scale's default from
        :data:`neurodepth_lib.scales.NOTEBOOK_SIZES`), print them as a table, record them for the receipt, and
        return them in the order given::

            N_TRAIN, N_STEPS = ctx.sizes(N_TRAIN=N_TRAIN, N_STEPS=N_STEPS)
        """
        resolved = resolve_sizes(self.name, self.scale, **knobs)
        self.resolved_sizes = {k: v for k, (v, _) in resolved.items()}
        print(f"sizes at scale {self.scale!r} (a knob left None in the parameters cell takes the scale's default):")
        w_name = max(len(name) for name in resolved)
        w_value = max(len(str(value)) for value, _ in resolved.values())
        for name, (value, how) in resolved.items():
            print(f"  {name:<{w_name}}  {value!s:<{w_value}}  {how}")
        return namedtuple("Sizes", list(resolved))(*self.resolved_sizes.values())

    def work_dir(self, fresh: bool | None = None) -> Path:
        """This notebook's work folder (see :func:`work_dir`); quick runs start it empty unless ``fresh=False``."""
        return work_dir(self.name, self.scale, self.seed, fresh=self.scale == "quick" if fresh is None else fresh)

    @property
    def elapsed_s(self) -> float:
        """Wall time since :func:`setup`."""
        return self.timer.elapsed_s

    @property
    def cpu_s(self) -> float:
        """CPU time since :func:`setup`: this kernel's threads and its finished child processes (a
        generation or sweep pool counts once its workers have exited)."""
        return self.timer.elapsed_cpu_s

    def check(self, description: str, condition: bool, detail: str = "") -> CheckResult:
        """A visible self-check (see :func:`check`), also recorded in the receipt."""
        ok = check(description, condition, detail)
        self.checks.append({"check": description, "passed": ok.passed})
        return ok

    def record(self, **numbers) -> None:
        """Keep numbers for the receipt where they are computed, e.g. in an exercise's solution cell (a student
        version of the chapter, which has no solutions, then writes its receipt without them)."""
        self.recorded.update(numbers)

    def write_receipt(self, directory: str | os.PathLike | None = None, **numbers) -> Path:
        """Write the numbers a test should check (those :meth:`record` kept, then ``numbers``), plus scale, seed,
        versions, wall and CPU time, and the lab assets the notebook used with where each came from
        (:func:`neurodepth_lib.data.assets.used`)."""
        results = {**self.recorded, **numbers}
        receipt = {"notebook": self.name, "scale": self.scale, "seed": self.seed,
                   "elapsed_s": round(self.elapsed_s, 2), "cpu_s": round(self.cpu_s, 2),
                   "cores": os.cpu_count(), "versions": versions(),
                   "checks": self.checks, "sizes": _jsonable(self.resolved_sizes), "results": _jsonable(results),
                   "assets": assets.used()}
        path = atomic_write_text(receipt_path(self.name, directory), json.dumps(receipt, indent=2) + "\n")
        print(f"receipt written: {path.name}")
        return ReceiptPath(path)


def work_dir(name: str, scale: str, seed: int = 0, fresh: bool = False,
             root: str | os.PathLike | None = None, create: bool = True) -> Path:
    """The one place a notebook writes its work files (data, models, sweeps): created (unless ``create`` is
    false, to look for another notebook's results) and returned.

    ``<root>/<name>/<scale>_seed<seed>``, where ``root`` is ``$NEURODEPTH_WORK`` or, when that is unset,
    ``neurodepth_work`` in the kernel's working directory (beside the notebook; git ignores it). A second
    run finds its files there and resumes; ``fresh=True`` empties the folder first (quick runs, which are
    tests, start from nothing).
    """
    root = Path(root or os.environ.get(WORK_DIR_ENV) or WORK_DIR_NAME)
    path = root / name / f"{check_scale(scale)}_seed{int(seed)}"
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup(name: str, scale: str | None = None, seed: int = 0, threads: int | None = None,
          quiet: bool = False) -> NotebookContext:
    """Prepare a notebook: resolve the scale, seed every generator, set threads, print versions.

    Parameters
    ----------
    name : the notebook's file name without extension (names its receipt).
    scale : the parameters cell's ``SCALE`` (see :func:`neurodepth_lib.scales.resolve_scale`).
    seed : seeds ``random``, numpy and torch; ``ctx.rng`` is a fresh ``numpy.random.Generator(seed)``.
    threads : torch intra-op threads (default: all cores).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    resolved = resolve_scale(scale)
    seed_everything(int(seed))
    torch.set_num_threads(int(threads or os.cpu_count() or 1))
    mpl.rcParams.update({"figure.dpi": 100, "axes.spines.top": False, "axes.spines.right": False,
                         "figure.figsize": (8, 3.2)})
    ctx = NotebookContext(name=name, scale=resolved, seed=int(seed), rng=np.random.default_rng(int(seed)))
    if not quiet:
        v, hw = versions(), hardware()
        libs = ", ".join(f"{k} {v[k]}" for k in ("numpy", "torch", "neuron") if v.get(k))
        print(f"neurodepth {v['neurodepth']} | notebook {name} | scale {resolved!r} | seed {seed}")
        print(f"Python {v['python']} | {libs} | {hw['cpu_cores']} CPU cores | GPU: {hw['gpu'] or 'none'}")
    return ctx


class CheckResult:
    """Whether a self-check passed: true when it did. As a cell's last value it shows nothing (the check has
    printed its line already), so a cell ending in a check does not echo ``True`` under it."""

    __slots__ = ("passed",)

    def __init__(self, passed: bool):
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        pass


class ReceiptPath(type(Path())):
    """The path of a written receipt; as a cell's last value it shows nothing (the cell printed where it went)."""

    def _ipython_display_(self) -> None:
        pass


def check(description: str, condition: bool, detail: str = "") -> CheckResult:
    """Print a visible pass/fail line for a student's self-check and return whether it passed."""
    ok = bool(condition)
    mark = "PASS" if ok else "CHECK FAILED"
    print(f"[{mark}] {description}" + (f"  ({detail})" if detail else ""))
    return CheckResult(ok)


# ----------------------------------------------------------------------------------------------------
# Prose rendered from results: a number the notebook computes is never typed into its Markdown
# ----------------------------------------------------------------------------------------------------

# Why our Hay-cell results differ from the paper's: the one explanation chapters 04, 05 and 06 give (verbatim;
# tests/test_nb.py checks that each of them carries it), with what the data-scaling study measured.
PAPER_GAP_EXPLANATION = (
    "Our Hay-cell training sets are far smaller than the paper's (at most 3.33 simulated hours, against tens to "
    "hundreds of hours) and our networks are far smaller and trained far shorter. Chapter 06's data-scaling study "
    "(section 6) measured what more data does: up to 1.33 simulated hours of NMDA data, two layers came within "
    "0.005 AUC of the best network, but at 3.33 hours, all of our NMDA data (and twice the training steps), four "
    "layers were needed, depths 4 and 7 pulling away from depths 1-3; the AMPA cell needed two layers up to "
    "1.67 hours, all of its data. So part of the gap to the paper is our budget, and the NMDA cell's answer was "
    "still moving at our largest size.")


def fmt(value, spec: str = ".4g", missing: str = "n/a") -> str:
    """``format(value, spec)``, with ``missing`` for ``None`` and NaN (a result a run did not produce)."""
    if value is None:
        return missing
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return missing
    return format(value, spec)


def markdown_table(rows, columns, formats=None, header=None, bold=None) -> str:
    """A Markdown table of ``rows`` (dicts, or sequences in ``columns`` order).

    ``formats`` maps a column to a format spec or a function of the value (default: :func:`fmt`'s);
    ``header`` maps a column to the title shown; ``bold`` is a function of a row that says whether to bold it.
    """
    columns = list(columns)
    if not columns:
        raise ValueError("markdown_table needs at least one column")
    formats, header = formats or {}, header or {}

    def cell(row, col, i):
        value = row[col] if isinstance(row, dict) else row[i]
        spec = formats.get(col)
        text = spec(value) if callable(spec) else (fmt(value, spec) if spec else
                                                   (value if isinstance(value, str) else fmt(value)))
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(str(header.get(c, c)) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = [cell(row, c, i) for i, c in enumerate(columns)]
        if bold is not None and bold(row):
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def depth_reports_markdown(reports: dict, digits: int = 4) -> str:
    """A Markdown table of depth reports side by side (``{condition: DepthReport}``, from
    :func:`neurodepth_lib.studies.depth_report`): per depth, each condition's mean ± s.e. over seeds, the best
    depth in bold, the depth needed marked with a dagger."""
    if not reports:
        raise ValueError("depth_reports_markdown needs at least one report")
    depths = sorted({d for rep in reports.values() for d in rep.depths})
    rows = []
    for d in depths:
        row = {"depth": d}
        for condition, rep in reports.items():
            if d not in rep.depths:
                row[condition] = ""
                continue
            i = rep.depths.index(d)
            text = f"{fmt(rep.mean[i], f'.{digits}f')} ± {fmt(rep.sem[i], f'.{digits}f')}"
            text = f"**{text}**" if d == rep.best_depth else text
            row[condition] = text + (" †" if d == rep.depth_needed else "")
        rows.append(row)
    header = {c: f"{c} AUC (mean ± s.e.)" for c in reports}
    tolerances = sorted({rep.tolerance for rep in reports.values()})
    note = (f"\n\nBold: the best depth; †: the smallest depth within {', '.join(f'{t:g}' for t in tolerances)} "
            "AUC of the best (the depth needed).")
    return markdown_table(rows, ["depth", *reports], header=header) + note


def show_markdown(text: str) -> None:
    """Display ``text`` as rendered Markdown in a notebook (printed as plain text elsewhere). Returns nothing,
    so that a cell ending in it does not echo the source text under the rendered one."""
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


# ----------------------------------------------------------------------------------------------------
# Exercises: a stub for the student, then a collapsed solution that never overwrites the student's work
# ----------------------------------------------------------------------------------------------------

def is_stub(function) -> bool:
    """True while ``function`` is still an exercise stub: its code raises ``NotImplementedError``.

    The test reads the compiled code (the names it refers to), so it calls nothing and costs nothing. A finished
    answer that still mentions ``NotImplementedError`` somewhere would count as a stub: delete the stub's line.
    """
    code = getattr(function, "__code__", None)
    if code is None:
        raise TypeError(f"expected the exercise's function, got {type(function).__name__}")
    return "NotImplementedError" in code.co_names


def solves(student_function):
    """Decorator for a solution cell: the solution takes the stub's name only while the stub is unfinished.

    Used as ``@nd.nb.solves(predicted_filter_mV)`` above the solution's ``def predicted_filter_mV(...)``: when
    the student's function is still the stub (:func:`is_stub`), the name is bound to the solution, so that the
    checks after it run in a headless run; when the student wrote an answer, the name keeps the student's
    function and the checks test *it* (the solution stays reachable as ``predicted_filter_mV.solution``). One
    line says which of the two the cell uses, so nothing is replaced silently.
    """
    if not callable(student_function):
        raise TypeError(f"@solves needs the exercise's function, got {type(student_function).__name__}; "
                        "run the exercise cell above first")

    def decorate(solution):
        name = student_function.__name__
        if solution.__name__ != name:
            raise ValueError(f"the solution {solution.__name__!r} does not solve {name!r}: give it the same name")
        if is_stub(student_function):
            print(f"{name}: your version above is still the stub, so this cell uses the solution")
            return solution
        student_function.solution = solution
        print(f"{name}: using your version from the cell above (the solution is {name}.solution)")
        return student_function

    return decorate


# ----------------------------------------------------------------------------------------------------
# Batch runs (the README's main job and the test-suite's papermill runs)
# ----------------------------------------------------------------------------------------------------

def notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the source checkout this package runs from (a pip install has none:
    give the folder you downloaded the notebooks into, ``neurodepth notebooks --dir DIR``)."""
    here = _project.checkout_folder("notebooks")
    if here is None:
        raise FileNotFoundError(f"this installation has no notebooks folder (a pip install ships the library "
                                f"only): download the notebooks from {_project.repository_url()}/tree/"
                                f"{_project.release_tag()}/notebooks and pass their folder (--dir DIR)")
    return here


def list_notebooks(directory: str | os.PathLike | None = None) -> list[Path]:
    directory = Path(directory) if directory else notebooks_dir()
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(notebook: str | os.PathLike, out_dir: str | os.PathLike, scale: str = "lab",
                 parameters: dict | None = None, kernel_name: str | None = None,
                 timeout_s: int | None = None) -> dict:
    """Execute one notebook headless with papermill into ``out_dir``; return its receipt (or ``{}``).

    The executed copy and the receipt land in ``out_dir``; the notebook's own folder is untouched.
    """
    import papermill as pm

    notebook, out_dir = Path(notebook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = notebook.stem
    receipt = receipt_path(stem, out_dir)
    receipt.unlink(missing_ok=True)
    params = {"SCALE": scale, **(parameters or {})}
    old = os.environ.get(RECEIPT_DIR_ENV)
    os.environ[RECEIPT_DIR_ENV] = str(out_dir.resolve())  # the kernel inherits it
    try:
        pm.execute_notebook(str(notebook), str(out_dir / notebook.name), parameters=params,
                            cwd=str(out_dir), kernel_name=kernel_name or "python3",
                            progress_bar=False, execution_timeout=timeout_s)
    finally:
        if old is None:
            os.environ.pop(RECEIPT_DIR_ENV, None)
        else:
            os.environ[RECEIPT_DIR_ENV] = old
    return json.loads(receipt.read_text()) if receipt.exists() else {}


def summarize_receipt(receipt: dict) -> str:
    """One line per receipt: notebook, scale, time, checks passed, headline numbers."""
    if not receipt:
        return "(no receipt)"
    if "error" in receipt:
        return f"{receipt['notebook']:<36} FAILED: {receipt['error']}"
    checks = receipt.get("checks", [])
    passed = sum(c["passed"] for c in checks)
    numbers = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in receipt.get("results", {}).items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool))
    return (f"{receipt['notebook']:<36} {receipt['scale']:<5} {receipt['elapsed_s']:>7.1f} s  "
            f"checks {passed}/{len(checks)}  {numbers}")


def run_all(out_dir: str | os.PathLike = "outputs", scale: str | None = None,
            notebooks: list | None = None) -> list[dict]:
    """Execute every numbered notebook at ``scale`` into ``out_dir`` and print each receipt's summary."""
    resolved = resolve_scale(scale)
    receipts = []
    for nb_path in notebooks or list_notebooks():
        t0 = time.perf_counter()
        print(f"running {Path(nb_path).name} at scale {resolved!r} ...", flush=True)
        try:
            receipt = run_notebook(nb_path, out_dir, scale=resolved)
        except Exception as err:  # noqa: BLE001 - report the failure and go on with the next notebook
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            receipt = {"notebook": Path(nb_path).stem, "error": first_line}
        receipts.append(receipt)
        print(f"  done in {time.perf_counter() - t0:.1f} s: {summarize_receipt(receipt)}", flush=True)
    print("\nSummary")
    for r in receipts:
        print("  " + summarize_receipt(r))
    sys.stdout.flush()
    return receipts
