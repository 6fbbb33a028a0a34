"""The jit backend's segment space: flat memory and allocator, plus what tier 0 needs.

`JitSpace` has the flat space's fields (mem, heap, meta), so every segment
operation is the flat backend's own (`vm32.um.flat.OPERATIONS`), but one:
a store into segment 0 also looks the word up in the compiled-word bitmap and,
when the word belongs to compiled code, notes it in jx[JX_STALE] so that the
interpreter ends its straight run (`code_valid` turns False) and tier 0 hands
the stale regions to the driver.

    bitmap   uint8, one byte per word of segment 0: non-zero iff the word is
             compiled into a live region (or a region being compiled)
    entries  int64, per word of segment 0: host address of the region function
             entered there, 0 if none
    counts   int32, per word of segment 0: entries at that jump target in tier 0
    jx       the context array shared with compiled regions (vm32.um.jit.abi)

bitmap, entries and counts have at least as many elements as segment 0 has words.
"""

from collections import namedtuple

import numpy as np

from vm32.memory import PhysicalMemory
from vm32.um import flat
from vm32.um import space as sp
from vm32.um.jit.abi import JX_STALE

JitSpace = namedtuple("JitSpace", ["mem", "heap", "meta", "bitmap", "entries", "counts", "jx"])


def new_tables(words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty (bitmap, entries, counts) for a segment 0 of `words` words."""
    n = max(words, 1)
    return np.zeros(n, np.uint8), np.zeros(n, np.int64), np.zeros(n, np.int32)


def new_jit_space(program: np.ndarray, memory: PhysicalMemory, jx: np.ndarray):
    """A jit space over `memory` whose segment 0 is a copy of `program`; (space, heap)."""
    base, heap = flat.new_flat_space(program, memory)
    return JitSpace(base.mem, base.heap, base.meta, *new_tables(program.shape[0]), jx), heap


def _code_set(space, code, i, value):
    space.mem[code + i] = value
    if space.bitmap[i] != 0:
        space.jx[JX_STALE] = np.int64(i) + 1


def _code_valid(space, code):
    return space.jx[JX_STALE] == 0


sp.register(
    JitSpace, refcounted=False, inline=True, **sp.TWO_STEPS,
    **{**flat.OPERATIONS, "code_set": _code_set}, code_at=sp.WHOLE_CODE["code_at"],
    code_valid=_code_valid,
)
