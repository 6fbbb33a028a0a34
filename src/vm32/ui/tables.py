"""Tables: what the lower layers return as rows and counters, rendered as rich Tables.

Every table fits 80 columns (counts are short, `format_count`; sizes, rates and
percentages carry their units, vm32.defaults) and says what its columns mean in
a legend (its caption).
"""

from __future__ import annotations

from typing import Iterable

from rich import box
from rich.console import Console
from rich.table import Table

from vm32.defaults import format_count, format_percent, format_rate, format_seconds, format_size
from vm32.ui.terminal import isatty

WIDTH = 80
"""Columns of a console that is not a terminal (a file, a pipe, a test's buffer)."""


class PipeConsole(Console):
    """A rich Console that lets a BrokenPipeError through (the reader of a pipe went away):
    rich's own ends the process with status 1; vm32's commands end quietly with 141."""

    def on_broken_pipe(self) -> None:  # noqa: D102 - rich API
        self.quiet = True
        raise BrokenPipeError("the reader of the output went away")


def console_for(stream) -> PipeConsole:
    """A console on text stream `stream`: on a terminal, rich's own (colours, the terminal's
    width); else plain text WIDTH columns wide whatever the environment says (FORCE_COLOR,
    TTY_COMPATIBLE, COLUMNS), so what a file, a pipe or a test's buffer gets never depends on
    where the command runs."""
    if isatty(stream):
        return PipeConsole(file=stream, highlight=False)
    return PipeConsole(file=stream, highlight=False, force_terminal=False, width=WIDTH)


def _table(title: str, caption: str) -> Table:
    """A table whose columns are two spaces apart (collapse_padding: one padding between cells)."""
    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False,
                 caption_justify="left")


def _columns(t: Table, names: Iterable[str], left: Iterable[str]) -> None:
    """Add columns `names`: those in `left` left-aligned and folded if long (names, words),
    the others right-aligned and never wrapped (figures)."""
    for name in names:
        words = name in left
        t.add_column(name, justify="left" if words else "right", no_wrap=not words, overflow="fold",
                     min_width=len(name))


def hit_rate(stats: dict) -> str:
    """The TLB hit rate of kernel counters (tlb_hits / accesses) as a percentage, or "-"."""
    return format_percent(stats["tlb_hits"] / stats["accesses"]) if stats.get("accesses") else "-"


# ---- the kernel's tables --------------------------------------------------------------------------


def page_table_view(rows: list[dict], title: str = "page table") -> Table:
    """A process's page table (`Process.page_table()`'s rows) as a Table."""
    t = _table(title, "page: virtual address of the page; PTE: its page-table entry; flags: "
                      "P present, W writable, U user, A accessed, D dirty, G global")
    _columns(t, ("page", "PTE", "frame", "flags", "where"), left=("flags", "where"))
    for r in rows:
        t.add_row(f"{r['va']:#010x}", f"{r['pte']:#010x}", "-" if r["frame"] is None else str(r["frame"]),
                  r["flags"], r["where"])
    return t


def frame_table_view(rows: list[dict], title: str = "frame table", limit: int | None = None) -> Table:
    """The frame table (`Machine.frame_table()`'s rows, the first `limit` if given) as a Table."""
    t = _table(title, "owner: pid, kernel or - (free); page: the virtual page it holds; A, D: "
                      "accessed, dirty; slot: the swap slot holding a copy")
    _columns(t, ("frame", "owner", "kind", "page", "pinned", "A", "D", "slot"), left=("kind",))
    for r in rows[:limit] if limit else rows:
        t.add_row(str(r["frame"]), str(r["owner"]), r["kind"], "-" if r["va"] is None else f"{r['va']:#010x}",
                  "yes" if r["pinned"] else "", "A" if r["accessed"] else "", "D" if r["dirty"] else "",
                  "-" if r["slot"] < 0 else str(r["slot"]))
    return t


def paging_demo_view(result) -> Table:
    """`vm32 paging demo`'s figures (a vm32.kernel.demo.PagingDemoResult): one row per process
    and one for the machine."""
    t = _table(f"paging statistics ({result.frames} frames, policy {result.policy})",
               "faults: page faults; zero, image, swap: pages brought in by zero fill, from the image, "
               "from swap; outs: pages written to swap (4 KiB each); evict: frames taken back; "
               "bad: words read back wrong")
    _columns(t, ("process", "accesses", "TLB hit", "faults", "zero", "image", "swap", "outs", "evict", "bad"),
             left=("process",))

    def row(name: str, s: dict, bad) -> None:
        t.add_row(name, format_count(s["accesses"]), hit_rate(s),
                  *(format_count(s[k]) for k in ("page_faults", "zero_fill", "image_in", "swap_in",
                                                 "page_outs", "evictions")), format_count(bad))

    for pid, (s, bad) in enumerate(zip(result.process_stats, result.wrong)):
        row(str(pid), s, bad)
    row("all", result.machine_stats, result.wrong_words)
    return t


# ---- the Universal Machine's tables ---------------------------------------------------------------

_RATES = {"instructions_per_second": "instructions"}


def run_stats_view(stats: dict, title: str) -> Table:
    """A UM run's `stats()` as a two-column Table: sizes, times, rates and percentages with units."""
    t = Table(title=title, show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    for key, value in stats.items():
        t.add_row(key.replace("_", " "), stat_text(key, value))
    return t


def stat_text(key: str, value) -> str:
    """One statistic for a person, its unit chosen by its key (a "bytes" word, ..._seconds, ..._rate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if key in _RATES:
        return format_rate(value, _RATES[key])
    if "bytes" in key.split("_"):
        return format_size(int(value))
    if key.endswith("_seconds"):
        return format_seconds(value)
    if key.endswith("_rate"):
        return format_percent(value)
    return f"{value:,}"


def runs_view(runs, machine_stats: dict) -> Table:
    """Several programs' statistics (vm32.um.multi's ProcessRuns) and the machine's totals."""
    t = _table(f"vm32 um run: {len(runs)} processes on {machine_stats['frames']} frames",
               "instr: UM instructions; faults: page faults; swap-ins, outs: pages read from and "
               "written to swap (4 KiB each); TLB hit: of memory accesses")
    _columns(t, ("program", "result", "instr", "time", "faults", "swap-ins", "outs", "TLB hit"),
             left=("program", "result"))
    for r in runs:
        s = r.stats
        result = "halted" if r.halted else ("error" if r.error else "stopped")
        t.add_row(r.name, result, format_count(s.get("instructions", 0)), format_seconds(s.get("wall_seconds", 0)),
                  format_count(s.get("page_faults", 0)), format_count(s.get("page_ins_from_swap", 0)),
                  format_count(s.get("page_outs", 0)), format_percent(s.get("tlb_hit_rate", 0)))
    m = machine_stats
    t.add_row("machine", "", "", "", format_count(m["page_faults"]), format_count(m["swap_in"]),
              format_count(m["page_outs"]), hit_rate(m))
    return t


def demo_report_view(runs, machine_stats: dict, seconds: float) -> Table:
    """`vm32 demo`'s final table: one row per process, one for the machine."""
    t = _table(f"vm32 demo: {len(runs)} processes on {machine_stats['frames']} frames, {format_seconds(seconds)}",
               "instr: UM instructions; arrays: segments mapped; outs: pages written to swap; "
               "swap in, out: swap traffic; TLB hit: of memory accesses")
    _columns(t, ("process", "instr", "arrays", "faults", "outs", "swap in", "swap out", "TLB hit", "time"),
             left=("process",))
    for r in runs:
        s = r.stats
        t.add_row(r.name, format_count(s.get("instructions", 0)), format_count(s.get("segments_mapped", 0)),
                  format_count(s.get("page_faults", 0)), format_count(s.get("page_outs", 0)),
                  format_size(s.get("swap_bytes_in", 0)), format_size(s.get("swap_bytes_out", 0)),
                  format_percent(s.get("tlb_hit_rate", 0)), format_seconds(s.get("wall_seconds", 0)))
    m = machine_stats
    t.add_row("machine", "", "", format_count(m["page_faults"]), format_count(m["page_outs"]),
              format_size(m["swap_bytes_in"]), format_size(m["swap_bytes_out"]), hit_rate(m), "")
    return t
