"""The programs of `vm32 demo`: several built-in UM programs to run as processes of one paged
machine with too little physical memory (vm32.ui.demo runs and shows them).

The programs (src/vm32/um/programs, assembled with vm32's assembler) check their own
results and print them:

    demo.uma     a self-checking tour of the UM (arithmetic, arrays, load program)
    sieve.uma    the sieve of Eratosthenes over a 4 MB array (sequential sweeps)
    lists.uma    a linked list of 100 000 two-word arrays (many tiny segments)
    scatter.uma  300 000 random updates of a 1 MB array (no locality at all)

Together they need about 1 700 pages; the demo's machine has DEMO_FRAMES frames,
so the kernel pages them through the swap file all the time.  Each program's
output on that machine must equal `solo_output`, its run alone on the flat
backend (no paging).
"""

from __future__ import annotations

from importlib import resources

PROGRAMS = ("demo.uma", "sieve.uma", "lists.uma", "scatter.uma")
HEAP_SIZE = 16 << 20
"""Each program's heap region (virtual memory for its segments) on the demo's machine."""
SOLO_MEMORY = 64 << 20
"""Emulated memory of a program's solo run on the flat backend."""


def assemble_builtin(name: str):
    """The words of built-in program `name` (a file of src/vm32/um/programs)."""
    from vm32.um.asm import assemble

    return assemble(resources.files("vm32.um").joinpath("programs", name).read_text(), name)


def builtin_programs() -> tuple[list[str], list]:
    """The names (without .uma) and words of the demo's programs, in PROGRAMS order."""
    return [n.removesuffix(".uma") for n in PROGRAMS], [assemble_builtin(n) for n in PROGRAMS]


def solo_output(words) -> bytes:
    """What program `words` prints when it runs alone on the flat backend (no input)."""
    from vm32.um.machine import run_program

    return run_program(words, backend="flat", memory_size=SOLO_MEMORY).output
