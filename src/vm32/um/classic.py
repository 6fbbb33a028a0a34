"""The classic backend: every segment a separate array, found through a table of arrays.

This is the conventional UM design (and `../shared/anchors/um_ref.c`'s): a
segment id is an index into a table, so each load or store costs a table
lookup and then the access.  It is kept as the baseline the flat backend must
beat, and as a second, independent implementation to test the flat one against.

Invariants:  sizes[i] >= 0  <=>  segment i is active  <=>  i not in free_ids;
             meta[LIVE_WORDS] == sum of sizes[i] over active i != 0.
"""

from collections import namedtuple

import numpy as np
from numba import typed, types

from vm32.um import space as sp
from vm32.um import status as S

ClassicSpace = namedtuple("ClassicSpace", ["table", "sizes", "free_ids", "meta"])
"""table: typed List of uint32 arrays; sizes: typed List of int64 (-1 = inactive);
free_ids: typed List of reusable ids; meta: int64[2] (live words, word limit)."""

LIVE_WORDS = 0
WORD_LIMIT = 1

def new_classic_space(program: np.ndarray, memory_bytes: int) -> ClassicSpace:
    """A classic space holding `program` as segment 0, limited to `memory_bytes` of segments."""
    table = typed.List.empty_list(types.uint32[::1])
    table.append(program.copy())
    sizes = typed.List.empty_list(types.int64)
    sizes.append(program.shape[0])
    free_ids = typed.List.empty_list(types.int64)
    meta = np.array([0, memory_bytes // 4], dtype=np.int64)
    return ClassicSpace(table, sizes, free_ids, meta)


def _code_of(space):
    return space.table[0]


def _seg_check(space, sid, off):
    where = (np.int64(sid), np.int64(off))
    if sid >= len(space.sizes) or space.sizes[sid] < 0:
        return S.INACTIVE_ARRAY, where
    if off >= space.sizes[sid]:
        return S.INDEX_OUT_OF_BOUNDS, where
    return 0, where


def _seg_get(space, where):
    return space.table[where[0]][where[1]]


def _seg_set(space, where, value):
    space.table[where[0]][where[1]] = value


def _seg_map(space, n):
    words = np.int64(n)
    if space.meta[LIVE_WORDS] + words > space.meta[WORD_LIMIT]:
        return np.uint32(0)
    seg = np.zeros(words, dtype=np.uint32)
    if len(space.free_ids) > 0:
        sid = space.free_ids.pop()
        space.table[sid] = seg
        space.sizes[sid] = words
    else:
        if len(space.table) > 0xFFFFFFFF:
            return np.uint32(0)
        sid = len(space.table)
        space.table.append(seg)
        space.sizes.append(words)
    space.meta[LIVE_WORDS] += words
    return np.uint32(sid)


def _seg_unmap(space, sid):
    if sid >= len(space.sizes) or space.sizes[sid] < 0:
        return S.UNMAP_INACTIVE
    space.meta[LIVE_WORDS] -= space.sizes[sid]
    space.table[sid] = np.zeros(0, dtype=np.uint32)  # drop the storage now
    space.sizes[sid] = -1
    space.free_ids.append(np.int64(sid))
    return 0


def _seg_load_program(space, sid):
    if sid >= len(space.sizes) or space.sizes[sid] < 0:
        return S.LOADPROG_INACTIVE
    space.table[0] = space.table[sid].copy()
    space.sizes[0] = space.sizes[sid]
    return 0


sp.register(
    ClassicSpace,
    code_of=_code_of, seg_check=_seg_check, seg_get=_seg_get, seg_set=_seg_set,
    seg_map=_seg_map, seg_unmap=_seg_unmap, seg_load_program=_seg_load_program,
)
sp.register(ClassicSpace, refcounted=False, **sp.TWO_STEPS)
sp.register_array_code(ClassicSpace)

