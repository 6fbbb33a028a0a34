"""Sandmark on every UM backend, and on the C reference UM, in one run.

    .venv/bin/python benchmarks/um_sandmark.py [--corpus ../shared/um] [--backends flat,classic,jit]
                                               [--repeat N] [--jit-cache] [--json]

Prints each wall and CPU time (numba cache warmed first, so numba's compile time is
not counted), checks every output against sandmark.expected, and prints the ratios
flat/um_ref, classic/flat, jit/um_ref and jit/flat.  The C reference
(`../shared/anchors/um_ref.c`) is built with `cc -O2` when a C compiler is present.

The jit backend's own compile time is in its wall time, and also shown apart
(`compile`: the worker thread's time to compile the regions, which overlaps the
interpreter).  Every jit run compiles its regions afresh (the compiled-region
cache on disk is off) unless `--jit-cache` lets runs load them from it.

`--repeat N` runs the whole round (um_ref, then each backend) N times and
computes the ratios from the median times.  Why: on a shared 2-core VM two runs
of the same binary differ by up to 20% (um_ref took 14.1 to 17.2 s on one day),
so a single pair of runs cannot say which side of a target a ratio is on.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import add_corpus, add_json, add_repeat, compile_c, load_average, load_line, medians

HERE = Path(__file__).resolve().parent


def build_um_ref(shared: Path, workdir: Path) -> Path | None:
    """Compile the C reference UM with cc -O2; None when no compiler is present."""
    return compile_c(shared / "anchors" / "um_ref.c", workdir / "um_ref")


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(cmd: list[str], expected: bytes) -> tuple[float, float]:
    """Run `cmd`, check its stdout equals `expected`; return its wall and CPU time."""
    start, cpu = time.perf_counter(), children_cpu()
    out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=True).stdout
    elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu
    if out != expected:
        raise SystemExit(f"{cmd[0]}: output differs from sandmark.expected")
    return elapsed, cpu


def time_backend(program: Path, backend: str, expected: bytes) -> tuple[float, float, dict]:
    """Run sandmark in-process on `backend` (cache already warm); return wall time,
    CPU time and stats."""
    from vm32.um.machine import run_program

    start, cpu = time.perf_counter(), time.process_time()
    result = run_program(program, stdin=b"", backend=backend)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if result.output != expected:
        raise SystemExit(f"{backend}: output differs from sandmark.expected")
    return elapsed, cpu, result.stats


def jit_figures(stats: dict) -> str:
    """The jit run's extra columns: compile seconds and the share of compiled instructions."""
    if "jit_compile_seconds" not in stats:
        return ""
    share = stats["jit_instructions"] / max(stats["instructions"], 1)
    return f"   compile {stats['jit_compile_seconds']:5.2f}s  {100 * share:5.1f}% compiled"


def warm_up(backends: list[str]) -> None:
    """Compile (or load from cache) every backend's kernel on a tiny program."""
    from vm32.um.isa import HALT, encode
    from vm32.um.machine import run_program

    for backend in backends:
        run_program(bytes.fromhex(f"{encode(HALT):08x}"), backend=backend)


def main() -> None:
    """Run the benchmark and print its table and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_corpus(ap)
    ap.add_argument("--backends", default="flat,classic")
    ap.add_argument("--no-ref", action="store_true", help="skip the C reference")
    add_repeat(ap, default=1, help="run every program this many times, alternated; ratios of the medians")
    ap.add_argument("--jit-cache", action="store_true",
                    help="jit: load regions compiled by earlier runs from the disk cache (default: compile afresh)")
    add_json(ap)
    args = ap.parse_args()
    if not args.jit_cache:
        os.environ["VM32_JIT_CACHE"] = "0"
    program = args.corpus / "sandmark.umz"
    expected = (args.corpus / "sandmark.expected").read_bytes()
    backends = [b for b in args.backends.split(",") if b]

    warm_up(backends)
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    compile_s: dict[str, list[float]] = {}

    def record(name: str, w: float, c: float, extra: str = "") -> None:
        wall.setdefault(name, []).append(w)
        cpu.setdefault(name, []).append(c)
        label = f"{name} (cc -O2)" if name == "um_ref" else name
        if args.repeat > 1:
            label += f" #{len(wall[name])}"
        print(f"{label:<23} {w:7.2f}s {c:7.2f}s{extra}", flush=True)

    print(f"{'':<23} {'wall':>8} {'cpu':>8}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        exe = None if args.no_ref else build_um_ref(args.corpus.parent, Path(tmp))
        for _ in range(args.repeat):
            if exe is not None:
                record("um_ref", *time_command([str(exe), str(program)], expected))
            for backend in backends:
                w, c, stats = time_backend(program, backend, expected)
                if "jit_compile_seconds" in stats:
                    compile_s.setdefault(backend, []).append(stats["jit_compile_seconds"])
                record(backend, w, c, f"   {stats['instructions'] / w / 1e6:6.0f} M UM instructions/s"
                       + jit_figures(stats))
    wall_m, cpu_m = medians(wall), medians(cpu)
    print()
    if args.repeat > 1:
        print(f"ratios of the medians of {args.repeat} runs:")
    ratios = {}
    for a, b, target in (("flat", "um_ref", "<= 0.5"), ("classic", "flat", ">= 1.8"),
                         ("jit", "um_ref", "<= 0.13"), ("jit", "flat", "<= 0.25")):
        if a in wall_m and b in wall_m:
            ratios[f"{a}/{b}"] = {"wall": wall_m[a] / wall_m[b], "cpu": cpu_m[a] / cpu_m[b]}
            print(f"{a} / {b:<9} wall {wall_m[a] / wall_m[b]:6.3f}   cpu {cpu_m[a] / cpu_m[b]:6.3f}   (target {target})")
    for name, seconds in compile_s.items():
        print(f"{name}: compile {statistics.median(seconds):.2f}s (median; in its wall time, on the worker thread)"
              + ("" if args.jit_cache else ", every run compiling afresh"))
    print(load_line())
    print("outputs identical to sandmark.expected: yes")
    if args.json:
        import json

        print(json.dumps({"runs": args.repeat, "wall_median": wall_m, "cpu_median": cpu_m, "ratios": ratios,
                          "jit_compile_median": medians(compile_s),
                          "jit_cache": args.jit_cache, "load_average": load_average()}))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    main()
