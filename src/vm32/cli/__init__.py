"""The `vm32` command.

    vm32 demo                           run the built-in showcase
    vm32 paging demo                    processes write and verify patterns with too few frames
    vm32 um run PROGRAM [--backend ...] run a UM program (stdin/stdout are its console)
    vm32 um run A.um B.um ... --frames N  several UM programs at once on one paged machine
    vm32 um asm FILE -o OUT.um          assemble UM assembly into a program file
    vm32 um disasm PROGRAM              disassemble a program file
    vm32 heap sim [-A +10,-0] [-c]      the free-space chapter's allocator simulator

One module per command group (vm32.cli.demo, vm32.cli.paging, vm32.cli.um), each
with ``add_commands(commands)`` that adds its subparsers and sets a ``handler``
(``handler(args) -> exit status``) on each.  A new group is a new module and its
name in COMMAND_GROUPS.  Shared helpers are in vm32.cli.common.  The modules
import nothing compiled at import time, so ``vm32 --help`` is quick.

Every error a user can cause ends as one line ``vm32: error: ...`` on stderr
and exit status 1 (2 for a bad command line); `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vm32 import __version__
from vm32.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, flush_stdout, silence_stdout
from vm32.errors import VM32Error

COMMAND_GROUPS = (
    "demo",
    "paging",
    "um",
    "trace",
    "heap",
)
"""The modules of vm32.cli that add commands, in the order `vm32 --help` lists them."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors say ``vm32: error: ...`` whatever the subcommand."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"vm32: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full `vm32` argument parser."""
    parser = _Parser(prog="vm32", description="An emulated 32-bit virtual memory system.")
    parser.add_argument("--version", action="version", version=f"vm32 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name in COMMAND_GROUPS:
        importlib.import_module(f"vm32.cli.{name}").add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vm32` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except VM32Error as e:
        if args.debug:
            raise
        flush_stdout()
        print(f"vm32: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vm32: error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        silence_stdout()
        sys.stderr.close()  # the reader went away: not an error worth a message
        return EXIT_ERROR
    except OSError as e:  # the console itself failed (e.g. stdout is a full disk)
        if args.debug:
            raise
        silence_stdout()
        where = f" ({e.filename})" if e.filename else ""
        print(f"vm32: error: system error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_ERROR
