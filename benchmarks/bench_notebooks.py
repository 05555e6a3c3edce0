"""Benchmark: how long each notebook takes at quick scale, as a ratio to a fixed reference workload.

    python benchmarks/bench_notebooks.py                        # every notebook (about 10 minutes on 2 cores)
    python benchmarks/bench_notebooks.py --notebooks 00 05      # chosen ones, by number or name
    python benchmarks/bench_notebooks.py --repeats 5 --out my.json

Each notebook runs headless at quick scale with papermill (:func:`neurodepth_lib.nb.run_notebook`, the
same call as ``neurodepth notebooks``), in its own kernel, one after another. Reported: wall seconds
(kernel start to shut-down), CPU seconds of the kernel and everything it started (pool workers included),
the receipt's own wall and CPU seconds (from ``nd.nb.setup`` to ``ctx.write_receipt``), and the notebook's
quick budget (``metadata.neurodepth.quick_budget_s``).

**Baseline:** a fixed reference workload (a numpy float64 matrix-product loop and a pure-Python loop, on
one thread in a fresh interpreter, as a kernel is) runs ``--repeats`` times before the notebooks and again
after them, in the same process tree. Each notebook's time is given as a ratio to the median reference
time: a ratio does not move when the whole machine is faster or slower, and the spread of the reference runs
shows how much other users' load changed during the run. The test suite reports times (conftest.py,
``outputs/test-timings.json``) but never asserts them; this is where a slower notebook is measured.

Results are printed as a table and written as JSON (default ``benchmarks/results/notebooks.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The reference workload: fixed sizes and values, about 2-3 s on one core of the 2-core development machine.
REFERENCE_CODE = """
import time
import numpy as np
t0 = time.perf_counter()
a = np.linspace(0.0, 1.0, 400 * 400).reshape(400, 400)
b = np.eye(400) * 0.5 + a.T * 1e-3
for _ in range(200):
    a = a @ b
    a /= np.abs(a).max()
t1 = time.perf_counter()
total = 0
for i in range(4_000_000):
    total += i * i % 7
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""
REFERENCE_WHAT = ("fresh interpreter, one thread: 200 products of 400x400 float64 matrices (numpy BLAS), "
                  "then a 4e6-step pure-Python loop")
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _children_cpu_s() -> float:
    """CPU seconds of the finished child processes of this process (and theirs, once reaped)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return float("nan")
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _load() -> list | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def reference_once() -> dict:
    """One run of the fixed reference workload in a fresh interpreter: wall and CPU seconds."""
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    # one thread: a multi-threaded BLAS on a shared machine measures the other users more than the machine
    out = subprocess.run([sys.executable, "-c", REFERENCE_CODE], capture_output=True, text=True, check=True,
                         env={**os.environ, **ONE_THREAD})
    wall, cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0
    blas_s, python_s = (float(x) for x in out.stdout.split())
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "blas_s": round(blas_s, 3),
            "python_loop_s": round(python_s, 3)}


def choose(names: list[str] | None) -> list[Path]:
    """Notebooks by number (``05``) or name (``05_evaluating_the_fit``); all of them when ``names`` is empty."""
    from neurodepth_lib import nb

    every = nb.list_notebooks()
    if not names:
        return every
    chosen = []
    for name in names:
        hits = [p for p in every if p.stem == name or p.stem.split("_")[0] == name.zfill(2) or p.name == name]
        if not hits:
            raise SystemExit(f"no notebook {name!r}; choose from: {', '.join(p.stem for p in every)}")
        chosen += [p for p in hits if p not in chosen]
    return chosen


def time_notebook(path: Path, out_dir: Path) -> dict:
    from neurodepth_lib import nb

    budget = json.loads(path.read_text()).get("metadata", {}).get("neurodepth", {}).get("quick_budget_s")
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    error = None
    try:
        receipt = nb.run_notebook(path, out_dir, scale="quick")
    except Exception as err:  # noqa: BLE001 - report the failure and go on with the next notebook
        receipt, error = {}, (str(err).strip().splitlines() or [type(err).__name__])[-1]
    wall, cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0
    return {"notebook": path.stem, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "receipt_wall_s": receipt.get("elapsed_s"), "receipt_cpu_s": receipt.get("cpu_s"),
            "quick_budget_s": budget, "within_budget": (wall <= budget) if budget else None,
            "checks_passed": sum(c["passed"] for c in receipt.get("checks", [])),
            "checks": len(receipt.get("checks", [])), "error": error}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", default=None, help="numbers or names (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="reference runs before and again after (median)")
    parser.add_argument("--out", default=str(HERE / "results" / "notebooks.json"), help="JSON result file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    os.environ.pop("NEURODEPTH_SCALE", None)  # papermill's -p SCALE quick decides, nothing else
    notebooks = choose(args.notebooks)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start, t_start = _load(), time.perf_counter()

    print(f"reference workload x {args.repeats} ...", flush=True)
    before = [reference_once() for _ in range(args.repeats)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as work:
        for path in notebooks:
            print(f"running {path.name} at quick scale ...", flush=True)
            rows.append(time_notebook(path, Path(work)))
    print(f"reference workload x {args.repeats} again ...", flush=True)
    after = [reference_once() for _ in range(args.repeats)]

    ref_wall = round(statistics.median(r["wall_s"] for r in before + after), 3)
    ref_cpu = round(statistics.median(r["cpu_s"] for r in before + after), 3)
    for row in rows:
        row["wall_x_reference"] = round(row["wall_s"] / ref_wall, 2)
        row["cpu_x_reference"] = round(row["cpu_s"] / ref_cpu, 2) if ref_cpu > 0 else None
    result = {
        "started": started, "total_wall_s": round(time.perf_counter() - t_start, 1),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_start": load_start, "load_average_end": _load()},
        "reference": {"what": REFERENCE_WHAT, "median_wall_s": ref_wall, "median_cpu_s": ref_cpu,
                      "before": before, "after": after},
        "notebooks": rows,
    }

    print(f"\nreference: median {ref_wall:.2f} s wall, {ref_cpu:.2f} s CPU "
          f"(runs {min(r['wall_s'] for r in before + after):.2f}-{max(r['wall_s'] for r in before + after):.2f} s "
          f"wall; before {statistics.median(r['wall_s'] for r in before):.2f}, "
          f"after {statistics.median(r['wall_s'] for r in after):.2f})")
    print(f"{'notebook':<34}{'wall s':>8}{'CPU s':>8}{'x ref wall':>12}{'x ref CPU':>11}"
          f"{'receipt s':>11}{'budget s':>10}  within  checks")
    for r in rows:
        if r["error"]:
            print(f"{r['notebook']:<34}{r['wall_s']:>8.1f}  FAILED: {r['error']}")
            continue
        within = {True: "yes", False: "NO", None: "-"}[r["within_budget"]]
        num = lambda v, w: f"{v:>{w}.1f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"  # noqa: E731
        print(f"{r['notebook']:<34}{num(r['wall_s'], 8)}{num(r['cpu_s'], 8)}{num(r['wall_x_reference'], 12)}"
              f"{num(r['cpu_x_reference'], 11)}{num(r['receipt_wall_s'], 11)}{num(r['quick_budget_s'], 10)}"
              f"  {within:<6}  {r['checks_passed']}/{r['checks']}")
    print(f"load average {result['machine']['load_average_start']} -> {result['machine']['load_average_end']} "
          f"on {os.cpu_count()} cores; {result['total_wall_s']:.0f} s in all")

    from neurodepth_lib._io import atomic_write_text

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"written: {out}")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
