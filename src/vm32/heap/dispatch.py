"""Compiled dispatch by policy: one loop's source, one machine-code copy per policy.

A compiled caller that must work with any policy (the UM's flat backend, the replay
loops) takes a *carrier*: a namedtuple with fields ``mem`` and ``heap`` (the word memory
and the policy's state array) whose class is registered here with a policy module.  The
functions below pick that module's kernel from the carrier's class when numba compiles
the caller, and are always inlined, so the caller runs the policy's kernel as if it had
called it by name:

    pol_malloc(c, nbytes)   pol_calloc(c, nbytes)   pol_free(c, addr)   pol_realloc(c, addr, nbytes)
    pol_is_live(c, addr)    pol_size_of(c, addr)    pol_block_bytes(c, nbytes)
    pol_addr_status(c, addr)    pol_stats(c, out)   pol_init(c, base, limit)
    pol_check(c, out)   pol_largest_free(c)

`heap_ref(policy, mem, state)` makes the plain carrier of a policy (class ``<Name>HeapRef``);
other carriers (vm32.um.flat's spaces) call `register_carrier`.  Without the JIT the same
functions dispatch through a dict.

A *heap handle* is a plain carrier without memory, `heap_handle(policy, state)`: it names
the policy (by its class) and holds the state, for callers that reach the memory only
inside compiled code (vm32.kernel.procheap: the journaled memory of one operation, or the
paged UM's space).  There `pol_over(h, mem, state)` makes the carrier of h's policy over
that memory and state (e.g. a journaled view of h.heap); the state-only functions
(pol_is_live, pol_addr_status, pol_block_bytes) take the handle itself.
"""

from collections import namedtuple

from numba import types
from numba.extending import overload

from vm32.heap.policies import POLICIES

_CARRIERS: dict[type, object] = {}  # carrier class -> policy module


def register_carrier(cls: type, module) -> None:
    """Make namedtuple class `cls` (fields mem and heap, at least) a carrier of `module`'s policy."""
    _CARRIERS[cls] = module


def _ref_class(name: str) -> type:
    cls = namedtuple(f"{name.title()}HeapRef", ["mem", "heap"])
    cls.__module__ = __name__
    globals()[cls.__name__] = cls  # importable by name: numba's cache pickles the type
    register_carrier(cls, POLICIES[name])
    return cls


HEAP_REFS = {name: _ref_class(name) for name in POLICIES}
"""The plain carrier class of each policy."""


def heap_ref(policy: str, mem, state):
    """The carrier of `policy` over word memory `mem` and its state array."""
    return HEAP_REFS[policy](mem, state)


def heap_handle(policy: str, state):
    """The handle of a `policy` heap with state array `state` (a carrier whose mem is None)."""
    return HEAP_REFS[policy](None, state)


def pol_over(h, mem, state):
    """The plain carrier of carrier `h`'s policy over `mem` and `state`."""
    return HEAP_REFS[_CARRIERS[type(h)].NAME](mem, state)


def pol_malloc(c, nbytes):
    """The carrier's policy's heap_malloc."""
    return _CARRIERS[type(c)].heap_malloc(c.mem, c.heap, nbytes)


def pol_calloc(c, nbytes):
    """The carrier's policy's heap_calloc."""
    return _CARRIERS[type(c)].heap_calloc(c.mem, c.heap, nbytes)


def pol_free(c, addr):
    """The carrier's policy's heap_free."""
    return _CARRIERS[type(c)].heap_free(c.mem, c.heap, addr)


def pol_realloc(c, addr, nbytes):
    """The carrier's policy's heap_realloc."""
    return _CARRIERS[type(c)].heap_realloc(c.mem, c.heap, addr, nbytes)


def pol_is_live(c, addr):
    """The carrier's policy's heap_is_live."""
    return _CARRIERS[type(c)].heap_is_live(c.heap, addr)


def pol_size_of(c, addr):
    """The carrier's policy's heap_size_of."""
    return _CARRIERS[type(c)].heap_size_of(c.mem, c.heap, addr)


def pol_block_bytes(c, nbytes):
    """The carrier's policy's heap_block_bytes."""
    return _CARRIERS[type(c)].heap_block_bytes(c.heap, nbytes)


def pol_addr_status(c, addr):
    """The carrier's policy's heap_addr_status."""
    return _CARRIERS[type(c)].heap_addr_status(c.heap, addr)


def pol_stats(c, out):
    """The carrier's policy's heap_stats."""
    return _CARRIERS[type(c)].heap_stats(c.mem, c.heap, out)


def pol_init(c, base, limit):
    """The carrier's policy's heap_init."""
    return _CARRIERS[type(c)].heap_init(c.mem, c.heap, base, limit)


def pol_check(c, out):
    """The carrier's policy's heap_check."""
    return _CARRIERS[type(c)].heap_check(c.mem, c.heap, out)


def pol_largest_free(c):
    """The carrier's policy's heap_largest_free."""
    return _CARRIERS[type(c)].heap_largest_free(c.mem, c.heap)


_WRAPPED: dict[type, dict] = {}  # wrapping carrier class -> {"malloc": impl, ...}


def register_wrapper(cls: type, impls: dict) -> None:
    """Make namedtuple class `cls` a carrier whose malloc, calloc, free, is_live and size_of
    are the given implementations (functions of the same arguments, compiled for `cls`),
    e.g. the debugging heap's layer over a policy (vm32.heap.debug.register_debug_carrier)."""
    _WRAPPED[cls] = impls


def _wrapper(c, op: str):
    if isinstance(c, types.BaseNamedTuple):
        return _WRAPPED.get(c.instance_class, {}).get(op)
    return None


def _module_of(c):
    if isinstance(c, types.BaseNamedTuple):
        return _CARRIERS.get(c.instance_class)
    return None


def _install() -> None:
    """One overload per function: the implementation names the carrier's module's kernel."""

    def malloc_typer(c, nbytes):
        w = _wrapper(c, "malloc")
        if w is not None:
            return w
        m = _module_of(c)
        if m is not None:
            return lambda c, nbytes: m.heap_malloc(c.mem, c.heap, nbytes)

    def calloc_typer(c, nbytes):
        w = _wrapper(c, "calloc")
        if w is not None:
            return w
        m = _module_of(c)
        if m is not None:
            return lambda c, nbytes: m.heap_calloc(c.mem, c.heap, nbytes)

    def free_typer(c, addr):
        w = _wrapper(c, "free")
        if w is not None:
            return w
        m = _module_of(c)
        if m is not None:
            return lambda c, addr: m.heap_free(c.mem, c.heap, addr)

    def realloc_typer(c, addr, nbytes):
        m = _module_of(c)
        if m is not None:
            return lambda c, addr, nbytes: m.heap_realloc(c.mem, c.heap, addr, nbytes)

    def is_live_typer(c, addr):
        w = _wrapper(c, "is_live")
        if w is not None:
            return w
        m = _module_of(c)
        if m is not None:
            return lambda c, addr: m.heap_is_live(c.heap, addr)

    def size_of_typer(c, addr):
        w = _wrapper(c, "size_of")
        if w is not None:
            return w
        m = _module_of(c)
        if m is not None:
            return lambda c, addr: m.heap_size_of(c.mem, c.heap, addr)

    def block_bytes_typer(c, nbytes):
        m = _module_of(c)
        if m is not None:
            return lambda c, nbytes: m.heap_block_bytes(c.heap, nbytes)

    def addr_status_typer(c, addr):
        m = _module_of(c)
        if m is not None:
            return lambda c, addr: m.heap_addr_status(c.heap, addr)

    def stats_typer(c, out):
        m = _module_of(c)
        if m is not None:
            return lambda c, out: m.heap_stats(c.mem, c.heap, out)

    def init_typer(c, base, limit):
        m = _module_of(c)
        if m is not None:
            return lambda c, base, limit: m.heap_init(c.mem, c.heap, base, limit)

    def check_typer(c, out):
        m = _module_of(c)
        if m is not None:
            return lambda c, out: m.heap_check(c.mem, c.heap, out)

    def largest_free_typer(c):
        m = _module_of(c)
        if m is not None:
            return lambda c: m.heap_largest_free(c.mem, c.heap)

    def over_typer(h, mem, state):
        m = _module_of(h)
        if m is not None:
            ref = HEAP_REFS[m.NAME]
            return lambda h, mem, state: ref(mem, state)

    options = {"_nrt": False, "forceinline": True}
    for stub, typer in ((pol_malloc, malloc_typer), (pol_calloc, calloc_typer), (pol_free, free_typer),
                        (pol_realloc, realloc_typer), (pol_is_live, is_live_typer),
                        (pol_size_of, size_of_typer), (pol_block_bytes, block_bytes_typer),
                        (pol_addr_status, addr_status_typer), (pol_stats, stats_typer),
                        (pol_init, init_typer), (pol_check, check_typer),
                        (pol_largest_free, largest_free_typer), (pol_over, over_typer)):
        overload(stub, jit_options=options)(typer)


_install()
