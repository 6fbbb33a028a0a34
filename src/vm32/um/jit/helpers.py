"""The compiled helpers that regions call: map and unmap, the interpreter's own code.

Each is a numba C callable over raw pointers (the region has no numpy arrays), which
rebuilds the flat space around them and calls vm32.um.kernel's `um_map` / `um_unmap`,
the functions the interpreter's step calls: one implementation of the allocator's use
and of the counters in `st`.  `symbols()` gives their host addresses by the names the
generated IR declares (vm32.um.jit.flatmem.HELPERS).
"""

from numba import carray, cfunc, types

from vm32.um.flat import FlatSpace
from vm32.um.kernel import ST_SIZE, um_map, um_unmap

_SIG = types.uint32(
    types.CPointer(types.uint32), types.int64,  # memory words, their number
    types.CPointer(types.int64), types.int64,  # heap state, its length
    types.CPointer(types.int64),  # the space's meta (segment 0's address)
    types.CPointer(types.int64),  # st
    types.uint32,  # map: words; unmap: segment id
)


@cfunc(_SIG, cache=True)
def jit_map(mem, mem_words, heap, heap_words, meta, st, n):
    """um_map on the flat space at these pointers: the new segment's id, 0 if out of memory."""
    space = FlatSpace(carray(mem, mem_words), carray(heap, heap_words), carray(meta, 1))
    return um_map(space, carray(st, ST_SIZE), n)


@cfunc(_SIG, cache=True)
def jit_unmap(mem, mem_words, heap, heap_words, meta, st, sid):
    """um_unmap on the flat space at these pointers: 0, or the fault status."""
    space = FlatSpace(carray(mem, mem_words), carray(heap, heap_words), carray(meta, 1))
    return um_unmap(space, carray(st, ST_SIZE), sid)


def symbols() -> dict[str, int]:
    """Host address of each helper, by the symbol name regions call it by."""
    return {"vm32_jit_map": jit_map.address, "vm32_jit_unmap": jit_unmap.address}
