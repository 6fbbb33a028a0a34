"""Frame-table helpers shared by the fault handler and the replacement policies.

The frame table is ``ft[pfn, FT_*]`` (see layout.py).  Invariants:
``ft[f, FT_OWNER] == FREE`` iff f is on the free stack; a frame with an owner
and without FF_TABLE/FF_KERNEL maps exactly one page, whose present PTE lives
at ``ft[f, FT_PTE]`` and names f.  The policies see the page's Accessed and
Dirty bits through that PTE, so they work on any frame table whose PTEs are in
`words` - the live kernel's and the trace simulator's alike.
"""

from __future__ import annotations

import numpy as np

from vm32.jit import inline_kernel, kernel
from vm32.kernel.layout import C_PID, CPU_STRIDE, FF_PINNED, FT_FLAGS, FT_OWNER, FT_PTE, FT_VPN, REQ_PAGE
from vm32.kernel.sync import post_request
from vm32.atomic import atomic_cas, atomic_load
from vm32.mmu.entry import PTE_A, PTE_D
from vm32.mmu.tlb import tlb_invalidate


@inline_kernel
def frame_evictable(ft, f):
    """True if frame f holds a process page that may be evicted (owned, not pinned)."""
    return ft[f, FT_OWNER] >= 0 and not (ft[f, FT_FLAGS] & FF_PINNED)


@inline_kernel
def frame_pte(words, ft, f):
    """The current PTE (int64) of the page in frame f."""
    return np.int64(words[ft[f, FT_PTE] >> 2])


@inline_kernel
def frame_referenced(words, ft, f):
    """1 if the page in frame f has its Accessed bit set, else 0."""
    return 1 if frame_pte(words, ft, f) & PTE_A else 0


@inline_kernel
def frame_dirty(words, ft, f):
    """1 if the page in frame f has its Dirty bit set, else 0."""
    return 1 if frame_pte(words, ft, f) & PTE_D else 0


@kernel
def frame_clear_referenced(words, ft, f, tlb, cpus, cpu):
    """Clear the Accessed bit of frame f's page; return its old value (0/1).

    The MMU sets A only when it walks, so no TLB may keep the entry: the calling
    CPU `cpu` drops its own if it runs the page's owner, and every other CPU that
    runs the owner gets a request to drop it at its next access, not waited for
    (see sync.py, point 5).  `cpus` is the per-CPU register array
    (``cpus[c * CPU_STRIDE + C_PID]``); the trace simulator passes an empty one.
    """
    i = ft[f, FT_PTE] >> 2
    while True:
        pte = np.int64(words[i])
        if not (pte & PTE_A):
            return 0
        if np.int64(atomic_cas(words, i, pte, pte & ~PTE_A)) == pte:
            break
    owner, vpn = ft[f, FT_OWNER], ft[f, FT_VPN]
    for c in range(cpus.shape[0] // CPU_STRIDE):
        if atomic_load(cpus, c * CPU_STRIDE + C_PID) != owner:
            continue
        if c == cpu:
            tlb_invalidate(tlb, cpu, vpn)
        else:
            post_request(cpus, c, owner, vpn, REQ_PAGE)
    return 1
