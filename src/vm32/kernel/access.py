"""User memory: the one way a compiled loop reaches a process's virtual memory.

Words
-----
*ctx*       an int64 array per running loop, the *context* of its accesses:
            ``ctx[CTX_CPU]`` the CPU it runs on (entered with sync.cpu_enter),
            ``ctx[CTX_PID]`` the process, ``ctx[CTX_USER]`` 1 for user-mode accesses,
            ``ctx[CTX_STATUS]`` and ``ctx[CTX_FAULT_VA]`` the first failed access,
            ``ctx[CTX_ACCESSES]`` the accesses counted so far; CTX_TLB_GEN .. CTX_CACHE_STRIDE
            describe translations the caller keeps of its own (kernel/trampoline.py).  A
            larger array may carry a caller's own fields after CTX_SIZE (the paged UM's do).
*paged memory*  a named tuple over a process's address space that `translate` accepts:
            `PagedMemory` (the machine state and a ctx) here; the UM's space is another
            (vm32.um.paged).  Its words are reached by `vm32.memory.load_word/store_word`,
            whose implementations for every paged memory are `load_paged`/`store_paged`.
*page chunk*  the bytes from a virtual address to the end of its page: what one
            translation covers.

The failure convention
----------------------
A page that cannot come in (no frame, swap full, I/O error) or an address no
mapping allows is an ST_* status (< 0), recorded once in the ctx by `ctx_fail`:
the first failure is the one reported, with its address.  `translate` and
`page_chunk` return the status; `load_word` then returns 0 and `store_word` does
nothing, and so do every later access through the same ctx until the caller clears
``ctx[CTX_STATUS]``: an operation that lost a page finishes quickly and its caller,
which checks the ctx when done, undoes it (procheap's journal) or ends the process
(the paged UM).

The copy loop
-------------
`page_chunk(mem, va, n, write)` -> (pa, nbytes) is xv6's copyin/copyout step:
translate `va` once, hand back its physical address and the length of the chunk up
to the end of its page (at most `n`).  Every loop that crosses pages is this loop
(`zero_user`, `copy_user`, `k_copy`, `k_pattern`, and the UM's segment copies):

    while done < n:
        pa, chunk = page_chunk(mem, va + done, n - done, write)
        if pa < 0: return pa
        ... chunk bytes at physical pa ...
        done += chunk

A physical address may be used only until the next translation on this CPU
(sync.py, point 6): a copy between two virtual ranges goes through a page-sized
buffer, as translating one side may evict the other.

Each `k_*` function is one visit of a CPU for the Python API: cpu_enter, the work,
cpu_leave.  Hot loops that take the machine tuple are compiled without reference
counting (`vm32.jit.leaf_kernel`): with NRT the tuple's arrays are increfed and
decrefed around the slow-path call and a TLB hit costs ~60 ns, not ~3.5.
"""

from __future__ import annotations

import collections

import numpy as np
from numba import types
from numba.extending import overload

from vm32.jit import inline_leaf_kernel, kernel, leaf_kernel, outline_leaf_kernel
from vm32.kernel.fault import vm_translate
from vm32.kernel.layout import OK
from vm32.kernel.sync import cpu_enter, cpu_leave
from vm32.memory import PAGE_MASK, PAGE_SIZE, load_word, store_word

PagedMemory = collections.namedtuple("PagedMemory", "ms ctx")
"""A process's memory for compiled code that holds the machine state `ms`: its
translations go through `vm_translate` on ctx's CPU."""

CTX_CPU, CTX_PID, CTX_USER, CTX_STATUS, CTX_FAULT_VA, CTX_ACCESSES = 0, 1, 2, 3, 4, 5
CTX_TLB_GEN, CTX_CACHE, CTX_CACHE_AT, CTX_CACHE_STRIDE = 6, 7, 8, 9  # cached translations: trampoline.py
CTX_SIZE = 12

_HOT = {"_nrt": False, "forceinline": True}  # seam implementations: inlined into the loops


def new_ctx(cpu: int, pid: int, user: int = 1) -> np.ndarray:
    """A fresh context for accesses of process `pid` on CPU `cpu` (no failure, no accesses)."""
    ctx = np.zeros(CTX_SIZE, dtype=np.int64)
    ctx[CTX_CPU], ctx[CTX_PID], ctx[CTX_USER] = cpu, pid, user
    return ctx


@inline_leaf_kernel
def ctx_fail(ctx, status, va):
    """Record that the access at `va` failed with `status`, unless a failure is recorded
    already (the first one is what the caller reports)."""
    if ctx[CTX_STATUS] == 0:
        ctx[CTX_STATUS] = status
        ctx[CTX_FAULT_VA] = va


# ---- the seam: one translation per paged-memory type ---------------------------------------


def translate(mem, va, write):
    """Physical address of virtual `va` (int64) of paged memory `mem` for a read (write=0) or
    a write (1); an ST_* status (< 0) if that cannot be, recorded in mem's ctx (ctx_fail).
    Compiled code only: each paged-memory type gives its implementation (@overload)."""
    raise NotImplementedError("translate runs in compiled code only")


def _is_paged_memory(mem) -> bool:
    return isinstance(mem, types.BaseNamedTuple) and getattr(mem, "instance_class", None) is PagedMemory


@overload(translate, jit_options=_HOT)
def _translate_paged_memory(mem, va, write):
    if not _is_paged_memory(mem):
        return None

    def impl(mem, va, write):
        ctx = mem.ctx
        pa = vm_translate(mem.ms, ctx[CTX_CPU], np.int64(va), write, ctx[CTX_USER])
        if pa < 0:
            ctx_fail(ctx, pa, va)
        return pa

    return impl


@inline_leaf_kernel
def load_paged(mem, ctx, words, addr):
    """load_word on paged memory `mem` (its ctx, its physical `words`): one access
    counted, and 0 if the page cannot be had or an access through ctx failed before."""
    if ctx[CTX_STATUS] != 0:  # the operation lost a page already: finish it quickly
        return np.uint32(0)
    ctx[CTX_ACCESSES] += 1
    pa = translate(mem, np.int64(addr), 0)
    if pa < 0:
        return np.uint32(0)
    return words[pa >> 2]


@inline_leaf_kernel
def store_paged(mem, ctx, words, addr, value):
    """store_word on paged memory `mem`: one access counted; nothing stored if the page
    cannot be had or an access through ctx failed before."""
    if ctx[CTX_STATUS] == 0:
        ctx[CTX_ACCESSES] += 1
        pa = translate(mem, np.int64(addr), 1)
        if pa >= 0:
            words[pa >> 2] = np.uint32(value & 0xFFFFFFFF)


@overload(load_word, jit_options=_HOT)
def _load_word_paged_memory(mem, addr):
    if _is_paged_memory(mem):
        return lambda mem, addr: load_paged(mem, mem.ctx, mem.ms.words, addr)
    return None


@overload(store_word, jit_options=_HOT)
def _store_word_paged_memory(mem, addr, value):
    if _is_paged_memory(mem):
        return lambda mem, addr, value: store_paged(mem, mem.ctx, mem.ms.words, addr, value)
    return None


# ---- the copy loop ----------------------------------------------------------------------------


@inline_leaf_kernel
def page_chunk(mem, va, n, write):
    """(pa, nbytes): the physical address of virtual `va` of paged memory `mem` and the
    bytes from it to the end of its page, at most `n`; (ST_* < 0, 0) if the page cannot
    be had (recorded in mem's ctx).  The one translation of every page-crossing loop."""
    pa = translate(mem, va, write)
    if pa < 0:
        return pa, np.int64(0)
    return pa, min(np.int64(PAGE_SIZE) - (va & PAGE_MASK), np.int64(n))


@inline_leaf_kernel
def zero_user(mem, words, va, nbytes):
    """Zero `nbytes` (a multiple of 4) from virtual `va` of paged memory `mem` (physical
    memory `words`), a page chunk at a time; OK or the status of the page that could not
    come in.  No translation between a chunk's translation and its last store."""
    done = np.int64(0)
    while done < nbytes:
        pa, n = page_chunk(mem, va + done, nbytes - done, 1)
        if pa < 0:
            return pa
        for i in range(pa >> 2, (pa + n) >> 2):
            words[i] = 0
        done += n
    return np.int64(OK)


@outline_leaf_kernel
def copy_user(mem, words, dst, src, nbytes, buf):
    """Copy `nbytes` (a multiple of 4) from virtual `src` to virtual `dst` (not overlapping)
    of paged memory `mem` (physical memory `words`), a chunk at a time through `buf`
    (uint32, a page): translating one side may evict the other side's frame.  OK or the
    status of the page that could not come in."""
    done = np.int64(0)
    while done < nbytes:
        s, d = src + done, dst + done
        n = min(np.int64(PAGE_SIZE) - (d & PAGE_MASK), nbytes - done)
        ps, n = page_chunk(mem, s, n, 0)
        if ps < 0:
            return ps
        for j in range(n >> 2):
            buf[j] = words[(ps >> 2) + j]
        pd, n = page_chunk(mem, d, n, 1)
        if pd < 0:
            return pd
        for j in range(n >> 2):
            words[(pd >> 2) + j] = buf[j]
        done += n
    return np.int64(OK)


# ---- one visit of a CPU per Python call --------------------------------------------------------


@kernel
def k_copy(ms, ctx, va, buf, write):
    """Copy between `buf` and len(buf) bytes at virtual `va` of ctx's process, page chunk by
    page chunk: write=1 copies `buf` into the process (bytes before a failure are
    written), write=0 the process's bytes into `buf`.  OK or an ST_* status."""
    cpu = ctx[CTX_CPU]
    st = cpu_enter(ms, cpu, ctx[CTX_PID])
    if st != OK:
        return st
    mem = PagedMemory(ms, ctx)
    n, done = buf.shape[0], 0
    while done < n:
        ctx[CTX_ACCESSES] += 1
        pa, chunk = page_chunk(mem, va + done, n - done, write)
        if pa < 0:
            st = pa
            break
        if write:
            ms.bytes[pa : pa + chunk] = buf[done : done + chunk]
        else:
            buf[done : done + chunk] = ms.bytes[pa : pa + chunk]
        done += chunk
    cpu_leave(ms, cpu, ctx[CTX_ACCESSES])
    return st


@leaf_kernel
def k_load_u32(ms, cpu, pid, va, user):
    """The word at virtual `va` (4-aligned) of `pid` (0..2**32-1), or an ST_* status (< 0)."""
    st = cpu_enter(ms, cpu, pid)
    if st != OK:
        return np.int64(st)
    pa = vm_translate(ms, cpu, va, 0, user)
    v = np.int64(ms.words[pa >> 2]) if pa >= 0 else pa
    cpu_leave(ms, cpu, 1)
    return v


@leaf_kernel
def k_store_u32(ms, cpu, pid, va, value, user):
    """Store `value` at virtual `va` (4-aligned) of `pid`; OK or ST_*."""
    st = cpu_enter(ms, cpu, pid)
    if st != OK:
        return st
    pa = vm_translate(ms, cpu, va, 1, user)
    if pa >= 0:
        ms.words[pa >> 2] = np.uint32(value & 0xFFFFFFFF)
        st = OK
    else:
        st = pa
    cpu_leave(ms, cpu, 1)
    return st


@leaf_kernel
def pattern_word(seed, va):
    """The test pattern's word for address `va`: a cheap hash of (seed, va)."""
    x = (va * 0x9E3779B1 + seed * 0x85EBCA77) & 0xFFFFFFFF
    x ^= x >> 15
    return (x * 0x2C1B3C6D) & 0xFFFFFFFF


@leaf_kernel
def k_pattern(ms, ctx, va, nwords, seed, check, counts):
    """Write (check=0) or verify (check=1) the pattern over `nwords` words from `va`
    (4-aligned) of ctx's process.  counts[0] += words done, counts[1] += mismatches.
    Returns OK or ST_* (stops at the first failed access).  Every word counts as an access.
    """
    cpu = ctx[CTX_CPU]
    st = cpu_enter(ms, cpu, ctx[CTX_PID])
    if st != OK:
        return st
    mem = PagedMemory(ms, ctx)
    bad, i = 0, 0
    while i < nwords:
        a = va + 4 * i
        pa, n = page_chunk(mem, a, 4 * (nwords - i), 1 - check)
        if pa < 0:
            st = pa
            break
        bad += pattern_page(ms.words, pa >> 2, n >> 2, seed, a, check)
        i += n >> 2
    cpu_leave(ms, cpu, i)
    counts[0] += i
    counts[1] += bad
    return st


@leaf_kernel
def pattern_page(words, w, n, seed, va, check):
    """Write or verify (check) the pattern on the `n` words from physical word `w`, which
    virtual `va` maps; the number of words that differ (0 when writing)."""
    bad = 0
    for k in range(n):
        want = pattern_word(seed, va + 4 * k)
        if check:
            bad += np.int64(words[w + k]) != want
        else:
            words[w + k] = np.uint32(want)
    return bad
