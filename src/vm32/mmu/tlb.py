"""A software TLB per CPU: direct-mapped, tagged by virtual page number.

All CPUs' TLBs are rows of one int64 array ``tlb[cpu, i]`` with a power-of-two
number of entries; virtual page `vpn` can only live in entry ``vpn & (n-1)``.
One entry is one int64, so a hit is a single load and compare:

    63        52 51            32 31              12 11         0
    +-----------+----------------+------------------+------------+
    |   zero    |   vpn + 1      |  frame number    | W U D G    |
    +-----------+----------------+------------------+------------+

(W = bit 1, U = bit 2, D = bit 6, G = bit 8, as in the PTE; 0 = invalid entry.)
W and U are the *effective* permissions (directory AND table).  D in an entry
means "the PTE's Dirty bit is known to be set": a write that hits an entry
without D takes the slow path once, which sets Dirty in the PTE as i386 does.
The entries carry no address-space tag: a CPU's TLB describes the process it
is running, and changing CR3 flushes it (`tlb_flush`, keeping Global kernel
entries).  `tlb_invalidate` is ``invlpg``.

The entry is decoded only here: `tlb_probe` (the hit test, on one CPU's row),
`tlb_entry_pa` and `tlb_entry_writable`, and `tlb_holds` (does a row hold a page);
the kernel's translation, its shootdowns and the UM's fetch buffer all call them.
"""

from __future__ import annotations

import numpy as np

from vm32.jit import inline_leaf_kernel, kernel, leaf_kernel
from vm32.mmu.entry import PAGE_MASK, PAGE_SHIFT, PTE_D, PTE_FRAME, PTE_G, PTE_U, PTE_W
from vm32.mmu.walk import mmu_walk

TLB_TAG_SHIFT = 32
_TLB_KEEP = PTE_W | PTE_U | PTE_D | PTE_G  # flag bits an entry keeps
NEED_USER_READ = PTE_U  # tlb_need(0, 1): the entry bits a user-mode read needs
NEED_USER_WRITE = PTE_U | PTE_W | PTE_D  # tlb_need(1, 1): a user-mode write


@leaf_kernel
def tlb_need(write, user):
    """The entry bits an access needs to hit: W and D for a write, U for user mode."""
    return (write * (PTE_W | PTE_D)) | (user * PTE_U)


@inline_leaf_kernel
def tlb_slot(row, vpn):
    """Index in TLB row `row` of the one entry that may hold virtual page `vpn` (unsigned:
    no negative-index fix-up)."""
    return np.uint64(vpn) & np.uint64(row.shape[0] - 1)


@inline_leaf_kernel
def tlb_probe(row, va, need):
    """The entry of TLB row `row` (one CPU's TLB) for `va` if it holds the bits `need`, else 0."""
    vpn = va >> PAGE_SHIFT
    e = row[tlb_slot(row, vpn)]
    if (e >> TLB_TAG_SHIFT) == vpn + 1 and (e & need) == need:
        return e
    return np.int64(0)


@inline_leaf_kernel
def tlb_entry_pa(e, va):
    """Physical address of `va` by the valid entry `e` (its frame, `va`'s offset)."""
    return (e & PTE_FRAME) | (va & PAGE_MASK)


@inline_leaf_kernel
def tlb_entry_writable(e):
    """True if entry `e` lets a write through without a walk (W and a known Dirty bit)."""
    return (e & (PTE_W | PTE_D)) == (PTE_W | PTE_D)


@inline_leaf_kernel
def tlb_holds(row, vpn):
    """True if TLB row `row` holds an entry for virtual page `vpn` (any permissions)."""
    return (row[tlb_slot(row, vpn)] >> TLB_TAG_SHIFT) == vpn + 1


@leaf_kernel
def tlb_lookup(tlb, cpu, va, need):
    """Physical address of `va` if CPU `cpu`'s TLB holds it with bits `need`, else -1."""
    e = tlb_probe(tlb[cpu], va, need)
    if e != 0:
        return tlb_entry_pa(e, va)
    return np.int64(-1)


@leaf_kernel
def tlb_fill(tlb, cpu, va, pte):
    """Cache the walked entry `pte` (effective W/U) for page `va` in CPU `cpu`'s TLB."""
    row = tlb[cpu]
    vpn = va >> PAGE_SHIFT
    row[tlb_slot(row, vpn)] = ((vpn + 1) << TLB_TAG_SHIFT) | (pte & PTE_FRAME) | (pte & _TLB_KEEP)


@leaf_kernel
def tlb_invalidate(tlb, cpu, vpn):
    """Drop CPU `cpu`'s entry for virtual page `vpn`, if it holds one (invlpg)."""
    row = tlb[cpu]
    if tlb_holds(row, vpn):
        row[tlb_slot(row, vpn)] = 0


@kernel
def tlb_flush(tlb, cpu, keep_global):
    """Invalidate all of CPU `cpu`'s entries (but Global ones when `keep_global`)."""
    for i in range(tlb.shape[1]):
        if not (keep_global and (tlb[cpu, i] & PTE_G)):
            tlb[cpu, i] = 0


@kernel
def mmu_translate(words, tlb, cpu, pgdir_pa, va, write, user):
    """Translate `va` for CPU `cpu` as the MMU does: TLB, else walk and fill.

    Returns the physical address (>= 0) or a TR_* status (< 0) from the walk.
    Does not handle faults; counts nothing (callers count hits and misses).
    """
    pa = tlb_lookup(tlb, cpu, va, tlb_need(write, user))
    if pa >= 0:
        return pa
    pte = mmu_walk(words, pgdir_pa, va, write, user)
    if pte < 0:
        return pte
    tlb_fill(tlb, cpu, va, pte)
    return tlb_entry_pa(pte, va)


def make_tlbs(cpus: int, entries: int) -> np.ndarray:
    """A zeroed (all invalid) TLB array for `cpus` CPUs of `entries` entries each."""
    return np.zeros((cpus, entries), dtype=np.int64)
