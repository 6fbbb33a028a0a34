"""The allocator lab's presentation: the replay table, a progress bar that appears only for
work longer than a second, and the replay plots (matplotlib, the ``vm32[plot]`` extra)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from vm32.defaults import format_count, format_percent, format_size
from vm32.ui.plots import pyplot, save_figure
from vm32.ui.tables import _columns, _table

REPLAY_LEGEND = ("ns/op: wall time per operation; footprint: the heap's high-water extent; peak: the most "
                 "bytes requested by live blocks at once; ratio: footprint / peak; int: bytes in live "
                 "blocks beyond those requested, at the peak; ext: 1 - largest free block / free bytes "
                 "inside the footprint, at the end; largest: that block; list: blocks on the free "
                 "lists and caches at the end")


def replay_table(rows: list[dict], title: str) -> Table:
    """`vm32 heap replay`'s figures (vm32.heap.replay's dicts), one row per policy (80 columns)."""
    t = _table(title, REPLAY_LEGEND)
    _columns(t, ("policy", "ns/op", "footprint", "peak", "ratio", "int", "ext", "largest", "list"),
             left=("policy",))
    for r in rows:
        policy = r["policy"] + (f" ({format_count(r['failed'])} failed)" if r.get("failed") else "")
        t.add_row(policy, f"{r['ns_per_op']:.1f}", format_size(r["footprint_bytes"]),
                  format_size(r["peak_live_bytes"]), f"{r['footprint_ratio']:.2f}x",
                  format_percent(r["internal_frag"]), format_percent(r["external_frag"]),
                  format_size(r["largest_free"]), format_count(r["free_list_len"]))
    return t


class LazyProgress:
    """A rich progress bar on `console` that shows up only once the work has taken `delay`
    seconds (and only on a terminal); `update(done, total)` between pieces of work."""

    def __init__(self, console, description: str, delay: float = 1.0):
        self.console = console
        self.description = description
        self.delay = delay
        self.start = time.perf_counter()
        self.bar = None
        self.task = None

    def update(self, done: int, total: int) -> None:
        """Note progress; start the bar when the work has lasted `delay` seconds."""
        if self.bar is None:
            if not self.console.is_terminal or time.perf_counter() - self.start < self.delay:
                return
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                TimeElapsedColumn(), console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=total)
        self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        """Remove the bar, if it showed."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> "LazyProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- plots ---------------------------------------------------------------------------------------


def plot_heap_map(picture, path: Path) -> None:
    """Draw a vm32.heap.picture.HeapPicture: address against operation number, live blocks
    coloured by size class, free space white."""
    from matplotlib.colors import ListedColormap

    plt = pyplot()

    classes = picture.class_edges
    colours = ["white"] + [plt.get_cmap("viridis")(i / max(len(classes) - 2, 1)) for i in range(len(classes) - 1)]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    image = ax.imshow(picture.raster, origin="lower", aspect="auto", interpolation="nearest",
                      cmap=ListedColormap(colours), vmin=-0.5, vmax=len(colours) - 0.5,
                      extent=(0, picture.ops, picture.low, picture.high))
    bar = fig.colorbar(image, ax=ax, ticks=range(1, len(colours)))
    labels = [f"< {format_size(int(e))}" for e in classes[1:-1]] + [f">= {format_size(int(classes[-2]))}"]
    bar.ax.set_yticklabels(labels)
    bar.set_label("block size")
    ax.set_xlabel("operation")
    ax.set_ylabel("address")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{int(v):#x}")
    ax.set_title(f"heap map: {picture.trace}, {picture.policy}")
    fig.tight_layout()
    save_figure(fig, path)


def plot_footprints(pictures: list, path: Path) -> None:
    """Footprint and live bytes over time, one footprint line per policy (one live line:
    the trace's, the same for all)."""
    fig, ax = pyplot().subplots(figsize=(8, 4.5), dpi=110)
    first = pictures[0]
    ax.plot(first.sample_ops, first.live, color="black", linewidth=1.2, label="live bytes (requested)")
    for p in pictures:
        ax.plot(p.sample_ops, p.footprint, linewidth=1, label=f"footprint: {p.policy}")
    ax.set_xlabel("operation")
    ax.set_ylabel("bytes")
    ax.set_yscale("log")
    ax.set_title(f"footprint against live bytes: {first.trace}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


# ---- the UM's heap check ---------------------------------------------------------------------------


def leak_report(rows: list[dict], name: str, code_words=None) -> list[str]:
    """`vm32 um run --check-heap`'s report: the segments never unmapped, grouped by the pc of
    the map instruction that made them (most bytes first); one line if there are none."""
    if not rows:
        return [f"{name}: heap check: every segment mapped was unmapped"]
    sites: dict[int, list[int]] = {}
    for r in rows:
        sites.setdefault(r["site"], []).append(r["nbytes"])
    total = sum(r["nbytes"] for r in rows)
    lines = [f"{name}: heap check: {format_count(len(rows))} segment{'s' if len(rows) != 1 else ''} never "
             f"unmapped ({format_size(total)}), mapped at {len(sites)} pc{'s' if len(sites) != 1 else ''}:"]
    for site, sizes in sorted(sites.items(), key=lambda kv: (-sum(kv[1]), kv[0])):
        where = "pc=?" if site == 0xFFFFFFFF else f"pc={site:#x}"
        if code_words is not None and 0 <= site < len(code_words):
            from vm32.um.disasm import decode

            where += f" ({decode(int(code_words[site])) or 'not an instruction now'})"
        lines.append(f"  {where}: {format_count(len(sizes))} segment{'s' if len(sizes) != 1 else ''}, "
                     f"{format_size(sum(sizes))}")
    return lines
