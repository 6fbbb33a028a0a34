"""vm32.mmu: entry bit layout, the walk, translation with A/D and protection, the TLB."""

import numpy as np

from vm32.mmu import (
    PTE_A,
    PTE_D,
    PTE_G,
    PTE_P,
    PTE_SWAPPED,
    PTE_U,
    PTE_W,
    TR_NOT_PRESENT,
    TR_PROT_USER,
    TR_PROT_WRITE,
    make_tlbs,
    mmu_translate,
    pde_install,
    pdx,
    pt_walk,
    pte_flags,
    pte_make,
    pte_pfn,
    pte_slot,
    pte_swapped,
    ptx,
    tlb_flush,
    tlb_invalidate,
)
from vm32.mmu.entry import describe_flags


def test_bit_layout_matches_i386():
    assert (PTE_P, PTE_W, PTE_U, PTE_A, PTE_D, PTE_G) == (1, 2, 4, 0x20, 0x40, 0x100)
    e = pte_make(0xABCDE, PTE_W | PTE_U)
    assert e == 0xABCDE007
    assert pte_pfn(e) == 0xABCDE and pte_flags(e) == 7
    assert pdx(0xFFC01234) == 0x3FF and ptx(0xFFC01234) == 1
    assert pdx(0x00400000) == 1 and ptx(0x00401FFF) == 1


def test_swapped_entry_encoding():
    e = pte_swapped(0x3FFFFF, PTE_W | PTE_U)
    assert not e & PTE_P and e & PTE_SWAPPED
    assert pte_slot(e) == 0x3FFFFF
    assert e & 6 == 6
    assert pte_slot(pte_make(5, 0)) == -1 and pte_slot(0) == -1
    assert describe_flags(pte_swapped(12, 0)) == "swap slot 12"
    assert describe_flags(pte_make(3, PTE_W | PTE_A)) == "P W - A - -"


def _setup():
    """Memory of 8 frames: directory in frame 1, table in frame 2, page 0x00400 -> frame 5."""
    words = np.zeros(8 * 1024, dtype=np.uint32)
    pgdir = 1 * 4096
    pde_install(words, pgdir, 0x00400000, 2, PTE_W | PTE_U)
    pte_pa = pt_walk(words, pgdir, 0x00400000)
    assert pte_pa == 2 * 4096
    words[pte_pa >> 2] = pte_make(5, PTE_W | PTE_U)
    return words, pgdir, pte_pa


def test_pdir_frame_holds_real_entries():
    words, pgdir, _ = _setup()
    raw = words.view(np.uint8)[pgdir : pgdir + 8].tobytes()
    assert raw[4:8] == (0x2007).to_bytes(4, "little")  # entry 1: table frame 2, P|W|U
    assert pt_walk(words, pgdir, 0x00800000) == -1  # no table for directory entry 2


def test_translate_sets_accessed_and_dirty_and_fills_tlb():
    words, pgdir, pte_pa = _setup()
    tlb = make_tlbs(2, 16)
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400123, 0, 1) == 5 * 4096 + 0x123
    assert words[pte_pa >> 2] & (PTE_A | PTE_D) == PTE_A
    assert tlb[0].any() and not tlb[1].any()
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400004, 1, 1) == 5 * 4096 + 4
    assert words[pte_pa >> 2] & PTE_D


def test_protection_faults_are_distinct():
    words, pgdir, pte_pa = _setup()
    tlb = make_tlbs(1, 16)
    assert mmu_translate(words, tlb, 0, pgdir, 0x00800000, 0, 1) == TR_NOT_PRESENT
    words[pte_pa >> 2] = pte_make(5, PTE_U)  # read-only
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400000, 1, 1) == TR_PROT_WRITE
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400000, 0, 1) >= 0
    words[pte_pa >> 2] = pte_make(5, PTE_W)  # supervisor-only
    tlb_flush(tlb, 0, False)
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400000, 0, 1) == TR_PROT_USER
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400000, 1, 0) >= 0


def test_tlb_hit_uses_cached_entry_until_invalidated():
    words, pgdir, pte_pa = _setup()
    tlb = make_tlbs(1, 16)
    mmu_translate(words, tlb, 0, pgdir, 0x00400000, 1, 1)
    words[pte_pa >> 2] = pte_make(6, PTE_W | PTE_U | PTE_A | PTE_D)
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400000, 0, 1) >> 12 == 5  # stale until invlpg
    tlb_invalidate(tlb, 0, 0x00400)
    assert mmu_translate(words, tlb, 0, pgdir, 0x00400000, 0, 1) >> 12 == 6


def test_flush_keeps_global_entries():
    words, pgdir, pte_pa = _setup()
    tlb = make_tlbs(1, 16)
    words[pte_pa >> 2] = pte_make(5, PTE_W | PTE_G)
    mmu_translate(words, tlb, 0, pgdir, 0x00400000, 0, 0)
    tlb_flush(tlb, 0, True)
    assert tlb[0].any()
    tlb_flush(tlb, 0, False)
    assert not tlb[0].any()
