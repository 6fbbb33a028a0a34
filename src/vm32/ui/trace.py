"""What `vm32 trace sim` and `vm32 trace sweep` print: a table, CSV, JSON, FINALSTATS lines,
the step-by-step lines of ``--explain``, and a sweep's progress bar.

The table fits 80 columns; its legend follows it.  JSON and CSV carry the raw
values (counts, fractions, references per second) under the names of
`vm32.trace.sim.FIELDS`; a figure a run did not measure (LRU's write-backs in
a sweep, which come from stack distances) is null in JSON and empty in CSV.
"""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np

from vm32.defaults import format_count, format_percent
from vm32.trace.readers import Trace
from vm32.trace.sim import E_FAULT, E_FRAME, E_TLB, E_VICTIM, E_VICTIM_VPN, E_WRITEBACK, FIELDS, SimResult

_HEAD = (f"{'policy':<11} {'frames':>7} {'refs':>7} {'misses':>7} {'cold':>7} {'miss':>6} {'wback':>7} "
         f"{'TLB hit':>7} {'M refs/s':>8}")
LEGEND = ("counts in K, M, G (thousands, millions, billions; --json has them exact); miss: misses per "
          "reference; cold: first references to a page (among the misses); wback: evictions of Dirty "
          "pages (write-backs); TLB hit: references that hit the TLB; M refs/s: millions of references "
          "simulated per second.")


def _pct(x) -> str:
    return "-" if x is None else format_percent(x)


def table(results: list[SimResult]) -> str:
    """The results as a text table (80 columns, whatever the figures) with its legend: counts
    short (`format_count`), percentages with one decimal, as in every vm32 table."""
    lines = [_HEAD, "-" * len(_HEAD)]
    for r in results:
        wb = "-" if r.writebacks is None else format_count(r.writebacks)
        tlb = "-" if r.tlb_hit_rate is None or not r.tlb else _pct(r.tlb_hit_rate)
        lines.append(f"{r.policy:<11} {format_count(r.frames):>7} {format_count(r.refs):>7} "
                     f"{format_count(r.misses):>7} {format_count(r.cold_misses):>7} {_pct(r.miss_ratio):>6} "
                     f"{wb:>7} {tlb:>7} {r.refs_per_s / 1e6:>8.1f}")
    return "\n".join(lines) + "\n" + _wrap(LEGEND)


def _wrap(text: str, width: int = 80) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def finalstats(r: SimResult) -> str:
    """The greppable summary line of one replay, as the OSTEP simulator ends its output."""
    return (f"FINALSTATS policy {r.policy} frames {r.frames} hits {r.hits} misses {r.misses} "
            f"hitrate {100 * r.hits / r.refs:.2f}")


def json_text(results: list[SimResult]) -> str:
    """A JSON list of objects, one per policy and frame count, with the fields of FIELDS."""
    return json.dumps([r.as_dict() for r in results], indent=2)


def csv_text(results: list[SimResult]) -> str:
    """CSV with a header of the FIELDS names."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIELDS)
    for r in results:
        w.writerow(["" if v is None else v for v in r.as_dict().values()])
    return out.getvalue()


def explain_lines(trace: Trace, policy: str, frames: int, ev: np.ndarray, reason: str) -> list[str]:
    """One line per reference: TLB hit or miss, the walk, hit or fault, the victim and why,
    the resident pages after it (in frame order).  `reason` is the policy's own words for
    its choice; FIFO, LRU and OPT add when the victim was loaded, last used or next used."""
    label = trace.page_label
    resident: dict[int, int] = {}  # frame -> vpn
    loaded: dict[int, int] = {}  # vpn -> step it came in
    used: dict[int, int] = {}  # vpn -> last step it was referenced
    width = len(str(trace.refs))
    lines = [f"{policy}, {frames} frames: step, R/W, page, TLB, walk, result, victim [why] -> resident"]
    for i in range(trace.refs):
        vpn = int(trace.vpns[i])
        tlb = {1: "TLB hit ", 0: "TLB miss", -1: "no TLB  "}[int(ev[i, E_TLB])]
        walk = "walk" if ev[i, E_TLB] != 1 else "    "
        rw = "W" if trace.writes[i] else "R"
        if ev[i, E_FAULT]:
            result = "MISS (cold)" if vpn not in loaded else "MISS       "
            victim = "free frame"
            if ev[i, E_VICTIM] >= 0:
                gone = int(ev[i, E_VICTIM_VPN])
                why = reason
                if policy == "fifo":
                    why += f", loaded at step {loaded[gone] + 1}"
                elif policy == "lru":
                    why += f", last used at step {used[gone] + 1}"
                elif policy == "opt":
                    nxt = _next_use(trace, gone, i)
                    why += ", never used again" if nxt is None else f", next used at step {nxt + 1}"
                victim = f"evict {label(gone)}{' (dirty: written back)' if ev[i, E_WRITEBACK] else ''} [{why}]"
            loaded[vpn] = i
        else:
            result, victim = "hit        ", ""
        used[vpn] = i
        resident[int(ev[i, E_FRAME])] = vpn
        pages = " ".join(str(label(resident[f])) for f in sorted(resident))
        lines.append(f"{i + 1:>{width}}  {rw} {label(vpn):<6} {tlb} {walk} {result} {victim} -> [{pages}]".rstrip())
    return lines


def _next_use(trace: Trace, vpn: int, i: int):
    """The step of the next reference to `vpn` after step i, or None."""
    later = np.nonzero(trace.vpns[i + 1:] == vpn)[0]
    return int(later[0]) + i + 1 if later.size else None



class SweepProgress:
    """A progress bar on stderr while a sweep runs (on a terminal only): a context manager
    whose value is the ``progress(done, total)`` callback of vm32.trace.sweep.sweep."""

    def __init__(self, total: int):
        self.total = total
        self.bar = None

    def __enter__(self):
        if sys.stderr.isatty() and self.total > 1:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("sweep", total=self.total)
        return self.tick

    def tick(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
