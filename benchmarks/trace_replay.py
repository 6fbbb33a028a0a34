"""Trace replay: `vm32 trace sim` against libCacheSim's simulator on the same page sequence.

    .venv/bin/python benchmarks/trace_replay.py [--repeat 5] [--frames 64,256,1024] [--json]

The trace: valgrind lackey on `sort -n` of NUMBERS shuffled integers (a real
program; 6,500 give about 24 M references), recorded once with `vm32 trace
record` and kept, with its page numbers as text, under the user's cache
directory (~/.cache/vm32/bench; not in the repository).  Both simulators read
the same plain text file of page numbers (one per line) and each run is a whole
process, parsing included: `vm32 trace sim PAGES --format pages --json --no-cache`
(no binary copy of the parsed trace: vm32.trace.cache) and a
Python process calling libcachesim's TraceReader + process_trace.  Runs
alternate; the figures are medians of --repeat runs.

Printed, for FIFO, LRU and Clock (vm32's clock-clear, libCacheSim's Clock):
refs/s of both, vm32/libcachesim, whether the miss counts are equal; vm32
without its TLB (--tlb 0); OPT against vm32's own LRU; in one process, the
lackey parse rate against the simulation's, and LRU's whole curve (stack
distances) against one LRU run.  `--json`: the same figures as one JSON object at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_common import add_json, add_repeat, load_average

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LCS = {"fifo": "FIFO", "lru": "LRU", "clock-clear": "Clock"}
LCS_SCRIPT = """
import sys, libcachesim as lcs
r = lcs.TraceReader(sys.argv[1], lcs.TraceType.PLAIN_TXT_TRACE)
mr, _ = getattr(lcs, sys.argv[2])(int(sys.argv[3])).process_trace(r)
print(round(mr * r.get_num_of_req()))
"""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vm32" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    return base


def get_trace(numbers: int) -> tuple[Path, Path]:
    """(lackey trace, text file of its page numbers), recorded on first use."""
    d = cache_dir()
    lackey, pages = d / f"sort{numbers}.lackey.zst", d / f"sort{numbers}.pages.txt"
    if not lackey.exists():
        data = d / f"numbers{numbers}.txt"
        rng = np.random.default_rng(16)
        data.write_text("\n".join(map(str, rng.permutation(numbers) + 1)) + "\n")
        print(f"recording {lackey} (valgrind lackey on sort -n, about a minute)...", flush=True)
        subprocess.run([PY, "-m", "vm32", "trace", "record", "-o", str(lackey), "--", "sort", "-n", str(data),
                        "-o", os.devnull], check=True)
    if not pages.exists():
        from vm32.trace.readers import read_trace

        trace = read_trace(lackey)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".part")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(map(str, trace.vpns.tolist())) + "\n")
        os.replace(tmp, pages)
    return lackey, pages


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, out


def vm32_run(pages: Path, policy: str, frames: int, tlb: int | None = None) -> tuple[float, int]:
    cmd = [PY, "-m", "vm32", "trace", "sim", str(pages), "--format", "pages", "--frames", str(frames),
           "--policy", policy, "--json", "--no-cache"]
    if tlb is not None:
        cmd += ["--tlb", str(tlb)]
    t, out = timed(cmd)
    return t, json.loads(out)[0]["misses"]


def lcs_run(pages: Path, policy: str, frames: int) -> tuple[float, int]:
    t, out = timed([PY, "-c", LCS_SCRIPT, str(pages), LCS[policy], str(frames)])
    return t, int(out)


def whole_processes(pages: Path, refs: int, frames: list[int], repeat: int) -> dict:
    """vm32 trace sim against libcachesim, each a whole process; prints the table, returns its figures."""
    rows = []
    print(f"\nwhole processes, {refs:,} references, medians of {repeat} alternated runs (M refs/s)")
    print(f"{'policy':<12} {'frames':>6} {'vm32':>7} {'libcachesim':>11} {'ratio':>6} {'no TLB':>7} "
          f"{'ratio':>6}  misses")
    for policy in LCS:
        for n in frames:
            tv, tl, t0, mv, ml, m0 = [], [], [], set(), set(), set()
            for _ in range(repeat):
                t, m = vm32_run(pages, policy, n)
                tv.append(t), mv.add(m)
                t, m = lcs_run(pages, policy, n)
                tl.append(t), ml.add(m)
                t, m = vm32_run(pages, policy, n, tlb=0)
                t0.append(t), m0.add(m)
            v, c, z = (refs / statistics.median(x) / 1e6 for x in (tv, tl, t0))
            same = "equal" if len(mv | ml | m0) == 1 else f"DIFFER {sorted(mv)} {sorted(ml)} {sorted(m0)}"
            print(f"{policy:<12} {n:>6} {v:>7.1f} {c:>11.1f} {v / c:>6.2f} {z:>7.1f} {z / c:>6.2f}  {same} "
                  f"({min(mv):,})")
            rows.append({"policy": policy, "frames": n, "vm32_mrefs_per_s": v, "libcachesim_mrefs_per_s": c,
                         "vm32_no_tlb_mrefs_per_s": z, "misses_equal": len(mv | ml | m0) == 1,
                         "misses": min(mv)})
    n = frames[len(frames) // 2]
    to, tr = [], []
    for _ in range(repeat):
        to.append(vm32_run(pages, "opt", n)[0])
        tr.append(vm32_run(pages, "lru", n)[0])
    o, r = (refs / statistics.median(x) / 1e6 for x in (to, tr))
    print(f"opt {n} frames: {o:.1f} M refs/s, vm32 lru {r:.1f}: opt/lru = {o / r:.2f}")
    return {"refs": refs, "rows": rows, "opt": {"frames": n, "opt_mrefs_per_s": o, "lru_mrefs_per_s": r}}


def in_process(lackey: Path, repeat: int) -> dict:
    """Parse, replay and LRU-curve rates in this process; prints them, returns them."""
    from vm32.trace.future import stack_distances
    from vm32.trace.readers import read_trace
    from vm32.trace.sim import simulate

    read_trace(lackey, cache=False)  # compiled code loaded
    tp, tc = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        trace = read_trace(lackey, cache=False)
        tp.append(time.perf_counter() - t0)
    read_trace(lackey)  # keeps a binary copy
    for _ in range(repeat):
        t0 = time.perf_counter()
        read_trace(lackey)
        tc.append(time.perf_counter() - t0)
    refs = trace.refs
    sim = [simulate(trace, "clock-clear", 256).seconds for _ in range(repeat)]
    lru = [simulate(trace, "lru", 256).seconds for _ in range(repeat)]
    curve = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        stack_distances(trace.vpns)
        curve.append(time.perf_counter() - t0)
    p, s = refs / statistics.median(tp) / 1e6, refs / statistics.median(sim) / 1e6
    k = refs / statistics.median(tc) / 1e6
    print(f"\nin one process, medians of {repeat}: reading the lackey trace (zstd, parse, fold) {p:.1f} M refs/s; "
          f"replay (clock-clear, 256 frames) {s:.1f} M refs/s: parse/replay = {p / s:.2f}; loading the kept "
          f"binary copy {k:.1f} M refs/s: copy/replay = {k / s:.2f}")
    print(f"LRU curve over every frame count (stack distances) {statistics.median(curve):.3f} s; one LRU replay "
          f"{statistics.median(lru):.3f} s: curve/replay = {statistics.median(curve) / statistics.median(lru):.2f}")
    return {"refs": refs, "parse_mrefs_per_s": p, "replay_mrefs_per_s": s, "binary_copy_mrefs_per_s": k,
            "lru_curve_seconds": statistics.median(curve), "lru_replay_seconds": statistics.median(lru)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_repeat(ap, help="runs of every figure, alternated; figures are their medians")
    ap.add_argument("--frames", default="64,256,1024")
    ap.add_argument("--numbers", type=int, default=6500, help="integers sort sorts (trace length)")
    ap.add_argument("--skip-processes", action="store_true", help="only the in-process figures")
    add_json(ap)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
    lackey, pages = get_trace(args.numbers)
    refs = sum(1 for _ in open(pages))
    figures = {"runs": args.repeat}
    if not args.skip_processes:
        figures["whole_processes"] = whole_processes(pages, refs, [int(f) for f in args.frames.split(",")],
                                                     args.repeat)
    figures["in_process"] = in_process(lackey, args.repeat)
    if args.json:
        print(json.dumps(dict(figures, load_average=load_average())))


if __name__ == "__main__":
    main()
