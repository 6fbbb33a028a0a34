"""The jit backend's segment space: flat memory and allocator, a segment table, tier 0's tables.

`JitSpace` has the flat space's fields (mem, heap, meta) and runs the flat backend's
own operations (`vm32.um.flat.OPERATIONS`) for fetching, loading and storing words,
mapping, unmapping and loading programs; on top of them it keeps

    segwords  uint32, one entry per 8-byte granule of memory (the granule a segment id
              names): n + 1 for a live segment of n words, 0 for anything else (a free
              or never mapped address, segment 0's block).  One load tells whether an id
              is an active segment and how long it is: the check compiled code makes
              on every load and store of a segment (vm32.um.jit.flatmem), and that
              `seg_check` makes here, so both always agree.  It is an index of the
              heap's live segments, written only by this space's map and unmap.
    bitmap    uint8, one byte per word of segment 0: non-zero iff the word is compiled
              into a live region (or a region being compiled)
    entries   int64, per word of segment 0: > 0, the host address of the region function
              entered there; <= 0, minus the entries tier 0 must still see at that jump
              target before it is hot (one load tells both, at every jump)
    ran       int64, per word of segment 0: instructions run by region calls entered there
    jx        the context array shared with compiled regions (vm32.um.jit.abi)

A store into segment 0 also looks the word up in the bitmap and, when it is compiled
code, notes it in jx[JX_STALE]: the interpreter then ends its straight run
(`code_valid` turns False) and tier 0 hands the stale regions to the driver.
bitmap, entries and ran have at least as many elements as segment 0 has words.
"""

import mmap
from collections import namedtuple

import numpy as np
from numba import carray

from vm32.heap import POLICIES
from vm32.heap.core import M_HIGH
from vm32.heap.dispatch import pol_is_live, pol_size_of, register_carrier
from vm32.jit import kernel, leaf_kernel, step_kernel
from vm32.memory import PhysicalMemory
from vm32.um import flat
from vm32.um import space as sp
from vm32.um import status as S
from vm32.um.jit import abi
from vm32.um.jit.abi import JX_STALE, pointer_to

JitSpace = namedtuple("JitSpace", ["mem", "heap", "meta", "segwords", "bitmap", "entries", "ran", "jx"])

GRANULE_SHIFT = 3  # segment ids are 8-aligned: one segment table entry per 8 bytes


def new_tables(words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty (bitmap, entries, ran) for a segment 0 of `words` words (entries all 0: hot
    at once; the driver fills them with minus its threshold)."""
    n = max(words, 1)
    return np.zeros(n, np.uint8), np.zeros(n, np.int64), np.zeros(n, np.int64)


def new_jit_space(program: np.ndarray, memory: PhysicalMemory, jx: np.ndarray):
    """A jit space over `memory` whose segment 0 is a copy of `program`; (space, heap).

    Fills the space's addresses into context `jx`.
    """
    base, heap = flat.new_flat_space(program, memory)
    segwords = _lazy_zeros(memory.size >> GRANULE_SHIFT)
    space = JitSpace(base.mem, base.heap, base.meta, segwords, *new_tables(program.shape[0]), jx)
    for index, array in ((abi.JX_MEM, space.mem), (abi.JX_HEAP, space.heap), (abi.JX_SEGWORDS, segwords)):
        jx[index] = array.ctypes.data
        jx[index + 1] = array.shape[0]
    jx[abi.JX_META] = space.meta.ctypes.data
    set_tables(space)
    return space, heap


def _lazy_zeros(n: int) -> np.ndarray:
    """n zeroed uint32 in an anonymous mapping: the host commits only the pages touched
    (as for PhysicalMemory: the table of a 4 GiB memory is 2 GiB, mostly never touched)."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
    return np.frombuffer(mmap.mmap(-1, max(4 * n, mmap.PAGESIZE), flags=flags), np.uint32)[:n]


def set_tables(space: JitSpace) -> None:
    """Point the context at `space`'s bitmap, entries and ran."""
    jx = space.jx
    jx[abi.JX_BITMAP] = space.bitmap.ctypes.data
    jx[abi.JX_ENTRIES] = space.entries.ctypes.data
    jx[abi.JX_RAN] = space.ran.ctypes.data
    jx[abi.JX_TABLES_LEN] = space.bitmap.shape[0]


@kernel  # not a leaf kernel: a function without reference counting may not return new arrays
def space_of_context(jx):
    """The JitSpace whose addresses context `jx` holds (for code given only jx)."""
    n = jx[abi.JX_TABLES_LEN]
    return JitSpace(
        carray(pointer_to(jx[abi.JX_MEM], np.uint32), jx[abi.JX_MEM_WORDS]),
        carray(pointer_to(jx[abi.JX_HEAP], np.int64), jx[abi.JX_HEAP_WORDS]),
        carray(pointer_to(jx[abi.JX_META], np.int64), 1),
        carray(pointer_to(jx[abi.JX_SEGWORDS], np.uint32), jx[abi.JX_SEGWORDS_LEN]),
        carray(pointer_to(jx[abi.JX_BITMAP], np.uint8), n),
        carray(pointer_to(jx[abi.JX_ENTRIES], np.int64), n),
        carray(pointer_to(jx[abi.JX_RAN], np.int64), n),
        jx,
    )


@leaf_kernel
def segment_slot(space, sid):
    """The segment table index of id `sid`: sid / 8 rotated so that a misaligned id lands
    past the table's end (one unsigned compare checks range and alignment)."""
    x = np.uint64(sid) & np.uint64(0xFFFFFFFF)
    return ((x >> np.uint64(GRANULE_SHIFT)) | (x << np.uint64(32 - GRANULE_SHIFT))) & np.uint64(0xFFFFFFFF)


@leaf_kernel
def segment_entry(space, sid):
    """The segment table's entry for id `sid`: n + 1 for an active segment of n words, else 0."""
    slot = segment_slot(space, sid)
    if slot >= np.uint64(space.segwords.shape[0]):
        return np.uint64(0)
    return np.uint64(space.segwords[slot])


@kernel
def rebuild_segment_table(space):
    """Make the segment table index exactly the heap's live segments (segment 0 aside), after
    flat's own operations, which do not keep it, ran on the space's memory and heap.  Reads
    every granule up to the heap's high-water mark and writes only entries that change (the
    table's untouched pages stay uncommitted)."""
    code = space.meta[flat.CODE]
    for sid in range(flat.HEAP_BASE, space.heap[M_HIGH], 1 << GRANULE_SHIFT):
        entry = np.uint32(0)
        if sid != code and pol_is_live(space, np.int64(sid)):
            entry = np.uint32((pol_size_of(space, np.int64(sid)) >> 2) + 1)
        slot = sid >> GRANULE_SHIFT
        if space.segwords[slot] != entry:
            space.segwords[slot] = entry


_flat_map = step_kernel(flat.OPERATIONS["seg_map"])
_flat_unmap = step_kernel(flat.OPERATIONS["seg_unmap"])


def _seg_check(space, sid, off):
    where = (sid, off)
    entry = segment_entry(space, sid)
    if entry == 0:
        return S.INACTIVE_ARRAY, where
    if np.uint64(off) + np.uint64(1) >= entry:
        return S.INDEX_OUT_OF_BOUNDS, where
    return 0, where


def _seg_map(space, n):
    sid = _flat_map(space, n)
    if sid != 0:
        space.segwords[segment_slot(space, sid)] = np.uint32(n) + np.uint32(1)
    return sid


def _seg_unmap(space, sid):
    if segment_entry(space, sid) == 0:
        return S.UNMAP_INACTIVE
    fault = _flat_unmap(space, sid)
    if fault == 0:
        space.segwords[segment_slot(space, sid)] = 0
    return fault


def _code_set(space, code, i, value):
    space.mem[code + i] = value
    if space.bitmap[i] != 0:
        space.jx[JX_STALE] = np.int64(i) + 1


def _code_at(space, code, pc, ncode):
    # At every jump: the window ends at once (nothing is fetched) at a compiled entry and
    # at a target that just became hot; tier 0 then calls the region or says JIT_HOT.
    if pc < ncode:
        e = space.entries[pc]
        if e >= 0:
            return code, pc
        space.entries[pc] = e + 1
    return code, ncode


def _code_valid(space, code):
    return space.jx[JX_STALE] == 0


register_carrier(JitSpace, POLICIES["tlsf"])  # flat's operations reach the allocator through it
sp.register(
    JitSpace, refcounted=False, inline=True, **sp.TWO_STEPS,
    **{**flat.OPERATIONS, "code_set": _code_set, "seg_check": _seg_check, "seg_map": _seg_map,
       "seg_unmap": _seg_unmap},
    code_at=_code_at, code_valid=_code_valid,
)
