"""`vm32 paging demo`: processes write and verify patterns on a machine with too few frames
(the work is vm32.kernel.demo's, the display vm32.ui.paging's)."""

from __future__ import annotations

from vm32.cli.common import policy_names
from vm32.defaults import (
    DEFAULT_POLICY,
    DEFAULT_TLB_ENTRIES,
    FRAME_SIZE,
    MIN_FRAMES,
    PAGING_DEMO_FRAMES,
    PAGING_DEMO_PAGES,
    PAGING_DEMO_PROCESSES,
    format_size,
)
from vm32.errors import InvalidArgument


def add_commands(commands) -> None:
    """Add ``paging demo`` to the `vm32` subparsers `commands`."""
    paging = commands.add_parser("paging", help="the demand-paged virtual memory kernel")
    sub = paging.add_subparsers(dest="paging_command", required=True)
    demo = sub.add_parser("demo", help="processes write and verify patterns with too few frames")
    demo.add_argument("--frames", type=int, default=PAGING_DEMO_FRAMES,
                      help=f"physical frames of 4 KiB (default {PAGING_DEMO_FRAMES}: "
                           f"{format_size(PAGING_DEMO_FRAMES * FRAME_SIZE)})")
    demo.add_argument("--policy", default=DEFAULT_POLICY,
                      help=f"replacement policy: {', '.join(policy_names())} (default {DEFAULT_POLICY})")
    demo.add_argument("--processes", type=int, default=PAGING_DEMO_PROCESSES,
                      help=f"number of processes (default {PAGING_DEMO_PROCESSES})")
    demo.add_argument("--pages", type=int, default=PAGING_DEMO_PAGES,
                      help=f"heap pages each process writes (default {PAGING_DEMO_PAGES})")
    demo.add_argument("--swap", default=None, help="swap size, e.g. 16M (default: enough for all pages)")
    demo.add_argument("--swap-file", default=None, help="swap file path (default: a temporary file)")
    demo.add_argument("--tlb", type=int, default=DEFAULT_TLB_ENTRIES,
                      help=f"TLB entries per CPU, a power of two (default {DEFAULT_TLB_ENTRIES})")
    demo.add_argument("--seed", type=int, default=1, help="seed for patterns and the random policy")
    demo.add_argument("--json", action="store_true",
                      help="print the figures as one JSON document on stdout (raw units: bytes, seconds, counts)")
    demo.set_defaults(handler=cmd_paging_demo)


def cmd_paging_demo(args) -> int:
    """`vm32 paging demo`: run it; 0 when every word read back as written."""
    from rich.console import Console

    from vm32.memory import parse_size
    from vm32.ui.paging import show_paging_demo

    _check_args(args)
    return show_paging_demo(
        Console(highlight=False), Console(stderr=True, highlight=False), as_json=args.json,
        frames=args.frames, policy=args.policy, processes=args.processes, pages=args.pages,
        swap=None if args.swap is None else parse_size(args.swap), swap_path=args.swap_file,
        tlb_entries=args.tlb, seed=args.seed)


def _check_args(args) -> None:
    """InvalidArgument naming the flag, before anything runs."""
    from vm32.kernel.demo import MAX_PROCESSES, frames_needed

    for name, low in (("frames", MIN_FRAMES), ("processes", 1), ("pages", 1), ("tlb", 1)):
        v = getattr(args, name)
        if v < low:
            raise InvalidArgument(f"--{name} must be at least {low}, not {v}")
    if args.processes > MAX_PROCESSES:
        raise InvalidArgument(f"--processes {args.processes} exceeds the demo's {MAX_PROCESSES} processes")
    need = frames_needed(args.processes, args.pages)
    if args.frames < need:
        raise InvalidArgument(
            f"--frames {args.frames} is too few for {args.processes} processes of {args.pages} pages: "
            f"page directories and tables are pinned, so at least {need} frames are needed")
