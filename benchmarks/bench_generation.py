"""Benchmark: L5PC dataset generation, our pipeline against the authors' recipe, and training windows.

    python benchmarks/bench_generation.py            # 4 trials x 3 s (about 5 minutes on 2 quiet cores)
    python benchmarks/bench_generation.py --quick    # 2 trials x 2 s (about 2 minutes)

Both sides simulate the same input trials (the same dataset seed, so the same regenerated events):

* **baseline, the authors' recipe**: one process, CVODE at default tolerances, every dendritic segment
  plus soma and nexus recorded at every integration step and interpolated afterwards (the paper's
  simulation script; paper_facts 1.4). Input generation and cell building are included in its time.
* **ours**: :func:`neurodepth_lib.data.generate_dataset` with the pipeline's integration (fixed step
  0.05 ms, Crank-Nicolson; ``--dt-ms`` and ``--secondorder`` override), soma and nexus only, one process per
  core, with everything a user waits for: spawning the workers, loading mechanisms, building cells,
  regenerating inputs, writing and hashing the shards.

Throughput is simulated seconds per wall second for the whole machine; the ratio is ours / baseline. On a
shared machine other people's jobs take cores from our workers (not from the one-process baseline), so the
benchmark also reports CPU seconds of all processes on each side: their ratio is the per-core speed-up, and
times the number of workers it estimates the ratio on an idle machine.
Fidelity: the fraction of baseline spikes that have a spike of ours within 1 ms (and vice versa), the
largest shift, and the RMS difference of the soma traces clipped at -55 mV. Finally the training-window
throughput (windows per second, batches of 8 windows of 400 ms, the paper's sizes) of
:class:`~neurodepth_lib.fit.WindowSampler` over the dataset we made.

Results are printed as a table and written as JSON (``--json``). The machines are shared and noisy; the
two sides run back to back in one process tree, so trust the ratio more than either number.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import neurodepth_lib as nd

HERE = Path(__file__).resolve().parent


def baseline_trial(cell, events, duration_ms: int) -> dict:
    """One trial the authors' way: CVODE, every segment recorded at every step, interpolated after."""
    from neuron import h

    from neurodepth_lib.cells.spikes import detect_spikes

    netcons = cell.netcons
    channel, time_ms = events.channel.tolist(), events.time_ms.astype(float).tolist()

    def queue():
        for c, t in zip(channel, time_ms):
            netcons[c].event(t)

    t_vec, v_soma, v_nexus = h.Vector(), h.Vector(), h.Vector()
    t_vec.record(h._ref_t)
    v_soma.record(cell.soma(0.5)._ref_v)
    v_nexus.record(cell.nexus._ref_v)
    dend = []
    for seg in cell.dendritic_segments:
        vec = h.Vector()
        vec.record(seg._ref_v)
        dend.append(vec)
    handler = h.FInitializeHandler(1, queue)
    cvode = h.CVode()
    cvode.active(1)
    try:
        h.finitialize(-76.0)
        cvode.solve(duration_ms)
    finally:
        del handler
        cvode.active(0)
    t = t_vec.as_numpy().copy()
    grid_1 = np.arange(duration_ms, dtype=float)
    grid_hi = np.arange(8 * duration_ms, dtype=float) / 8
    vs = v_soma.as_numpy()
    soma_hi = np.interp(grid_hi, t, vs)
    out = {"soma_1ms": np.interp(grid_1, t, vs).astype(np.float32),
           "nexus_1ms": np.interp(grid_1, t, v_nexus.as_numpy()).astype(np.float32),
           "dend_1ms": np.stack([np.interp(grid_1, t, v.as_numpy()) for v in dend]).astype(np.float16),
           "soma_0125ms": soma_hi.astype(np.float32),
           "spike_times_ms": detect_spikes(soma_hi, 0.125, -25.0),
           "steps": int(t.size)}
    return out  # the per-step Vectors are freed (and stop recording) when they go out of scope


def run_baseline(n_trials: int, duration_ms: int, seed: int, condition: str) -> dict:
    from neurodepth_lib.cells import L5PC
    from neurodepth_lib.inputs import generate_inputs

    t0, c0 = time.perf_counter(), time.process_time()
    cell = L5PC(condition)
    settings = cell.input_settings(condition)
    trials = []
    for i in range(n_trials):
        events = generate_inputs(settings, duration_ms, nd.data.trial_seed(seed, i))
        trials.append(baseline_trial(cell, events, duration_ms))
        print(f"  baseline trial {i + 1}/{n_trials}: {len(trials[-1]['spike_times_ms'])} spikes, "
              f"{trials[-1]['steps']} CVODE steps, {time.perf_counter() - t0:.0f} s so far", flush=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    cell.destroy()
    return {"wall_s": wall, "cpu_s": cpu, "trials": trials}


def run_ours(out: Path, n_trials: int, duration_ms: int, seed: int, condition: str, workers: int,
             dt_ms: float | None, secondorder: int | None) -> dict:
    simulation = {}
    if dt_ms is not None:
        simulation["dt_ms"] = dt_ms
    if secondorder is not None:
        simulation["secondorder"] = secondorder
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, c0 = time.perf_counter(), time.process_time()
    report = nd.data.generate_dataset(out, cell="l5pc", condition=condition, n_trials=n_trials,
                                duration_ms=duration_ms, seed=seed, trials_per_shard=1, workers=workers,
                                simulation=simulation or None, progress=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, joined at its shutdown
    cpu = time.process_time() - c0 + (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    ds = report.open()
    return {"wall_s": wall, "cpu_s": cpu, "dataset": ds, "executor": report.executor,
            "simulation": ds.plan["simulation"]}


def spike_agreement(ref: list, ours: list, tol_ms: float = 1.0) -> dict:
    """The library's one spike matcher (:func:`neurodepth_lib.cells.spikes.match_spikes`), pooled over trials."""
    m = sum((nd.cells.spikes.match_spikes(r, o, tol_ms) for r, o in zip(ref, ours)),
            nd.cells.spikes.SpikeMatch(0, 0, []))
    return {"baseline_spikes": m.n_reference, "our_spikes": m.n_other, "matched_within_1ms": m.matched,
            "recall": m.recall, "precision": m.precision, "max_abs_shift_ms": m.max_abs_shift_ms,
            "mean_abs_shift_ms": m.mean_abs_shift_ms}


def window_throughput(ds, seconds: float, batch_size: int = 8, window_ms: int = 400) -> dict:
    from neurodepth_lib.fit import WindowSampler

    t0 = time.perf_counter()
    sampler = WindowSampler(ds, window_ms=window_ms)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    sampler.sample(rng, batch_size)  # warm up torch
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sampler.sample(rng, batch_size)
        n += batch_size
    wall = time.perf_counter() - t0
    return {"windows_per_s": n / wall, "batch_size": batch_size, "window_ms": window_ms,
            "materialise_s": build, "trials": len(sampler.trials)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 trials x 2 s")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--duration-ms", type=int, default=None)
    # seed 11: its first trials have a large excitation-inhibition difference, so they spike
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--condition", default="NMDA")
    parser.add_argument("--workers", type=int, default=None, help="our worker processes (default: all cores)")
    parser.add_argument("--dt-ms", type=float, default=None, help="our fixed step (default: the pipeline's)")
    parser.add_argument("--secondorder", type=int, default=None, choices=(0, 1, 2),
                        help="NEURON's secondorder for ours (default: the pipeline's, 2)")
    parser.add_argument("--json", default=str(HERE / "results" / "bench_generation.json"))
    args = parser.parse_args(argv)
    n_trials = args.trials or (2 if args.quick else 4)
    duration_ms = args.duration_ms or (2000 if args.quick else 3000)
    workers = args.workers or len(os.sched_getaffinity(0))
    simulated_s = n_trials * duration_ms / 1000.0

    from neurodepth_lib.cells import ensure_mechanisms

    ensure_mechanisms()
    tmp = Path(tempfile.mkdtemp(prefix="bench_generation_"))
    try:
        print(f"ours: {n_trials} trials x {duration_ms} ms on {workers} worker processes ...", flush=True)
        ours = run_ours(tmp / "ds", n_trials, duration_ms, args.seed, args.condition, workers, args.dt_ms,
                        args.secondorder)
        print(f"  {ours['wall_s']:.1f} s", flush=True)
        print(f"baseline: the same {n_trials} trials, CVODE, one process, every segment recorded ...", flush=True)
        base = run_baseline(n_trials, duration_ms, args.seed, args.condition)
        ds = ours["dataset"]
        our_spikes = [ds.spike_times(i) for i in range(n_trials)]
        agreement = spike_agreement([t["spike_times_ms"] for t in base["trials"]], our_spikes)
        clip = lambda v: np.minimum(np.asarray(v, float), -55.0)  # noqa: E731
        rms = float(np.sqrt(np.mean([np.mean((clip(ds.output("soma_1ms", i)) - clip(base["trials"][i]["soma_1ms"])) ** 2)
                                     for i in range(n_trials)])))
        windows = window_throughput(ds, seconds=3.0 if args.quick else 6.0)
        ds.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    thr_base = simulated_s / base["wall_s"]
    thr_ours = simulated_s / ours["wall_s"]
    # CPU time does not depend on how busy the shared machine is: the per-core ratio, and what it gives on
    # `workers` idle cores (independent trials scale linearly with cores, performance_facts.md)
    per_core = base["cpu_s"] / ours["cpu_s"]
    parallel = min(workers, n_trials)
    result = {
        "benchmark": "bench_generation", "quick": args.quick,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_avg_1min": os.getloadavg()[0]},
        "trials": n_trials, "duration_ms": duration_ms, "simulated_s": simulated_s, "condition": args.condition,
        "seed": args.seed,
        "baseline": {"recipe": "CVODE default tolerances, 1 process, soma+nexus+all 639 segments every step",
                     "wall_s": base["wall_s"], "cpu_s": base["cpu_s"], "simulated_s_per_wall_s": thr_base},
        "ours": {"recipe": f"generate_dataset, {ours['executor']}, fixed dt {ours['simulation']['dt_ms']} ms, "
                           f"secondorder {ours['simulation'].get('secondorder', 0)}, soma+nexus", "simulation": ours["simulation"], "workers": workers,
                 "wall_s": ours["wall_s"], "cpu_s": ours["cpu_s"], "simulated_s_per_wall_s": thr_ours},
        "ratio": thr_ours / thr_base,
        "ratio_per_core_cpu": per_core,
        "ratio_idle_machine_estimate": per_core * parallel,
        "spike_agreement": agreement,
        "soma_rms_clipped_mV": rms,
        "training_windows": windows,
    }
    rows = [("baseline (authors' recipe)", f"{base['wall_s']:.1f}", f"{thr_base:.4f}"),
            (f"ours ({workers} proc, dt {ours['simulation']['dt_ms']} ms)", f"{ours['wall_s']:.1f}", f"{thr_ours:.4f}")]
    print()
    print(f"L5PC {args.condition}: {n_trials} trials x {duration_ms} ms = {simulated_s:.1f} simulated s "
          f"(load average {result['machine']['load_avg_1min']:.1f} on {os.cpu_count()} cores)")
    print(f"{'pipeline':<34} {'wall s':>8} {'sim s / wall s':>15}")
    for name, wall, thr in rows:
        print(f"{name:<34} {wall:>8} {thr:>15}")
    print(f"{'ratio ours / baseline':<34} {'':>8} {result['ratio']:>14.2f}x")
    print(f"CPU seconds: baseline {base['cpu_s']:.1f}, ours {ours['cpu_s']:.1f} (all processes): "
          f"{per_core:.2f}x per core, so {per_core * parallel:.2f}x on {parallel} idle cores")
    a = agreement
    print(f"spikes: baseline {a['baseline_spikes']}, ours {a['our_spikes']}, matched within 1 ms "
          f"{a['matched_within_1ms']} (recall {a['recall']:.2f}, precision {a['precision']:.2f}, "
          f"max shift {a['max_abs_shift_ms']:.3f} ms); clipped soma RMS {rms:.3f} mV")
    print(f"training windows: {windows['windows_per_s']:.0f} windows/s (batches of {windows['batch_size']} x "
          f"{windows['window_ms']} ms; inputs materialised in {windows['materialise_s']:.1f} s for "
          f"{windows['trials']} trials)")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
