"""Compiled accessors over a process's virtual memory: copy in/out, words, patterns.

Each `k_*` function is one visit of a CPU to compiled code: `cpu_enter`,
accesses through `vm_translate` (TLB, walk, fault handler), `cpu_leave`.  They
return OK or an ST_* status; the failing address is left in
``cpus[cpu * CPU_STRIDE + C_FAULT_VA]``.  A copy crossing pages translates once
per page (round down, translate, copy ``min(4096 - off, n)``, advance).

The word-access seam: `PagedMemory(ms, ctx)` is the paged memory type for
`vm32.memory.load_word/store_word`.  ``ctx`` is an int64 array
[cpu, pid, user, status, fault_va, accesses]; a failed access sets ``status``
(and returns 0 for a load), so callers check ``ctx[CTX_STATUS]`` when done.
The caller brackets its run with cpu_enter/cpu_leave.

Hot loops that take the machine tuple should be compiled without reference
counting (`vm32.jit.leaf_kernel`, or ``_nrt=False``): with NRT the tuple's arrays
are increfed and decrefed around the slow-path call and a TLB hit costs ~60 ns,
not ~3.5.  (A callee that sets no ``_nrt`` is compiled with the setting of the caller
it is first compiled for, so whether the slow path refcounts depends on that order;
it is the slow path, so either is fine.)
"""

from __future__ import annotations

import collections

import numpy as np
from numba import types
from numba.extending import overload

from vm32.jit import kernel, leaf_kernel
from vm32.kernel.fault import vm_translate
from vm32.kernel.layout import OK
from vm32.kernel.sync import cpu_enter, cpu_leave
from vm32.memory import load_word, store_word

PagedMemory = collections.namedtuple("PagedMemory", "ms ctx")
CTX_CPU, CTX_PID, CTX_USER, CTX_STATUS, CTX_FAULT_VA, CTX_ACCESSES = 0, 1, 2, 3, 4, 5
CTX_SIZE = 8


def _is_paged(mem) -> bool:
    return isinstance(mem, types.BaseNamedTuple) and getattr(mem, "instance_class", None) is PagedMemory


@overload(load_word)
def _load_word_paged(mem, addr):
    if not _is_paged(mem):
        return None

    def impl(mem, addr):
        ctx = mem.ctx
        ctx[CTX_ACCESSES] += 1
        pa = vm_translate(mem.ms, ctx[CTX_CPU], np.int64(addr) & 0xFFFFFFFF, 0, ctx[CTX_USER])
        if pa < 0:
            ctx[CTX_STATUS] = pa
            ctx[CTX_FAULT_VA] = addr
            return np.uint32(0)
        return mem.ms.words[pa >> 2]

    return impl


@overload(store_word)
def _store_word_paged(mem, addr, value):
    if not _is_paged(mem):
        return None

    def impl(mem, addr, value):
        ctx = mem.ctx
        ctx[CTX_ACCESSES] += 1
        pa = vm_translate(mem.ms, ctx[CTX_CPU], np.int64(addr) & 0xFFFFFFFF, 1, ctx[CTX_USER])
        if pa < 0:
            ctx[CTX_STATUS] = pa
            ctx[CTX_FAULT_VA] = addr
        else:
            mem.ms.words[pa >> 2] = np.uint32(value & 0xFFFFFFFF)

    return impl


@kernel
def k_copy(ms, cpu, pid, va, buf, user, write):
    """Copy between `buf` and len(buf) bytes at virtual `va` of `pid`, page by page.

    write=1 copies `buf` into the process (bytes before a fault are written),
    write=0 copies the process's bytes into `buf`.  Returns OK or an ST_* fault.
    The one copyin/copyout loop: round down, translate, copy to the page end, advance.
    """
    st = cpu_enter(ms, cpu, pid)
    if st != OK:
        return st
    n, done, acc = buf.shape[0], 0, 0
    while done < n:
        a = va + done
        chunk = min(4096 - (a & 0xFFF), n - done)
        acc += 1
        pa = vm_translate(ms, cpu, a, write, user)
        if pa < 0:
            st = pa
            break
        if write:
            ms.bytes[pa : pa + chunk] = buf[done : done + chunk]
        else:
            buf[done : done + chunk] = ms.bytes[pa : pa + chunk]
        done += chunk
    cpu_leave(ms, cpu, acc)
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
def k_pattern(ms, cpu, pid, va, nwords, seed, check, counts):
    """Write (check=0) or verify (check=1) the pattern over `nwords` words from `va`
    (4-aligned).  counts[0] += words done, counts[1] += mismatches.  Returns OK or
    ST_* (stops at the first failed access).

    One translation per page, then the page's words (as k_copy does; a CPU that stays
    on one page hits the same TLB entry anyway); every word counts as an access.
    """
    st = cpu_enter(ms, cpu, pid)
    if st != OK:
        return st
    bad = 0
    i = 0
    while i < nwords:
        a = va + 4 * i
        pa = vm_translate(ms, cpu, a, 1 - check, 1)
        if pa < 0:
            st = pa
            break
        n = min((4096 - (a & 0xFFF)) >> 2, nwords - i)
        w = pa >> 2
        if check:
            for k in range(n):
                if np.int64(ms.words[w + k]) != pattern_word(seed, a + 4 * k):
                    bad += 1
        else:
            for k in range(n):
                ms.words[w + k] = np.uint32(pattern_word(seed, a + 4 * k))
        i += n
    cpu_leave(ms, cpu, i)
    counts[0] += i
    counts[1] += bad
    return st
