"""`vm32 demo`: the built-in programs (vm32.um.showcase) as processes of one paged machine with
too little physical memory, a live view of frames, faults and swap traffic, a final report,
and each output checked against the program's solo run on the flat backend.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time

from rich.live import Live
from rich.text import Text

from vm32.defaults import DEFAULT_POLICY, DEMO_FRAMES, FRAME_SIZE, format_count, format_seconds, format_size
from vm32.errors import VM32Error
from vm32.ui.live import ConsoleSink, DemoLiveView, NoLive
from vm32.ui.tables import console_for, demo_report_view
from vm32.ui.terminal import LinePrefixWriter, isatty


class _Tee(io.RawIOBase):
    """Writes to `out` (the terminal; None: nowhere) and keeps a copy (for the check)."""

    def __init__(self, out):
        super().__init__()
        self.out, self.copy = out, io.BytesIO()

    def writable(self) -> bool:  # noqa: D102 - io API
        return True

    def write(self, data) -> int:  # noqa: D102 - io API
        self.copy.write(data)
        return self.out.write(data) if self.out is not None else len(data)

    def close(self) -> None:  # noqa: D102 - io API
        if self.out is not None:
            self.out.close()
        super().close()


def run_demo(frames: int = DEMO_FRAMES, policy: str = DEFAULT_POLICY, *, stdout=None, stderr=None,
             live: bool | None = None, as_json: bool = False) -> int:
    """Run the showcase; program output goes to `stdout` (binary), the view and report to
    `stderr` (text).  With `as_json` stdout gets one JSON document instead (the figures,
    each program's output and verdict).  Returns 0 when every program's output equals its
    solo run; a program's own error is raised, else VM32Error if an output differs."""
    from vm32.um.multi import run_programs
    from vm32.um.showcase import HEAP_SIZE, builtin_programs, solo_output

    stdout = stdout if stdout is not None else sys.stdout.buffer
    console = console_for(stderr if stderr is not None else sys.stderr)
    live = console.is_terminal if live is None else live
    names, words = builtin_programs()
    tees = _outputs(names, None if as_json else stdout, console if live else None)
    view = DemoLiveView(frames)
    start = time.perf_counter()
    machine_policy = []  # the policy's own name, once the machine exists
    with Live(console=console, auto_refresh=False, transient=False) if live else NoLive() as screen:
        def tick(machine, runs) -> None:
            if not machine_policy:  # the machine exists: its parameters are valid
                machine_policy.append(machine.policy)
                _banner(console, len(names), frames, machine.policy)
            if live:
                screen.update(view.render(machine, runs, time.perf_counter() - start), refresh=True)

        runs, mstats = run_programs(words, names=names, outputs=tees, frames=frames, policy=policy,
                                    memory_size=HEAP_SIZE, on_tick=tick, tick_seconds=0.2 if live else 1.0)
    seconds = time.perf_counter() - start
    mstats["policy"] = machine_policy[0] if machine_policy else policy
    for t in tees:
        t.close()
    same = [run.error is None and tee.copy.getvalue() == solo_output(w) for run, tee, w in zip(runs, tees, words)]
    if as_json:
        _print_json(stdout, frames, mstats, runs, tees, same, seconds)
    else:
        _report(console, runs, mstats, same, seconds)
    failed = [run.error for run in runs if run.error is not None]
    if failed:
        raise failed[0]  # the cause (too few frames, a full swap), not only "it differs"
    if not all(same):
        raise VM32Error("demo: a program's output on the paged machine differs from its solo run")
    return 0


def _outputs(names, stdout, console) -> list[_Tee]:
    """Each program's output: tagged lines on `stdout` (through the live view's console when
    both share a terminal), or kept only (stdout None); copies kept for the check."""
    if stdout is None:
        return [_Tee(None) for _ in names]
    lock = threading.Lock()
    width = max(len(n) for n in names)
    sink = ConsoleSink(console) if console is not None and isatty(stdout) else stdout
    return [_Tee(LinePrefixWriter(sink, f"{n:<{width}} | ", lock)) for n in names]


def _banner(console, programs: int, frames: int, policy: str) -> None:
    console.print(
        Text.assemble(("vm32 demo", "bold"),
                      f": {programs} UM programs as processes of one paged machine with {frames} frames "
                      f"({format_size(frames * FRAME_SIZE)}) of physical memory, policy {policy}; together "
                      f"they use about 7 MB, so the kernel keeps paging them through a swap file. Each runs "
                      f"on its own host thread (its own CPU and TLB)."), soft_wrap=True)


def _report(console, runs, mstats: dict, same: list[bool], seconds: float) -> None:
    console.print(demo_report_view(runs, mstats, seconds))
    width = max(len(r.name) for r in runs)
    for run, ok in zip(runs, same):
        if ok:
            verdict = Text("identical to its solo run on the flat backend", style="green")
        elif run.error is not None:
            verdict = Text(f"failed: {run.error}", style="red")
        else:
            verdict = Text("differs from its solo run on the flat backend", style="red")
        console.print(Text(f"  {run.name:<{width}}  ") + verdict, soft_wrap=True)
    console.print(
        f"summary: {len(runs)} processes, {mstats['frames']} frames, {format_count(mstats['page_faults'])} page "
        f"faults, swap {format_size(mstats['swap_bytes_in'])} in, {format_size(mstats['swap_bytes_out'])} out, "
        f"{format_seconds(seconds)}: {_verdict(runs, same)}", soft_wrap=True)


def _verdict(runs, same: list[bool]) -> str:
    failed = sum(run.error is not None for run in runs)
    if failed:
        return f"{failed} of {len(runs)} programs failed"
    return "all outputs verified" if all(same) else "OUTPUTS DIFFER"


def _print_json(stdout, frames: int, mstats: dict, runs, tees, same: list[bool], seconds: float) -> None:
    doc = dict(frames=frames, policy=mstats["policy"], seconds=seconds, verified=all(same), machine=mstats,
               processes=[dict(name=r.name, stats=r.stats, error=None if r.error is None else str(r.error),
                               identical_to_solo=ok, output=t.copy.getvalue().decode("utf-8", "replace"))
                          for r, t, ok in zip(runs, tees, same)])
    stdout.write((json.dumps(doc, indent=1) + "\n").encode())
    stdout.flush()
