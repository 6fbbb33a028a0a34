"""Folding 64-bit page numbers into the simulator's region of the 32-bit address space.

The rule (stated once, here, and printed by ``vm32 trace sim`` when it applies):

    A trace's pages are grouped into 4 MiB chunks (1024 pages: the reach of one
    page table).  Chunks take the places of the simulator's region, from its
    base up, in the order the trace first touches them; a page keeps its offset
    inside its chunk.  The region is the user part of the 32-bit space above the
    4 MiB null guard: 0x00400000 to the kernel's base 0xF0000000, 959 chunks.

So pages that share a page table in the trace share one in the simulator, a
page's TLB index (its low 10 bits) survives for TLBs of up to 1024 entries, and
distinct pages stay distinct as long as the trace touches at most 959 chunks
(3.75 GiB of address space in 4 MiB pieces).  A chunk that comes after all
places are taken shares the place ``chunk % 959`` with an earlier one, and the
folding reports how many chunks had to share: their pages may then collide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vm32.jit import leaf_kernel, outline_leaf_kernel
from vm32.kernel.layout import IMAGE_BASE, KERNEL_BASE

CHUNK_SHIFT = 10  # pages per chunk = 1024: one page table's reach (4 MiB)
CHUNK_PAGES = 1 << CHUNK_SHIFT
FIRST_PLACE = IMAGE_BASE >> (12 + CHUNK_SHIFT)  # chunk 1: above the null guard
PLACES = (KERNEL_BASE >> (12 + CHUNK_SHIFT)) - FIRST_PLACE  # 959
REGION_BASE = IMAGE_BASE
REGION_END = KERNEL_BASE
TABLE_SIZE = 1 << 16  # distinct chunks remembered (for the count of chunks that share)
RECENT = 64  # chunks whose places fold_pages keeps at hand (code, data, stack... alternate)

# fold state: st[F_*] (int64)
F_USED = 0  # places taken
F_SHARED = 1  # distinct chunks that found every place taken
F_UNCOUNTED = 4  # chunks not remembered because the table was full
F_SIZE = 8


@outline_leaf_kernel
def _place_of(c, keys, places, chunk_of, st):
    """The place of chunk c (0..PLACES-1), giving it the next free one on first sight."""
    h = (c * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(48)  # 16 bits: TABLE_SIZE
    free = -1
    for _ in range(TABLE_SIZE):
        k = keys[h]
        if k == c + np.uint64(1):
            return places[h]
        if k == 0:
            free = np.int64(h)
            break
        h = (h + np.uint64(1)) & np.uint64(TABLE_SIZE - 1)
    if free < 0:  # the table is full: fold without remembering
        st[F_UNCOUNTED] += 1
        return np.int64(c % np.uint64(PLACES))
    if st[F_USED] < PLACES:
        place = st[F_USED]
        st[F_USED] += 1
        chunk_of[place] = c
    else:
        place = np.int64(c % np.uint64(PLACES))
        st[F_SHARED] += 1
    keys[free] = c + np.uint64(1)
    places[free] = place
    return place


@leaf_kernel
def fold_pages(pages, n, keys, places, chunk_of, st, recent, out, out_start):
    """Write the folded virtual page number of ``pages[:n]`` to ``out[out_start:]`` (uint32).

    ``recent[:RECENT]`` caches chunk -> place for the last chunks seen (direct-mapped by
    their low bits; -1 empty), ``recent[RECENT:]`` their places.
    """
    for k in range(n):
        p = pages[k]
        c = np.int64(p >> np.uint64(CHUNK_SHIFT))
        r = c & (RECENT - 1)
        if recent[r] != c:
            recent[r] = c
            recent[RECENT + r] = _place_of(np.uint64(c), keys, places, chunk_of, st)
        out[out_start + k] = np.uint32(((FIRST_PLACE + recent[RECENT + r]) << CHUNK_SHIFT) | np.int64(p & np.uint64(CHUNK_PAGES - 1)))


@dataclass
class FoldReport:
    """How a trace's pages were placed: chunks seen, and how many had to share a place."""

    chunks: int
    shared: int
    chunk_of_place: np.ndarray  # original chunk (page >> 10) of each place taken

    @property
    def wide(self) -> bool:
        """True if the trace has pages beyond the 32-bit user space (or chunks that share)."""
        return bool(self.shared) or bool(np.any(self.chunk_of_place >= np.uint64(FIRST_PLACE + PLACES)))

    def original_page(self, vpn: int) -> int:
        """The trace's page number of folded page `vpn` (the first chunk's, if several share)."""
        place = (vpn >> CHUNK_SHIFT) - FIRST_PLACE
        return (int(self.chunk_of_place[place]) << CHUNK_SHIFT) | (vpn & (CHUNK_PAGES - 1))

    def describe(self) -> str:
        """One line for people: what the folding did."""
        text = f"{self.chunks} chunk{'s' if self.chunks != 1 else ''} of 4 MiB placed from {REGION_BASE:#010x}"
        if self.shared:
            text += (f"; {self.shared} chunk{'s' if self.shared != 1 else ''} found all {PLACES} places "
                     f"taken and share one: distinct pages of those chunks may count as one")
        return text


class Folder:
    """Folds 64-bit page numbers chunk by chunk, keeping its table across calls (a stream)."""

    def __init__(self):
        self.keys = np.zeros(TABLE_SIZE, dtype=np.uint64)
        self.places = np.zeros(TABLE_SIZE, dtype=np.int64)
        self.chunk_of = np.zeros(PLACES, dtype=np.uint64)
        self.st = np.zeros(F_SIZE, dtype=np.int64)
        self.recent = np.full(2 * RECENT, -1, dtype=np.int64)

    def fold(self, pages: np.ndarray, n: int, out: np.ndarray, out_start: int = 0) -> None:
        """Fold ``pages[:n]`` (uint64) into ``out[out_start:out_start + n]`` (uint32)."""
        fold_pages(pages, n, self.keys, self.places, self.chunk_of, self.st, self.recent, out, out_start)

    def report(self) -> FoldReport:
        """What the folding did so far."""
        used = int(self.st[F_USED])
        shared = int(self.st[F_SHARED] + self.st[F_UNCOUNTED])
        return FoldReport(used + shared, shared, self.chunk_of[:used].copy())
