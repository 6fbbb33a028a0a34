"""The segment-space interface: the one seam between the UM interpreter and its memory.

The interpreter (`vm32.um.kernel.um_run`) is written once against the eight
operations below.  Each backend is a namedtuple type (`FlatSpace`,
`ClassicSpace`, ...) and registers an implementation of every operation with
`register`; numba picks the implementation from the space's type at compile
time and LLVM inlines it, so each backend gets its own specialised machine code from
one interpreter source.  Without the JIT (NUMBA_DISABLE_JIT=1) the same
implementations are called through a dict.

Segment 0 (the running program) is handled by the interpreter itself through
`code_of`; the other operations see only non-zero segment ids.

    code_of(space)                  -> uint32 array: the words of segment 0
    seg_check(space, sid, off)      -> 0, INACTIVE_ARRAY or INDEX_OUT_OF_BOUNDS
    seg_get(space, sid, off)        -> word   (after seg_check said 0)
    seg_set(space, sid, off, value)           (after seg_check said 0)
    seg_map(space, n)               -> new zeroed segment of n words; 0 if out of memory
    seg_unmap(space, sid)           -> 0 or UNMAP_INACTIVE
    seg_load_program(space, sid)    -> 0, LOADPROG_INACTIVE or OUT_OF_MEMORY;
                                       segment 0 becomes a copy of segment sid
    seg_live(space)                 -> number of active segments besides segment 0
"""

import inspect

from numba import types
from numba.core.registry import CPUDispatcher as Dispatcher
from numba.extending import overload

_IMPLS: dict[tuple[str, type], object] = {}


def register(space_class: type, **impls) -> None:
    """Register `space_class`'s implementations of the operations named as keywords.

    An implementation is a plain function (compiled in its caller's context) or
    a numba dispatcher such as a `vm32.jit.leaf_kernel` (hot leaf operations
    compiled without reference counting).
    """
    for name, fn in impls.items():
        if name not in _OPERATIONS:
            raise ValueError(f"register: {name} is not a segment-space operation")
        _IMPLS[name, space_class] = fn


def _as_overload_impl(fn, stub):
    """@overload must return a Python function with the stub's parameter names:
    wrap a dispatcher in a forwarding function."""
    if not isinstance(fn, Dispatcher):
        return fn
    params = ", ".join(inspect.signature(stub).parameters)
    namespace = {"fn": fn}
    exec(f"def forward({params}):\n    return fn({params})\n", namespace)
    return namespace["forward"]


def _impl_for(name: str, space_type):
    """The implementation of `name` for numba type `space_type`, or None (no match)."""
    if isinstance(space_type, types.BaseNamedTuple):
        fn = _IMPLS.get((name, space_type.instance_class))
        return None if fn is None else _as_overload_impl(fn, globals()[name])
    return None


def code_of(space):
    """The words of segment 0, as an array that aliases the space's storage."""
    return _IMPLS["code_of", type(space)](space)


def seg_check(space, sid, off):
    """0 if word `off` of segment `sid` may be accessed, else the fault status."""
    return _IMPLS["seg_check", type(space)](space, sid, off)


def seg_get(space, sid, off):
    """Word `off` of segment `sid` (checked by seg_check)."""
    return _IMPLS["seg_get", type(space)](space, sid, off)


def seg_set(space, sid, off, value):
    """Store `value` at word `off` of segment `sid` (checked by seg_check)."""
    return _IMPLS["seg_set", type(space)](space, sid, off, value)


def seg_map(space, n):
    """Id of a new zeroed segment of `n` words, or 0 when memory is exhausted."""
    return _IMPLS["seg_map", type(space)](space, n)


def seg_unmap(space, sid):
    """Release segment `sid`; 0 on success, UNMAP_INACTIVE if it is not active."""
    return _IMPLS["seg_unmap", type(space)](space, sid)


def seg_load_program(space, sid):
    """Replace segment 0 by a copy of segment `sid`; 0 or a fault status."""
    return _IMPLS["seg_load_program", type(space)](space, sid)


def seg_live(space):
    """Number of active segments other than segment 0."""
    return _IMPLS["seg_live", type(space)](space)


_OPERATIONS = (
    "code_of", "seg_check", "seg_get", "seg_set",
    "seg_map", "seg_unmap", "seg_load_program", "seg_live",
)


def _install_overloads() -> None:
    """Teach numba each operation: dispatch on the space's namedtuple class."""
    for name in _OPERATIONS:
        stub = globals()[name]

        def typer(space, *args, _name=name):
            return _impl_for(_name, space)

        # numba wants the typer's parameters to match the stub's.
        typer.__signature__ = inspect.signature(stub)
        overload(stub)(typer)  # no IR inlining: see vm32.jit


_install_overloads()
