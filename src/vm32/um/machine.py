"""The UM driver: owns a machine's arrays, runs the kernel in slices, does its I/O.

    um = UniversalMachine(program, backend="flat", stdin=sys.stdin.buffer, stdout=sys.stdout.buffer)
    stats = um.run()

    # the paged backend: the program is a process of a vm32.kernel Machine
    um = UniversalMachine(program, backend="paged", frames=64, policy="clock")
    um = UniversalMachine(program, backend="paged", machine=shared_machine)  # several at once

The kernel (`vm32.um.kernel.um_run`) runs until it must stop; this driver then
drains the output buffer, refills the input buffer, or turns a fault status
into `vm32.errors.UMFault`.  On the paged backend a page fault the kernel
could not serve (no frame, swap full) is raised as `vm32.errors.OutOfMemory`
naming the program, the address and the pc, and the process is ended: its frames
and swap slots go back to the machine, other processes go on.  Output is written
and flushed before the driver blocks on input, so prompts appear before a program waits at a terminal.  Each
kernel call runs at most `slice_instructions` (checked at jumps), so output
reaches the terminal within a few milliseconds and Ctrl-C is noticed.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

import numpy as np

from vm32.defaults import DEFAULT_HEAP_POLICY, UM_RECORD_BACKENDS
from vm32.errors import InvalidArgument, UMFault
from vm32.heap.policies import policy_module
from vm32.jit import compile_timer
from vm32.memory import DEFAULT_SIZE, PAGE_SIZE, PhysicalMemory, check_size, parse_size
from vm32.um import status as S
from vm32.um.classic import ClassicSpace, new_classic_space
from vm32.um.flat import CODE, new_flat_space
from vm32.um.kernel import ST_ICOUNT, ST_IN_EOF, ST_IN_LEN, ST_IN_POS, ST_LOADPROGS
from vm32.um.kernel import ST_MAPS, ST_OUT_LEN, ST_PC, ST_PEAK_LIVE, ST_UNMAPS, new_state, um_run
from vm32.um.loader import program_words

BACKENDS = ("flat", "classic", "paged", "jit")
IO_BUFFER = 1 << 16
SLICE_INSTRUCTIONS = 1 << 24  # ~20 ms of UM time between returns to Python


@dataclass
class RunResult:
    """What `run_program` returns: the program's output and the run's statistics."""

    output: bytes
    stats: dict = field(default_factory=dict)


class UniversalMachine:
    """One Universal Machine: a program, a backend's segment space, registers and I/O."""

    def __init__(
        self,
        program,
        *,
        backend: str = "flat",
        memory_size: int | str = DEFAULT_SIZE,
        stdin: BinaryIO | bytes | None = None,
        stdout: BinaryIO | None = None,
        frames: int | None = None,
        policy: str | None = None,
        swap: int | str | None = None,
        swap_path: str | os.PathLike | None = None,
        swap_overwrite: bool = False,
        tlb_entries: int | None = None,
        machine=None,
        name: str = "program",
        heap_policy: str = DEFAULT_HEAP_POLICY,
        record_allocs: bool = False,
        check_heap: bool = False,
    ):
        """Load `program` (words, UM file bytes, or a path) on `backend`.

        flat, jit and classic: `memory_size` bytes of emulated memory hold the segments.
        paged: the program is a process whose heap region (its segments) is
        `memory_size` bytes of virtual memory (at most PAGED_MAX_HEAP); it runs on
        `machine` (a vm32.kernel.Machine shared with other processes) or on a machine of
        its own with `frames` frames, replacement `policy`, `swap` bytes of swap (default:
        as large as the heap region) in `swap_path` (default: a temporary file; an existing
        file there that is not a vm32 swap file only if `swap_overwrite`) and TLBs of
        `tlb_entries`.  `name` names the program in error messages.  `heap_policy` is the
        allocator of the segments (vm32.heap.policies; on flat, paged and jit - in its
        interpreter tier, nothing compiled, for a policy other than tlsf - tlsf elsewhere).
        `record_allocs` (classic, flat; jit runs it in its interpreter tier, nothing compiled)
        logs every map and unmap: `recorded_events()`, the same trace on every backend.
        `check_heap` (flat; jit runs it in its interpreter tier, nothing compiled) puts the
        segments on a debugging heap (vm32.heap.debug):
        `heap_leaks()` then lists the segments never unmapped with the pc that mapped them.
        """
        paged_options = dict(frames=frames, policy=policy, swap=swap, swap_path=swap_path,
                             swap_overwrite=swap_overwrite, tlb_entries=tlb_entries, machine=machine)
        _check_options(backend, heap_policy, check_heap, record_allocs, paged_options)
        _check_streams(stdin, stdout)
        words = program_words(program)
        self.backend = backend
        self.name = name
        self.memory_size = check_size(parse_size(memory_size))
        self.record_allocs = record_allocs
        self.paged = self.jit = None
        self.regs = np.zeros(8, dtype=np.uint32)
        self.st = new_state()
        self.inbuf = np.zeros(IO_BUFFER, dtype=np.uint8)
        self.outbuf = np.zeros(IO_BUFFER, dtype=np.uint8)
        if backend == "paged":
            self._init_paged_space(words, heap_policy, paged_options)
        elif backend in ("flat", "jit"):
            self._init_flat_space(words, heap_policy, check_heap, record_allocs)
        else:
            self._init_classic_space(words)
        self._stdin = io.BytesIO(stdin) if isinstance(stdin, (bytes, bytearray)) else stdin
        self._stdout = stdout if stdout is not None else io.BytesIO()
        self.wall_seconds = 0.0  # running the program, compilation excluded
        self.compile_seconds = 0.0
        self.halted = False

    def _init_paged_space(self, words: np.ndarray, heap_policy: str, options: dict) -> None:
        """Load `words` as a process of a kernel Machine (`options`: PagedProcess's frames,
        policy, swap, swap_path, swap_overwrite, tlb_entries and machine)."""
        from vm32.um.paged_process import PagedProcess

        self.memory = self.heap = None
        self.paged = PagedProcess(words, self.memory_size, name=self.name, heap_policy=heap_policy, **options)
        self.space = self.paged.space

    def _init_flat_space(self, words: np.ndarray, heap_policy: str, check_heap: bool,
                         record_allocs: bool) -> None:
        """flat and jit: load `words` into `memory_size` bytes of PhysicalMemory on
        `heap_policy`'s allocator (the debugging heap if `check_heap`), logging maps and
        unmaps if `record_allocs`."""
        if self.memory_size < 2 * PAGE_SIZE:
            raise InvalidArgument(
                f"the {self.backend} backend needs at least 8K of memory (page 0 stays unused, so that "
                "no segment has id 0)"
            )
        self.memory = PhysicalMemory(self.memory_size)
        if self.backend == "jit" and not (check_heap or record_allocs) and heap_policy == DEFAULT_HEAP_POLICY:
            # compiled regions map and unmap through tlsf's helpers (vm32.um.jit.helpers);
            # checking the heap, recording allocations or another policy: jit's interpreter tier only
            from vm32.um.jit.runtime import JitDriver

            self.jit = JitDriver(words, self.memory, self.st, self.outbuf)
            self.space, self.heap = self.jit.space, self.jit.heap
        else:
            self.space, self.heap = new_flat_space(words, self.memory, heap_policy, check_heap=check_heap)
            if record_allocs:
                from vm32.um.recording import recording_space

                self.space = recording_space(self.space)

    def _init_classic_space(self, words: np.ndarray) -> None:
        """classic: load `words` into a table of numpy arrays (logging maps and unmaps if
        record_allocs), `memory_size` bytes at most."""
        self.memory = self.heap = None
        if self.record_allocs:
            from vm32.um.recording import new_recording_space

            self.space = new_recording_space(words, self.memory_size)
        else:
            self.space = new_classic_space(words, self.memory_size)

    # -- running ---------------------------------------------------------------
    def run(
        self,
        max_instructions: int | None = None,
        slice_instructions: int = SLICE_INSTRUCTIONS,
        on_slice: Callable[["UniversalMachine"], None] | None = None,
    ) -> dict:
        """Run until the program halts (or about `max_instructions` more); return stats.

        Raises UMFault if the program fails.  `on_slice` is called after every
        kernel call (for progress displays).  Time spent compiling kernels (or loading
        them from the cache) counts in the stats' compile_seconds, not wall_seconds.
        """
        if max_instructions is not None and (isinstance(max_instructions, bool) or not isinstance(
                max_instructions, (int, np.integer)) or max_instructions < 0):
            raise InvalidArgument(f"max_instructions must be a non-negative integer or None, not {max_instructions!r}")
        start = time.perf_counter()
        stop_at = None if max_instructions is None else self.st[ST_ICOUNT] + max_instructions
        with compile_timer() as timer:
            try:
                while not self.halted:
                    budget = slice_instructions
                    if stop_at is not None:
                        budget = min(budget, stop_at - self.st[ST_ICOUNT])
                        if budget <= 0:
                            break
                    if self.paged is not None:
                        status = self.paged.run_slice(self.regs, self.st, self.inbuf, self.outbuf, budget)
                    elif self.jit is not None:
                        status = self.jit.run_slice(self.regs, self.st, self.inbuf, self.outbuf, budget)
                    else:
                        status = um_run(self.space, self.regs, self.st, self.inbuf, self.outbuf, budget)
                    self._after_call(status)
                    if on_slice is not None:
                        on_slice(self)
            finally:
                self.compile_seconds += timer.seconds
                self.wall_seconds += time.perf_counter() - start - timer.seconds
                self._drain_output()
        return self.stats()

    def _after_call(self, status: int) -> None:
        """Act on a kernel status: drain output, refill input, halt, or raise a fault."""
        if status == S.HALTED:
            self.halted = True
        elif status == S.OUTPUT_FULL:
            self._drain_output()
        elif status == S.NEED_INPUT:
            self._drain_output()
            self._fill_input()
        elif status == S.BUDGET:
            if self.st[ST_OUT_LEN]:
                self._drain_output()
        elif self.record_allocs and self._grew_log():
            pass  # the map or unmap found the log full: it runs again with room
        else:
            self._drain_output()
            if self.paged is not None:
                error = self.paged.failure(int(self.st[ST_PC]))  # the kernel's failure, if any
                if error is not None:
                    self.paged.finish()
                    raise error
            fault = self._fault(status)
            if self.paged is not None:
                self.paged.finish()  # a dead process gives its frames back at once
            raise fault

    def _grew_log(self) -> bool:
        """If the recording log is full, give it twice the room and return True."""
        from vm32.um import recording

        if not recording.log_full(self.space):
            return False
        self.space = recording.grow(self.space)
        return True

    def heap_leaks(self) -> list[dict[str, int]]:
        """check_heap=True: the segments still mapped (segment 0 aside) as {addr, nbytes, site}
        rows, site the pc of the map instruction that made each."""
        if self.heap is None or self.heap.dbg is None:
            raise InvalidArgument("this machine does not check its heap (check_heap=False)")
        code = int(self._unrecorded_space().meta[CODE])
        return [r for r in self.heap.leaks() if r["addr"] != code]

    def _unrecorded_space(self):
        """The backend's own space (the one inside the recording space if record_allocs)."""
        return self.space.inner if self.record_allocs else self.space

    def recorded_events(self) -> np.ndarray:
        """The map/unmap events logged so far (record_allocs=True): vm32.heap.alloctrace's format."""
        from vm32.um import recording

        if not self.record_allocs:
            raise InvalidArgument("this machine does not record its allocations (record_allocs=False)")
        return recording.events_of(self.space)

    def _drain_output(self) -> None:
        n = int(self.st[ST_OUT_LEN])
        if n:
            self._stdout.write(self.outbuf[:n].tobytes())
            self.st[ST_OUT_LEN] = 0
        if hasattr(self._stdout, "flush"):
            self._stdout.flush()

    def _fill_input(self) -> None:
        """Read what is available (a line at a terminal); mark end of input on EOF."""
        data = b""
        if self._stdin is not None:
            try:
                fd = self._stdin.fileno()
            except (AttributeError, OSError, io.UnsupportedOperation):
                fd = None
            if fd is not None:
                data = os.read(fd, IO_BUFFER)
            else:
                read1 = getattr(self._stdin, "read1", None) or self._stdin.read
                data = read1(IO_BUFFER)
        self.inbuf[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.st[ST_IN_POS] = 0
        self.st[ST_IN_LEN] = len(data)
        if not data:
            self.st[ST_IN_EOF] = 1

    def _fault(self, status: int) -> UMFault:
        kind, reason = S.FAULTS.get(status, ("unknown", f"kernel status {status}"))
        pc = int(self.st[ST_PC])
        code = self.code_words()
        instruction = int(code[pc]) if pc < len(code) else 0
        detail = ""
        if status == S.PC_OUT_OF_RANGE:
            detail = f"the 0 array has {len(code)} words"
        return UMFault(kind, reason, pc, instruction, detail, program=self.name)

    # -- inspection ------------------------------------------------------------
    def code_words(self) -> np.ndarray:
        """The current words of segment 0 (a view: do not modify; a copy on the paged backend)."""
        if self.paged is not None:
            return self.paged.code_words()
        if self.jit is not None:
            return self.jit.code_words()
        space = self._unrecorded_space()
        if isinstance(space, ClassicSpace):
            return space.table[0]
        base = int(space.meta[CODE])
        return self.memory.words[base >> 2 : (base >> 2) + (self.heap.size_of(base) >> 2)]

    def stats(self) -> dict:
        """Counters of the run so far (instructions, segments, allocator footprint, speed)."""
        st = self.st
        icount = int(st[ST_ICOUNT])
        stats = {
            "backend": self.backend,
            "instructions": icount,
            "segments_mapped": int(st[ST_MAPS]),
            "segments_unmapped": int(st[ST_UNMAPS]),
            "live_segments": int(st[ST_MAPS] - st[ST_UNMAPS]),
            "peak_live_segments": int(st[ST_PEAK_LIVE]),
            "program_loads": int(st[ST_LOADPROGS]),
            "wall_seconds": self.wall_seconds,
            "compile_seconds": self.compile_seconds,
            "instructions_per_second": icount / self.wall_seconds if self.wall_seconds > 0 else 0.0,
        }
        if self.heap is not None:
            h = self.heap.stats()
            stats["allocator_footprint_bytes"] = int(h["footprint"])
            stats["allocator_peak_live_bytes"] = int(h.get("peak_live_bytes", 0))
        if self.paged is not None:
            stats.update(self.paged.stats())
        if self.jit is not None:
            stats.update(self.jit.stats())
            stats["interp_instructions"] = icount - stats["jit_instructions"]
        elif self.backend == "jit":  # everything ran in the interpreter tier
            from vm32.um.jit.runtime import interpreter_only_stats

            stats.update(interpreter_only_stats(), interp_instructions=icount)
        return stats

    def close(self) -> None:
        """Release the machine's memory (paged: end the process; close the machine if it is its own)."""
        if self.paged is not None:
            self.paged.close()
            return
        if self.jit is not None:
            self.jit.close()
        if self.memory is not None:
            self.space = self.heap = self.jit = None
            self.memory.close()
            self.memory = None

    def __enter__(self) -> "UniversalMachine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_options(backend: str, heap_policy: str, check_heap: bool, record_allocs: bool,
                   paged_options: dict) -> None:
    """InvalidArgument unless `backend` is known and runs every option given (checked before
    anything is built)."""
    if backend not in BACKENDS:
        raise InvalidArgument(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "paged" and any(v is not None for k, v in paged_options.items() if k != "swap_overwrite"):
        raise InvalidArgument("frames, policy, swap, swap_path, tlb_entries and machine are paged-backend options")
    if heap_policy != DEFAULT_HEAP_POLICY:
        policy_module(heap_policy)  # an unknown name: InvalidArgument listing the policies
        if backend not in ("flat", "paged", "jit"):
            raise InvalidArgument(f"heap policy {heap_policy}: the {backend} backend runs the "
                                  f"{DEFAULT_HEAP_POLICY} allocator only; other policies run on --backend flat, "
                                  "paged or jit")
    if check_heap and backend not in ("flat", "jit"):
        raise InvalidArgument(f"checking the heap runs on the flat and jit backends, not {backend}")
    if record_allocs and backend not in UM_RECORD_BACKENDS:
        raise InvalidArgument(f"recording allocations runs on the {', '.join(UM_RECORD_BACKENDS)} backends, "
                              f"not {backend}")


def _check_streams(stdin, stdout) -> None:
    """InvalidArgument unless `stdin` is bytes, a binary stream or None and `stdout` a binary
    stream or None (text would fail later, halfway through a run)."""
    if isinstance(stdin, str):
        raise InvalidArgument("stdin must be bytes or a binary stream, not str: encode it first ('text'.encode())")
    if stdin is not None and not isinstance(stdin, (bytes, bytearray)) and not (
            hasattr(stdin, "read") or hasattr(stdin, "read1") or hasattr(stdin, "fileno")):
        raise InvalidArgument(f"stdin must be bytes or a binary stream, not {type(stdin).__name__}")
    if stdout is not None and (not hasattr(stdout, "write") or isinstance(stdout, io.TextIOBase)):
        raise InvalidArgument(f"stdout must be a binary stream (open(..., 'wb'), io.BytesIO()), "
                              f"not {type(stdout).__name__}")


def run_program(program, stdin: bytes | BinaryIO | None = b"", backend: str = "flat", **kwargs) -> RunResult:
    """Run `program` (words, UM file bytes, or a path) to completion; return output and stats.

    Raises UMFault if the program fails, BadProgram if it cannot be loaded.
    """
    out = io.BytesIO()
    with UniversalMachine(program, backend=backend, stdin=stdin, stdout=out, **kwargs) as um:
        stats = um.run()
    return RunResult(out.getvalue(), stats)
