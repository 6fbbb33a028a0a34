"""The UM interpreter: one numba kernel, specialised per backend by the type of its space.

`um_step` executes one instruction: the one definition of the UM's decoder and
semantics.  `um_run` calls it until the machine halts, faults, needs input,
fills its output buffer or spends its instruction budget, then saves its state
and returns a status from `vm32.um.status`.  The Python driver acts on the
status (refill input, drain output, raise UMFault) and calls it again.

Machine state between calls lives in `st`, an int64 array indexed by the ST_*
constants; the eight registers live in `regs` (uint32[8]).  The pc and the
instruction count are locals of `um_run`.

Speed notes:
* `um_step` is compiled without reference counting and inlined by LLVM.  On
  flat memory `um_run` calls it twice per loop iteration: each inlined copy has
  its own dispatch branch, which the CPU predicts separately (8% faster on
  sandmark than one copy).  On paged memory one copy is faster (5%): its
  bigger loop runs short of registers.  The backend says which (`two_steps`).
* Instruction fetch is one host load through the code handle, checked against
  `end`, a local: at every jump `code_at` gives the handle and the end of the
  words it can fetch (segment 0's end on flat memory; the end of the page on
  paged memory, where reaching it just starts a new straight run).  A segment
  operation that invalidated the handle (`code_valid`: on paged memory, this
  CPU's TLB changed) ends the straight run as a jump does.
* Invalid operators are the last case of the switch, not a test before it:
  LLVM then emits one range check before the jump table instead of two
  (measured: 5% faster on sandmark; a test `op >= 14` first cost a compare
  and branch on every instruction).
* Instructions are counted per straight run, at jumps and exits, not one by
  one; the budget is checked only at the end of a straight run.
* Register fields are decoded with unsigned arithmetic, so numba indexes
  without negative-index fix-ups.  Segment 0 is handled here for every backend
  through its code handle, so code and constants in segment 0 never go through
  a backend's liveness check (sandmark keeps its variables there: 59% of its
  loads and 60% of its stores are to segment 0).
* Words are decoded at every fetch, not predecoded: each of sandmark's 449
  million stores into segment 0 would have to redo the predecoding.  A
  predecoded copy with fused pairs (load immediate + the load or store whose
  offset it sets) ran sandmark in 9.0-9.2 s against 8.3-8.5 s; fusing the
  same pairs at run time, by peeking after a load immediate, was no faster.
"""

import numpy as np

from vm32.jit import kernel, step_kernel
from vm32.um import status as S
from vm32.um.jit.abi import EXIT_JUMP, EXIT_SHIFT, EXIT_STALE, EXIT_STEP, JX_CALLS, JX_CODE, JX_ICOUNT
from vm32.um.jit.abi import JX_HOT, JX_JIT_ICOUNT, JX_LIMIT, JX_STALE, PC_MASK, call_region
from vm32.um.isa import ADD, CMOV, DIV, HALT, IN, LOAD, LOADIMM, LOADPROG, MAP, MUL, NAND, OUT, STORE, UNMAP
from vm32.um.space import code_at, code_fetch, code_get, code_len, code_of, code_set, code_valid
from vm32.um.space import seg_check, seg_get, seg_load_program, seg_map_at, seg_set, seg_unmap, two_steps

# Layout of the state array `st`.
ST_PC = 0  # execution finger (next instruction; the failing one after a fault)
ST_ICOUNT = 1  # instructions executed, over all calls
ST_IN_POS = 2  # next unread byte of the input buffer
ST_IN_LEN = 3  # bytes valid in the input buffer
ST_IN_EOF = 4  # 1 once the input stream has ended
ST_OUT_LEN = 5  # bytes waiting in the output buffer
ST_MAPS = 6  # segments mapped
ST_UNMAPS = 7  # segments unmapped (active now, besides segment 0: maps - unmaps)
ST_PEAK_LIVE = 9  # most segments active at once
ST_LOADPROGS = 10  # load-program instructions that copied a non-zero segment
ST_SIZE = 16

NO_PC = 0xFFFFFFFF  # um_map's pc when the caller has none (compiled code's helpers)

WORD = 0xFFFFFFFF

# um_step's events besides the statuses of vm32.um.status (which are >= 0).
NEXT = -1  # go on at the returned pc
JUMP = -2  # load program of segment 0: the returned pc is the jump target
LOADED = -3  # load program of another segment: segment 0 was replaced; pc = target
MOVED = -4  # a segment operation changed what the code handle's window maps (paged: the
            # TLB changed; jit: a store changed compiled code): go on at pc with a new window


def new_state() -> np.ndarray:
    """A fresh, zeroed machine state array."""
    return np.zeros(ST_SIZE, dtype=np.int64)


@step_kernel
def um_map(space, st, n, pc=NO_PC):
    """Map a new zeroed segment of `n` words and count it in `st`; its id, or 0 when
    memory is exhausted (nothing changed).  `pc`: the map instruction's (a debugging
    backend's allocation site)."""
    sid = seg_map_at(space, n, pc)
    if sid != 0:
        maps = st[ST_MAPS] + 1
        st[ST_MAPS] = maps
        live = maps - st[ST_UNMAPS]
        if live > st[ST_PEAK_LIVE]:
            st[ST_PEAK_LIVE] = live
    return sid


@step_kernel
def um_unmap(space, st, sid):
    """Unmap segment `sid` and count it in `st`; 0, or the fault status (nothing changed)."""
    if sid == 0:
        return S.UNMAP_ZERO
    fault = seg_unmap(space, sid)
    if fault == 0:
        st[ST_UNMAPS] += 1
    return fault


@step_kernel
def um_step(space, r, st, inbuf, outbuf, code, ncode, pc):
    """Execute the instruction at `pc` of segment 0 (inside `code`'s fetch window); return (pc', event).

    event is NEXT, JUMP, MOVED or LOADED (pc' = where to go on), HALTED, or a
    status that stops the machine before the instruction completes (a fault,
    NEED_INPUT, OUTPUT_FULL: pc' = pc, the instruction to report or retry).
    Counters and I/O positions are updated in `st`.
    """
    w = code_fetch(space, code, pc)
    nxt = pc + np.uint64(1)
    op = w >> np.uint32(28)
    if op == LOADIMM:
        r[(w >> np.uint32(25)) & np.uint32(7)] = w & np.uint32(0x1FFFFFF)
        return nxt, NEXT
    a = (w >> np.uint32(6)) & np.uint32(7)
    b = (w >> np.uint32(3)) & np.uint32(7)
    c = w & np.uint32(7)
    if op == CMOV:
        if r[c] != 0:
            r[a] = r[b]
    elif op == LOAD:
        sid = r[b]
        off = np.uint64(r[c])
        if sid == 0:
            if off >= ncode:
                return pc, S.INDEX_OUT_OF_BOUNDS
            r[a] = code_get(space, code, off)
        else:
            fault, where = seg_check(space, sid, off)
            if fault != 0:
                return pc, fault
            r[a] = seg_get(space, where)
        if not code_valid(space, code):
            return nxt, MOVED
    elif op == STORE:
        sid = r[a]
        off = np.uint64(r[b])
        if sid == 0:
            if off >= ncode:
                return pc, S.INDEX_OUT_OF_BOUNDS
            code_set(space, code, off, r[c])
        else:
            fault, where = seg_check(space, sid, off)
            if fault != 0:
                return pc, fault
            seg_set(space, where, r[c])
        if not code_valid(space, code):
            return nxt, MOVED
    elif op == ADD:
        r[a] = (np.uint64(r[b]) + np.uint64(r[c])) & WORD
    elif op == MUL:
        r[a] = (np.uint64(r[b]) * np.uint64(r[c])) & WORD
    elif op == DIV:
        if r[c] == 0:
            return pc, S.DIVIDE_BY_ZERO
        r[a] = np.uint64(r[b]) // np.uint64(r[c])
    elif op == NAND:
        r[a] = ~(np.uint64(r[b]) & np.uint64(r[c])) & WORD
    elif op == LOADPROG:
        sid = r[b]
        if sid != 0:
            fault = seg_load_program(space, sid)
            if fault != 0:
                return pc, fault
            st[ST_LOADPROGS] += 1
            return np.uint64(r[c]), LOADED
        return np.uint64(r[c]), JUMP
    elif op == MAP:
        sid = um_map(space, st, r[c], pc)
        if sid == 0:
            return pc, S.OUT_OF_MEMORY
        r[b] = sid
        if not code_valid(space, code):
            return nxt, MOVED
    elif op == UNMAP:
        fault = um_unmap(space, st, r[c])
        if fault != 0:
            return pc, fault
        if not code_valid(space, code):
            return nxt, MOVED
    elif op == OUT:
        if r[c] > 255:
            return pc, S.OUTPUT_TOO_LARGE
        n = st[ST_OUT_LEN]
        if n >= outbuf.shape[0]:
            return pc, S.OUTPUT_FULL
        outbuf[n] = r[c]
        st[ST_OUT_LEN] = n + 1
    elif op == IN:
        i = st[ST_IN_POS]
        if i < st[ST_IN_LEN]:
            r[c] = inbuf[i]
            st[ST_IN_POS] = i + 1
        elif st[ST_IN_EOF] != 0:
            r[c] = WORD
        else:
            return pc, S.NEED_INPUT
    elif op == HALT:
        return nxt, S.HALTED
    elif op >= np.uint32(14):
        return pc, S.INVALID_INSTRUCTION
    return nxt, NEXT  # (LOADIMM never gets here)


@kernel
def um_run(space, regs, st, inbuf, outbuf, budget):
    """Run the UM in `space` for about `budget` instructions; return a status code.

    Requires: regs uint32[8]; st from new_state() (or a previous call); inbuf
    uint8 holding st[ST_IN_LEN] valid bytes; outbuf uint8 with room after
    st[ST_OUT_LEN].  Changes regs, st, outbuf and the space.

    The straight run's loop is written out here and in `um_run_tiered`, not shared as an
    inlined step kernel: through that call LLVM kept one more value on the stack across
    the dispatch, and flat sandmark took 1.15x the time of this loop (medians of 5
    alternated runs).  The loop runs from pc to the first instruction that does not go
    on to the next one: a jump, an event, a status, or the end of the fetch window.
    """
    pc = np.uint64(st[ST_PC])
    icount = st[ST_ICOUNT]
    limit = icount + budget
    while True:  # one pass per segment 0: a load program of another segment starts a new one
        code = code_of(space)
        ncode = np.uint64(code_len(space, code))
        while True:  # one pass per straight run of instructions, up to a jump
            code, end = code_at(space, code, pc, ncode)
            run_start = pc
            at = pc
            ev = NEXT
            while True:  # one or two steps per iteration: see "Speed notes"
                at = pc
                if at >= end:  # the end of segment 0, or of the fetch window
                    ev = S.PC_OUT_OF_RANGE if at >= ncode else NEXT
                    break
                pc, ev = um_step(space, regs, st, inbuf, outbuf, code, ncode, at)
                if ev != NEXT:
                    break
                if two_steps(space):
                    at = pc
                    if at >= end:
                        ev = S.PC_OUT_OF_RANGE if at >= ncode else NEXT
                        break
                    pc, ev = um_step(space, regs, st, inbuf, outbuf, code, ncode, at)
                    if ev != NEXT:
                        break
            done = ev == JUMP or ev == MOVED or ev == LOADED or ev == S.HALTED
            icount += np.int64(at - run_start) + np.int64(done)
            if ev >= 0 or icount >= limit:
                st[ST_PC] = pc
                st[ST_ICOUNT] = icount
                return ev if ev >= 0 else S.BUDGET
            if ev == LOADED:
                break


@kernel
def um_run_tiered(space, regs, st, inbuf, outbuf, budget):
    """Tier 0 of the jit backend: `um_run`, and at every jump target either a call of the
    compiled region entered there or one more count towards compiling one.

    `space` is a vm32.um.jit.space.JitSpace, whose code_at ends the fetch window at once
    at such a target (its entries are counts and addresses).  Returns um_run's statuses,
    or JIT_HOT (the jump target st[ST_PC] = jx[JX_HOT] reached the compile threshold),
    JIT_STALE (a store changed compiled code: jx[JX_STALE] - 1 is the word) or
    JIT_NEW_CODE (a load program of another segment replaced segment 0); the
    caller acts on those and calls again.  Per region call see vm32.um.jit.abi.
    """
    jx = space.jx
    entries = space.entries
    pc = np.uint64(st[ST_PC])
    icount = st[ST_ICOUNT]
    limit = icount + budget
    code = code_of(space)
    ncode = np.uint64(code_len(space, code))
    jx[JX_CODE] = np.int64(code)
    jx[JX_LIMIT] = limit
    while True:  # one pass per straight run: um_run's loop (see there)
        code, end = code_at(space, code, pc, ncode)
        run_start = pc
        at = pc
        ev = NEXT
        while True:
            at = pc
            if at >= end:
                ev = S.PC_OUT_OF_RANGE if at >= ncode else NEXT
                break
            pc, ev = um_step(space, regs, st, inbuf, outbuf, code, ncode, at)
            if ev != NEXT:
                break
            if two_steps(space):
                at = pc
                if at >= end:
                    ev = S.PC_OUT_OF_RANGE if at >= ncode else NEXT
                    break
                pc, ev = um_step(space, regs, st, inbuf, outbuf, code, ncode, at)
                if ev != NEXT:
                    break
        done = ev == JUMP or ev == MOVED or ev == LOADED or ev == S.HALTED
        icount += np.int64(at - run_start) + np.int64(done)
        if ev == JUMP and icount < limit:
            continue
        if ev == NEXT and icount < limit:  # code_at stopped at a target: compiled, or hot
            if entries[pc] == 0:  # its count ran out
                st[ST_PC] = pc
                st[ST_ICOUNT] = icount
                jx[JX_HOT] = pc
                return S.JIT_HOT
            pc, how, icount = call_regions(space, regs, st, pc, icount, limit)
            if how == EXIT_STALE or icount >= limit:
                st[ST_PC] = pc
                st[ST_ICOUNT] = icount
                return S.JIT_STALE if how == EXIT_STALE else S.BUDGET
            if how != EXIT_STEP:
                continue
            # The region leaves this instruction to the interpreter: run it here, as
            # the straight run would stop at the compiled entry again.
            nxt, ev = um_step(space, regs, st, inbuf, outbuf, code, ncode, pc)
            if ev == NEXT or ev == JUMP or ev == MOVED or ev == LOADED or ev == S.HALTED:
                icount += 1
                if ev == NEXT or ev == JUMP or (ev == MOVED and jx[JX_STALE] == 0):
                    pc = nxt
                    continue
            st[ST_PC] = nxt if ev < 0 or ev == S.HALTED else pc
            st[ST_ICOUNT] = icount
            if ev >= 0:
                return ev
            return S.JIT_NEW_CODE if ev == LOADED else S.JIT_STALE
        if ev == MOVED and icount < limit and jx[JX_STALE] == 0:
            continue
        st[ST_PC] = pc
        st[ST_ICOUNT] = icount
        if ev >= 0:
            return ev
        if ev == LOADED:
            return S.JIT_NEW_CODE
        return S.JIT_STALE if jx[JX_STALE] != 0 else S.BUDGET


@step_kernel
def call_regions(space, regs, st, pc, icount, limit):
    """Call compiled regions from `pc` (an entry) on, region after region, while they leave
    by jumps to other entries; return (pc', how, icount') of the last exit (vm32.um.jit.abi)."""
    jx = space.jx
    how = EXIT_JUMP
    while pc < np.uint64(space.entries.shape[0]):
        entry = space.entries[pc]
        if entry <= 0:  # a count: no compiled code here
            break
        jx[JX_ICOUNT] = icount
        packed = call_region(entry, pc, regs, jx, st)
        jx[JX_CALLS] += 1
        ran = jx[JX_ICOUNT] - icount
        jx[JX_JIT_ICOUNT] += ran
        space.ran[pc] += ran
        icount = jx[JX_ICOUNT]
        pc = np.uint64(packed & PC_MASK)
        how = packed >> EXIT_SHIFT
        if how != EXIT_JUMP or icount >= limit:
            break
    return pc, how, icount
