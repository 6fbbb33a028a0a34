"""`vm32 paging demo`: processes write and verify patterns on a machine with too few frames
(the work is vm32.kernel.demo's, the display vm32.ui.paging's)."""

from __future__ import annotations

from vm32.cli.common import (
    FORCE_HELP,
    JSON_HELP,
    SWAP_FILE_HELP,
    check_frames,
    check_policy,
    check_swap_file,
    check_tlb,
    policy_names,
    swap_size,
)
from vm32.defaults import (
    DEFAULT_POLICY,
    DEFAULT_TLB_ENTRIES,
    FRAME_SIZE,
    PAGING_DEMO_FRAMES,
    PAGING_DEMO_PAGES,
    PAGING_DEMO_PROCESSES,
    format_size,
)
from vm32.errors import InvalidArgument

FIRST_RUN_SECONDS = 40  # compiling the paging kernel on a cold cache (the 2-core development machine)


def add_commands(commands) -> None:
    """Add ``paging demo`` to the `vm32` subparsers `commands`."""
    paging = commands.add_parser("paging", help="the demand-paged virtual memory kernel")
    sub = paging.add_subparsers(dest="paging_command", metavar="PAGING_COMMAND", required=True)
    demo = sub.add_parser("demo", help="processes write and verify patterns with too few frames")
    demo.add_argument("--frames", type=int, default=PAGING_DEMO_FRAMES, metavar="N",
                      help=f"physical frames of 4 KiB (default {PAGING_DEMO_FRAMES}: "
                           f"{format_size(PAGING_DEMO_FRAMES * FRAME_SIZE)})")
    demo.add_argument("--policy", default=DEFAULT_POLICY, metavar="P",
                      help=f"replacement policy: {', '.join(policy_names())} (default {DEFAULT_POLICY})")
    demo.add_argument("--processes", type=int, default=PAGING_DEMO_PROCESSES, metavar="N",
                      help=f"number of processes (default {PAGING_DEMO_PROCESSES})")
    demo.add_argument("--pages", type=int, default=PAGING_DEMO_PAGES, metavar="N",
                      help=f"heap pages each process writes (default {PAGING_DEMO_PAGES})")
    demo.add_argument("--swap-size", default=None, metavar="SIZE",
                      help="swap size, e.g. 16M (default: room for every page of every process)")
    demo.add_argument("--swap-file", default=None, metavar="PATH", help=SWAP_FILE_HELP)
    demo.add_argument("--force", action="store_true", help=FORCE_HELP)
    demo.add_argument("--tlb", type=int, default=DEFAULT_TLB_ENTRIES, metavar="N",
                      help=f"TLB entries per CPU, a power of two (default {DEFAULT_TLB_ENTRIES})")
    demo.add_argument("--seed", type=int, default=1, metavar="N",
                      help="seed for patterns and the random policy (default 1)")
    demo.add_argument("--json", action="store_true", help=JSON_HELP)
    demo.set_defaults(handler=cmd_paging_demo, first_run_seconds=FIRST_RUN_SECONDS)


def cmd_paging_demo(args) -> int:
    """`vm32 paging demo`: run it; 0 when every word read back as written."""
    import sys

    from vm32.ui.paging import show_paging_demo
    from vm32.ui.tables import console_for

    _check_args(args)
    return show_paging_demo(
        console_for(sys.stdout), console_for(sys.stderr), as_json=args.json,
        frames=args.frames, policy=args.policy, processes=args.processes, pages=args.pages,
        swap=swap_size(args.swap_size), swap_path=args.swap_file, swap_overwrite=args.force,
        tlb_entries=args.tlb, seed=args.seed)


def _check_args(args) -> None:
    """InvalidArgument naming the flag, before anything runs."""
    from vm32.kernel.demo import MAX_PROCESSES, frames_needed

    check_frames(args.frames)
    check_tlb(args.tlb)
    check_policy(args.policy)
    check_swap_file(args.swap_file, args.force)
    swap_size(args.swap_size)
    for name in ("processes", "pages"):
        if getattr(args, name) < 1:
            raise InvalidArgument(f"--{name} {getattr(args, name)}: must be at least 1")
    if args.processes > MAX_PROCESSES:
        raise InvalidArgument(f"--processes {args.processes} exceeds the demo's {MAX_PROCESSES} processes")
    need = frames_needed(args.processes, args.pages)
    if args.frames < need:
        raise InvalidArgument(
            f"--frames {args.frames} is too few for {args.processes} processes of {args.pages} pages: "
            f"page directories and tables are pinned, so at least {need} frames are needed")
