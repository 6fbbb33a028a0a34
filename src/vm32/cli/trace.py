"""`vm32 trace`: record memory traces, replay them through vm32's MMU, TLB and policies.

    vm32 trace sim TRACE --frames N[,N...] --policy P[,P...] [--tlb N] [--json|--csv]
    vm32 trace sim -a 1,2,3,4,1,2,5,1,2,3,4,5 --frames 3,4 --policy fifo --explain
    vm32 trace sweep TRACE --frames 8:1024 --policy fifo,lru,clock [--plot DIR] [--cluster ADDR]
    vm32 trace record -- CMD ARGS...        (valgrind lackey, compressed)

The work is vm32.trace's; this module parses, validates and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vm32.cli.common import policy_names
from vm32.defaults import DEFAULT_POLICY, DEFAULT_TLB_ENTRIES

SIM_FRAMES = "64"  # frames of `trace sim` without --frames
SWEEP_FRAMES = "8:1024"  # frame counts of `trace sweep` without --frames
SWEEP_POLICIES = "fifo,clock,lru"
EXPLAIN_LIMIT = 10_000  # references --explain prints at most
FORMATS = ("auto", "lackey", "din", "pin", "rw", "pages", "u32", "u64")


def add_commands(commands) -> None:
    """Add ``trace sim``, ``trace sweep`` and ``trace record`` to the subparsers `commands`."""
    trace = commands.add_parser("trace", help="replay memory traces through vm32's MMU, TLB and policies")
    sub = trace.add_subparsers(dest="trace_command", metavar="TRACE_COMMAND", required=True)
    policies = ", ".join(policy_names())

    sim = sub.add_parser(
        "sim", help="replay a trace: misses, write-backs, TLB hit rate",
        description="Replay a memory trace through the kernel's own page tables, TLB and replacement "
                    "policy code on a machine without data: a miss maps a frame, an eviction unmaps it "
                    "(a Dirty page counts a write-back).")
    _trace_args(sim)
    sim.add_argument("--frames", default=SIM_FRAMES, metavar="N[,N...]",
                     help=f"frames that hold the trace's pages (page tables are extra), one count or "
                          f"several (default {SIM_FRAMES})")
    sim.add_argument("--policy", default=DEFAULT_POLICY, metavar="P[,P...]",
                     help=f"replacement policies: {policies} (default {DEFAULT_POLICY})")
    sim.add_argument("--explain", action="store_true",
                     help=f"print every reference (short traces, at most {EXPLAIN_LIMIT:,}): TLB, walk, "
                          "hit or fault, the victim and why, the resident pages")
    _output_args(sim)
    sim.set_defaults(handler=cmd_trace_sim)

    sweep = sub.add_parser(
        "sweep", help="miss-ratio curves over frame counts and policies",
        description="Miss ratios of several policies over a range of frame counts, in parallel on "
                    "local processes or a Dask cluster; LRU's curve comes from one pass of stack distances.")
    _trace_args(sweep)
    sweep.add_argument("--frames", default=SWEEP_FRAMES, metavar="RANGE",
                       help=f"frame counts: a list 8,16,32; a range 8:1024 (up to 24 counts spaced "
                            f"geometrically); or 8:1024:8 (a step) (default {SWEEP_FRAMES})")
    sweep.add_argument("--policy", default=SWEEP_POLICIES, metavar="P[,P...]",
                       help=f"replacement policies: {policies} (default {SWEEP_POLICIES})")
    sweep.add_argument("--plot", metavar="DIR", default=None,
                       help="draw the curves into DIR/miss_ratio.png (needs matplotlib: pip install 'vm32[plot]')")
    sweep.add_argument("--cluster", metavar="ADDRESS", default=None,
                       help="run on a Dask distributed cluster, e.g. tcp://host:8786 (pip install 'vm32[cluster]'); "
                            "default: local processes")
    sweep.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="local worker processes (default: one per CPU)")
    _output_args(sweep)
    sweep.set_defaults(handler=cmd_trace_sweep)

    record = sub.add_parser(
        "record", help="record a command's memory trace with valgrind lackey",
        description="Run CMD under valgrind's lackey tool and store its memory trace, compressed "
                    "(.zst, or .gz / .xz by the output's name).")
    record.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="trace file to write (default: CMD.lackey.zst here); never overwritten")
    record.add_argument("--json", action="store_true",
                        help="say what was recorded as one JSON object, the last line on stderr (stdout "
                             "is the command's): path, text_bytes, file_bytes, exit_status")
    record.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                        help="the command to run, after --")
    record.set_defaults(handler=cmd_trace_record)


def _trace_args(p) -> None:
    p.add_argument("trace", nargs="?", default=None, metavar="TRACE",
                   help="trace file (gzip, xz and zstd are read transparently)")
    p.add_argument("-a", "--addresses", metavar="LIST", default=None,
                   help="an explicit list of page numbers instead of a TRACE file, e.g. 1,2,3,1 "
                        "(a page followed by w is a write: 1,2w,3)")
    p.add_argument("--format", default="auto", metavar="F",
                   help=f"trace format: {', '.join(FORMATS)} (default auto: detected from the first lines)")
    p.add_argument("--tlb", type=int, default=DEFAULT_TLB_ENTRIES, metavar="N",
                   help=f"TLB entries, a power of two, or 0 for no TLB (default {DEFAULT_TLB_ENTRIES})")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="seed of the random policy (default 1)")
    p.add_argument("--no-cache", action="store_true",
                   help="parse the trace file even if a binary copy of it was kept, and keep none "
                        "(copies: ~/.cache/vm32/traces, or $VM32_TRACE_CACHE)")


def _output_args(p) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON list, one object per policy and frame count")
    out.add_argument("--csv", action="store_true", help="print CSV with the same columns as --json")


def _policies(text: str) -> list[str]:
    """--policy P[,P...]: the policies' own names, each once; errors name the flag."""
    from vm32.errors import InvalidArgument
    from vm32.kernel.policies import policy_id, policy_name

    names = [p.strip() for p in str(text).split(",") if p.strip()]
    if not names:
        raise InvalidArgument("--policy: no policy given")
    try:
        return list(dict.fromkeys(policy_name(policy_id(n)) for n in names))
    except InvalidArgument as e:
        raise InvalidArgument(f"--policy {text}: {e}") from None


def _tlb(entries: int) -> int:
    """--tlb: 0 (no TLB) or a power of two."""
    from vm32.errors import InvalidArgument

    if entries < 0 or entries & (entries - 1):
        raise InvalidArgument(f"--tlb {entries}: must be 0 (no TLB) or a power of two (the TLB is "
                              f"direct-mapped), e.g. 64 or 1024")
    return entries


def _explicit_pages(text: str):
    from vm32.errors import InvalidArgument
    from vm32.trace.readers import trace_from_pages

    pages, writes = [], []
    for item in str(text).replace(" ", ",").split(","):
        if not item:
            continue
        w = item[-1] in "wW"
        try:
            pages.append(int(item[:-1] if w else item, 0))
        except ValueError:
            raise InvalidArgument(f"-a: {item!r} is not a page number (e.g. -a 1,2,3 or 1,2w,3)") from None
        writes.append(int(w))
    return trace_from_pages(pages, writes, name="-a")


def _load(args):
    """The trace of a `trace sim`/`sweep` command line (a file or -a); echoes what it read."""
    from vm32.errors import InvalidArgument
    from vm32.trace.readers import read_trace

    if getattr(args, "addresses", None) is not None:
        if args.trace is not None:
            raise InvalidArgument("give either a TRACE file or -a LIST, not both")
        return _explicit_pages(args.addresses)
    if args.trace is None:
        raise InvalidArgument("no trace: give a TRACE file (or -a LIST of page numbers)")
    return read_trace(args.trace, args.format, cache=not args.no_cache)


def _describe(trace, quiet: bool) -> None:
    if quiet:
        return
    import numpy as np

    pages = int(np.count_nonzero(np.bincount(trace.vpns)))
    print(f"trace {trace.name}: {trace.format}, {trace.refs:,} references to {pages:,} pages, "
          f"{int(trace.writes.sum()):,} writes")
    if trace.folding is not None and trace.folding.wide:
        print(f"folded into the 32-bit space: {trace.folding.describe()}")


def _frames(text: str) -> list[int]:
    from vm32.trace.sweep import parse_frames

    return parse_frames(text)


def cmd_trace_sim(args) -> int:
    """`vm32 trace sim`: replay, print the table (or JSON/CSV) and FINALSTATS lines."""
    from vm32.errors import InvalidArgument
    from vm32.trace.sim import explain_events, simulate
    from vm32.ui import trace as report

    policies, frames, _ = _policies(args.policy), _frames(args.frames), _tlb(args.tlb)
    trace = _load(args)
    quiet = args.json or args.csv
    if args.explain:
        if quiet:
            raise InvalidArgument("--explain prints text: leave out --json/--csv")
        if trace.refs > EXPLAIN_LIMIT:
            raise InvalidArgument(f"--explain prints every reference: {trace.refs:,} is too many "
                                  f"(at most {EXPLAIN_LIMIT:,})")
    _describe(trace, quiet)
    if not quiet:
        print(f"policies {', '.join(policies)}; frames {', '.join(map(str, frames))}; "
              f"TLB {'none' if args.tlb == 0 else f'{args.tlb} entries'}")
    results = []
    for policy in policies:
        for n in frames:
            if args.explain:
                result, ev, module = explain_events(trace, policy, n, args.tlb, args.seed)
                print("\n".join(report.explain_lines(trace, module.NAME, n, ev, module.REASON)))
                print(report.finalstats(result))
            else:
                result = simulate(trace, policy, n, args.tlb, args.seed)
            results.append(result)
    _print_results(args, results, finals=not args.explain)
    return 0


def _print_results(args, results, finals: bool) -> None:
    from vm32.ui import trace as report

    if args.json:
        print(report.json_text(results))
    elif args.csv:
        sys.stdout.write(report.csv_text(results))
    else:
        print(report.table(results))
        if finals:
            for r in results:
                print(report.finalstats(r))


def cmd_trace_sweep(args) -> int:
    """`vm32 trace sweep`: miss-ratio curves, printed, and drawn with --plot."""
    from vm32.errors import InvalidArgument
    from vm32.trace.sweep import sweep

    policies, frames, _ = _policies(args.policy), _frames(args.frames), _tlb(args.tlb)
    plot_path = None
    if args.plot is not None:
        from vm32.ui.plots import MISS_RATIO_PLOT, plot_targets

        plot_path = plot_targets(args.plot, [MISS_RATIO_PLOT])[MISS_RATIO_PLOT]
    if args.jobs is not None and args.jobs < 1:
        raise InvalidArgument(f"--jobs must be at least 1, not {args.jobs}")
    trace = _load(args)
    quiet = args.json or args.csv
    _describe(trace, quiet)
    from vm32.ui.trace import SweepProgress

    with SweepProgress(len(policies) * len(frames)) as tick:
        results = sweep(trace, policies, frames, args.tlb, seed=args.seed, jobs=args.jobs, cluster=args.cluster,
                        progress=tick)
    _print_results(args, results, finals=False)
    if plot_path is not None:
        from vm32.ui.plots import plot_miss_ratios

        plot_miss_ratios(results, plot_path, title=Path(trace.name).name)
        if not quiet:
            print(f"plot: {plot_path}")
    return 0


def cmd_trace_record(args) -> int:
    """`vm32 trace record -- CMD ARGS`: valgrind lackey into a compressed trace file."""
    from vm32.defaults import format_size
    from vm32.trace.record import record

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    output = args.output or f"{Path(command[0]).name}.lackey.zst" if command else args.output or "trace.lackey.zst"
    result = record(command, output)
    if args.json:
        print(json.dumps(dict(path=str(result.path), text_bytes=result.text_bytes, file_bytes=result.file_bytes,
                              exit_status=result.exit_status)), file=sys.stderr)
    else:
        print(f"recorded {result.path}: {format_size(result.text_bytes)} of lackey text in "
              f"{format_size(result.file_bytes)}; {command[0]} exited with status {result.exit_status}",
              file=sys.stderr)
    return 0
