"""Live views: what a terminal shows while programs run (status lines, `vm32 demo`'s picture).

They read counters (`stats()`) and the frame owners (vm32.kernel.inspect) a few
times a second and return rich renderables; they change nothing.
"""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from vm32.defaults import format_count, format_percent, format_rate, format_size, format_seconds
from vm32.kernel.inspect import OWNER_FREE, frame_owners

COLOURS = ("green", "magenta", "cyan", "yellow", "blue", "red")
STRIP_WIDTH = 64  # characters of the frame strip: one per frame, or per group of frames
BAR_WIDTH = 16  # characters of a process's "frames held" bar at 100% of the frames


def um_status_text(name: str, stats: dict, seconds: float) -> Text:
    """`vm32 um run`'s status line: instructions, speed and (paged) the paging traffic."""
    n = stats["instructions"]
    t = Text()
    t.append(f"{name} ", style="bold")
    t.append(f"{format_count(n)} instructions, {format_rate(n / max(seconds, 1e-9), 'instructions')}")
    if "page_faults" in stats:
        t.append(f" | {stats['frames']} frames, {format_count(stats['page_faults'])} faults, swap "
                 f"{format_size(stats['swap_bytes_in'])} in, {format_size(stats['swap_bytes_out'])} out, "
                 f"TLB hit {format_percent(stats['tlb_hit_rate'])}", style="cyan")
    t.append(f" {format_seconds(seconds)}", style="dim")
    return t


def several_status_text(machine_stats: dict, runs, seconds: float) -> Text:
    """The status line of several programs at once: the machine's totals."""
    s = machine_stats
    done = sum(1 for r in runs if r.thread is not None and not r.thread.is_alive())
    instructions = sum(r.um.stats()["instructions"] for r in runs if r.um is not None)
    t = Text()
    t.append(f"{len(runs)} processes, {done} done  ", style="bold")
    t.append(f"{format_count(instructions)} instructions  ")
    t.append(f"frames {s['frames'] - s['free_frames']}/{s['frames']}  faults {format_count(s['page_faults'])}  "
             f"swap {format_size(s['swap_bytes_in'])} in, {format_size(s['swap_bytes_out'])} out", style="cyan")
    t.append(f"  {format_seconds(seconds)}", style="dim")
    return t


class DemoLiveView:
    """`vm32 demo`'s live picture: per process its state, progress and paging, and who holds
    the frames (a strip, one character per frame or group of frames)."""

    def __init__(self, frames: int):
        self.frames = frames

    def render(self, machine, runs, seconds: float) -> Group:
        """The picture now, from `machine` (a vm32.kernel Machine) and the ProcessRuns `runs`."""
        owners = frame_owners(machine)
        t = Table(box=None, pad_edge=False, expand=False)
        for col in ("process", "state", "instr", "faults", "swap in", "outs", "frames held"):
            t.add_column(col, justify="left" if col in ("process", "state", "frames held") else "right",
                         no_wrap=True)
        colour_of: dict[int, str] = {}
        for i, run in enumerate(runs):
            colour = COLOURS[i % len(COLOURS)]
            if run.um is None:
                t.add_row(run.name, Text("failed to load", style="red"), "", "", "", "", "")
                continue
            pid = run.um.paged.proc.pid
            colour_of[pid] = colour
            s = run.um.stats()
            held = int((owners == pid).sum())
            bar = Text("#" * max(held * BAR_WIDTH // self.frames, 1 if held else 0), style=colour)
            t.add_row(Text(run.name, style=colour), _state(run), format_count(s["instructions"]),
                      format_count(s["page_faults"]), format_size(s["swap_bytes_in"]),
                      format_count(s["page_outs"]), bar + f" {held}")
        s = machine.stats()
        head = Text(f"{format_seconds(seconds)}  machine: {format_count(s['page_faults'])} page faults, swap "
                    f"{format_size(s['swap_bytes_in'])} in, {format_size(s['swap_bytes_out'])} out, "
                    f"{s['pinned_frames']} frames pinned")
        legend = Text("frames: # a process's page (its colour), k kernel or page table, . free", style="dim")
        return Group(head, t, Text("frames: ") + _strip(owners, colour_of), legend)


def _state(run) -> Text:
    if run.thread is not None and run.thread.is_alive():
        return Text("running", style="yellow")
    return Text("halted", style="green") if run.error is None else Text("failed", style="red")


def _strip(owners, colour_of: dict[int, str]) -> Text:
    """One character per frame, or per group of frames beyond STRIP_WIDTH (its first frame)."""
    strip = Text()
    step = max(1, -(-len(owners) // STRIP_WIDTH))
    for f in range(0, len(owners), step):
        o = int(owners[f])
        if o == OWNER_FREE:
            strip.append(".", style="dim")
        elif o in colour_of:
            strip.append("#", style=colour_of[o])
        else:
            strip.append("k", style="white")
    return strip


class ConsoleSink(io.RawIOBase):
    """Program output on the terminal that shows a live view: printed through its console,
    which keeps the view below the lines."""

    def __init__(self, console: Console):
        super().__init__()
        self.console = console

    def writable(self) -> bool:  # noqa: D102 - io API
        return True

    def write(self, data) -> int:  # noqa: D102 - io API
        self.console.print(bytes(data).decode("utf-8", "replace"), end="", markup=False, highlight=False,
                           soft_wrap=True)
        return len(data)


class NoLive:
    """Stands in for rich.live.Live when the view is off (stderr is not a terminal)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, *args, **kwargs) -> None:
        """Nothing to draw."""
