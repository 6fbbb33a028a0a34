"""The segment-space interface: the one seam between the UM interpreter and its memory.

The interpreter (`vm32.um.kernel.um_run`) is written once against the
operations below.  Each backend is a namedtuple type (`FlatSpace`,
`ClassicSpace`, ...) and registers an implementation of every operation with
`register`; numba picks the implementation from the space's type at compile
time and LLVM inlines it, so each backend gets its own specialised machine code from
one interpreter source.  Without the JIT (NUMBA_DISABLE_JIT=1) the same
implementations are called through a dict.

Segment 0 (the running program) is reached through a *code handle*, a value
of the backend's choosing that `code_of` returns and the interpreter keeps in
a local until the next load program: the segment's array itself (classic), a
word index into physical memory (flat) or a virtual address with a *fetch
window* (paged).  At every jump the interpreter asks `code_at` for a handle
and the end of the words it may fetch with it, so that a fetch inside the
window is one host load from a local address, checked against a local end, on
every backend; after a segment operation that invalidated the window
(`code_valid`) it asks again.  The other operations see only non-zero segment
ids.

    code_of(space)                  -> code handle of segment 0
    code_len(space, code)           -> number of words in segment 0
    code_at(space, code, pc, ncode) -> (code', end): a handle for fetching from pc on, and
                                       the end of its window: pc < end <= ncode, or end <= pc
                                       when pc >= ncode (then nothing may be fetched)
    code_fetch(space, code, i)      -> word i of segment 0, for pc <= i < end of code_at
    code_valid(space, code)         -> False once a segment operation has changed what the
                                       handle's window maps (the caller then asks code_at)
    code_get(space, code, i)        -> word i of segment 0 (i < code_len): a data load
    code_set(space, code, i, value)           (i < code_len)
    two_steps(space)                -> True if the interpreter loop runs two steps per
                                       iteration on this backend (a constant)
    seg_check(space, sid, off)      -> (0, where) or (INACTIVE_ARRAY or INDEX_OUT_OF_BOUNDS, any):
                                       where is the backend's way to the word (flat: its
                                       word index; paged: its physical address)
    seg_get(space, where)           -> word   (where from seg_check)
    seg_set(space, where, value)              (where from seg_check)
    seg_map(space, n)               -> new zeroed segment of n words; 0 if out of memory
    seg_map_at(space, n, pc)        -> seg_map, told the pc of the map instruction (a debugging
                                       backend notes it as the segment's allocation site); a
                                       backend that does not register it gets its seg_map
    seg_unmap(space, sid)           -> 0 or UNMAP_INACTIVE
    seg_load_program(space, sid)    -> 0, LOADPROG_INACTIVE or OUT_OF_MEMORY;
                                       segment 0 becomes a copy of segment sid
"""

import inspect

from numba import types
from numba.extending import overload

_IMPLS: dict[tuple[str, type], object] = {}
_OPTIONS: dict[tuple[str, type], tuple[bool, bool]] = {}  # (name, class) -> (refcounted, inline)


def register(space_class: type, *, refcounted: bool = True, inline: bool = False, **impls) -> None:
    """Register `space_class`'s implementations of the operations named as keywords.

    An implementation is a plain function; numba compiles it for the space's
    type.  A backend whose operations never allocate passes ``refcounted=False``:
    they are then compiled without numba's reference counting, which otherwise
    increfs and decrefs every array of the space tuple around each call (six
    atomic operations per map).  ``inline=True`` makes LLVM always inline them
    (``forceinline``), for a big space tuple whose passing by value per call
    costs more than the operation.  A backend may register its operations in
    several calls with different options.
    """
    for name, fn in impls.items():
        if name not in _OPERATIONS:
            raise ValueError(f"register: {name} is not a segment-space operation")
        _IMPLS[name, space_class] = fn
        _OPTIONS[name, space_class] = (refcounted, inline)


def _impl_for(name: str, space_type, options):
    """The implementation of `name` for numba type `space_type` if it was registered
    with `options` (refcounted, inline), else None (no match).  seg_map_at falls back to
    the backend's seg_map."""
    if isinstance(space_type, types.BaseNamedTuple):
        key = name, space_type.instance_class
        if _OPTIONS.get(key) == options:
            return _IMPLS[key]
        if name == "seg_map_at" and key not in _IMPLS and _OPTIONS.get(("seg_map", key[1])) == options:
            return _map_ignoring_pc
    return None


def code_of(space):
    """The code handle of segment 0 (valid until the next seg_load_program)."""
    return _IMPLS["code_of", type(space)](space)


def code_at(space, code, pc, ncode):
    """(code', end): a handle for fetching from `pc` on and the end of its window (<= ncode)."""
    return _IMPLS["code_at", type(space)](space, code, pc, ncode)


def code_fetch(space, code, i):
    """Word `i` of segment 0, inside the window that code_at gave with `code`."""
    return _IMPLS["code_fetch", type(space)](space, code, i)


def code_valid(space, code):
    """False once a segment operation changed what `code`'s window maps."""
    return _IMPLS["code_valid", type(space)](space, code)


def code_len(space, code):
    """Number of words in segment 0."""
    return _IMPLS["code_len", type(space)](space, code)


def code_get(space, code, i):
    """Word `i` of segment 0 (the caller has checked i < code_len)."""
    return _IMPLS["code_get", type(space)](space, code, i)


def code_set(space, code, i, value):
    """Store `value` at word `i` of segment 0 (the caller has checked i < code_len)."""
    return _IMPLS["code_set", type(space)](space, code, i, value)


def two_steps(space):
    """True if the interpreter should run two steps per loop iteration on this backend
    (a constant per backend, chosen by measurement: see vm32.um.kernel)."""
    return _IMPLS["two_steps", type(space)](space)


def seg_check(space, sid, off):
    """(0, where) if word `off` of segment `sid` may be accessed, else (the fault status, any)."""
    return _IMPLS["seg_check", type(space)](space, sid, off)


def seg_get(space, where):
    """The word seg_check found at `where`."""
    return _IMPLS["seg_get", type(space)](space, where)


def seg_set(space, where, value):
    """Store `value` in the word seg_check found at `where`."""
    return _IMPLS["seg_set", type(space)](space, where, value)


def seg_map(space, n):
    """Id of a new zeroed segment of `n` words, or 0 when memory is exhausted."""
    return _IMPLS["seg_map", type(space)](space, n)


def seg_map_at(space, n, pc):
    """seg_map, with the pc of the map instruction (the segment's allocation site)."""
    impl = _IMPLS.get(("seg_map_at", type(space)))
    return impl(space, n, pc) if impl is not None else seg_map(space, n)


def _map_ignoring_pc(space, n, pc):
    return seg_map(space, n)


def seg_unmap(space, sid):
    """Release segment `sid`; 0 on success, UNMAP_INACTIVE if it is not active."""
    return _IMPLS["seg_unmap", type(space)](space, sid)


def seg_load_program(space, sid):
    """Replace segment 0 by a copy of segment `sid`; 0 or a fault status."""
    return _IMPLS["seg_load_program", type(space)](space, sid)


def _whole_code(space, code, pc, ncode):
    return code, ncode


def _always_valid(space, code):
    return True


def _array_code_len(space, code):
    return code.shape[0]


def _array_code_get(space, code, i):
    return code[i]


def _array_code_set(space, code, i, value):
    code[i] = value


def _yes(space):
    return True


def _no(space):
    return False


TWO_STEPS = dict(two_steps=_yes)
"""two_steps for a backend whose interpreter loop runs two steps per iteration."""
ONE_STEP = dict(two_steps=_no)
"""two_steps for a backend whose interpreter loop runs one step per iteration."""

WHOLE_CODE = dict(code_at=_whole_code, code_valid=_always_valid)
"""code_at and code_valid for a backend whose code handle can fetch every word, always."""


def register_array_code(space_class: type) -> None:
    """Register the code operations of a backend whose code handle is segment 0's uint32
    array itself: fetch, get and set are plain indexing, compiled without reference
    counting (no increfs per fetch); code_at, which returns the array, keeps numba's
    reference counting (without it numba would release a reference it never took)."""
    register(space_class, refcounted=False, code_len=_array_code_len, code_fetch=_array_code_get,
             code_get=_array_code_get, code_set=_array_code_set)
    register(space_class, **WHOLE_CODE)


_OPERATIONS = (
    "code_of", "code_len", "code_at", "code_fetch", "code_valid", "code_get", "code_set",
    "two_steps", "seg_check", "seg_get", "seg_set",
    "seg_map", "seg_map_at", "seg_unmap", "seg_load_program",
)


def _install_overloads() -> None:
    """Teach numba each operation: dispatch on the space's namedtuple class.

    One overload per operation and combination of options, compiled with them
    (numba fixes the options per overload, and a callee without explicit
    options inherits its caller's); an implementation matches only the
    overload of the options it was registered with.
    """
    for name in _OPERATIONS:
        stub = globals()[name]
        for refcounted in (True, False):
            for inline in (True, False):

                def typer(space, *args, _name=name, _opts=(refcounted, inline)):
                    return _impl_for(_name, space, _opts)

                # numba wants the typer's parameters to match the stub's.
                typer.__signature__ = inspect.signature(stub)
                options = {"_nrt": refcounted, "forceinline": inline}
                overload(stub, jit_options=options)(typer)  # no IR inlining: see vm32.jit


_install_overloads()
