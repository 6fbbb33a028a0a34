"""The registry of allocator policies: name -> policy module.

A policy module declares NAME, ID (stored in its state's M_POLICY word), SUMMARY, PARAMS
(the keyword parameters `Heap(..., policy=NAME, **params)` accepts, with their defaults),
CHECK_MESSAGES (its heap_check finding codes as text), `new_state(base, limit,
debug=False, **params)` (validates its parameters, refusing unknown ones, and returns a
state array with them set), and the same compiled kernels under the same names:

    heap_init(mem, state, base, limit)             sets up the empty heap in a new_state
                                                   (the only kernel that may run first;
                                                   what it writes to mem goes through the
                                                   seam, so a process heap runs it inside
                                                   the process: vm32.kernel.procheap)
    heap_malloc(mem, state, nbytes) / heap_calloc  -> payload address, 0 if no room
    heap_realloc(mem, state, addr, nbytes)         -> address, 0, or -status
    heap_free(mem, state, addr)                    -> HEAP_OK / HEAP_INVALID_FREE / HEAP_DOUBLE_FREE
    heap_size_of(mem, state, addr), heap_is_live(state, addr), heap_addr_status(state, addr)
    heap_check(mem, state, out) -> findings        heap_stats(mem, state, out)   (base.S_*)
    heap_largest_free(mem, state)                  heap_block_bytes(state, nbytes)
    heap_footprint(state)                          bytes from base to the high-water mark

A compiled caller reaches policy P's kernels as attributes of its module:
``POLICIES["buddy"].heap_malloc`` (numba resolves module attributes at compile time, so
one source specialised per module is one machine-code copy per policy; see
vm32.um.flat).  `tlsf` is vm32.heap.core, the default.
"""

from types import ModuleType

from vm32.defaults import DEFAULT_HEAP_POLICY
from vm32.errors import InvalidArgument
from vm32.heap import best, buddy, core, first, next_, recycler, sharded, worst

POLICIES: dict[str, ModuleType] = {m.NAME: m for m in (core, first, best, worst, next_, recycler, buddy, sharded)}
"""Every policy by name, in table order."""

DEFAULT = DEFAULT_HEAP_POLICY


def policy_module(name: str) -> ModuleType:
    """The module of policy `name`; InvalidArgument naming the choices if there is none."""
    module = POLICIES.get(name) if isinstance(name, str) else None
    if module is None:
        raise InvalidArgument(f"unknown heap policy {name!r}; choose one of {', '.join(POLICIES)}")
    return module


def policy_of_state(state) -> ModuleType:
    """The module of the policy whose state array this is (from its M_POLICY word)."""
    from vm32.heap.base import M_POLICY

    pid = int(state[M_POLICY])
    for module in POLICIES.values():
        if module.ID == pid:
            return module
    raise InvalidArgument(f"state array has no known heap policy (id {pid})")
