"""What the benchmark scripts share: their common flags, alternated rounds, medians, load average.

    from bench_common import add_corpus, add_json, add_repeat, alternated, compile_c, load_line, medians

A script is run as `.venv/bin/python benchmarks/NAME.py`, so this directory is first on
sys.path and `import bench_common` finds this file.  The figures follow style.md: medians
of runs alternated between the sides of a ratio (a slow moment of the shared machine then
falls on both sides), with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"  # the corpus beside the checkout, as in CI


def _at_least_one(text: str) -> int:
    """argparse type of --repeat: an integer >= 1 (argparse turns the error into a usage line)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return n


def add_repeat(ap: argparse.ArgumentParser, default: int = 5,
               help: str = "runs per backend, alternated; figures are their medians") -> None:
    """Add --repeat N (at least 1) to `ap`; `help` says what is repeated."""
    ap.add_argument("--repeat", type=_at_least_one, default=default, metavar="N", help=f"{help} (default {default})")


def add_json(ap: argparse.ArgumentParser, help: str = "print the figures as one JSON object at the end") -> None:
    """Add --json to `ap`."""
    ap.add_argument("--json", action="store_true", help=help)


def add_corpus(ap: argparse.ArgumentParser) -> None:
    """Add --corpus DIR (a Path; default $VM32_UM_CORPUS, else ../shared/um) to `ap`."""
    ap.add_argument("--corpus", type=Path, default=Path(os.environ.get("VM32_UM_CORPUS", SHARED / "um")),
                    help="directory with sandmark.umz and sandmark.expected (default $VM32_UM_CORPUS or "
                         "../shared/um)")


def alternated(repeat: int, names: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(round, name) for `repeat` rounds of every name in turn: a, b, a, b, ..."""
    names = list(names)
    for i in range(repeat):
        for name in names:
            yield i, name


def medians(runs: dict[str, list[float]]) -> dict[str, float]:
    """The median of every list of `runs`, under the same names."""
    return {name: statistics.median(values) for name, values in runs.items()}


def load_average() -> float:
    """The host's load average over the last minute."""
    return os.getloadavg()[0]


def load_line() -> str:
    """The line every script prints beside its figures."""
    return f"load average {load_average():.1f} on {os.cpu_count()} CPUs (wall times stretch under load)"


def compile_c(source: Path, exe: Path) -> Path | None:
    """Compile the C file `source` into `exe` with cc -O2 (the reference programs); None when
    the host has no C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    subprocess.run([cc, "-O2", "-o", str(exe), str(source)], check=True)
    return exe
