"""Plots with matplotlib (the ``vm32[plot]`` extra): where they go, how they are written,
and the paging lab's miss-ratio curves.

Every plot is checked before any work is done (`plot_targets`: matplotlib is installed,
the directory can be made, no file would be overwritten) and written whole or not at
all (`save_figure`, through vm32.files.atomic_output).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vm32.errors import InvalidArgument
from vm32.files import atomic_output

MISS_RATIO_PLOT = "miss_ratio.png"


def plot_targets(directory: str | Path, names: list[str]) -> dict[str, Path]:
    """The paths ``DIR/NAME`` that --plot DIR will write, keyed by name; InvalidArgument if
    matplotlib is missing, the directory cannot be made, or one of them exists."""
    if importlib.util.find_spec("matplotlib") is None:
        raise InvalidArgument("--plot needs matplotlib: pip install 'vm32[plot]'")
    root = Path(directory)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidArgument(f"--plot {directory}: cannot make the directory: {e.strerror}") from None
    paths = {name: root / name for name in names}
    for path in paths.values():
        if path.exists():
            raise InvalidArgument(f"{path} exists: vm32 does not overwrite files; remove it or choose another --plot DIR")
    return paths


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write `fig` as a PNG at `path`, whole or not at all, and release it."""
    try:
        with atomic_output(path) as f:
            fig.savefig(f, format="png")
    finally:
        pyplot().close(fig)


def plot_miss_ratios(results: list, path: Path, title: str = "") -> None:
    """Miss ratio against frames, one line per policy (vm32.trace.sim.SimResult rows)."""
    fig, ax = pyplot().subplots(figsize=(7, 4.5), dpi=110)
    for policy in dict.fromkeys(r.policy for r in results):
        rows = sorted((r.frames, r.miss_ratio) for r in results if r.policy == policy)
        ax.plot([f for f, _ in rows], [m for _, m in rows], marker="o", markersize=3, label=policy)
    frames = sorted({r.frames for r in results})
    if frames and frames[-1] >= 8 * frames[0]:
        ax.set_xscale("log", base=2)
    ax.set_xlabel("frames (4 KiB)")
    ax.set_ylabel("miss ratio")
    ax.set_ylim(bottom=0)
    ax.set_title(f"miss ratio{': ' + title if title else ''}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
