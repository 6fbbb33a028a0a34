"""`vm32 paging demo`: processes write and verify patterns on a machine with too few frames
(the work is vm32.kernel.demo's)."""

from __future__ import annotations

from vm32.cli.common import policy_names
from vm32.defaults import (
    DEFAULT_POLICY,
    DEFAULT_TLB_ENTRIES,
    FRAME_SIZE,
    PAGING_DEMO_FRAMES,
    PAGING_DEMO_PAGES,
    PAGING_DEMO_PROCESSES,
    format_size,
)


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
    demo.set_defaults(handler=cmd_paging_demo)


def cmd_paging_demo(args) -> int:
    """`vm32 paging demo`: run it; 0 when every word read back as written."""
    from vm32.kernel.demo import paging_demo_main

    return paging_demo_main(args)
