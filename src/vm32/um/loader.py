"""Loading UM program files: big-endian 32-bit words ("scrolls"), validated."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from vm32.errors import BadProgram

MAX_PROGRAM_BYTES = 1 << 30  # 1 GiB: larger than any real UM program, small enough to load
_TEXT_BYTES = frozenset(range(32, 127)) | {9, 10, 13}
_STATEMENT = re.compile(r"\s*(?:[A-Za-z_][\w.]*\s*:\s*)?[A-Za-z_.][\w.]*\b")  # an optional label, then a word


def looks_like_assembly(data: bytes) -> bool:
    """True if `data` reads as UM assembly source rather than program words: lines of plain
    text whose first statement starts with a word (a mnemonic, a directive, a label)."""
    head = data[:1 << 16]
    if b"\n" not in head or not _TEXT_BYTES.issuperset(head):
        return False
    for line in head.decode("ascii").splitlines():
        code = re.split(r"[;#]", line, maxsplit=1)[0]
        if code.strip():
            return _STATEMENT.match(code) is not None
    return False  # no statement: nothing says it is source


def parse_program(data: bytes, name: str = "<program>") -> np.ndarray:
    """Return the program words (native uint32) of UM file contents `data`.

    Raises BadProgram if `data` is empty, assembly source text, or its length is not
    a multiple of 4.
    """
    if len(data) == 0:
        raise BadProgram(f"{name}: the program is empty (a UM program needs at least one word)")
    if looks_like_assembly(data):
        raise BadProgram(f"{name}: this looks like text (UM assembly source?), not a program file of "
                         f"32-bit words; to assemble it: vm32 um asm {name} -o PROGRAM.um")
    if len(data) % 4:
        raise BadProgram(
            f"{name}: size {len(data)} bytes is not a multiple of 4; "
            "a UM program is a sequence of 32-bit big-endian words (truncated file?)"
        )
    return np.frombuffer(data, dtype=">u4").astype(np.uint32)


def load_program(path: str | os.PathLike) -> np.ndarray:
    """Read and validate the UM program file at `path`; return its words as uint32.

    Raises BadProgram if the file is missing, a directory, unreadable, larger
    than MAX_PROGRAM_BYTES, empty, or not a whole number of words.
    """
    p = Path(path)
    if p.is_dir():
        raise BadProgram(f"{p}: is a directory, not a UM program file")
    too_large = BadProgram(f"{p}: larger than the {MAX_PROGRAM_BYTES >> 20} MiB limit of a UM program")
    try:
        with p.open("rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_PROGRAM_BYTES:
                raise too_large
            # Read at most one byte past the limit: a device such as /dev/zero never
            # ends, and a pipe's size is unknown until it has been read.
            data = f.read(MAX_PROGRAM_BYTES + 1)
    except FileNotFoundError:
        raise BadProgram(f"{p}: no such file") from None
    except OSError as e:
        raise BadProgram(f"{p}: cannot read ({e.strerror or e})") from None
    except ValueError as e:  # e.g. an embedded NUL byte in the path
        raise BadProgram(f"{path!r}: not a usable file name ({e})") from None
    if len(data) > MAX_PROGRAM_BYTES:
        raise too_large
    return parse_program(data, str(p))


def program_words(program: np.ndarray | bytes | bytearray | str | os.PathLike) -> np.ndarray:
    """Accept words, UM file bytes or a path; return validated program words (uint32).

    An array must be 1-D, non-empty, of an integer dtype, with every value in
    0..2**32-1; anything else is a BadProgram.
    """
    if isinstance(program, np.ndarray):
        if program.ndim != 1 or program.size == 0:
            raise BadProgram("a program must be a non-empty 1-D array of words")
        if program.dtype != np.uint32:
            # Only integer dtypes: a float or bool array would be truncated silently.
            if not np.issubdtype(program.dtype, np.integer):
                raise BadProgram(f"program words must be integers, not {program.dtype}")
            if program.min() < 0 or program.max() > 0xFFFFFFFF:
                raise BadProgram("program words must fit in 32 bits")
            program = program.astype(np.uint32)
        return program
    if isinstance(program, (bytes, bytearray, memoryview)):
        return parse_program(bytes(program))
    if not isinstance(program, (str, os.PathLike)):
        raise BadProgram(
            f"a program is an array of words, UM file bytes or a path, not {type(program).__name__}")
    return load_program(program)
