"""A recording space: any backend's space, logging every map and unmap.

The log is an allocation trace in vm32.heap.alloctrace's format (int32 events):

    ev[i] >= 0   map a segment of ev[i] words (this is handle i)
    ev[i] <  0   unmap the segment of handle -ev[i] - 1

It reuses the interpreter unchanged: `RecordingSpace` is one more segment-space
type whose operations delegate to the space inside it (classic or flat, any heap
policy, the debugging heap included), so the trace of a program is the same on every
backend: handles number the maps, whatever ids the backend gives.  When the log is
full the next map or unmap refuses (a fault status, nothing done); the driver
(`UniversalMachine(record_allocs=True)`) then gives it a log twice as long
(`grow`) and runs the instruction again.
"""

from collections import namedtuple

import numpy as np
from numba import typed, types

from vm32.um import space as sp
from vm32.um import status as S
from vm32.um.classic import new_classic_space

RecordingSpace = namedtuple("RecordingSpace", ["inner", "log", "handles", "meta"])
"""inner: the recorded space; log: int32 events; handles: typed Dict, live segment id ->
handle (as many entries as live segments, whatever the ids: flat's are addresses up to
4 GiB); meta: [events]."""

EVENTS = 0


def _code_of(space):
    return sp.code_of(space.inner)


def _code_len(space, code):
    return sp.code_len(space.inner, code)


def _code_at(space, code, pc, ncode):
    return sp.code_at(space.inner, code, pc, ncode)


def _code_fetch(space, code, i):
    return sp.code_fetch(space.inner, code, i)


def _code_valid(space, code):
    return sp.code_valid(space.inner, code)


def _code_get(space, code, i):
    return sp.code_get(space.inner, code, i)


def _code_set(space, code, i, value):
    sp.code_set(space.inner, code, i, value)


def _two_steps(space):
    return sp.two_steps(space.inner)


def _seg_check(space, sid, off):
    return sp.seg_check(space.inner, sid, off)


def _seg_get(space, where):
    return sp.seg_get(space.inner, where)


def _seg_set(space, where, value):
    sp.seg_set(space.inner, where, value)


def _seg_map_at(space, n, pc):
    k = space.meta[EVENTS]
    if k >= space.log.shape[0]:
        return np.uint32(0)  # log full: the driver grows it and runs the map again
    sid = sp.seg_map_at(space.inner, n, pc)
    if sid != 0:
        space.handles[np.int64(sid)] = k
        space.log[k] = np.int32(n)
        space.meta[EVENTS] = k + 1
    return sid


def _seg_map(space, n):
    return _seg_map_at(space, n, np.uint64(0))


def _seg_unmap(space, sid):
    k = space.meta[EVENTS]
    if k >= space.log.shape[0]:
        return S.UNMAP_INACTIVE  # log full: the driver grows it and runs the unmap again
    status = sp.seg_unmap(space.inner, sid)
    if status == 0:
        space.log[k] = np.int32(-(space.handles.pop(np.int64(sid), np.int64(-1)) + 1))
        space.meta[EVENTS] = k + 1
    return status


def _seg_load_program(space, sid):
    return sp.seg_load_program(space.inner, sid)


sp.register(
    RecordingSpace,
    code_of=_code_of, code_at=_code_at, seg_check=_seg_check, seg_get=_seg_get, seg_set=_seg_set,
    seg_map=_seg_map, seg_map_at=_seg_map_at, seg_unmap=_seg_unmap, seg_load_program=_seg_load_program,
)
sp.register(RecordingSpace, refcounted=False, two_steps=_two_steps, code_len=_code_len,
            code_fetch=_code_fetch, code_valid=_code_valid, code_get=_code_get, code_set=_code_set)


def new_recording_space(words: np.ndarray, memory_size: int, events: int = 1 << 16) -> RecordingSpace:
    """A recording space around a classic space for `words`, with room for `events` events."""
    return recording_space(new_classic_space(words, memory_size), events)


def recording_space(inner, events: int = 1 << 16) -> RecordingSpace:
    """A recording space around `inner` (no segment mapped yet but segment 0), with room for
    `events` events."""
    handles = typed.Dict.empty(types.int64, types.int64)
    return RecordingSpace(inner, np.zeros(events, np.int32), handles, np.zeros(1, np.int64))


def log_full(space: RecordingSpace) -> bool:
    """True if the log has no room for another event."""
    return int(space.meta[EVENTS]) >= space.log.shape[0]


def grow(space: RecordingSpace) -> RecordingSpace:
    """The same space with a log twice as long (the events so far copied)."""
    log = np.zeros(2 * space.log.shape[0], np.int32)
    log[: space.log.shape[0]] = space.log
    return space._replace(log=log)


def events_of(space: RecordingSpace) -> np.ndarray:
    """The events logged so far (a copy)."""
    return space.log[: int(space.meta[EVENTS])].copy()


class _Discard:
    """An output stream that keeps nothing."""

    def write(self, data) -> int:
        return len(data)


def record_allocations(program, stdin: bytes = b"", on_slice=None) -> np.ndarray:
    """Run `program` (words, bytes or path) with output discarded; return its map/unmap events
    (int32).  A UM fault ends the run as an error (vm32.errors.UMFault).  `on_slice(um)` is
    called between kernel calls (progress)."""
    from vm32.um.machine import UniversalMachine

    with UniversalMachine(program, backend="classic", stdin=stdin, stdout=_Discard(), record_allocs=True) as um:
        um.run(on_slice=on_slice)
        return um.recorded_events()
