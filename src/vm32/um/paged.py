"""The paged backend: the UM runs as a process of the demand-paged kernel (`vm32.kernel`).

A segment id *is* a 32-bit virtual address in the process's own address space:
segments are blocks of the process's one allocator (vm32.kernel.procheap, in its
direct mode; any vm32.heap policy: the space's heap handle names it, so the interpreter
is compiled once per policy with its kernels inlined), and every instruction fetch, load, store and allocator access goes
through the kernel's translation (vm32.kernel.trampoline: the TLB probe inline,
walks and faults through its cold entry point), so a program may use far more
memory than the machine's frames.  `vm32.um.paged_process.PagedProcess` is the
Python face.

Words
-----
*meta*     the kernel's access context of this process (vm32.kernel.access: CPU,
           process, the first failed access, accesses counted), then the UM's M_* fields.
*fetch buffer*  translations of pages of segment 0 (an instruction prefetch buffer):
           WAYS ways, direct-mapped by virtual page; way k holds the UM index where its
           page starts, the host address of UM index 0 as that page maps it, and whether
           its TLB entry lets stores through.  They are the context's cached translations:
           the kernel's cold path empties them whenever this CPU's TLB may change, and
           every drop adds one to ``meta[M_GEN]``.
*code*     the code handle (`CodeHandle`, a local of the interpreter): segment 0's virtual
           address and two *windows* copied from ways, valid while M_GEN is unchanged:
           the fetch window (the page of the running code) and the data window (the page
           the last load or store of segment 0 outside the fetch window used; sandmark
           loads from segment 0 about once per ten instructions and stores into it 449
           million times).  A fetch inside the window is one host load from a local
           address, as on flat memory: the interpreter asks `code_at` for the window at
           every jump and checks `code_valid` (M_GEN) after every segment operation, the
           only places where this CPU's TLB can change.
*fail*     ``meta[M_FAIL]``, the context's first failure.  code_get, seg_get and seg_set
           return no status, so after a failure the next fetch returns POISON, an invalid
           instruction: the interpreter stops at once and the driver, seeing M_FAIL,
           reports the kernel's error instead of a UM fault (and ends the process: a
           failed allocator operation leaves the heap half-changed).

Translation
-----------
`_xlate` is the one translation of this backend (trampoline.ref_translate): poll this
CPU's shootdown slot, probe the TLB, else the cold path.  A load or store of segment
s at offset i: the live bit of s (the heap's host tag map), one translation of s's
header (the word below a live block's payload holds its size in every policy: see
vm32.heap.base), and the data word's address derived from the header's when both
are on one page (most segments are small), else a second translation.  `seg_check`
returns the data word's physical address (and whether its TLB entry allows a store:
W and a known Dirty bit) for `seg_get` and `seg_set`; a store the entry does not
allow takes the cold path (which sets Dirty).  When the policy sees every access
(LRU) the space has its own type (PagedSpaceEveryAccess): the compiled code knows
that nothing may be cached, and every translation takes the cold path.

Concurrency
-----------
Each process runs on one CPU at a time (`paged_um_run` brackets the interpreter with
cpu_enter / cpu_leave); its heap and meta belong to it alone.  A physical address is
used only while this CPU's TLB holds the entry it came from (kernel/sync.py, point 6):
the TLB changes only inside the cold path, which drops the fetch buffer, and the other
physical addresses (seg_check's, a page being zeroed or copied) are used right after
the TLB hit they came from (load program copies through the bounce buffer, since
translating its destination may evict its source).  Fetches, loads and stores through
the code handle's windows do not poll: a program running only in segment 0
acknowledges shootdowns at the end of its slice (the driver's instruction budget), so
several processes run with short slices.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import overload

from vm32.heap.dispatch import pol_is_live
from vm32.jit import inline_leaf_kernel, kernel, outline_leaf_kernel
from vm32.kernel.access import (
    CTX_ACCESSES, CTX_CACHE, CTX_CACHE_AT, CTX_CACHE_STRIDE, CTX_CPU, CTX_FAULT_VA, CTX_PID, CTX_SIZE, CTX_STATUS,
    CTX_TLB_GEN, CTX_USER, copy_user, load_paged, store_paged, translate,
)
from vm32.kernel.procheap import direct_calloc, direct_free, direct_malloc, direct_size_of
from vm32.kernel.sync import cpu_enter, cpu_leave
from vm32.kernel.trampoline import (
    COLD_READ, COLD_WRITE, NEED_USER_READ, NO_TRANSLATION, cpu_rows, drop_cached, host_load_u32, host_store_u32,
    ref_cold, ref_entry, ref_translate, tlb_entry_pa, tlb_entry_writable,
)
from vm32.memory import PAGE_MASK, PAGE_SHIFT, PAGE_WORDS, load_word, store_word
from vm32.um import space as sp
from vm32.um import status as S
from vm32.um.kernel import ST_ICOUNT, um_run

PagedSpace = namedtuple("PagedSpace", ["words", "heap", "meta", "tlb", "cpu", "ref", "bounce"])
"""words: physical memory (uint32); heap: the process heap's handle (vm32.heap.dispatch: its
policy's kernels are compiled into the interpreter); meta: int64[M_SIZE];
tlb: the running CPU's TLB row; cpu: its register row; ref: the machine by address
(trampoline.machine_ref); bounce: uint32[PAGE_WORDS], the copy buffer of load program."""

PagedSpaceEveryAccess = namedtuple("PagedSpaceEveryAccess", PagedSpace._fields)
"""The same space on a machine whose policy sees every access (LRU): its own type, so the
compiled code knows at compile time that nothing may be cached."""

# ---- meta[M_*]: the kernel's access context (vm32.kernel.access), then the UM's fields -------------
M_CPU = CTX_CPU  # the CPU this process runs on (set by the driver before each run)
M_PID = CTX_PID  # the process
M_FAIL = CTX_STATUS  # ST_* of the first page fault that could not be served, else 0
M_FAIL_VA = CTX_FAULT_VA  # its virtual address
M_ACC = CTX_ACCESSES  # loads and stores of words (instruction fetches are counted by the caller)
M_GEN = CTX_TLB_GEN  # fetch-buffer generation: +1 at every drop (a code window is valid while equal)
M_CODE = CTX_SIZE  # virtual address of segment 0
M_CODE_LEN = CTX_SIZE + 1  # words in segment 0
M_DATA_WAY = CTX_SIZE + 2  # the fetch-buffer way the last data load or store of segment 0 used
M_REFILLS = CTX_SIZE + 3  # fetch-buffer refills
M_WAYS = CTX_SIZE + 4  # fetch buffer: way k is meta[M_WAYS + WAY * k + W_*]
W_LO, W_BASE, W_WRITE, WAY = 0, 1, 2, 3  # a way: first UM index on its page (or NO_PAGE), host
# address of UM index 0 as that page maps it, 1 if its TLB entry lets a store through; its size
WAYS = 16  # a power of two
M_POISON = M_WAYS + WAY * WAYS  # a page of POISON words: what a code page that could not come in reads
M_SIZE = M_POISON + PAGE_WORDS // 2

NO_PAGE = NO_TRANSLATION  # an empty fetch-buffer way: no UM index is within a page of it
POISON = 0xF0000000  # operator 15: what a fetch returns once M_FAIL is set


def new_meta(pid: int) -> np.ndarray:
    """A fresh meta array for process `pid` (fetch buffer empty, no failure)."""
    meta = np.zeros(M_SIZE, dtype=np.int64)
    meta[M_PID], meta[CTX_USER] = pid, 1
    meta[CTX_CACHE], meta[CTX_CACHE_AT], meta[CTX_CACHE_STRIDE] = WAYS, M_WAYS + W_LO, WAY
    drop_cached(meta)
    meta[M_DATA_WAY] = M_WAYS
    meta[M_POISON:].view(np.uint32)[:] = POISON
    return meta


def make_space(ms, ref: np.ndarray, heap, meta: np.ndarray, cpu: int, every_access: bool):
    """The space of a process (heap handle, meta) running on CPU `cpu` of machine state `ms`
    (ref: its address); `every_access` if the machine's policy sees every access."""
    meta[M_CPU] = cpu
    drop_cached(meta)
    kind = PagedSpaceEveryAccess if every_access else PagedSpace
    tlb, regs = cpu_rows(ms, cpu)
    return kind(ms.words, heap, meta, tlb, regs, ref, np.zeros(PAGE_WORDS, dtype=np.uint32))


def _is_paged_space(space) -> bool:
    return isinstance(space, types.BaseNamedTuple) and getattr(space, "instance_class", None) in (
        PagedSpace, PagedSpaceEveryAccess)


def _every_access(space):
    """True for a PagedSpaceEveryAccess (a compile-time constant in compiled code)."""
    return type(space) is PagedSpaceEveryAccess


@overload(_every_access, jit_options={"_nrt": False})
def _ov_every_access(space):
    if _is_paged_space(space):
        every = space.instance_class is PagedSpaceEveryAccess
        return lambda space: every
    return None


# ---- the fetch buffer --------------------------------------------------------------------------


@inline_leaf_kernel
def _poison_page(m):
    """Host address of meta's page of POISON words (what a code page that cannot come in reads)."""
    return np.int64(m.ctypes.data) + 8 * M_POISON


@inline_leaf_kernel
def _way_index(va):
    """The meta index of the fetch-buffer way for virtual page of `va` (direct-mapped)."""
    return M_WAYS + WAY * ((va >> PAGE_SHIFT) & (WAYS - 1))


@inline_leaf_kernel
def _refill(space, code, va, pa, writable):
    """Put the page of segment 0 holding virtual `va` (at physical `pa`) in a fetch-buffer way."""
    m = space.meta
    k = _way_index(va)
    lo = ((va & ~np.int64(PAGE_MASK)) - code.va) >> 2
    m[k + W_LO] = lo
    m[k + W_BASE] = np.int64(space.words.ctypes.data) + (pa - (va & PAGE_MASK)) - 4 * lo
    m[k + W_WRITE] = writable
    m[M_REFILLS] += 1


# ---- translation: the kernel's, inline; the cold path through the trampoline -----------------------


@inline_leaf_kernel
def _xlate(space, va, write):
    """Physical address of virtual `va` (int64) for a user read or write; ST_* < 0 on failure."""
    return ref_translate(space.tlb, space.cpu, space.ref, space.meta, va, write, _every_access(space))


@inline_leaf_kernel
def _entry(space, va):
    """This CPU's TLB entry for a user read of `va` after a poll, or 0 (take the cold path)."""
    return ref_entry(space.tlb, space.cpu, space.ref, space.meta, va, NEED_USER_READ, _every_access(space))


@overload(translate, jit_options={"_nrt": False, "forceinline": True})
def _translate_paged_space(mem, va, write):
    if _is_paged_space(mem):
        return lambda mem, va, write: _xlate(mem, np.int64(va), write)
    return None


@overload(load_word, jit_options={"_nrt": False, "forceinline": True})
def _load_word_paged_space(mem, addr):
    if _is_paged_space(mem):
        return lambda mem, addr: load_paged(mem, mem.meta, mem.words, addr)
    return None


@overload(store_word, jit_options={"_nrt": False, "forceinline": True})
def _store_word_paged_space(mem, addr, value):
    if _is_paged_space(mem):
        return lambda mem, addr, value: store_paged(mem, mem.meta, mem.words, addr, value)
    return None


# ---- the segment-space operations ----------------------------------------------------------------------


CodeHandle = namedtuple("CodeHandle", [
    "va", "gen", "lo", "hi", "base", "wend", "dway", "dlo", "dhi", "dbase", "dwend"])
"""The paged code handle: segment 0 at virtual `va`, and two windows valid while
meta[M_GEN] == gen: the fetch window, UM indices [lo, hi) on one page mapped at host
address base + 4 * index, where stores may go too below `wend` (lo when the page's TLB
entry does not allow them); and the data window (dlo, dhi, dbase, dwend) of the way
`dway` that the last data access of segment 0 outside the fetch window used."""


def _code_of(space):
    return CodeHandle(space.meta[M_CODE], np.int64(0), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE,
                      np.int64(-1), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE)


def _code_len(space, code):
    return np.uint64(space.meta[M_CODE_LEN])


@outline_leaf_kernel
def _code_translate_slow(space, code, i):
    """Host address of word i of segment 0 when the TLB does not hold its page: walk (fault),
    refill the fetch buffer; < 0 if the page cannot come in (its way then maps a page of
    POISON, so that the interpreter's next fetch stops it)."""
    m = space.meta
    va = code.va + 4 * np.int64(i)
    pa = np.int64(-1) if m[M_FAIL] != 0 else ref_cold(space.ref, m, va, COLD_READ)
    if pa < 0:
        if not _every_access(space):  # the way maps meta's POISON page (an "address" outside memory)
            poison = _poison_page(m) - np.int64(space.words.ctypes.data)
            _refill(space, code, va, poison + (va & PAGE_MASK), 0)
        return np.int64(-1)
    if not _every_access(space):
        _refill(space, code, va, pa, 0)
    return np.int64(space.words.ctypes.data) + pa


@inline_leaf_kernel
def _code_translate(space, code, i):
    """Host address of word i of segment 0, not in the fetch buffer: poll, probe the TLB and
    refill, else the slow path; < 0 if the page cannot come in."""
    va = code.va + 4 * np.int64(i)
    e = _entry(space, va)
    if e != 0 and space.meta[M_FAIL] == 0:
        pa = tlb_entry_pa(e, va)
        _refill(space, code, va, pa, np.int64(tlb_entry_writable(e)))
        return np.int64(space.words.ctypes.data) + pa
    return _code_translate_slow(space, code, i)


@inline_leaf_kernel
def _way_of(space, code, i):
    """The meta index of the fetch-buffer way holding word i of segment 0, or -1 (always
    when the policy sees every access: nothing is cached)."""
    if _every_access(space):
        return -1
    k = _way_index(code.va + 4 * i)
    if np.uint64(i - space.meta[k + W_LO]) < np.uint64(PAGE_WORDS):
        return k
    return -1


@inline_leaf_kernel
def _window_of(space, code, i):
    """The code handle whose fetch window holds word i of segment 0: the fetch-buffer way with
    its page (refilled now if it has not), and the data window of way M_DATA_WAY; when the
    policy sees every access just the word (every fetch must tell it) and no data window.
    A page that cannot come in gives a window of POISON words."""
    m = space.meta
    k = _way_of(space, code, i)
    if k < 0:
        host = _code_translate(space, code, i)
        if host < 0:
            host = _poison_page(m)  # its first word
        if _every_access(space):
            return CodeHandle(code.va, m[M_GEN], i, i + 1, host - 4 * i, i,
                              np.int64(-1), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE)
        k = _way_of(space, code, i)  # the refill put the page (or a page of POISON) in a way
    lo = m[k + W_LO]
    hi = lo + PAGE_WORDS
    code = CodeHandle(code.va, m[M_GEN], lo, hi, m[k + W_BASE], hi if m[k + W_WRITE] != 0 else lo,
                      np.int64(-1), NO_PAGE, NO_PAGE, np.int64(0), NO_PAGE)
    return _with_data_window(m, code)


@inline_leaf_kernel
def _with_data_window(m, code):
    """`code` with the data window of way M_DATA_WAY (empty if that way is)."""
    d = m[M_DATA_WAY]
    dlo = m[d + W_LO]
    dhi = dlo + PAGE_WORDS if dlo != NO_PAGE else NO_PAGE
    return CodeHandle(code.va, code.gen, code.lo, code.hi, code.base, code.wend,
                      d, dlo, dhi, m[d + W_BASE], dhi if m[d + W_WRITE] != 0 else dlo)


def _code_at(space, code, pc, ncode):
    if pc >= ncode:
        return code, pc  # nothing to fetch: the interpreter reports pc out of range
    i = np.int64(pc)
    m = space.meta
    if np.uint64(i - code.lo) >= np.uint64(code.hi - code.lo) or code.gen != m[M_GEN]:
        code = _window_of(space, code, i)
    elif code.dway != m[M_DATA_WAY]:
        code = _with_data_window(m, code)
    return code, min(ncode, np.uint64(code.hi))


def _code_fetch(space, code, i):
    # The window's host address is a local: the word's load depends on no other load.
    return host_load_u32(code.base + 4 * np.int64(i))


def _code_valid(space, code):
    return code.gen == space.meta[M_GEN]


def _code_get(space, code, i):
    space.meta[M_ACC] += 1
    j = np.int64(i)
    if np.uint64(j - code.dlo) < np.uint64(code.dhi - code.dlo):
        return host_load_u32(code.dbase + 4 * j)
    if np.uint64(j - code.lo) < np.uint64(code.hi - code.lo):
        return host_load_u32(code.base + 4 * j)
    return _code_get_buffered(space, code, i)


@inline_leaf_kernel
def _code_get_buffered(space, code, i):
    """A data load of segment 0 outside the code handle's windows: the fetch-buffer way of its
    page, else translate (and refill)."""
    m = space.meta
    j = np.int64(i)
    k = _way_of(space, code, j)
    if k >= 0:
        m[M_DATA_WAY] = k  # the next jump takes this page as the data window
        return host_load_u32(m[k + W_BASE] + 4 * j)
    host = _code_translate(space, code, j)
    if host < 0:
        return np.uint32(0)  # M_FAIL is set: the interpreter stops at the next check
    return host_load_u32(host)


def _code_set(space, code, i, value):
    space.meta[M_ACC] += 1
    j = np.int64(i)
    if np.uint64(j - code.dlo) < np.uint64(code.dwend - code.dlo):
        host_store_u32(code.dbase + 4 * j, value)
    elif np.uint64(j - code.lo) < np.uint64(code.wend - code.lo):
        host_store_u32(code.base + 4 * j, value)
    else:
        _code_set_buffered(space, code, j, value)


@inline_leaf_kernel
def _code_set_buffered(space, code, i, value):
    """A store into segment 0 outside the code handle's writable windows: a writable way of the
    fetch buffer, else translate for writing (and put the page in its way)."""
    m = space.meta
    k = _way_of(space, code, i)
    if k >= 0 and m[k + W_WRITE] != 0:
        m[M_DATA_WAY] = k
        host_store_u32(m[k + W_BASE] + 4 * i, value)
        return
    va = code.va + 4 * i
    pa = _xlate(space, va, 1)
    if pa >= 0:
        space.words[pa >> 2] = value
        if not _every_access(space):  # the TLB now holds the page's entry with W and Dirty
            _refill(space, code, va, pa, 1)


@inline_leaf_kernel
def _is_segment(space, s):
    """True iff `s` is an active segment other than segment 0 (host tag map: never faults)."""
    return s != space.meta[M_CODE] and pol_is_live(space.heap, s)


@inline_leaf_kernel
def _read_entry(space, va):
    """(pa, w) of a read of `va`: w is True when the TLB entry would let a store through too
    (W and a known Dirty bit), so that a store after the check needs no second lookup.
    pa is ST_* < 0 if the page could not come in."""
    e = _entry(space, va)
    if e != 0:
        return tlb_entry_pa(e, va), tlb_entry_writable(e)
    return ref_cold(space.ref, space.meta, va, COLD_READ), False


def _seg_check(space, sid, off):
    s = np.int64(sid)
    a = s + 4 * np.int64(off)
    if not _is_segment(space, s):
        return S.INACTIVE_ARRAY, (a, a, a)
    m = space.meta
    m[M_ACC] += 1
    h = s - 4
    ph, w = _read_entry(space, h)
    if ph < 0:
        return S.OUT_OF_MEMORY, (a, a, a)  # M_FAIL tells the driver it is the kernel's failure
    if off >= (np.uint64(space.words[ph >> 2]) >> np.uint64(2)):
        return S.INDEX_OUT_OF_BOUNDS, (a, a, a)
    if (a ^ h) >> PAGE_SHIFT == 0:
        pa = ph + (a - h)
    else:
        pa, w = _read_entry(space, a)
        if pa < 0:
            return S.OUT_OF_MEMORY, (a, a, a)
    return 0, (pa, pa if w else np.int64(-1), a)  # where: (pa, pa if a store may use it, va)


def _seg_get(space, where):
    return space.words[where[0] >> 2]


@outline_leaf_kernel
def _store_slow(space, va, value):
    """A store whose TLB entry lacks write permission or a known Dirty bit: walk (sets Dirty)."""
    pa = ref_cold(space.ref, space.meta, va, COLD_WRITE)
    if pa >= 0:
        space.words[pa >> 2] = value


def _seg_set(space, where, value):
    if where[1] >= 0:
        space.words[where[1] >> 2] = value
    else:
        _store_slow(space, where[2], value)


def _seg_map(space, n):
    p = direct_calloc(space, space.meta, space.words, space.heap, np.int64(n) * 4)
    return np.uint32(p) if p > 0 else np.uint32(0)


def _seg_unmap(space, sid):
    s = np.int64(sid)
    if not _is_segment(space, s):
        return S.UNMAP_INACTIVE
    if direct_free(space, space.meta, space.heap, s) < 0:
        return S.OUT_OF_MEMORY
    return 0


@outline_leaf_kernel
def _load_program(space, sid):
    """Segment 0 becomes a copy of segment `sid` (live, not segment 0); 0 or a fault status."""
    m = space.meta
    nbytes = direct_size_of(space, m, space.heap, np.int64(sid))
    new = direct_malloc(space, m, space.heap, nbytes) if nbytes >= 0 else nbytes
    if new < 0 or copy_user(space, space.words, new, np.int64(sid), nbytes, space.bounce) < 0:
        return S.OUT_OF_MEMORY
    if direct_free(space, m, space.heap, m[M_CODE]) < 0:
        return S.OUT_OF_MEMORY
    m[M_CODE] = new
    m[M_CODE_LEN] = nbytes >> 2
    drop_cached(m)
    return 0


def _seg_load_program(space, sid):
    if not _is_segment(space, np.int64(sid)):
        return S.LOADPROG_INACTIVE
    return _load_program(space, sid)


_OPS = dict(
    **sp.ONE_STEP, code_of=_code_of, code_len=_code_len, code_at=_code_at, code_fetch=_code_fetch, code_valid=_code_valid,
    code_get=_code_get, code_set=_code_set,
    seg_check=_seg_check, seg_get=_seg_get, seg_set=_seg_set,
    seg_map=_seg_map, seg_unmap=_seg_unmap, seg_load_program=_seg_load_program,
)
for _kind in (PagedSpace, PagedSpaceEveryAccess):
    sp.register(_kind, refcounted=False, inline=True, **_OPS)


@kernel
def paged_um_run(ms, space, regs, st, inbuf, outbuf, budget):
    """`um_run` on a paged space, as one visit of the process's CPU (cpu_enter .. cpu_leave).

    Returns um_run's status, or ST_DEAD (< 0) if the process has exited.  The accesses
    credited to the process are the instructions fetched plus the words loaded and stored.
    """
    m = space.meta
    cpu = m[M_CPU]
    e = cpu_enter(ms, cpu, m[M_PID])
    if e < 0:
        return np.int64(e)
    drop_cached(m)  # other CPUs did not wait for this one while it was away
    icount = st[ST_ICOUNT]
    acc = m[M_ACC]
    r = um_run(space, regs, st, inbuf, outbuf, budget)
    drop_cached(m)
    cpu_leave(ms, cpu, (st[ST_ICOUNT] - icount) + (m[M_ACC] - acc))
    return np.int64(r)
