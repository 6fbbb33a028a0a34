"""Slow, obvious models of heap allocators, for the tests of vm32.heap and vm32 heap sim.

* `NaiveHeap`: what every policy must keep true, with no placement of its own: the live
  blocks as a dict {address: bytes}, checked for overlap, alignment and contents.
* `NaiveFreeList`: the textbook explicit free list as a Python list of (address, size)
  pairs, written from the chapter simulator's rules (the search, the list order, the one
  coalescing pass after each free, "searched" counts), in both size rules: teaching
  (round the request, then add the header) and real (round request + header, payloads
  aligned).  It predicts every address and free list of first/best/worst/next.
"""

from __future__ import annotations


class NaiveHeap:
    """Live blocks and their expected contents; no placement policy of its own."""

    def __init__(self, align: int = 8):
        self.align = align
        self.blocks: dict[int, bytearray] = {}

    def add(self, addr: int, data: bytes) -> None:
        """Record a new live block at `addr`; asserts alignment and no overlap."""
        assert addr % self.align == 0, f"{addr:#x} is not {self.align}-aligned"
        assert addr not in self.blocks, f"{addr:#x} handed out twice"
        end = addr + max(len(data), 1)
        for a, d in self.blocks.items():
            assert end <= a or a + max(len(d), 1) <= addr, f"[{addr:#x}, {end:#x}) overlaps block {a:#x}"
        self.blocks[addr] = bytearray(data)

    def remove(self, addr: int) -> bytearray:
        """Forget live block `addr`; returns its contents."""
        return self.blocks.pop(addr)


class NaiveFreeList:
    """The textbook free list: entries (addr, size) in list order.

    search: FIRST, BEST, WORST or NEXT; order: ADDRSORT, SIZESORT+, SIZESORT-, INSERT-FRONT,
    INSERT-BACK; teach=True: size = round_up(n, align) + header (align <= 0: none) and the
    list starts at base; teach=False: size = round_up(n + header, align) and the first block
    starts where its payload is aligned.
    """

    def __init__(self, base: int, size: int, *, search="FIRST", order="ADDRSORT", coalesce=False,
                 header=0, align=-1, teach=True):
        self.search, self.order, self.coalesce = search, order, coalesce
        self.header, self.align, self.teach = header, align, teach
        first = base
        if not teach:
            while (first + header) % align:
                first += 1
        self.free = [(first, base + size - first)]
        self.live: dict[int, int] = {}  # block address -> block size
        self.rover = -1  # NEXT: an address inside the entry where the next search starts

    def block_size(self, n: int) -> int:
        if self.teach:
            if self.align > 0 and n % self.align:
                n += self.align - n % self.align
            return n + self.header
        s = n + self.header
        return (s + self.align - 1) // self.align * self.align

    def _pick(self, size: int) -> tuple[int, int]:
        """(index of the chosen entry or -1, entries examined)."""
        n = len(self.free)
        if self.search == "NEXT":
            start = next((i for i, (a, s) in enumerate(self.free) if a <= self.rover < a + s), 0)
            for k in range(n):
                i = (start + k) % n
                if self.free[i][1] >= size:
                    return i, k + 1
            return -1, n
        fits = [i for i, (_, s) in enumerate(self.free) if s >= size]
        if not fits:
            return -1, n
        if self.search == "FIRST":
            return fits[0], fits[0] + 1
        sizes = [self.free[i][1] for i in fits]
        target = min(sizes) if self.search == "BEST" else max(sizes)
        return fits[sizes.index(target)], n

    def malloc(self, n: int) -> tuple[int, int]:
        """(payload address or -1, entries searched)."""
        size = self.block_size(n)
        if size == 0:
            return -1, 0
        i, count = self._pick(size)
        if i < 0:
            return -1, count
        addr, esize = self.free[i]
        if esize > size:
            self.free[i] = (addr + size, esize - size)
            self.rover = addr + size
        else:
            del self.free[i]
            self.rover = -1 if not self.free else self.free[i if i < len(self.free) else 0][0]
        self.live[addr] = size
        return addr + self.header, count

    def free_block(self, payload: int) -> int:
        """Free the block at `payload`: 0, or -1 if it is not live (nothing changes)."""
        addr = payload - self.header
        if addr not in self.live:
            return -1
        entry = (addr, self.live.pop(addr))
        if self.order == "INSERT-FRONT":
            self.free.insert(0, entry)
        else:
            self.free.append(entry)
            if self.order == "ADDRSORT":
                self.free.sort(key=lambda e: e[0])
            elif self.order == "SIZESORT+":
                self.free.sort(key=lambda e: e[1])
            elif self.order == "SIZESORT-":
                self.free.sort(key=lambda e: e[1], reverse=True)
        if self.coalesce:
            merged = [self.free[0]]
            for a, s in self.free[1:]:
                last_a, last_s = merged[-1]
                if a == last_a + last_s:
                    merged[-1] = (last_a, last_s + s)
                else:
                    merged.append((a, s))
            self.free = merged
        return 0
