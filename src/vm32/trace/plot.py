"""Drawing miss-ratio curves with matplotlib (the ``vm32[plot]`` extra)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from vm32.errors import InvalidArgument
from vm32.trace.sim import SimResult

PLOT_NAME = "miss_ratio.png"


def check_plot_target(directory: Path) -> Path:
    """The plot's path in `directory` (created if missing); InvalidArgument if matplotlib is
    missing, the directory cannot be made, or the plot file exists (never overwritten)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise InvalidArgument("--plot needs matplotlib: pip install 'vm32[plot]'")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidArgument(f"--plot {directory}: cannot make the directory: {e.strerror}") from None
    path = directory / PLOT_NAME
    if path.exists():
        raise InvalidArgument(f"{path} exists: vm32 does not overwrite files; remove it or choose another --plot DIR")
    return path


def plot_miss_ratios(results: list[SimResult], path: Path, title: str = "") -> None:
    """Draw miss ratio against frames, one line per policy, into `path` (written whole or not at all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
