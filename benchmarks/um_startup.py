"""What the jit backend adds to a short program's start-up: `vm32 um run hello.um`, flat and jit.

    .venv/bin/python benchmarks/um_startup.py [--repeat N] [--json]

Runs `python -m vm32 um run hello.um --backend B` as a new process, flat and jit
alternated (numba's cache warmed first, as a user's second run finds it), and prints
the median wall time of each and their difference (target: jit adds at most 0.2 s).
hello.um is src/vm32/um/programs/hello.uma assembled; it runs too few instructions
for any region to be compiled, so the difference is what jit costs before its first
region (llvmlite must not be loaded until then).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import add_json, add_repeat, alternated, load_average, load_line, medians

HERE = Path(__file__).resolve().parent
BACKENDS = ("flat", "jit")


def run(program: Path, backend: str) -> tuple[float, bytes]:
    """One `vm32 um run` of `program` on `backend` in a new process: wall time and stdout."""
    cmd = [sys.executable, "-m", "vm32", "um", "run", str(program), "--backend", backend]
    start = time.perf_counter()
    out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=True).stdout
    return time.perf_counter() - start, out


def main() -> None:
    """Run the benchmark and print its table and the difference."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_repeat(ap)
    add_json(ap)
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])
    wall: dict[str, list[float]] = {b: [] for b in BACKENDS}
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "hello.um"
        subprocess.run([sys.executable, "-m", "vm32", "um", "asm", str(HERE.parent / "src/vm32/um/programs/hello.uma"),
                        "-o", str(program)], check=True)
        outputs = {b: run(program, b)[1] for b in BACKENDS}  # warms numba's cache
        if outputs["jit"] != outputs["flat"]:
            raise SystemExit("jit: output differs from flat's")
        print(f"{'':<10} {'wall':>8}")
        for i, backend in alternated(args.repeat, BACKENDS):
            w, _ = run(program, backend)
            wall[backend].append(w)
            print(f"{backend} #{i + 1:<5} {w:7.3f}s", flush=True)
    median = medians(wall)
    extra = median["jit"] - median["flat"]
    print(f"\nmedians of {args.repeat}: flat {median['flat']:.3f}s, jit {median['jit']:.3f}s")
    print(f"jit - flat  {extra:+.3f}s   (target <= 0.2 s)")
    print(load_line())
    if args.json:
        print(json.dumps({"runs": args.repeat, "wall": wall, "wall_median": median, "jit-flat": extra,
                          "load_average": load_average()}))


if __name__ == "__main__":
    main()
