"""The UM debugger's basics: run one instruction at a time, record what each did, stop at a pc.

`um_debug_run` is `vm32.um.kernel.um_run` taken one instruction at a time
through the same `um_step` (the one definition of the UM's semantics), so it
can stop before any instruction and record each one: its pc, its word and the
registers after it.  `debug_run` drives it for a `UniversalMachine` on the flat,
classic or jit backend; vm32.ui.debug prints what it returns.

On jit it runs in the interpreter tier, on the jit space itself (its map and unmap keep
the segment table that compiled code reads); it stops after a load program of another
segment and after a store into compiled code (`MOVED`), so that the JIT's driver
resizes its tables for the new segment 0 or drops the stale regions before it goes on.
Its fetches count towards compiling the pcs they run, which only makes them hot sooner.

It is slower than um_run (it finds the fetch window at every instruction) and
is compiled only when it is used: `vm32 um run --trace-instructions N` steps
through the first N instructions and then runs at full speed, `--break PC`
steps until execution reaches PC.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from vm32.defaults import UM_DEBUG_BACKENDS
from vm32.errors import InvalidArgument
from vm32.jit import compile_timer, kernel
from vm32.um import status as S
from vm32.um.kernel import LOADED, MOVED, ST_ICOUNT, ST_PC, um_step
from vm32.um.space import code_at, code_fetch, code_len, code_of

AT_BREAK = -100
"""um_debug_run's status when it stopped before the instruction at the break pc."""
LOG_COLS = 10  # pc, word, then the eight registers after the instruction
NO_BREAK = -1
STEP_SLICE = 1 << 20  # instructions per kernel call while stepping towards a break


@kernel
def um_debug_run(space, regs, st, inbuf, outbuf, budget, break_pc, log):
    """Run at most `budget` instructions one at a time; stop before the instruction at
    offset `break_pc` (NO_BREAK: none).  Row k of `log` (while it has rows) gets the k-th
    instruction's pc, word and the registers after it.

    Returns (status, n): a um_run status, AT_BREAK, or after a load program of another
    segment JIT_NEW_CODE and after a store into compiled code (jit) JIT_STALE, and the
    instructions completed.  st[ST_PC] and st[ST_ICOUNT] are left as um_run leaves them.
    """
    pc = np.uint64(st[ST_PC])
    code = code_of(space)
    ncode = np.uint64(code_len(space, code))
    status = np.int64(S.BUDGET)
    n = np.int64(0)
    while n < budget:
        if np.int64(pc) == break_pc:
            status = AT_BREAK
            break
        if pc >= ncode:
            status = S.PC_OUT_OF_RANGE
            break
        window, end = code_at(space, code, pc, ncode)
        word = code_fetch(space, window, pc)
        nxt, ev = um_step(space, regs, st, inbuf, outbuf, window, ncode, pc)
        if ev >= 0 and ev != S.HALTED:  # a fault, or input or output to serve first: pc stays
            status = ev
            break
        if n < log.shape[0]:
            log[n, 0] = pc
            log[n, 1] = word
            for r in range(8):
                log[n, 2 + r] = regs[r]
        n += 1
        pc = nxt
        if ev == S.HALTED:
            status = S.HALTED
            break
        if ev == LOADED:
            status = S.JIT_NEW_CODE
            break
        if ev == MOVED:
            status = S.JIT_STALE
            break
    st[ST_PC] = pc
    st[ST_ICOUNT] += n
    return status, n


def debug_run(um, *, trace: int = 0, break_pc: int | None = None,
              on_trace: Callable[[np.ndarray], None] | None = None) -> bool:
    """Run `um` (a UniversalMachine on the flat, classic or jit backend), stepping through its
    first `trace` instructions and, with `break_pc`, until execution reaches that offset;
    then at full speed to its end.  `on_trace(rows)` gets the traced instructions as they
    run (rows of pc, word and the eight registers after it).  Returns True if it stopped
    before the instruction at `break_pc` (the state is then in `um.regs` and `um.st`).
    Raises what `um.run` raises (UMFault...)."""
    if um.backend not in UM_DEBUG_BACKENDS:
        raise InvalidArgument(f"the debugger runs on the flat, classic and jit backends, not {um.backend}")
    if trace < 0:
        raise InvalidArgument(f"trace must be 0 or more instructions, not {trace}")
    watch = NO_BREAK if break_pc is None else int(break_pc)
    log = np.zeros((min(trace, STEP_SLICE), LOG_COLS), dtype=np.int64)
    if um.jit is not None:
        um.jit.warm()  # the debugger's kernel steps on the jit space: its segment table exact
    start = time.perf_counter()
    with compile_timer() as timer:
        try:
            while not um.halted and (trace > 0 or watch != NO_BREAK):
                rows = log[: min(trace, len(log))]
                budget = len(rows) if watch == NO_BREAK else STEP_SLICE
                space = um.space if um.jit is None else um.jit.space  # (the driver's, with its current tables)
                status, n = um_debug_run(space, um.regs, um.st, um.inbuf, um.outbuf, budget, watch, rows)
                if on_trace is not None and min(n, len(rows)):
                    on_trace(rows[: min(n, len(rows))].copy())
                trace -= min(int(n), len(rows))
                if status == AT_BREAK:
                    return True
                if status in (S.JIT_NEW_CODE, S.JIT_STALE):
                    if um.jit is not None:
                        um.jit.settle(int(status), int(um.st[ST_ICOUNT]))
                    continue
                um._after_call(int(status))
        finally:
            um.compile_seconds += timer.seconds
            um.wall_seconds += time.perf_counter() - start - timer.seconds
            um._drain_output()
    if not um.halted:
        um.run()
    return False
