"""Cost of one simulated second: the teaching cell against the Hay L5PC, back to back in one process.

    python benchmarks/bench_teaching_cell.py [--duration-ms 2000] [--repeats 2] [--out bench_teaching_cell.json]

Both cells run the generation pipeline's integration (fixed step 0.05 ms, Crank-Nicolson) on the paper's
inputs for their own synapses (condition NMDA). Prints CPU seconds per simulated second for each cell and
the ratio (Hay / teaching); writes the numbers as JSON. The machine is shared: trust the ratio, not the
absolute times.
"""
from __future__ import annotations

import argparse
import json
import time


def _cost(cell, duration_ms: int, repeats: int, seed: int = 0) -> float:
    from neurodepth_lib.inputs import generate_inputs
    from neurodepth_lib.cells.simulation import simulate_trial

    events = generate_inputs(cell.input_settings("NMDA"), duration_ms, seed)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        simulate_trial(cell, events, dt_ms=0.05, secondorder=2)
        best = min(best, time.process_time() - t0)
    return best / (duration_ms / 1000.0)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-ms", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="bench_teaching_cell.json")
    args = ap.parse_args(argv)
    from neurodepth_lib.cells import L5PC
    from neurodepth_lib.cells.teaching import TeachingCell

    teaching = TeachingCell("NMDA")
    t_teach = _cost(teaching, args.duration_ms, args.repeats)
    n_teach = teaching.n_inputs
    teaching.destroy()
    hay = L5PC("NMDA")
    t_hay = _cost(hay, args.duration_ms, args.repeats)
    n_hay = hay.n_inputs
    hay.destroy()
    result = {"duration_ms": args.duration_ms, "repeats": args.repeats,
              "teaching_cpu_s_per_sim_s": t_teach, "hay_cpu_s_per_sim_s": t_hay, "ratio_hay_over_teaching": t_hay / t_teach,
              "teaching_inputs": n_teach, "hay_inputs": n_hay, "integration": "dt 0.05 ms, Crank-Nicolson"}
    print(f"{'cell':<10}{'inputs':>8}{'CPU s / simulated s':>22}")
    print(f"{'teaching':<10}{n_teach:>8}{t_teach:>22.3f}")
    print(f"{'hay':<10}{n_hay:>8}{t_hay:>22.3f}")
    print(f"ratio Hay / teaching: {t_hay / t_teach:.1f}x")
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
