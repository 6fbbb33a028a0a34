"""The compiled helpers that regions call: map and unmap, the interpreter's own code.

Each is a numba C callable taking the context (from which it rebuilds the JitSpace),
`st` and one operand, and calls vm32.um.kernel's `um_map` / `um_unmap`, the functions
the interpreter's step calls: one implementation of the allocator's use, of the
segment table and of the counters in `st`.  `symbols()` gives their host addresses by
the names the generated IR declares (vm32.um.jit.flatmem.HELPERS).
"""

from numba import carray, cfunc, types

from vm32.um.jit.abi import JX_SIZE
from vm32.um.jit.space import space_of_context
from vm32.um.kernel import ST_SIZE, um_map, um_unmap

_SIG = types.uint32(types.CPointer(types.int64), types.CPointer(types.int64), types.uint32)
"""(jx, st, operand) -> result."""


@cfunc(_SIG, cache=True)
def jit_map(jx, st, n):
    """um_map on the space of context `jx`: the new segment's id, 0 if out of memory."""
    return um_map(space_of_context(carray(jx, JX_SIZE)), carray(st, ST_SIZE), n)


@cfunc(_SIG, cache=True)
def jit_unmap(jx, st, sid):
    """um_unmap on the space of context `jx`: 0, or the fault status (nothing changed)."""
    return um_unmap(space_of_context(carray(jx, JX_SIZE)), carray(st, ST_SIZE), sid)


def symbols() -> dict[str, int]:
    """Host address of each helper, by the symbol name regions call it by."""
    return {"vm32_jit_map": jit_map.address, "vm32_jit_unmap": jit_unmap.address}
