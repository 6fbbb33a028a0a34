"""The flat backend: a segment id *is* the 32-bit address of the segment's first word.

Segments are blocks of the `vm32.heap` allocator inside emulated physical
memory, so a load or store of a non-zero segment is one host access at
``mem[(sid >> 2) + off]`` after two cheap checks: the id is a live block start
(one bit of the heap's live bitmap) and the offset is below the block's
requested size (the block header, next to the data).  No table of segments.

Segment 0 is the block whose address is meta[CODE]; that address is never an
id the program can use (the program never received it), so checks refuse it.

Invariant: every live heap block is a segment (segment 0 included).

The allocator is any vm32.heap policy: each has its own space class (`FLAT_SPACES`:
`FlatSpace` for tlsf, the default, `FlatSpaceBuddy` for buddy, ...), a carrier of its
policy for vm32.heap.dispatch, so the interpreter is compiled once per policy with that
policy's kernels inlined, as if it had called them by name.
"""

from collections import namedtuple

import numpy as np

from vm32.defaults import DEFAULT_HEAP_POLICY
from vm32.heap import POLICIES, Heap
from vm32.heap.debug import dbg_calloc, register_debug_carrier
from vm32.heap.dispatch import HEAP_REFS, pol_calloc, pol_free, pol_is_live, pol_malloc, pol_size_of, register_carrier
from vm32.jit import leaf_kernel
from vm32.memory import PAGE_SIZE, PhysicalMemory
from vm32.um import space as sp
from vm32.um import status as S

FlatSpace = namedtuple("FlatSpace", ["mem", "heap", "meta"])
"""mem: uint32 words of physical memory; heap: the allocator's (tlsf's) state; meta: int64[1]."""

CODE = 0  # address of segment 0's block

HEAP_BASE = PAGE_SIZE  # page 0 stays unused: no segment can have address (id) 0


def new_flat_space(program: np.ndarray, memory: PhysicalMemory, heap_policy: str = DEFAULT_HEAP_POLICY,
                   check_heap: bool = False, **heap_params) -> tuple[FlatSpace, Heap]:
    """A flat space over `memory` whose segment 0 is a copy of `program`; its segments are
    blocks of a `heap_policy` heap (with that policy's `heap_params`).  `check_heap`: a
    debugging heap (vm32.heap.debug; `Heap.leaks()` then names each segment's map pc)."""
    heap = Heap(memory, HEAP_BASE, memory.size, policy=heap_policy, debug=check_heap, **heap_params)
    code = heap.malloc(4 * program.shape[0])
    w0 = code >> 2
    memory.words[w0 : w0 + program.shape[0]] = program
    meta = np.array([code], dtype=np.int64)
    if check_heap:
        return FLAT_DEBUG_SPACES[heap.policy](memory.words, heap.state, meta, heap.dbg), heap
    return FLAT_SPACES[heap.policy](memory.words, heap.state, meta), heap


@leaf_kernel
def _is_segment(space, sid):
    """True iff `sid` is an active segment other than segment 0."""
    return np.int64(sid) != space.meta[CODE] and pol_is_live(space, np.int64(sid))


def _code_of(space):
    return np.uint64(space.meta[CODE] >> 2)  # the word index of segment 0 in memory


def _code_len(space, code):
    return np.uint64(pol_size_of(space, space.meta[CODE]) >> 2)


def _code_get(space, code, i):
    return space.mem[code + i]


def _code_set(space, code, i, value):
    space.mem[code + i] = value


def _seg_check(space, sid, off):
    where = (sid, off)
    if not _is_segment(space, sid):
        return S.INACTIVE_ARRAY, where
    if off >= np.uint64(pol_size_of(space, np.int64(sid)) >> 2):
        return S.INDEX_OUT_OF_BOUNDS, where
    return 0, where


def _seg_get(space, where):
    return space.mem[np.uint64(where[0] >> 2) + where[1]]


def _seg_set(space, where, value):
    space.mem[np.uint64(where[0] >> 2) + where[1]] = value


def _seg_map(space, n):
    return np.uint32(pol_calloc(space, np.int64(n) * 4))


def _seg_unmap(space, sid):
    if not _is_segment(space, sid):
        return S.UNMAP_INACTIVE
    pol_free(space, np.int64(sid))
    return 0


def _seg_load_program(space, sid):
    if not _is_segment(space, sid):
        return S.LOADPROG_INACTIVE
    nbytes = pol_size_of(space, np.int64(sid))
    new = pol_malloc(space, nbytes)
    if new == 0:
        return S.OUT_OF_MEMORY
    src = np.int64(sid) >> 2
    dst = new >> 2
    for i in range(nbytes >> 2):
        space.mem[dst + i] = space.mem[src + i]
    pol_free(space, space.meta[CODE])
    space.meta[CODE] = new
    return 0


OPERATIONS = dict(
    code_of=_code_of, code_len=_code_len, code_fetch=_code_get, code_get=_code_get, code_set=_code_set,
    seg_check=_seg_check, seg_get=_seg_get, seg_set=_seg_set,
    seg_map=_seg_map, seg_unmap=_seg_unmap, seg_load_program=_seg_load_program,
)
"""The flat implementations of the segment-space operations (the jit backend's space reuses
them: they need only the fields mem, heap and meta)."""



def _space_class(policy: str) -> type:
    """The flat space class of `policy`, registered with the interpreter and as its carrier."""
    if policy == DEFAULT_HEAP_POLICY:
        cls = FlatSpace
    else:
        cls = namedtuple(f"FlatSpace{policy.title()}", FlatSpace._fields)
        cls.__module__ = __name__
        globals()[cls.__name__] = cls  # importable by name: numba's cache pickles the type
    register_carrier(cls, POLICIES[policy])
    sp.register(cls, refcounted=False, inline=True, **sp.WHOLE_CODE, **sp.TWO_STEPS, **OPERATIONS)
    return cls


FLAT_SPACES = {name: _space_class(name) for name in POLICIES}
"""The flat space class of each heap policy."""



def _debug_space_class(policy: str) -> type:
    """The flat space class of `policy` under the debugging heap (fields mem, heap, meta, dbg):
    flat's operations, whose allocator calls go through vm32.heap.debug, and a map that
    notes the map instruction's pc as the segment's allocation site."""
    cls = namedtuple(f"FlatDebugSpace{policy.title()}", [*FlatSpace._fields, "dbg"])
    cls.__module__ = __name__
    globals()[cls.__name__] = cls
    register_debug_carrier(cls, policy)
    ref = HEAP_REFS[policy]

    def seg_map_at(space, n, pc):
        return np.uint32(dbg_calloc(ref(space.mem, space.heap), space.dbg, np.int64(n) * 4, np.int64(pc)))

    sp.register(cls, refcounted=False, inline=True, **sp.WHOLE_CODE, **sp.TWO_STEPS, **OPERATIONS,
                seg_map_at=seg_map_at)
    return cls


FLAT_DEBUG_SPACES = {name: _debug_space_class(name) for name in POLICIES}
"""The flat space class of each heap policy under the debugging heap (--check-heap)."""
