"""Sandmark on the paged UM backend against the flat one, in one run.

    .venv/bin/python benchmarks/um_paged.py [--corpus ../shared/um] [--fraction 0.25]
                                            [--instructions N] [--policy clock] [--repeat N] [--json]

Three runs, each output checked against sandmark.expected (numba cache warmed
first, so compile time is not counted):

1. flat;
2. paged with every page in memory (4096 frames, 16 MiB: sandmark's heap peaks
   near 410 pages), the figure to reach being <= 1.5x flat's time;
3. paged with `--fraction` (default 25%) of sandmark's working set: the peak
   allocator footprint measured by run 2, in pages, times the fraction.

Prints wall and CPU time, the paged/flat ratios, page faults, page-ins and -outs,
swap traffic, TLB hit rate and fetch-buffer refills (`--json`: the same figures as
one JSON object at the end).  `--instructions N` runs only the first N instructions
of each (for quick comparisons; no output check).

`--repeat N` runs 1 and 2 N times each, alternated (flat, paged, flat, ...), and
reports the median of each and the ratio of the medians.  Two runs of the same
code on this 2-core virtual machine differ by up to 5%, about as much as the
margin of the figure, so one pair of runs cannot say on which side of 1.5x it is.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time

from bench_common import add_corpus, add_json, add_repeat, load_average, medians


def run(program: bytes, backend: str, limit: int | None, **kw) -> tuple[float, float, bytes, dict]:
    """One run; returns wall seconds, CPU seconds (this thread), output and stats."""
    from vm32.um.machine import UniversalMachine

    out = io.BytesIO()
    with UniversalMachine(program, backend=backend, stdin=b"", stdout=out, **kw) as um:
        start, cpu = time.perf_counter(), time.thread_time()
        um.run(max_instructions=limit)
        elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
        return elapsed, cpu, out.getvalue(), um.stats()


def warm_up(program: bytes, policy: str) -> None:
    """Compile (or load from the cache) every kernel the runs use."""
    from vm32.um.machine import UniversalMachine

    for backend, kw in (("flat", {}), ("paged", {"frames": 64, "policy": policy})):
        with UniversalMachine(program, backend=backend, stdin=b"", stdout=io.BytesIO(), **kw) as um:
            um.run(max_instructions=2_000_000)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_corpus(parser)
    parser.add_argument("--fraction", type=float, default=0.25, help="share of the working set for run 3")
    parser.add_argument("--policy", default="clock", help="replacement policy of the paged runs")
    parser.add_argument("--instructions", type=float, default=None,
                        help="run only this many instructions of each run (no output check)")
    parser.add_argument("--skip-small", action="store_true", help="leave out run 3 (it is the long one)")
    add_repeat(parser, default=1, help="run 1 and 2 this many times each, alternated; report medians")
    add_json(parser)
    args = parser.parse_args(argv)
    program = (args.corpus / "sandmark.umz").read_bytes()
    expected = (args.corpus / "sandmark.expected").read_bytes()
    limit = int(args.instructions) if args.instructions else None
    print(f"sandmark{'' if limit is None else f' (first {limit:,} instructions)'}, load average "
          f"{load_average():.2f} on {os.cpu_count()} CPUs; warming the numba cache ...", flush=True)
    warm_up(program, args.policy)

    def check(name: str, output: bytes) -> None:
        if limit is None and output != expected:
            raise SystemExit(f"{name}: output differs from sandmark.expected")

    wall: dict[str, list[float]] = {"flat": [], "paged": []}
    cpu: dict[str, list[float]] = {"flat": [], "paged": []}
    for _ in range(args.repeat):
        f_wall, f_cpu, out, _ = run(program, "flat", limit)
        check("flat", out)
        print(f"flat                      wall {f_wall:7.2f} s  cpu {f_cpu:7.2f} s", flush=True)
        p_wall, p_cpu, out, p_stats = run(program, "paged", limit, frames=4096, policy=args.policy)
        check("paged", out)
        print(f"paged, all in memory      wall {p_wall:7.2f} s  cpu {p_cpu:7.2f} s   "
              f"paged/flat: wall {p_wall / f_wall:.2f}x  cpu {p_cpu / f_cpu:.2f}x   {describe(p_stats)}", flush=True)
        for name, w, c in (("flat", f_wall, f_cpu), ("paged", p_wall, p_cpu)):
            wall[name].append(w)
            cpu[name].append(c)
    wall_m, cpu_m = medians(wall), medians(cpu)
    fw, fc, pw, pc = wall_m["flat"], cpu_m["flat"], wall_m["paged"], cpu_m["paged"]
    if args.repeat > 1:
        print(f"medians of {args.repeat}: flat wall {fw:.2f} s cpu {fc:.2f} s, paged wall {pw:.2f} s cpu {pc:.2f} s; "
              f"paged/flat: wall {pw / fw:.2f}x  cpu {pc / fc:.2f}x", flush=True)
    figures = {"runs": args.repeat, "instructions_limit": limit, "policy": args.policy, "wall": wall, "cpu": cpu,
               "wall_median": wall_m, "cpu_median": cpu_m, "paged/flat": {"wall": pw / fw, "cpu": pc / fc},
               "paged_stats": p_stats}
    if not args.skip_small:
        ws_pages = math.ceil(p_stats["allocator_footprint_bytes"] / 4096) + 1  # + segment 0's page
        frames = max(16, int(ws_pages * args.fraction) + 3)  # + page directory, table, kernel
        s_wall, s_cpu, out, s_stats = run(program, "paged", limit, frames=frames, policy=args.policy)
        check(f"paged at {frames} frames", out)
        print(f"paged, {frames} frames ({args.fraction:.0%} of {ws_pages} pages)  wall {s_wall:7.2f} s  "
              f"cpu {s_cpu:7.2f} s   paged/flat: wall {s_wall / fw:.2f}x   {describe(s_stats)}", flush=True)
        figures["small"] = {"frames": frames, "fraction": args.fraction, "working_set_pages": ws_pages,
                            "wall": s_wall, "cpu": s_cpu, "paged/flat_wall": s_wall / fw, "stats": s_stats}
    print("outputs " + ("not checked (--instructions)" if limit else "identical to sandmark.expected"))
    if args.json:
        print(json.dumps(dict(figures, load_average=load_average())))
    return 0


def describe(s: dict) -> str:
    """The paging figures of one run."""
    return (f"faults {s['page_faults']:,}  swap-ins {s['page_ins_from_swap']:,}  page-outs {s['page_outs']:,}  "
            f"swap {s['swap_bytes_in'] >> 20:,} MiB in / {s['swap_bytes_out'] >> 20:,} MiB out  "
            f"TLB hit {100 * s['tlb_hit_rate']:.3f}%  fetch refills {s['fetch_buffer_refills']:,}")


if __name__ == "__main__":
    sys.exit(main())
