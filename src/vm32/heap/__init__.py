"""vm32's 32-bit heap allocator: malloc/calloc/realloc/free over an address range of word memory.

Two faces:

* compiled kernels (`heap_malloc`, `heap_calloc`, `heap_free`, `heap_realloc`,
  `heap_is_live`, `heap_size_of`, `heap_init`, `heap_check`) over ``(mem, state)``,
  callable from other numba kernels such as the UM interpreter; see `vm32.heap.core`
  for the block layout, invariants and waste bound;
* `Heap`, a Python class that validates arguments, owns the state arrays and turns
  status codes into `vm32.errors` exceptions.

``mem`` is the word memory (a uint32 numpy array indexed by ``addr >> 2`` for flat
memory); the allocator touches it only through `vm32.memory.load_word/store_word`.
``state`` is ONE int64 numpy array: counters, bitmaps and list heads, then the tag
map (one byte per 8-byte granule of the range: live / free / prev-free bits). One array,
not a tuple: taking an array out of a tuple inside a numba loop costs a reference-count
update (~4 ns here), which the UM's per-access `heap_is_live` cannot afford.

Kernel contract (all int64 in and out):
    heap_malloc(mem, state, nbytes) / heap_calloc(...)  -> address, 0 if no room
    heap_free(mem, state, addr)          -> HEAP_OK, HEAP_INVALID_FREE or HEAP_DOUBLE_FREE
    heap_realloc(mem, state, addr, n)    -> address; 0 if no room (block intact);
                                            -HEAP_INVALID_FREE / -HEAP_DOUBLE_FREE if addr is bad
    heap_is_live(state, addr) -> bool    exact, O(1), safe for any int64 addr
    heap_size_of(mem, state, addr)       nbytes of a live block (one load; caller checked liveness)
A freed block <= 256 bytes may sit in a quick cache: not live, DoubleFree if freed again.
The caches are emptied into the free lists before the heap's footprint grows.
"""

from __future__ import annotations

import numpy as np

from vm32.errors import DoubleFree, InvalidArgument, InvalidFree, OutOfMemory
from vm32.heap import core
from vm32.heap.core import (
    ALIGN,
    FREED_MARK,
    HEAP_DOUBLE_FREE,
    HEAP_INVALID_FREE,
    HEAP_OK,
    addr_status,
    heap_calloc,
    heap_check,
    heap_free,
    heap_init,
    heap_is_live,
    heap_largest_free,
    heap_malloc,
    heap_realloc,
    heap_size_of,
)
from vm32.memory import ADDRESS_LIMIT, PhysicalMemory

__all__ = [
    "ALIGN", "FREED_MARK", "HEAP_OK", "HEAP_INVALID_FREE", "HEAP_DOUBLE_FREE", "Heap", "new_state",
    "heap_init", "heap_malloc", "heap_calloc", "heap_free", "heap_realloc", "heap_is_live",
    "heap_size_of", "heap_check", "heap_largest_free",
]

_CHECK_MESSAGES = {
    core.C_TAG_BEYOND_TOP: "granule at {a:#x} above top has tag {v}",
    core.C_BAD_TAG: "block at {a:#x} has tag {v}: not exactly one of live, free, cached (or T_END not free)",
    core.C_BLOCK_OUT_OF_RANGE: "block at {a:#x} of {v} bytes runs past top",
    core.C_BAD_SIZE: "free or cached block at {a:#x} has a bad size {v}",
    core.C_BAD_FOOTER: "free block at {a:#x} has footer {v} != its size",
    core.C_END_MARK: "last granule {a:#x} of a block has tag {v}: T_END must be there iff the block is free",
    core.C_ADJACENT_FREE: "free block at {a:#x} ({v} bytes) follows another free block",
    core.C_FREE_BELOW_TOP: "the block below top ({a:#x}) is free: should have merged into top",
    core.C_INTERIOR_TAG: "granule {a:#x} inside a block has tag {v}",
    core.C_LIVE_BYTES: "live blocks hold {a} bytes but the counter says {v}",
    core.C_LIVE_BLOCKS: "{a} live blocks but the counter says {v}",
    core.C_FREE_BYTES: "free blocks hold {a} bytes but the counter says {v}",
    core.C_FREE_BLOCKS: "{a} free blocks but the counter says {v}",
    core.C_LIST_NOT_FREE: "list {v} holds {a:#x}, which is not a free block in range",
    core.C_LIST_WRONG_CLASS: "block {a:#x} is in list {v} (negative: quick cache -{v}), not the one of its size",
    core.C_LIST_BAD_PREV: "free block {a:#x} has prev link {v:#x}, not its predecessor in the list",
    core.C_LIST_COUNT: "lists hold {a} blocks but the walk found {v} free blocks",
    core.C_BITMAP: "bitmap bit for list {a} (negative: first level -{a}-1) is wrong (bitmap {v})",
    core.C_TOP: "top {a:#x} is outside the range or above the high-water mark {v:#x}",
    core.C_LIST_CYCLE: "lists or caches hold more blocks than the {v} found by the walk (cycle?) at {a:#x}",
    core.C_CACHE_BYTES: "cached blocks hold {a} bytes but the counter says {v}",
    core.C_CACHE_NOT_CACHED: "quick cache {v} holds {a:#x}, which is not a cached block in range",
    core.C_CACHE_COUNT: "quick caches hold {a} blocks but the walk found {v} cached blocks (or the counter differs)",
}


def new_state(base: int, limit: int) -> np.ndarray:
    """A fresh, zeroed int64 state array for a heap over [base, limit) (before heap_init).

    Its tag map takes one byte per 8 bytes of range (512 MiB for 4 GiB); np.zeros gets
    it from the host lazily, so only the part under the heap's footprint is committed.
    """
    return np.zeros(core.state_words(base, limit), dtype=np.int64)


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"{what} must be an integer, not {value!r}")
    return int(value)


class Heap:
    """A heap over the byte range [base, limit) of `memory` (PhysicalMemory or uint32 array).

    base and limit are multiples of 8 with 0 < base, base + 16 <= limit <= memory size.
    Attributes `mem` (the word array) and `state` are what the kernels take.
    `debug=True` fills freed payloads with FREED_MARK (0xDFDFDFDF) words.
    `cache=False` turns off the quick caches (freed blocks <= 256 bytes kept whole for
    reuse by the same size; debug mode turns them off too); `cache_cap` bounds the bytes
    they hold (default: no bound, they never make the footprint grow - see vm32.heap.core).
    """

    def __init__(
        self,
        memory: PhysicalMemory | np.ndarray,
        base: int,
        limit: int,
        *,
        debug: bool = False,
        cache: bool = True,
        cache_cap: int | None = None,
    ):
        words = memory.words if isinstance(memory, PhysicalMemory) else memory
        if not isinstance(words, np.ndarray) or words.dtype != np.uint32 or words.ndim != 1:
            raise InvalidArgument("heap memory must be a PhysicalMemory or a 1-d uint32 numpy array")
        base, limit = _int(base, "heap base"), _int(limit, "heap limit")
        if cache_cap is not None and _int(cache_cap, "cache cap") < 0:
            raise InvalidArgument(f"cache cap {cache_cap} is negative")
        size = 4 * words.shape[0]
        if base % ALIGN or limit % ALIGN:
            raise InvalidArgument(f"heap range {base:#x}..{limit:#x}: base and limit must be multiples of {ALIGN}")
        if not 0 < base or base + 2 * ALIGN > limit or limit > min(size, ADDRESS_LIMIT):
            raise InvalidArgument(
                f"heap range {base:#x}..{limit:#x} must satisfy 0 < base, base + 16 <= limit <= "
                f"memory size {size:#x} (address 0 is never handed out)"
            )
        self.mem = words
        self.base = base
        self.limit = limit
        self.state = new_state(base, limit)
        heap_init(self.mem, self.state, np.int64(base), np.int64(limit))
        self.state[core.M_DEBUG] = int(debug)
        if debug or not cache:
            self.state[core.M_CACHE_CAP] = 0  # debug: cached blocks would escape the fill
        elif cache_cap is not None:
            self.state[core.M_CACHE_CAP] = min(int(cache_cap), core.CACHE_CAP)

    def _size(self, n) -> np.int64:
        n = _int(n, "allocation size")
        if n < 0:
            raise InvalidArgument(f"allocation size {n} is negative")
        return np.int64(min(n, 1 << 40))  # anything above the range fails the same way

    def _no_room(self, n: int) -> OutOfMemory:
        return OutOfMemory(
            f"heap {self.base:#x}..{self.limit:#x} has no room for {n} bytes "
            f"(live {self.live_bytes} bytes, largest free block "
            f"{heap_largest_free(self.mem, self.state)} bytes); free blocks or use a larger range"
        )

    def _addr(self, addr) -> np.int64:
        addr = _int(addr, "heap address")
        return np.int64(addr if -(1 << 63) <= addr < (1 << 63) else -1)

    def _raise_status(self, status: int, addr: int, what: str) -> None:
        if status == HEAP_DOUBLE_FREE:
            raise DoubleFree(f"{what} of {addr:#x}: that block is already free")
        if status != HEAP_OK:
            raise InvalidFree(f"{what} of {addr:#x}: not the address of a live block of this heap")

    def malloc(self, n: int) -> int:
        """Address of a new block of `n` bytes (contents undefined); OutOfMemory if no room."""
        addr = heap_malloc(self.mem, self.state, self._size(n))
        if addr == 0:
            raise self._no_room(n)
        return int(addr)

    def calloc(self, n: int) -> int:
        """Address of a new block of `n` zeroed bytes; OutOfMemory if no room."""
        addr = heap_calloc(self.mem, self.state, self._size(n))
        if addr == 0:
            raise self._no_room(n)
        return int(addr)

    def realloc(self, addr: int, n: int) -> int:
        """Resize block `addr` to `n` bytes keeping its contents; returns the (maybe new) address.

        OutOfMemory (block left intact) if no room; InvalidFree/DoubleFree for a bad address.
        """
        n = self._size(n)
        result = int(heap_realloc(self.mem, self.state, self._addr(addr), n))
        if result < 0:
            self._raise_status(-result, addr, "realloc")
        if result == 0:
            raise self._no_room(int(n))
        return result

    def free(self, addr: int) -> None:
        """Free block `addr`; InvalidFree if it is not a live block, DoubleFree if already free."""
        self._raise_status(int(heap_free(self.mem, self.state, self._addr(addr))), addr, "free")

    def size_of(self, addr: int) -> int:
        """The byte count requested for live block `addr`; InvalidFree/DoubleFree otherwise."""
        a = self._addr(addr)
        self._raise_status(int(addr_status(self.state, a)), addr, "size_of")
        return int(heap_size_of(self.mem, self.state, a))

    def is_live(self, addr: int) -> bool:
        """True iff `addr` is the address of a live block."""
        return bool(heap_is_live(self.state, self._addr(addr)))

    @property
    def live_bytes(self) -> int:
        """Sum of the requested sizes of live blocks."""
        return int(self.state[core.M_LIVE_BYTES])

    def stats(self) -> dict[str, int]:
        """Counters and sizes; footprint = high-water extent of the heap above base, in bytes.

        peak_live_bytes counts requested bytes only (no headers, no alignment).
        largest_free is the largest free block including its 4-byte header (top counted).
        """
        m = self.state
        return {
            "base": self.base,
            "limit": self.limit,
            "live_bytes": int(m[core.M_LIVE_BYTES]),
            "live_blocks": int(m[core.M_MALLOCS] - m[core.M_FREES]),
            "peak_live_bytes": int(m[core.M_PEAK_LIVE]),
            "footprint": int(m[core.M_HIGH] - core.HEADER - self.base),
            "top": int(m[core.M_TOP] - core.HEADER),
            "free_bytes": int(m[core.M_FREE_BYTES]),
            "free_blocks": int(m[core.M_FREE_BLOCKS]),
            "cached_bytes": int(m[core.M_CACHE_BYTES]),
            "cached_blocks": int(core.heap_cached_blocks(self.mem, self.state)),
            "largest_free": int(heap_largest_free(self.mem, self.state)),
            "mallocs": int(m[core.M_MALLOCS]),
            "callocs": int(m[core.M_CALLOCS]),
            "frees": int(m[core.M_FREES]),
            "reallocs": int(m[core.M_REALLOCS]),
            "failed": int(m[core.M_FAILED]),
        }

    def check(self, max_findings: int = 100) -> list[str]:
        """Walk every block and free list; return the broken invariants (empty when healthy)."""
        out = np.zeros((max_findings, 3), dtype=np.int64)
        n = int(heap_check(self.mem, self.state, out))
        found = [_CHECK_MESSAGES[int(c)].format(a=int(a), v=int(v)) for c, a, v in out[: min(n, max_findings)]]
        if n > max_findings:
            found.append(f"... and {n - max_findings} more")
        return found

    def __repr__(self) -> str:
        s = self.stats()
        return (f"Heap({self.base:#x}..{self.limit:#x}, live {s['live_blocks']} blocks / "
                f"{s['live_bytes']} bytes, footprint {s['footprint']})")
