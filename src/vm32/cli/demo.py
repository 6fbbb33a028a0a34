"""`vm32 demo`: the built-in showcase (vm32.um.showcase, shown by vm32.ui.demo)."""

from __future__ import annotations

from vm32.cli.common import check_frames, check_policy, policy_names
from vm32.defaults import DEFAULT_POLICY, DEMO_FRAMES, FRAME_SIZE, format_size

FIRST_RUN_SECONDS = 90  # compiling the paged UM and the flat UM on a cold cache (the 2-core development machine)


def add_commands(commands) -> None:
    """Add ``demo`` to the `vm32` subparsers `commands`."""
    demo = commands.add_parser(
        "demo", help="run the built-in showcase (no input files needed)",
        description="Four built-in UM programs run at once as processes of one paged machine with too "
                    "little physical memory: a live view of frames, faults and swap traffic, a final "
                    "report, and each output checked against a solo run on the flat backend.")
    demo.add_argument("--frames", type=int, default=None, metavar="N",
                      help=f"physical frames of 4 KiB (default {DEMO_FRAMES}: "
                           f"{format_size(DEMO_FRAMES * FRAME_SIZE)} for about 7 MB of data)")
    demo.add_argument("--policy", default=None, metavar="P",
                      help=f"page replacement policy: {', '.join(policy_names())} (default {DEFAULT_POLICY})")
    demo.add_argument("--json", action="store_true",
                      help="print the figures, each program's output and verdict as one JSON document on "
                           "stdout instead (raw units: bytes, seconds, counts)")
    demo.set_defaults(handler=cmd_demo, first_run_seconds=FIRST_RUN_SECONDS)


def cmd_demo(args) -> int:
    """`vm32 demo`: the showcase (see vm32.ui.demo)."""
    from vm32.ui.demo import run_demo

    check_frames(args.frames)
    check_policy(args.policy)
    return run_demo(frames=args.frames if args.frames is not None else DEMO_FRAMES,
                    policy=args.policy or DEFAULT_POLICY, as_json=args.json)
