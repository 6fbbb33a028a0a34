"""vm32.mmu: i386 page-table entries, the page walk and a software TLB per CPU.

    entry   bit layout of PDE/PTE, pte_make/pte_pfn/pte_flags, swap-slot encoding
    walk    pt_walk (the one walk primitive), pde_install, mmu_walk (sets A/D, checks protection)
    tlb     direct-mapped per-CPU TLB: probe and entry decoding, lookup, fill, invalidate
            (invlpg), flush (CR3 load)

The MMU never allocates or handles faults; vm32.kernel does both.
"""

from vm32.mmu.entry import *  # noqa: F401,F403
from vm32.mmu.tlb import make_tlbs, mmu_translate, tlb_fill, tlb_flush, tlb_invalidate, tlb_lookup  # noqa: F401
from vm32.mmu.walk import TR_NOT_PRESENT, TR_PROT_USER, TR_PROT_WRITE, mmu_walk, pde_install, pt_walk  # noqa: F401
