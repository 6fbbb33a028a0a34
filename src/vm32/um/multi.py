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

The terminal side (status line, output lines tagged with the program's name) is
vm32.ui's.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Sequence

from vm32.defaults import (
    DEFAULT_HEAP_POLICY, DEFAULT_POLICY, DEFAULT_TLB_ENTRIES, MULTI_MEMORY, MULTI_SWAP_LIMIT, UM_FRAMES,
)
from vm32.errors import InvalidArgument, VM32Error
from vm32.um.machine import UniversalMachine
from vm32.workers import Worker, join_all, start_all

MULTI_SLICE = 1 << 20  # instructions per slice with several CPUs (~3 ms): see paged.py "Concurrency"


# ---- running several programs ---------------------------------------------------------------------------


@dataclass
class ProcessRun:
    """One program of `run_programs`: its name, statistics and error (None if it halted)."""

    name: str
    stats: dict = field(default_factory=dict)
    error: VM32Error | None = None
    halted: bool = False
    um: UniversalMachine | None = field(default=None, repr=False)
    thread: Worker | None = field(default=None, repr=False)
    reader_gone: bool = False  # its output is a pipe whose reader went away


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
    swap_overwrite: bool = False,
    tlb_entries: int = DEFAULT_TLB_ENTRIES,
    memory_size: int | str = MULTI_MEMORY,
    slice_instructions: int = MULTI_SLICE,
    on_tick: Callable[[object, list[ProcessRun]], None] | None = None,
    tick_seconds: float = 0.1,
    heap_policy: str = DEFAULT_HEAP_POLICY,
) -> tuple[list[ProcessRun], dict]:
    """Run `programs` (paths, UM file bytes or word arrays) concurrently on one paged machine.

    `frames`, `policy`, `swap` (bytes; default: room for every heap, at most MULTI_SWAP_LIMIT), `swap_path`,
    `swap_overwrite` and `tlb_entries` describe the machine (see vm32.kernel.machine.Machine); `memory_size` is each process's heap region,
    `heap_policy` its allocator (vm32.heap.policies).
    Process i reads `inputs[i]` (None: end of input at once) and writes to `outputs[i]`
    (default: kept in memory, see ProcessRun.um).  `on_tick(machine, runs)` is called
    from this thread every `tick_seconds` while they run (live displays).  Returns the
    runs (each with its stats and error, if any) and the machine's statistics; the
    machine is closed (swap file removed) before returning.  When an output's reader
    goes away (BrokenPipeError), every program stops and BrokenPipeError is raised.
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
                 swap_path=swap_path, swap_overwrite=swap_overwrite, max_processes=n + 1) as m:
        try:
            for run, program, data, out in zip(runs, programs, inputs, outputs):
                try:
                    run.um = UniversalMachine(program, backend="paged", machine=m, memory_size=heap,
                                              stdin=b"" if data is None else data, stdout=out, name=run.name,
                                              heap_policy=heap_policy)
                except VM32Error as e:
                    run.error = e
            for run in runs:
                if run.um is not None:
                    run.thread = Worker(_run_one, (run, slice_instructions, stop), name=f"vm32-{run.name}")
            start_all(run.thread for run in runs if run.thread is not None)
            _wait(m, runs, on_tick, tick_seconds)
        finally:  # also on Ctrl-C: every thread stops before its process ends and the machine closes
            stop.set()
            join_all(run.thread for run in runs)
            for run in runs:
                if run.um is not None:
                    run.stats = run.um.stats()
                    run.um.close()  # ends the process (frames and slots back to the machine)
        if any(run.reader_gone for run in runs):
            raise BrokenPipeError("the reader of the programs' output went away")
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
    except BrokenPipeError:  # nobody reads the output any more: every program stops
        run.reader_gone = True
        stop.set()
    except BaseException as e:  # noqa: BLE001 - a bug must not pass silently: reported as an error
        run.error = VM32Error(f"{run.name}: internal error: {type(e).__name__}: {e}")
    finally:
        if run.um.paged is not None:
            run.stats = run.um.stats()
            run.um.paged.finish()  # give the frames back now, not when the last one ends


def _wait(machine, runs: list[ProcessRun], on_tick, tick_seconds: float) -> None:
    """Wait for every thread, calling on_tick meanwhile."""
    while True:
        alive = [r.thread for r in runs if r.thread is not None and not r.thread.done.is_set()]
        if on_tick is not None:
            on_tick(machine, runs)
        if not alive:
            return
        alive[0].done.wait(tick_seconds)

