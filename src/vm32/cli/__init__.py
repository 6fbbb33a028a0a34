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
SIGINT, SIGTERM and SIGHUP end a command through its cleanup, with "interrupted"
and status 128 + the signal's number (130 for Ctrl-C); a reader that goes away
(``vm32 ... | head``) ends it quietly with status 141, as SIGPIPE would.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from vm32 import __version__
from vm32.cli.common import (
    EXIT_ERROR,
    EXIT_READER_GONE,
    EXIT_USAGE,
    Interrupted,
    announce_first_compile,
    flush_stdout,
    interrupted_text,
    signals_as_interrupts,
    silence_stdout,
)
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
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name in COMMAND_GROUPS:
        importlib.import_module(f"vm32.cli.{name}").add_commands(commands)
    for command in _commands(parser):  # `vm32 um run --debug ...` as well as `vm32 --debug um run ...`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        command.set_defaults(command_parser=command)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser.parse_args(argv)`, but arguments no parser took are the command's error (its own
    usage), not the top level's."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


DEBUG_HELP = "show Python tracebacks on errors (and a UM fault's registers and instruction)"


def _commands(parser: argparse.ArgumentParser):
    """The parsers of every command (the leaves of the subcommand tree)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield parser
    for action in subparsers:
        for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
            yield from _commands(sub)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vm32` command; returns the exit status."""
    args = None
    with signals_as_interrupts() as raise_pending:
        try:
            args = parse_args(build_parser(), argv)  # (the parser imports the policy registry: numba)
            if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to write
                return _error("standard output is closed; redirect it to a file or /dev/null")
            announce_first_compile(args)
            status = args.handler(args)
            raise_pending()  # one that came during a compile the command ended right after
            return status
        except VM32Error as e:
            if getattr(args, "debug", False):
                raise
            flush_stdout()
            return _error(str(e))
        except KeyboardInterrupt as e:  # Interrupted, or Ctrl-C where no handler could be installed
            signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
            flush_stdout()
            _error(interrupted_text(signum))
            return 128 + signum
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as a shell's SIGPIPE does
            silence_stdout()
            return EXIT_READER_GONE
        except OSError as e:  # the console itself failed (e.g. stdout is a full disk)
            if getattr(args, "debug", False):
                raise
            silence_stdout()
            where = f" ({e.filename})" if e.filename else ""
            return _error(f"system error: {e.strerror or e}{where}")


def _error(message: str) -> int:
    """Print ``vm32: error: MESSAGE`` on stderr (if it is open); EXIT_ERROR."""
    if sys.stderr is not None:
        try:
            print(f"vm32: error: {message}", file=sys.stderr)
        except OSError:
            pass
    return EXIT_ERROR
