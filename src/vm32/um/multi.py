"""Several UM programs at once: processes of one paged machine, each on its own host thread.

    runs, machine_stats = run_programs(["a.um", "b.um"], frames=64, outputs=[f1, f2])

Every program is a process of one `vm32.kernel.Machine` (the `paged` backend):
its own 32-bit address space, its segments in its own heap, all of them sharing
the machine's frames and swap file.  Each runs on a host thread of its own, which
is one CPU of the machine with its own TLB, so the processes fault, evict each
other's pages and swap concurrently.  A UM fault or a failed page fault ends that
process only (its frames go back to the machine); the others go on.  Each program
has its own input (bytes or a binary file; none means end of input) and output
(a binary stream).

Also here: `StatusLine`, the one-line live view on a terminal that `vm32 um run`
and `vm32 demo` share, and `LinePrefixWriter`, which tags each output line of a
process with its name when several processes share stdout.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Sequence

from vm32.defaults import DEFAULT_POLICY, DEFAULT_TLB_ENTRIES, MULTI_MEMORY, MULTI_SWAP_LIMIT, UM_FRAMES
from vm32.errors import InvalidArgument, VM32Error
from vm32.um.machine import UniversalMachine

MULTI_SLICE = 1 << 20  # instructions per slice with several CPUs (~3 ms): see paged.py "Concurrency"


# ---- output plumbing ------------------------------------------------------------------------------


class StatusLine:
    """A single line redrawn in place on a terminal stream (stderr by default), rendered by rich.

    Disabled (every call a no-op) unless the stream is a terminal.  `hold()` /
    `release(at_line_start)` let a writer that shares the terminal clear the line
    before it writes and say whether the line may be drawn again after it.
    """

    def __init__(self, stream=None, *, enabled: bool | None = None, min_interval: float = 0.2):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError, OSError):
                enabled = False
        self.enabled = bool(enabled)
        self.min_interval = min_interval
        self._shown = False
        self._blocked = False  # a partial output line is on the terminal: do not draw under it
        self._last = 0.0
        self._text = None
        self._lock = threading.RLock()
        if self.enabled:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)

    def show(self, text, *, force: bool = False) -> None:
        """Draw `text` (str or rich Text), at most every `min_interval` seconds unless `force`."""
        if not self.enabled:
            return
        with self._lock:
            self._text = text
            now = time.monotonic()
            if self._blocked or (not force and now - self._last < self.min_interval):
                return
            self._last = now
            self._draw()

    def _draw(self) -> None:
        from rich.text import Text

        text = self._text if isinstance(self._text, Text) else Text(str(self._text))
        text = text.copy()
        text.truncate(max(self._console.width - 1, 10), overflow="ellipsis")
        try:
            self.stream.write("\r\x1b[2K")
            self._console.print(text, end="", soft_wrap=True)
            self.stream.flush()
            self._shown = True
        except (OSError, ValueError):
            self.enabled = False

    def clear(self) -> None:
        """Erase the line (before other output, and at the end)."""
        if not self.enabled:
            return
        with self._lock:
            if self._shown:
                try:
                    self.stream.write("\r\x1b[2K")
                    self.stream.flush()
                except (OSError, ValueError):
                    self.enabled = False
                self._shown = False

    def hold(self) -> None:
        """A writer is about to write to the same terminal: erase the line first."""
        with self._lock:
            self.clear()
            self._blocked = True

    def release(self, at_line_start: bool) -> None:
        """The writer is done; the line may be drawn again if the cursor is at a line start."""
        with self._lock:
            self._blocked = not at_line_start
            if at_line_start and self.enabled and self._text is not None:
                self._draw()


class TerminalOutput(io.RawIOBase):
    """A binary stream writing through to `stream`, clearing `status` around each write when
    both share a terminal (so program output and the status line never mix)."""

    def __init__(self, stream: BinaryIO, status: StatusLine):
        super().__init__()
        self._stream = stream
        self._status = status

    def writable(self) -> bool:  # noqa: D102 - io API
        return True

    def write(self, data) -> int:  # noqa: D102 - io API
        data = bytes(data)
        if not data:
            return 0
        self._status.hold()
        try:
            self._stream.write(data)
            self._stream.flush()
        finally:
            self._status.release(data.endswith(b"\n"))
        return len(data)

    def flush(self) -> None:  # noqa: D102 - io API
        self._stream.flush()


class LinePrefixWriter(io.RawIOBase):
    """Writes whole lines to a shared binary `stream`, each starting with `prefix`.

    A partial line waits for its end (or for `close`), so lines of several writers
    never interleave; `lock` serialises the writers.
    """

    def __init__(self, stream: BinaryIO, prefix: str, lock: threading.Lock, status: StatusLine | None = None):
        super().__init__()
        self._stream, self._prefix, self._lock = stream, prefix.encode(), lock
        self._status = status
        self._partial = b""

    def writable(self) -> bool:  # noqa: D102 - io API
        return True

    def write(self, data) -> int:  # noqa: D102 - io API
        data = self._partial + bytes(data)
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            lines = data[:cut].splitlines(keepends=True)
            self._emit(b"".join(self._prefix + line for line in lines))
        return len(data)

    def _emit(self, data: bytes) -> None:
        with self._lock:
            if self._status is not None:
                self._status.hold()
            try:
                self._stream.write(data)
                self._stream.flush()
            finally:
                if self._status is not None:
                    self._status.release(True)

    def close(self) -> None:  # noqa: D102 - io API
        if self._partial:
            self._emit(self._prefix + self._partial + b"\n")
            self._partial = b""
        super().close()


# ---- running several programs ---------------------------------------------------------------------------


@dataclass
class ProcessRun:
    """One program of `run_programs`: its name, statistics and error (None if it halted)."""

    name: str
    stats: dict = field(default_factory=dict)
    error: VM32Error | None = None
    halted: bool = False
    um: UniversalMachine | None = field(default=None, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)


class Stopped(VM32Error):
    """The run was interrupted (Ctrl-C)."""


def run_programs(
    programs: Sequence,
    *,
    names: Sequence[str] | None = None,
    inputs: Sequence[bytes | BinaryIO | None] | None = None,
    outputs: Sequence[BinaryIO] | None = None,
    frames: int = UM_FRAMES,
    policy: str = DEFAULT_POLICY,
    swap: int | str | None = None,
    swap_path: str | os.PathLike | None = None,
    tlb_entries: int = DEFAULT_TLB_ENTRIES,
    memory_size: int | str = MULTI_MEMORY,
    slice_instructions: int = MULTI_SLICE,
    on_tick: Callable[[object, list[ProcessRun]], None] | None = None,
    tick_seconds: float = 0.1,
) -> tuple[list[ProcessRun], dict]:
    """Run `programs` (paths, UM file bytes or word arrays) concurrently on one paged machine.

    `frames`, `policy`, `swap` (bytes; default: room for every heap, at most MULTI_SWAP_LIMIT), `swap_path` and
    `tlb_entries` describe the machine; `memory_size` is each process's heap region.
    Process i reads `inputs[i]` (None: end of input at once) and writes to `outputs[i]`
    (default: kept in memory, see ProcessRun.um).  `on_tick(machine, runs)` is called
    from this thread every `tick_seconds` while they run (live displays).  Returns the
    runs (each with its stats and error, if any) and the machine's statistics; the
    machine is closed (swap file removed) before returning.
    """
    from vm32.kernel.machine import Machine
    from vm32.memory import parse_size

    n = len(programs)
    if n == 0:
        raise InvalidArgument("no program to run")
    if n > 63:
        raise InvalidArgument(f"{n} programs: a machine runs at most 63 processes at once")
    names = list(names) if names is not None else [_name_of(p, i) for i, p in enumerate(programs)]
    inputs = list(inputs) if inputs is not None else [None] * n
    outputs = list(outputs) if outputs is not None else [io.BytesIO() for _ in range(n)]
    if not len(names) == len(inputs) == len(outputs) == n:
        raise InvalidArgument("run_programs: names, inputs and outputs must have one entry per program")
    heap = parse_size(memory_size)
    if swap is None:  # the kernel preallocates the swap file's blocks: no more than needed
        swap = min(n * heap + (1 << 20), MULTI_SWAP_LIMIT)
    runs = [ProcessRun(name) for name in names]
    stop = threading.Event()
    with Machine(frames=frames, swap=swap, policy=policy, tlb_entries=tlb_entries, cpus=n + 1,
                 swap_path=swap_path, max_processes=n + 1) as m:
        for run, program, data, out in zip(runs, programs, inputs, outputs):
            try:
                run.um = UniversalMachine(program, backend="paged", machine=m, memory_size=heap,
                                          stdin=b"" if data is None else data, stdout=out, name=run.name)
            except VM32Error as e:
                run.error = e
        for run in runs:
            if run.um is not None:
                run.thread = threading.Thread(target=_run_one, args=(run, slice_instructions, stop),
                                              name=f"vm32-{run.name}", daemon=True)
                run.thread.start()
        try:
            _wait(m, runs, on_tick, tick_seconds)
        except KeyboardInterrupt:
            stop.set()
            _wait(m, runs, None, tick_seconds)
            raise
        finally:
            for run in runs:
                if run.um is not None:
                    run.stats = run.um.stats()
                    run.um.close()  # ends the process (frames and slots back to the machine)
        machine_stats = m.stats()
    return runs, machine_stats


def _name_of(program, i: int) -> str:
    if isinstance(program, (str, os.PathLike)):
        return os.path.basename(os.fspath(program))
    return f"program{i + 1}"


def _run_one(run: ProcessRun, slice_instructions: int, stop: threading.Event) -> None:
    """Thread body: run one program to its end; keep its error, if any."""

    def check_stop(um) -> None:
        if stop.is_set():
            raise Stopped(f"{run.name}: interrupted")

    try:
        run.um.run(slice_instructions=slice_instructions, on_slice=check_stop)
        run.halted = run.um.halted
    except VM32Error as e:
        run.error = e
    except BaseException as e:  # noqa: BLE001 - a bug must not pass silently: reported as an error
        run.error = VM32Error(f"{run.name}: internal error: {type(e).__name__}: {e}")
    finally:
        if run.um.paged is not None:
            run.stats = run.um.stats()
            run.um.paged.finish()  # give the frames back now, not when the last one ends


def _wait(machine, runs: list[ProcessRun], on_tick, tick_seconds: float) -> None:
    """Wait for every thread, calling on_tick meanwhile."""
    while True:
        alive = [r.thread for r in runs if r.thread is not None and r.thread.is_alive()]
        if on_tick is not None:
            on_tick(machine, runs)
        if not alive:
            return
        alive[0].join(tick_seconds)
