"""Code that keeps changing: morph.uma on flat and jit, alternated, in one run.

    .venv/bin/python benchmarks/um_morph.py [--repeat N] [--json]

morph.uma (src/vm32/um/programs/) rewrites its work loop and loads the new version
every round, so what a JIT compiles for one round is useless to the next; the jit
backend must not be more than 1.1x flat's time on it.  Prints each run's wall and CPU
time (numba cache warmed first), the jit figures, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench_common import add_json, add_repeat, alternated, load_average, load_line, medians

HERE = Path(__file__).resolve().parent


def run(backend: str, program) -> tuple[float, float, dict]:
    """One run of `program` on `backend`: wall time, CPU time, stats."""
    from vm32.um.machine import run_program

    start, cpu = time.perf_counter(), time.process_time()
    result = run_program(program, backend=backend)
    return time.perf_counter() - start, time.process_time() - cpu, result.stats


def main() -> None:
    """Run the benchmark and print its table and ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_repeat(ap)
    add_json(ap)
    args = ap.parse_args()
    os.environ.setdefault("VM32_JIT_CACHE", "0")  # compile afresh, as a first run would
    from vm32.um.asm import assemble

    program = assemble((HERE.parent / "src/vm32/um/programs/morph.uma").read_text())
    expected = None
    for backend in ("flat", "jit"):  # warm numba's cache; the outputs must agree
        from vm32.um.machine import run_program

        out = run_program(program, backend=backend).output
        if expected is not None and out != expected:
            raise SystemExit("jit: output differs from flat's")
        expected = out
    wall: dict[str, list[float]] = {"flat": [], "jit": []}
    cpu: dict[str, list[float]] = {"flat": [], "jit": []}
    print(f"{'':<10} {'wall':>8} {'cpu':>8}")
    for i, backend in alternated(args.repeat, ("flat", "jit")):
        w, c, stats = run(backend, program)
        wall[backend].append(w)
        cpu[backend].append(c)
        extra = ""
        if backend == "jit":
            extra = (f"   {stats['jit_regions']} regions compiled, {stats['jit_instructions']:,} of "
                     f"{stats['instructions']:,} instructions compiled, {stats['program_loads']} loads")
        print(f"{backend} #{i + 1:<5} {w:7.2f}s {c:7.2f}s{extra}", flush=True)
    wall_m, cpu_m = medians(wall), medians(cpu)
    ratio = wall_m["jit"] / wall_m["flat"]
    ratio_cpu = cpu_m["jit"] / cpu_m["flat"]
    print(f"\njit / flat  wall {ratio:6.3f}   cpu {ratio_cpu:6.3f}   (target <= 1.1; medians of {args.repeat})")
    print(load_line())
    if args.json:
        print(json.dumps({"runs": args.repeat, "wall": wall, "cpu": cpu, "jit/flat": {"wall": ratio, "cpu": ratio_cpu},
                          "load_average": load_average()}))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    main()
