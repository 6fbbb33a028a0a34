"""The `vm32` command.

    vm32 demo                           run the built-in showcase
    vm32 um run PROGRAM [--backend ...] run a UM program (stdin/stdout are its console)
    vm32 um asm FILE -o OUT.um          assemble UM assembly into a program file
    vm32 um disasm PROGRAM              disassemble a program file

Every error a user can cause ends as one line ``vm32: error: ...`` on stderr
and exit status 1 (2 for a bad command line); `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from vm32 import __version__
from vm32.errors import InvalidArgument, VM32Error

EXIT_ERROR = 1
EXIT_USAGE = 2


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

    demo = commands.add_parser("demo", help="run the built-in showcase (no input files needed)")
    demo.set_defaults(handler=cmd_demo)

    from vm32.kernel.demo import add_paging_commands

    add_paging_commands(commands)

    um = commands.add_parser("um", help="the Universal Machine: run, assemble, disassemble")
    um_commands = um.add_subparsers(dest="um_command", metavar="UM_COMMAND", parser_class=_Parser)
    um_commands.required = True

    run = um_commands.add_parser("run", help="run a UM program with stdin/stdout as its console")
    run.add_argument("program", help="UM program file (big-endian 32-bit words, e.g. sandmark.umz)")
    run.add_argument("--backend", choices=("flat", "classic"), default="flat",
                     help="flat: segment id = 32-bit address (default); classic: table of arrays")
    run.add_argument("--memory", default="4G", metavar="SIZE",
                     help="emulated memory size, a multiple of 4K (default 4G)")
    run.add_argument("--input", metavar="FILE", help="read the program's input from FILE, not stdin")
    run.add_argument("--stats", action="store_true", help="print run statistics on stderr at the end")
    run.set_defaults(handler=cmd_um_run)

    asm = um_commands.add_parser("asm", help="assemble UM assembly source into a program file")
    asm.add_argument("source", help="assembly source file (see `python -m pydoc vm32.um.asm`)")
    asm.add_argument("-o", "--output", required=True, help="program file to write")
    asm.set_defaults(handler=cmd_um_asm)

    disasm = um_commands.add_parser("disasm", help="disassemble a UM program file")
    disasm.add_argument("program", help="UM program file")
    disasm.add_argument("-o", "--output", help="write the listing to this file, not stdout")
    disasm.set_defaults(handler=cmd_um_disasm)
    return parser


def cmd_um_run(args) -> int:
    """`vm32 um run`: run a program to completion on the chosen backend."""
    from vm32.um.machine import UniversalMachine

    if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to write
        raise InvalidArgument("standard output is closed; redirect it to a file or /dev/null")
    if args.input:
        stdin = _open_input(args.input)
    else:  # a closed stdin (`<&-`) is an empty one: the program sees end of input
        stdin = sys.stdin.buffer if sys.stdin is not None else b""
    try:
        with UniversalMachine(args.program, backend=args.backend, memory_size=args.memory,
                              stdin=stdin, stdout=sys.stdout.buffer) as um:
            try:
                stats = um.run()
            finally:
                if args.stats:
                    _print_stats(um.stats(), f"vm32 um run {Path(args.program).name}")
    finally:
        if args.input:
            stdin.close()
    return 0


def _open_input(path: str):
    try:
        return open(path, "rb")
    except OSError as e:
        raise InvalidArgument(f"cannot open input file {path}: {e.strerror}") from None


def cmd_um_asm(args) -> int:
    """`vm32 um asm`: assemble a source file into a UM program file."""
    from vm32.um.asm import assemble_file, to_bytes

    words = assemble_file(args.source)
    _write_file(args.output, to_bytes(words))
    print(f"vm32: wrote {args.output}: {len(words)} words", file=sys.stderr)
    return 0


def cmd_um_disasm(args) -> int:
    """`vm32 um disasm`: print a program file as assembly."""
    from vm32.um.disasm import disassemble
    from vm32.um.loader import load_program

    listing = disassemble(load_program(args.program))  # one line per word, each ending in \n
    if args.output:
        _write_file(args.output, listing.encode())
    else:
        sys.stdout.write(listing)
    return 0


def _write_file(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise InvalidArgument(f"cannot write {path}: {e.strerror}") from None


def cmd_demo(args) -> int:
    """`vm32 demo`: run the built-in UM demo program and report on the run."""
    from vm32.um.asm import assemble
    from vm32.um.machine import UniversalMachine

    source = resources.files("vm32.um").joinpath("programs/demo.uma").read_text()
    words = assemble(source, "demo.uma")
    print(f"vm32 demo: running the built-in UM program demo.uma ({len(words)} words) "
          "on the flat backend\n", file=sys.stderr)
    with UniversalMachine(words, backend="flat", stdin=b"", stdout=sys.stdout.buffer) as um:
        stats = um.run()
    _print_stats(stats, "vm32 demo")
    return 0


def _print_stats(stats: dict, title: str) -> None:
    """Print run statistics as a table on stderr."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        if isinstance(value, float):
            text = f"{value:,.3f}" if value < 1000 else f"{value:,.0f}"
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        table.add_row(key.replace("_", " "), text)
    Console(file=sys.stderr).print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vm32` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except VM32Error as e:
        if args.debug:
            raise
        _flush_stdout()
        print(f"vm32: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vm32: error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        sys.stderr.close()  # the reader went away: not an error worth a message
        return EXIT_ERROR
    except OSError as e:  # the console itself failed (e.g. stdout is a full disk)
        if args.debug:
            raise
        _silence_stdout()
        where = f" ({e.filename})" if e.filename else ""
        print(f"vm32: error: system error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_ERROR


def _flush_stdout() -> None:
    """Flush stdout so program output precedes the error line; ignore a broken stdout."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's exit flush cannot fail again."""
    try:
        if sys.stdout is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
