"""`vm32 demo`: several built-in UM programs as processes of one paged machine with too
little physical memory, a live view of frames, faults and swap traffic, and a final report.

The programs (src/vm32/um/programs, assembled with vm32's assembler) check their own
results and print them:

    demo.uma     a self-checking tour of the UM (arithmetic, arrays, load program)
    sieve.uma    the sieve of Eratosthenes over a 4 MB array (sequential sweeps)
    lists.uma    a linked list of 100 000 two-word arrays (many tiny segments)
    scatter.uma  300 000 random updates of a 1 MB array (no locality at all)

Together they need about 1 700 pages; the machine has DEMO_FRAMES frames, so
the kernel pages them through the swap file all the time.  Each program runs on a
host thread of its own (one CPU each).  At the end every program's output is
compared with a solo run of the same program on the flat backend (no paging):
they must be identical.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from importlib import resources

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vm32.defaults import DEFAULT_POLICY, DEMO_FRAMES, format_count
from vm32.errors import VM32Error
from vm32.memory import PAGE_SIZE

PROGRAMS = ("demo.uma", "sieve.uma", "lists.uma", "scatter.uma")
COLOURS = ("green", "magenta", "cyan", "yellow", "blue", "red")


class _Tee(io.RawIOBase):
    """Writes to a LinePrefixWriter (the terminal) and keeps a copy (for the check)."""

    def __init__(self, out):
        super().__init__()
        self.out, self.copy = out, io.BytesIO()

    def writable(self) -> bool:  # noqa: D102 - io API
        return True

    def write(self, data) -> int:  # noqa: D102 - io API
        self.copy.write(data)
        return self.out.write(data)

    def close(self) -> None:  # noqa: D102 - io API
        self.out.close()
        super().close()


def assemble_builtin(name: str):
    """The words of built-in program `name` (a file of src/vm32/um/programs)."""
    from vm32.um.asm import assemble

    return assemble(resources.files("vm32.um").joinpath("programs", name).read_text(), name)


def run_demo(frames: int = DEMO_FRAMES, policy: str = DEFAULT_POLICY, *, stdout=None, stderr=None,
             live: bool | None = None) -> int:
    """Run the showcase; program output goes to `stdout` (binary), the view and report to
    `stderr` (text).  Returns 0 when every program's output equals its solo flat run."""
    from vm32.um.machine import run_program
    from vm32.um.multi import LinePrefixWriter, run_programs

    stdout = stdout if stdout is not None else sys.stdout.buffer
    stderr = stderr if stderr is not None else sys.stderr
    console = Console(file=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(file=stderr, highlight=False, width=120)
    if live is None:
        live = console.is_terminal
    words = [assemble_builtin(n) for n in PROGRAMS]
    names = [n.removesuffix(".uma") for n in PROGRAMS]
    lock = threading.Lock()
    width = max(len(n) for n in names)
    shared_terminal = live and _isatty(stdout)
    sink = _ConsoleSink(console) if shared_terminal else stdout  # printed above the live view
    tees = [_Tee(LinePrefixWriter(sink, f"{n:<{width}} | ", lock)) for n in names]
    console.print(
        f"[bold]vm32 demo[/]: {len(PROGRAMS)} UM programs as processes of one paged machine with "
        f"{frames} frames ({frames * PAGE_SIZE >> 10} KiB) of physical memory, policy {policy}; "
        f"together they use about 7 MB, so the kernel keeps paging them through a swap file. "
        f"Each runs on its own host thread (its own CPU and TLB).", soft_wrap=True)
    view = _LiveView(names, frames)
    t0 = time.perf_counter()
    with Live(console=console, auto_refresh=False, transient=False) if live else _NoLive() as screen:
        def tick(machine, runs) -> None:
            screen.update(view.render(machine, runs, time.perf_counter() - t0), refresh=True)

        runs, mstats = run_programs(words, names=names, outputs=tees, frames=frames, policy=policy,
                                    memory_size="16M", on_tick=tick if live else None, tick_seconds=0.2)
    elapsed = time.perf_counter() - t0
    for t in tees:
        t.close()
    console.print(_report(runs, mstats, elapsed))
    ok = True
    for name, w, run, tee in zip(names, words, runs, tees):
        solo = run_program(w, backend="flat", memory_size="64M").output
        same = run.error is None and tee.copy.getvalue() == solo
        ok &= same
        verdict = "[green]identical to its solo run on the flat backend[/]" if same else (
            f"[red]differs from its solo run ({run.error or 'output'})[/]")
        console.print(f"  {name:<{width}}  {verdict}")
    console.print(
        f"summary: {len(runs)} processes, {frames} frames, {mstats['page_faults']:,} page faults, "
        f"{mstats['swap_bytes_in'] >> 20:,} MiB swapped in, {mstats['swap_bytes_out'] >> 20:,} MiB out, "
        f"{elapsed:.1f} s: {'all outputs verified' if ok else 'OUTPUTS DIFFER'}", soft_wrap=True)
    if not ok:
        raise VM32Error("demo: a program's output on the paged machine differs from its solo run")
    return 0


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class _ConsoleSink(io.RawIOBase):
    """Program output on the terminal that shows the live view: printed through its console,
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


class _NoLive:
    """Stands in for rich.live.Live when stderr is not a terminal."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, *args, **kwargs) -> None:
        pass


class _LiveView:
    """The live picture: per process its state, progress and paging, and who holds the frames."""

    def __init__(self, names, frames: int):
        self.names, self.frames = names, frames

    def render(self, machine, runs, seconds: float):
        from vm32.kernel.layout import FREE, FT_OWNER, KERNEL

        owners = machine.ms.ft[:, FT_OWNER].copy()
        t = Table(box=None, pad_edge=False, expand=False)
        for col in ("process", "state", "instr", "faults", "swap in", "outs", "frames held"):
            t.add_column(col, justify="left" if col in ("process", "state", "frames held") else "right")
        strip = Text()
        pid_colour = {}
        for i, run in enumerate(runs):
            colour = COLOURS[i % len(COLOURS)]
            um = run.um
            if um is None:
                t.add_row(run.name, "[red]failed to load[/]", "", "", "", "", "")
                continue
            pid = um.paged.proc.pid
            pid_colour[pid] = colour
            alive = run.thread is not None and run.thread.is_alive()
            state = "[yellow]running[/]" if alive else ("[green]halted[/]" if run.error is None else "[red]failed[/]")
            k = um.paged.proc.stats()
            held = int((owners == pid).sum())
            t.add_row(Text(run.name, style=colour), state, format_count(int(um.st[1])), format_count(k["page_faults"]),
                      f"{k['swap_bytes_in'] >> 20:,} MiB", format_count(k["page_outs"]),
                      Text("#" * max(held * 40 // self.frames, 1 if held else 0), style=colour) + f" {held}")
        # one character per frame (at most 160): whose page it holds
        step = max(1, len(owners) // 160)
        for f in range(0, len(owners), step):
            o = int(owners[f])
            if o == FREE:
                strip.append(".", style="dim")
            elif o == KERNEL or o not in pid_colour:
                strip.append("k", style="white")
            else:
                strip.append("#", style=pid_colour[o])
        s = machine.stats()
        head = Text(f"{seconds:5.1f} s   machine: {s['page_faults']:,} page faults, "
                    f"{s['swap_bytes_in'] >> 20:,} MiB in / {s['swap_bytes_out'] >> 20:,} MiB out of swap, "
                    f"{s['pinned_frames']} frames pinned (kernel, page tables)")
        return Group(head, t, Text("frames: ") + strip)


def _report(runs, mstats: dict, seconds: float) -> Table:
    """The final statistics: one row per process, one for the machine."""
    from rich import box

    t = Table(title=f"vm32 demo: {len(runs)} processes on {mstats['frames']} frames, {seconds:.1f} s",
              box=box.SIMPLE_HEAD, caption="instr: UM instructions; outs: pages written to swap")
    for col in ("process", "instr", "arrays", "faults", "outs", "MiB in", "MiB out", "TLB %", "sec"):
        t.add_column(col, justify="left" if col == "process" else "right", no_wrap=True)
    for r in runs:
        s = r.stats
        t.add_row(r.name, format_count(s.get("instructions", 0)), format_count(s.get("segments_mapped", 0)),
                  format_count(s.get("page_faults", 0)), format_count(s.get("page_outs", 0)), f"{s.get('swap_bytes_in', 0) >> 20:,}",
                  f"{s.get('swap_bytes_out', 0) >> 20:,}", f"{100 * s.get('tlb_hit_rate', 0):.2f}",
                  f"{s.get('wall_seconds', 0):.1f}")
    m = mstats
    t.add_row("machine", "", "", format_count(m["page_faults"]), format_count(m["page_outs"]),
              f"{m['swap_bytes_in'] >> 20:,}", f"{m['swap_bytes_out'] >> 20:,}",
              f"{100 * m['tlb_hits'] / m['accesses']:.2f}" if m["accesses"] else "-", "")
    return t
