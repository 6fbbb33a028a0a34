"""A process's page table and the frame table, as data.

`page_table_rows` / `frame_table_rows` return plain lists of dicts (what
`Process.page_table()` and `Machine.frame_table()` return); vm32.ui renders them
(`vm32.ui.page_table_view`, `vm32.ui.frame_table_view`).  They read the live
arrays without the machine lock: a snapshot that may be a little stale while
other threads run.
"""

from __future__ import annotations

import numpy as np

from vm32.kernel.layout import (
    FF_KERNEL,
    FF_PINNED,
    FF_TABLE,
    FREE,
    FT_FLAGS,
    FT_OWNER,
    FT_PTE,
    FT_SLOT,
    FT_VPN,
    KERNEL,
    KERNEL_BASE,
    P_COLS,
    P_PGDIR,
)
from vm32.mmu.entry import (
    NPTENTRIES, PAGE_SHIFT, PTE_A, PTE_D, PTE_EVICTED, PTE_P, describe_flags, pdx, pte_pfn, pte_slot,
)


def page_table_rows(proc) -> list[dict]:
    """One dict per page `proc` has touched (a non-empty user PTE): va, vpn, pte, frame, slot,
    flags and where the page is: a frame, a swap slot, or (evicted clean) "in the image" or
    "zero-fill"."""
    ms = proc.machine.ms
    words = ms.words
    pgdir = int(ms.procs[proc.pid * P_COLS + P_PGDIR])
    rows = []
    for i in range(pdx(KERNEL_BASE)):
        pde = int(words[(pgdir >> 2) + i])
        if not pde & PTE_P:
            continue
        table = int(pte_pfn(pde)) << PAGE_SHIFT
        for j in range(NPTENTRIES):
            pte = int(words[(table >> 2) + j])
            if pte == 0:
                continue
            vpn = i * NPTENTRIES + j
            frame = int(pte_pfn(pte)) if pte & PTE_P else None
            slot = pte_slot(pte)
            if frame is not None:
                s = int(ms.ft[frame, FT_SLOT])
                where = f"frame {frame}" + (f" (copy in swap slot {s})" if s >= 0 else "")
            elif slot >= 0:
                where = f"swap slot {slot} (sectors {8 * slot}-{8 * slot + 7})"
            elif pte & PTE_EVICTED:  # left its frame clean: its copy is the image, or zeros
                in_image = proc.image_base <= vpn << PAGE_SHIFT < proc.image_base + proc.image_size
                where = "in the image" if in_image else "zero-fill"
            else:
                where = "not loaded"
            rows.append(dict(va=vpn << PAGE_SHIFT, vpn=vpn, pte=pte, frame=frame, slot=slot, flags=describe_flags(pte),
                             where=where))
    return rows


def frame_table_rows(machine) -> list[dict]:
    """One dict per frame: frame, owner, kind, va, pinned, accessed, dirty, slot."""
    ms = machine.ms
    rows = []
    for f in range(machine.frames):
        owner, flags = int(ms.ft[f, FT_OWNER]), int(ms.ft[f, FT_FLAGS])
        vpn, pte_pa, slot = int(ms.ft[f, FT_VPN]), int(ms.ft[f, FT_PTE]), int(ms.ft[f, FT_SLOT])
        if owner == FREE:
            kind = "free"
        elif owner == KERNEL:
            kind = "kernel page table" if flags & FF_TABLE else "kernel memory"
        elif flags & FF_TABLE:
            kind = "page directory" if vpn < 0 else "page table"
        else:
            kind = "page"
        pte = int(ms.words[pte_pa >> 2]) if (pte_pa >= 0 and kind == "page") else 0
        rows.append(
            dict(
                frame=f,
                owner="kernel" if owner == KERNEL else ("-" if owner == FREE else owner),
                kind=kind,
                va=(vpn << PAGE_SHIFT) if (kind in ("page", "kernel memory") and vpn >= 0) else None,
                pinned=bool(flags & FF_PINNED),
                accessed=bool(pte & PTE_A),
                dirty=bool(pte & PTE_D),
                slot=slot,
                kernel=bool(flags & FF_KERNEL),
            )
        )
    return rows


OWNER_FREE = FREE
"""The owner of a free frame in `frame_owners` (kernel frames have a negative owner too)."""


def frame_owners(machine) -> np.ndarray:
    """The owner of every frame: a pid, OWNER_FREE, or another negative number for
    the kernel's frames (a copy, for live views)."""
    return machine.ms.ft[:, FT_OWNER].copy()
