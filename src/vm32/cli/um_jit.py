"""`vm32 um jit-dump`: what the JIT made of a program.

    vm32 um jit-dump PROGRAM [--pc 0xHEX] [--input FILE] [--memory SIZE] [--asm]

Runs PROGRAM on the jit backend (its own output is discarded) and prints the compiled
region holding word --pc of segment 0, or the one that ran the most instructions: its
UM words disassembled beside the LLVM IR written for them (vm32.um.jit.dump), and with
--asm the region's host assembly.
"""

from __future__ import annotations

import io
import sys

from vm32.cli.common import open_input
from vm32.defaults import FLAT_MEMORY, size_arg
from vm32.errors import InvalidArgument


def add_jit_dump(um_commands) -> None:
    """Add ``um jit-dump``."""
    dump = um_commands.add_parser(
        "jit-dump", help="run a program on the jit backend and show a compiled region beside its UM words",
        description="Run a UM program on the jit backend (its output discarded) and print a compiled "
                    "region: its UM words disassembled beside the LLVM IR the JIT wrote for them.")
    dump.add_argument("program", help="UM program file")
    dump.add_argument("--pc", default=None, metavar="0xHEX",
                      help="show the region holding this word of segment 0 (default: the region that ran "
                           "the most instructions)")
    dump.add_argument("--input", metavar="FILE", help="the program's input (default: none, end of input)")
    dump.add_argument("--memory", default=None, metavar="SIZE",
                      help=f"emulated memory (default {size_arg(FLAT_MEMORY)})")
    dump.add_argument("--asm", action="store_true", help="also print the region's host assembly")
    dump.set_defaults(handler=cmd_um_jit_dump)


def _pc_arg(text: str) -> int:
    """A --pc value: a word offset, hex (0x...) or decimal."""
    try:
        pc = int(text, 0)
    except ValueError:
        raise InvalidArgument(f"--pc {text!r} is not a number (example: --pc 0x1a2b)") from None
    if not 0 <= pc <= 0xFFFFFFFF:
        raise InvalidArgument(f"--pc {text} is not a 32-bit word offset")
    return pc


def cmd_um_jit_dump(args) -> int:
    """`vm32 um jit-dump`: run the program, then print the region."""
    from vm32.um.jit.dump import dump_region, find_region
    from vm32.um.machine import UniversalMachine

    pc = None if args.pc is None else _pc_arg(args.pc)
    stdin = open_input(args.input) if args.input else b""
    memory = args.memory if args.memory is not None else FLAT_MEMORY
    try:
        with UniversalMachine(args.program, backend="jit", memory_size=memory, stdin=stdin,
                              stdout=io.BytesIO()) as um:
            um.jit.background = False  # every hot region is compiled when the run ends
            um.run()
            sys.stdout.write(dump_region(um.jit, pc) + "\n")
            if args.asm:
                from vm32.um.jit.engine import worker

                sys.stdout.write(worker().call("assembly", find_region(um.jit, pc).ir))
    finally:
        if args.input:
            stdin.close()
    return 0
