"""A recording space: the classic backend, logging every map and unmap for replay.

`record_allocations` runs a UM program and returns its allocation sequence as
an int64 array, the input of `benchmarks/heap_replay.py`:

    ev[i] >= 0   map a segment of ev[i] words (this is handle i)
    ev[i] <  0   unmap the segment of handle -ev[i] - 1

It reuses the interpreter unchanged: `RecordingSpace` is one more segment-space
type whose operations delegate to the classic space inside it.  When the log is
full the next map or unmap refuses (a fault status), which ends the run.
"""

from collections import namedtuple

import numpy as np
from numba import typed, types

from vm32.um import space as sp
from vm32.um import status as S
from vm32.um.classic import new_classic_space
from vm32.um.kernel import ST_IN_EOF, ST_IN_LEN, ST_OUT_LEN, new_state, um_run
from vm32.um.loader import program_words

RecordingSpace = namedtuple("RecordingSpace", ["inner", "log", "handles", "meta"])
"""inner: a ClassicSpace; log: int64 events; handles: typed List, sid -> handle; meta: [events]."""

EVENTS = 0


def _code_of(space):
    return sp.code_of(space.inner)


def _seg_check(space, sid, off):
    return sp.seg_check(space.inner, sid, off)


def _seg_get(space, where):
    return sp.seg_get(space.inner, where)


def _seg_set(space, where, value):
    sp.seg_set(space.inner, where, value)


def _seg_map(space, n):
    k = space.meta[EVENTS]
    if k >= space.log.shape[0]:
        return np.uint32(0)  # log full: ends the run
    sid = sp.seg_map(space.inner, n)
    if sid != 0:
        while len(space.handles) <= sid:
            space.handles.append(np.int64(-1))
        space.handles[sid] = k
        space.log[k] = np.int64(n)
        space.meta[EVENTS] = k + 1
    return sid


def _seg_unmap(space, sid):
    k = space.meta[EVENTS]
    if k >= space.log.shape[0]:
        return S.UNMAP_INACTIVE  # log full: ends the run
    status = sp.seg_unmap(space.inner, sid)
    if status == 0:
        space.log[k] = -(space.handles[sid] + 1)
        space.meta[EVENTS] = k + 1
    return status


def _seg_load_program(space, sid):
    return sp.seg_load_program(space.inner, sid)


sp.register(
    RecordingSpace,
    code_of=_code_of, seg_check=_seg_check, seg_get=_seg_get, seg_set=_seg_set,
    seg_map=_seg_map, seg_unmap=_seg_unmap, seg_load_program=_seg_load_program,
)
sp.register(RecordingSpace, refcounted=False, **sp.TWO_STEPS)
sp.register_array_code(RecordingSpace)



def record_allocations(program, max_events: int = 20_000_000, stdin: bytes = b"") -> np.ndarray:
    """Run `program` (words, bytes or path) and return its first `max_events` map/unmap events.

    Output is discarded.  The run ends at halt, at a fault, or when the log is full.
    """
    words = program_words(program)
    handles = typed.List.empty_list(types.int64)
    handles.append(np.int64(-1))  # segment 0 is not an allocation
    space = RecordingSpace(new_classic_space(words, 1 << 32), np.zeros(max_events, np.int64),
                           handles, np.zeros(1, np.int64))
    regs = np.zeros(8, np.uint32)
    st = new_state()
    inbuf = np.frombuffer(stdin, dtype=np.uint8).copy() if stdin else np.zeros(1, np.uint8)
    st[ST_IN_LEN] = len(stdin)
    st[ST_IN_EOF] = 1  # no more input after `stdin`
    outbuf = np.zeros(1 << 16, np.uint8)
    while True:
        status = um_run(space, regs, st, inbuf, outbuf, 1 << 26)
        st[ST_OUT_LEN] = 0  # drop the output
        if status not in (S.BUDGET, S.OUTPUT_FULL):
            break
    return space.log[: space.meta[EVENTS]].copy()
