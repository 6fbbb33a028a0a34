"""The UM interpreter: one numba kernel, specialised per backend by the type of its space.

`um_run` executes instructions until the machine halts, faults, needs input,
fills its output buffer or spends its instruction budget, then saves its state
and returns a status from `vm32.um.status`.  The Python driver acts on the
status (refill input, drain output, raise UMFault) and calls it again.

Machine state between calls lives in `st`, an int64 array indexed by the ST_*
constants; the eight registers live in `regs` (uint32[8]).  Inside the loop
everything hot is a local.

Speed notes: register fields are decoded with unsigned arithmetic so numba
indexes without negative-index fixups; the budget is checked only on load
program, the UM's one jump, so straight-line code pays nothing for it; segment 0
is handled here for every backend, so the common case (code and constants in
segment 0) never goes through a backend's liveness check.
"""

import numpy as np

from vm32.jit import inline_kernel, kernel
from vm32.um import status as S
from vm32.um.isa import ADD, CMOV, DIV, HALT, IN, LOAD, LOADIMM, LOADPROG, MAP, MUL, NAND, OUT, STORE, UNMAP
from vm32.um.space import code_get, code_len, code_of, code_set
from vm32.um.space import seg_check, seg_get, seg_load_program, seg_map, seg_set, seg_unmap

# Layout of the state array `st`.
ST_PC = 0  # execution finger (next instruction; the failing one after a fault)
ST_ICOUNT = 1  # instructions executed, over all calls
ST_IN_POS = 2  # next unread byte of the input buffer
ST_IN_LEN = 3  # bytes valid in the input buffer
ST_IN_EOF = 4  # 1 once the input stream has ended
ST_OUT_LEN = 5  # bytes waiting in the output buffer
ST_MAPS = 6  # segments mapped
ST_UNMAPS = 7  # segments unmapped
ST_LIVE = 8  # segments active now, besides segment 0
ST_PEAK_LIVE = 9  # most segments active at once
ST_LOADPROGS = 10  # load-program instructions that copied a non-zero segment
ST_SIZE = 16

WORD = 0xFFFFFFFF


def new_state() -> np.ndarray:
    """A fresh, zeroed machine state array."""
    return np.zeros(ST_SIZE, dtype=np.int64)


@inline_kernel
def _save(st, pc, icount, run_start, in_pos, out_len, maps, unmaps, live, peak):
    st[ST_PC] = pc
    st[ST_ICOUNT] = icount + np.int64(pc - run_start)
    st[ST_IN_POS] = in_pos
    st[ST_OUT_LEN] = out_len
    st[ST_MAPS] = maps
    st[ST_UNMAPS] = unmaps
    st[ST_LIVE] = live
    st[ST_PEAK_LIVE] = peak


@kernel
def um_run(space, regs, st, inbuf, outbuf, budget):
    """Run the UM in `space` for about `budget` instructions; return a status code.

    Requires: regs uint32[8]; st from new_state() (or a previous call); inbuf
    uint8 holding st[ST_IN_LEN] valid bytes; outbuf uint8 with room after
    st[ST_OUT_LEN].  Changes regs, st, outbuf and the space.
    """
    r = regs
    pc = np.uint64(st[ST_PC])
    # Instructions are counted per straight run, at jumps and exits: executed so
    # far = icount + (pc - run_start).  No counter update per instruction.
    icount = st[ST_ICOUNT]
    run_start = pc
    limit = icount + budget
    in_pos = st[ST_IN_POS]
    in_len = st[ST_IN_LEN]
    in_eof = st[ST_IN_EOF]
    out_len = st[ST_OUT_LEN]
    out_cap = outbuf.shape[0]
    maps = st[ST_MAPS]
    unmaps = st[ST_UNMAPS]
    live = st[ST_LIVE]
    peak = st[ST_PEAK_LIVE]
    fault = 0
    reload = True
    while reload:
        # `code` is assigned here only, never inside the instruction loop, so
        # when it is an array the loop carries none for numba to reference-count.
        code = code_of(space)
        ncode = np.uint64(code_len(space, code))
        reload = False
        while True:
            if pc >= ncode:
                fault = S.PC_OUT_OF_RANGE
                break
            w = code_get(space, code, pc)
            pc += np.uint64(1)
            op = w >> np.uint32(28)
            if op == LOADIMM:
                r[(w >> np.uint32(25)) & np.uint32(7)] = w & np.uint32(0x1FFFFFF)
                continue
            a = (w >> np.uint32(6)) & np.uint32(7)
            b = (w >> np.uint32(3)) & np.uint32(7)
            c = w & np.uint32(7)
            if op >= np.uint32(14):
                fault = S.INVALID_INSTRUCTION
                break
            elif op == CMOV:
                if r[c] != 0:
                    r[a] = r[b]
            elif op == LOAD:
                sid = r[b]
                off = np.uint64(r[c])
                if sid == 0:
                    if off >= ncode:
                        fault = S.INDEX_OUT_OF_BOUNDS
                        break
                    r[a] = code_get(space, code, off)
                else:
                    fault = seg_check(space, sid, off)
                    if fault != 0:
                        break
                    r[a] = seg_get(space, sid, off)
            elif op == STORE:
                sid = r[a]
                off = np.uint64(r[b])
                if sid == 0:
                    if off >= ncode:
                        fault = S.INDEX_OUT_OF_BOUNDS
                        break
                    code_set(space, code, off, r[c])
                else:
                    fault = seg_check(space, sid, off)
                    if fault != 0:
                        break
                    seg_set(space, sid, off, r[c])
            elif op == ADD:
                r[a] = (np.uint64(r[b]) + np.uint64(r[c])) & WORD
            elif op == MUL:
                r[a] = (np.uint64(r[b]) * np.uint64(r[c])) & WORD
            elif op == DIV:
                if r[c] == 0:
                    fault = S.DIVIDE_BY_ZERO
                    break
                r[a] = np.uint64(r[b]) // np.uint64(r[c])
            elif op == NAND:
                r[a] = ~(np.uint64(r[b]) & np.uint64(r[c])) & WORD
            elif op == LOADPROG:
                sid = r[b]
                if sid != 0:
                    fault = seg_load_program(space, sid)
                    if fault != 0:
                        break
                    st[ST_LOADPROGS] += 1
                    reload = True
                icount += np.int64(pc - run_start)
                pc = np.uint64(r[c])
                run_start = pc
                if icount >= limit:
                    _save(st, pc, icount, run_start, in_pos, out_len, maps, unmaps, live, peak)
                    return S.BUDGET
                if reload:
                    break
            elif op == MAP:
                sid = seg_map(space, r[c])
                if sid == 0:
                    fault = S.OUT_OF_MEMORY
                    break
                r[b] = sid
                maps += 1
                live += 1
                if live > peak:
                    peak = live
            elif op == UNMAP:
                sid = r[c]
                if sid == 0:
                    fault = S.UNMAP_ZERO
                    break
                fault = seg_unmap(space, sid)
                if fault != 0:
                    break
                unmaps += 1
                live -= 1
            elif op == OUT:
                if r[c] > 255:
                    fault = S.OUTPUT_TOO_LARGE
                    break
                if out_len >= out_cap:
                    _save(st, pc - np.uint64(1), icount, run_start, in_pos, out_len, maps, unmaps, live, peak)
                    return S.OUTPUT_FULL
                outbuf[out_len] = r[c]
                out_len += 1
            elif op == IN:
                if in_pos < in_len:
                    r[c] = inbuf[in_pos]
                    in_pos += 1
                elif in_eof != 0:
                    r[c] = WORD
                else:
                    _save(st, pc - np.uint64(1), icount, run_start, in_pos, out_len, maps, unmaps, live, peak)
                    return S.NEED_INPUT
            elif op == HALT:
                _save(st, pc, icount, run_start, in_pos, out_len, maps, unmaps, live, peak)
                return S.HALTED
            else:
                fault = S.INVALID_INSTRUCTION
                break
        if fault != 0:
            break
    # A fault: leave pc at the failing instruction, which did not complete.
    if fault != S.PC_OUT_OF_RANGE:
        pc -= np.uint64(1)
    _save(st, pc, icount, run_start, in_pos, out_len, maps, unmaps, live, peak)
    return fault
