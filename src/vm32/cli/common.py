"""Helpers shared by the command groups of `vm32`: exit statuses, files, the console."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vm32.errors import InvalidArgument

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT


def policy_names() -> tuple[str, ...]:
    """The names of the page-replacement policies, for help texts."""
    from vm32.kernel.policies import POLICIES

    return tuple(POLICIES)


def open_input(path: str):
    """`path` opened for reading bytes; InvalidArgument naming it if it cannot be opened."""
    try:
        return open(path, "rb")
    except OSError as e:
        raise InvalidArgument(f"cannot open input file {path}: {e.strerror}") from None


def write_file(path: str, data: bytes) -> None:
    """Write `data` to `path`; InvalidArgument naming it if it cannot be written."""
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise InvalidArgument(f"cannot write {path}: {e.strerror}") from None


def flush_stdout() -> None:
    """Flush stdout so program output precedes the error line; ignore a broken stdout."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        silence_stdout()


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's exit flush cannot fail again."""
    try:
        if sys.stdout is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    except (OSError, ValueError):
        pass
