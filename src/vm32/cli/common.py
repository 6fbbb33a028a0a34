"""Helpers shared by the command groups of `vm32`: exit statuses, flag checks, files, the console.

Flags are checked here, before anything runs, and their errors name the flag
(``--tlb 100: ...``), not the API parameter behind it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from contextlib import contextmanager

from vm32.defaults import FRAME_SIZE, LIVE_PAGE_POLICIES, MIN_FRAMES, parse_size
from vm32.errors import InvalidArgument

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_READER_GONE = 141  # as a shell reports a process ended by SIGPIPE: stdout's reader went away

SWAP_FILE_HELP = ("swap file (default: a temporary file without a name, gone however vm32 ends); an existing "
                  "file is used only if it is a vm32 swap file (its slots end with a 512-byte sector starting "
                  "'vm32 swap file') or empty, unless --force")
FORCE_HELP = "let --swap-file overwrite an existing file that is not a vm32 swap file"
JSON_HELP = "print the figures as one JSON document on stdout (raw units: bytes, seconds, counts)"


def policy_names() -> tuple[str, ...]:
    """The names of the page-replacement policies a live machine runs, for help texts."""
    return LIVE_PAGE_POLICIES


def check_frames(frames: int | None) -> None:
    """--frames: at least the kernel's minimum."""
    if frames is not None and frames < MIN_FRAMES:
        raise InvalidArgument(f"--frames {frames}: a machine needs at least {MIN_FRAMES} frames")


def check_tlb(entries: int | None) -> None:
    """--tlb: a positive power of two (the TLB is direct-mapped)."""
    if entries is not None and (entries < 1 or entries & (entries - 1)):
        raise InvalidArgument(f"--tlb {entries}: must be a power of two (the TLB is direct-mapped), e.g. 64 or 1024")


def check_policy(name: str | None) -> None:
    """--policy: a page-replacement policy a live machine runs."""
    if name is None:
        return
    from vm32.kernel.policies import live_policy_id

    try:
        live_policy_id(name)
    except InvalidArgument as e:
        raise InvalidArgument(f"--policy {name}: {e}") from None


def check_swap_file(path: str | None, force: bool | None) -> None:
    """--swap-file: not an existing file of the user's unless --force (the swap device checks
    again when it opens the file; its error names the API's keyword, swap_overwrite)."""
    if path is None or force:
        return
    from vm32.kernel.swap import is_foreign_file

    if is_foreign_file(path):
        raise InvalidArgument(f"--swap-file {path} exists and is not a vm32 swap file: it is left alone "
                              "(--force lets vm32 overwrite it)")


def swap_size(text: str | None) -> int | None:
    """--swap-size in bytes: 0 (no swap) or at least one 4 KiB page."""
    if text is None:
        return None
    size = size_flag("--swap-size", text)
    if 0 < size < FRAME_SIZE:
        raise InvalidArgument(f"--swap-size {text}: a swap holds whole 4 KiB pages; use 0 (no swap) or at least 4K")
    return size


def size_flag(flag: str, text: str) -> int:
    """`text` (a size flag's value) in bytes; InvalidArgument naming the flag."""
    try:
        size = parse_size(text)
    except InvalidArgument as e:
        raise InvalidArgument(f"{flag}: {e}") from None
    return size


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived (`signum`): the command ends through its cleanup."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_as_interrupts():
    """While the block runs (in the main thread), SIGINT, SIGTERM and SIGHUP raise Interrupted,
    so ``finally`` blocks and context managers clean up; further ones are ignored meanwhile.

    One that arrives while this thread compiles kernels waits until the compilation is
    over (numba's compiler breaks if interrupted): a timer polls every RETRY_SECONDS, and
    one line on stderr says why nothing happens yet.  The block may end before the timer
    polls again: it calls the function this yields before it returns, which raises the
    interrupt still pending, if any.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    pending: list[int] = []

    def raise_pending() -> None:
        if pending:
            raise Interrupted(pending[0])

    def interrupt(signum, frame) -> None:
        first = not pending
        if first:
            pending.append(signum)
            for s in INTERRUPTS:
                signal.signal(s, signal.SIG_IGN)  # the cleanup must not be cut short
        if _compiling():
            if first:
                _note(f"vm32: {interrupted_text(signum)}; finishing a compile first")
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
            return
        raise Interrupted(pending[0])

    saved = {s: signal.signal(s, interrupt) for s in INTERRUPTS}
    saved[signal.SIGALRM] = signal.signal(signal.SIGALRM, lambda signum, frame: interrupt(pending[0], frame))
    try:
        yield raise_pending
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in saved.items():
            signal.signal(s, handler)


RETRY_SECONDS = 0.05


def interrupted_text(signum: int) -> str:
    """What vm32 says of an interrupt: "interrupted" for Ctrl-C, "interrupted (SIGTERM)" otherwise."""
    return "interrupted" if signum == signal.SIGINT else f"interrupted ({signal.Signals(signum).name})"


def _note(line: str) -> None:
    """Write `line` on stderr from a signal handler: one os.write, so that it never re-enters
    a stream the interrupted code was writing; nothing if stderr is closed."""
    if sys.stderr is None:
        return
    try:
        os.write(sys.stderr.fileno(), (line + "\n").encode())
    except (OSError, ValueError):  # closed or not a file
        pass


def _compiling() -> bool:
    """True while this thread compiles kernels (numba's compiler lock, if numba is loaded; a
    signal may come while numba itself is being imported, so nothing is imported here)."""
    lock_module = sys.modules.get("numba.core.compiler_lock")
    lock = getattr(lock_module, "global_compiler_lock", None)
    return lock is not None and lock.is_locked()


def announce_first_compile(args) -> None:
    """On a terminal, say so when a command will compile vm32's kernels first (a cold cache)."""
    seconds = getattr(args, "first_run_seconds", None)
    if seconds is None or kernels_cached() or sys.stderr is None or not sys.stderr.isatty():
        return
    print(f"compiling vm32's kernels (first run, about {seconds} s)...", file=sys.stderr, flush=True)


def kernels_cached() -> bool:
    """True if vm32's cache of compiled kernels holds anything (vm32 keys it by its sources)."""
    directory = os.environ.get("NUMBA_CACHE_DIR")
    if not directory or not os.path.isdir(directory):
        return False
    for _, _, files in os.walk(directory):
        if any(f.endswith(".nbi") for f in files):
            return True
    return False


def print_json(stream, doc: dict) -> None:
    """`doc` as one line of JSON on text stream `stream`."""
    stream.write(json.dumps(doc) + "\n")
    stream.flush()


def open_input(path: str):
    """`path` opened for reading bytes; InvalidArgument naming it if it cannot be opened."""
    try:
        return open(path, "rb")
    except OSError as e:
        raise InvalidArgument(f"cannot open input file {path}: {e.strerror}") from None


def write_file(path: str, data: bytes) -> None:
    """Write `data` to `path` (``-``: stdout), which gets its name only once complete."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    from vm32.files import atomic_output

    with atomic_output(path) as f:
        f.write(data)


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
