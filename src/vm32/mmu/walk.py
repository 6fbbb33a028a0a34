"""The page walk: the one primitive that finds a leaf entry, and the MMU translation.

Everything that needs a page-table entry (the MMU on a TLB miss, the kernel's
fault handler, mapping, unmapping, inspection) calls `pt_walk`.  It never
allocates: when the directory entry is not present it returns -1 and the kernel,
which owns the frame allocator, installs a table with `pde_install` and walks
again.

`mmu_walk` is what the hardware does on a TLB miss: check protection on the
directory and table entries (effective W and U are the AND of both), set
Accessed, and Dirty on a write, with a compare-and-swap so that a concurrent
change of the entry by the kernel (an eviction on another CPU) is never
overwritten.  Its second half, `mmu_use`, starts from a directory entry and the
leaf's address already found: the kernel's fault path walks once and keeps both.
Protection is checked as with CR0.WP=1: even supervisor writes respect W.
"""

from __future__ import annotations

import numpy as np

from vm32.jit import inline_kernel, kernel
from vm32.atomic import atomic_cas
from vm32.mmu.entry import PTE_A, PTE_D, PTE_FRAME, PTE_P, PTE_U, PTE_W, pdx, pte_make, ptx

# Translation statuses (negative, so that a physical address >= 0 means success).
TR_NOT_PRESENT = -1  # page fault: the directory or table entry is not present
TR_PROT_USER = -2  # protection fault: user-mode access to a supervisor page
TR_PROT_WRITE = -3  # protection fault: write to a read-only page


@inline_kernel
def pde_of(words, pgdir_pa, va):
    """The directory entry (int64) covering `va` in directory `pgdir_pa`."""
    return np.int64(words[(pgdir_pa >> 2) + pdx(va)])


@inline_kernel
def pte_addr(pde, va):
    """Physical address of `va`'s entry in the page table that the present `pde` names."""
    return (pde & PTE_FRAME) + 4 * ptx(va)


@inline_kernel
def pt_walk(words, pgdir_pa, va):
    """Physical address of the page-table entry for `va` under directory `pgdir_pa`.

    Returns -1 when the directory entry is not present (no table yet).  Reads only.
    """
    pde = pde_of(words, pgdir_pa, va)
    if not (pde & PTE_P):
        return np.int64(-1)
    return pte_addr(pde, va)


@inline_kernel
def pde_install(words, pgdir_pa, va, table_pfn, flags):
    """Point the directory entry covering `va` at page table `table_pfn` with `flags` (P added)."""
    words[(pgdir_pa >> 2) + pdx(va)] = np.uint32(pte_make(table_pfn, flags))


@kernel
def mmu_use(words, pde, pte_pa, write, user):
    """The MMU's use of the leaf entry at `pte_pa` (under directory entry `pde`, present):
    check protection, set A (and D), return the entry as mmu_walk does, or a TR_* status."""
    pte_i = pte_pa >> 2
    while True:
        pte = np.int64(words[pte_i])
        if not (pte & PTE_P):
            return np.int64(TR_NOT_PRESENT)
        eff = pde & pte
        if user and not (eff & PTE_U):
            return np.int64(TR_PROT_USER)
        if write and not (eff & PTE_W):
            return np.int64(TR_PROT_WRITE)
        new = pte | PTE_A
        if write:
            new |= PTE_D
        if new == pte or np.int64(atomic_cas(words, pte_i, pte, new)) == pte:
            return (new & ~(PTE_W | PTE_U)) | (eff & (PTE_W | PTE_U))
        # the entry changed under us (kernel on another CPU): read it again


@kernel
def mmu_walk(words, pgdir_pa, va, write, user):
    """Walk for `va` as the MMU does: return the present leaf entry after setting A (and D).

    Returns a status TR_* (< 0) when a level is not present or protection forbids
    the access; otherwise the updated entry (>= 0) with bit W/U reduced to the
    effective permission of directory and table.
    """
    pde = pde_of(words, pgdir_pa, va)
    if not (pde & PTE_P):
        return np.int64(TR_NOT_PRESENT)
    return mmu_use(words, pde, pte_addr(pde, va), write, user)
