"""vm32's 32-bit heap allocators: malloc/calloc/realloc/free over an address range of word memory.

Several policies behind one interface (`vm32.heap.policies.POLICIES`, one module each):
tlsf (the default: `vm32.heap.core`), first, best, worst, next (an explicit free list:
`vm32.heap.freelist`), recycler, buddy.  Two faces:

* compiled kernels with the same names in every policy module (`heap_malloc`,
  `heap_calloc`, `heap_free`, `heap_realloc`, `heap_is_live`, `heap_size_of`,
  `heap_check`, `heap_stats`, ...) over ``(mem, state)``, callable from other numba kernels
  such as the UM interpreter.  The names exported here are tlsf's, the default's; a
  compiled caller reaches another policy's as ``policy_module(name).heap_malloc``.  See
  vm32.heap.policies for the contract and each module for its layout and invariants;
* `Heap`, a Python class that validates arguments, owns the state array and turns
  status codes into `vm32.errors` exceptions.

``mem`` is the word memory (a uint32 numpy array indexed by ``addr >> 2`` for flat
memory); an allocator touches it only through `vm32.memory.load_word/store_word`.
``state`` is ONE int64 numpy array: counters, list heads, then the tag map (one byte
per 8-byte granule of the range). One array, not a tuple: taking an array out of a tuple
inside a numba loop costs a reference-count update (~4 ns here), which the UM's
per-access `heap_is_live` cannot afford.

Kernel contract (all int64 in and out):
    heap_malloc(mem, state, nbytes) / heap_calloc(...)  -> address, 0 if no room
    heap_free(mem, state, addr)          -> HEAP_OK, HEAP_INVALID_FREE or HEAP_DOUBLE_FREE
    heap_realloc(mem, state, addr, n)    -> address; 0 if no room (block intact);
                                            -HEAP_INVALID_FREE / -HEAP_DOUBLE_FREE if addr is bad
    heap_is_live(state, addr) -> bool    exact, O(1), safe for any int64 addr
    heap_size_of(mem, state, addr)       nbytes of a live block (caller checked liveness)
tlsf: a freed block <= 256 bytes may sit in a quick cache: not live, DoubleFree if freed
again.  The caches are emptied into the free lists before the heap's footprint grows.
"""

from __future__ import annotations

import bisect

import numpy as np

from vm32.errors import DoubleFree, HeapCorruption, InvalidArgument, InvalidFree, OutOfMemory
from vm32.heap import core
from vm32.heap import debug as dbgheap
from vm32.heap.base import STAT_COUNT, STAT_FIELDS
from vm32.heap.core import (
    ALIGN,
    FREED_MARK,
    HEAP_DOUBLE_FREE,
    HEAP_INVALID_FREE,
    HEAP_OK,
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
from vm32.heap.dispatch import heap_ref
from vm32.heap.policies import DEFAULT, POLICIES, policy_module
from vm32.memory import ADDRESS_LIMIT, PhysicalMemory

__all__ = [
    "ALIGN", "FREED_MARK", "HEAP_OK", "HEAP_INVALID_FREE", "HEAP_DOUBLE_FREE", "Heap", "new_state",
    "heap_init", "heap_malloc", "heap_calloc", "heap_free", "heap_realloc", "heap_is_live",
    "heap_size_of", "heap_check", "heap_largest_free", "POLICIES", "policy_module",
    "describe_findings",
]

def describe_findings(out: np.ndarray, n: int, messages: dict = core.CHECK_MESSAGES) -> list[str]:
    """The findings that a heap_check wrote to `out` (it returned `n`) as sentences in its
    policy's wording (`messages`: its CHECK_MESSAGES, tlsf's by default); one more line
    says how many did not fit in `out`."""
    found = [messages[int(c)].format(a=int(a), v=int(v)) for c, a, v in out[: min(n, len(out))]]
    if n > len(out):
        found.append(f"... and {n - len(out)} more")
    return found


def new_state(base: int, limit: int) -> np.ndarray:
    """A tlsf state over [base, limit) with its default parameters, ready for heap_init."""
    return core.new_state(base, limit)


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"{what} must be an integer, not {value!r}")
    return int(value)


class FreedBlocks:
    """Addresses of blocks freed and not handed out again, so that a second free of one is a
    DoubleFree whatever became of its memory since (merged into a free neighbour, given back
    to the top of the heap): the allocator's own tags only know block starts that still exist."""

    REACH = 64  # a new block's header may cover this many bytes below its address

    def __init__(self):
        self._addrs: list[int] = []  # sorted

    def freed(self, addr: int) -> None:
        """Block `addr` was freed."""
        i = bisect.bisect_left(self._addrs, addr)
        if i == len(self._addrs) or self._addrs[i] != addr:
            self._addrs.insert(i, addr)

    def handed_out(self, addr: int, n: int) -> None:
        """A block of `n` bytes at `addr` was handed out: freed addresses it covers are live memory."""
        lo = bisect.bisect_left(self._addrs, addr - self.REACH)
        hi = bisect.bisect_left(self._addrs, addr + max(n, 1))
        del self._addrs[lo:hi]

    def __contains__(self, addr: int) -> bool:
        i = bisect.bisect_left(self._addrs, addr)
        return i < len(self._addrs) and self._addrs[i] == addr


class Heap:
    """A heap over the byte range [base, limit) of `memory` (PhysicalMemory or uint32 array).

    base and limit are multiples of 8 with 0 < base, base + 16 <= limit <= memory size.
    `policy` names the allocator (vm32.heap.policies.POLICIES; default tlsf); `params` are
    that policy's own (its module's PARAMS: tlsf takes cache and cache_cap, the list
    policies first/best/worst/next take header, align, order and coalesce).
    Attributes `mem` (the word array) and `state` are what the kernels take; `kernels` is
    the policy's module.

    `debug=True` makes it a debugging heap (vm32.heap.debug): red zones around every block,
    checked at free (HeapCorruption if one was overwritten) and by check(); freed blocks
    filled with FREED_MARK (0xDFDFDFDF) words and kept in a quarantine, so that a write after
    free is caught (HeapCorruption) when the block leaves it, or by check(); `leaks()` lists
    the live blocks.  The policy (which fills what it frees too; tlsf without its quick
    caches) holds each block with its zones.
    """

    def __init__(
        self,
        memory: PhysicalMemory | np.ndarray,
        base: int,
        limit: int,
        *,
        policy: str = DEFAULT,
        debug: bool = False,
        **params,
    ):
        module = policy_module(policy)
        unknown = sorted(set(params) - set(module.PARAMS))
        if unknown:
            takes = ", ".join(module.PARAMS) or "no parameters"
            raise InvalidArgument(f"heap policy {policy} does not take {', '.join(unknown)} (it takes {takes})")
        if not isinstance(debug, bool):
            raise InvalidArgument(f"debug must be True or False, not {debug!r}")
        words = memory.words if isinstance(memory, PhysicalMemory) else memory
        if not isinstance(words, np.ndarray) or words.dtype != np.uint32 or words.ndim != 1:
            raise InvalidArgument("heap memory must be a PhysicalMemory or a 1-d uint32 numpy array")
        base, limit = _int(base, "heap base"), _int(limit, "heap limit")
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
        self.policy = module.NAME
        self.kernels = module
        self.state = module.new_state(base, limit, debug=debug, **params)
        module.heap_init(words, self.state, np.int64(base), np.int64(limit))
        self.dbg = dbgheap.new_debug_state() if debug else None
        self._carrier = heap_ref(module.NAME, words, self.state)
        self._reported = 0  # findings of the debug log already raised
        self._freed = FreedBlocks()

    def _size(self, n) -> np.int64:
        n = _int(n, "allocation size")
        if n < 0:
            raise InvalidArgument(f"allocation size {n} is negative")
        return np.int64(min(n, 1 << 40))  # anything above the range fails the same way

    def _no_room(self, n: int) -> OutOfMemory:
        return OutOfMemory(
            f"heap {self.base:#x}..{self.limit:#x} ({self.policy}) has no room for {n} bytes "
            f"(live {self.live_bytes} bytes, largest free block "
            f"{self.kernels.heap_largest_free(self.mem, self.state)} bytes); free blocks or use a larger range"
        )

    def _addr(self, addr) -> np.int64:
        addr = _int(addr, "heap address")
        return np.int64(addr if -(1 << 63) <= addr < (1 << 63) else -1)

    def _raise_status(self, status: int, addr: int, what: str) -> None:
        if status == HEAP_DOUBLE_FREE or (status != HEAP_OK and addr in self._freed):
            raise DoubleFree(f"{what} of {addr:#x}: that block is already free")
        if status != HEAP_OK:
            raise InvalidFree(f"{what} of {addr:#x}: not the address of a live block of this heap")

    def _report(self) -> None:
        """Raise HeapCorruption for the debug log's findings not raised yet."""
        if self.dbg is not None and int(self.dbg[dbgheap.D_NFIND]) > self._reported:
            found = dbgheap.findings(self.dbg, self._reported)
            self._reported = int(self.dbg[dbgheap.D_NFIND])
            raise HeapCorruption("; ".join(found))

    def malloc(self, n: int) -> int:
        """Address of a new block of `n` bytes (contents undefined); OutOfMemory if no room."""
        if self.dbg is not None:
            addr = dbgheap.dbg_malloc(self._carrier, self.dbg, self._size(n), dbgheap.SITE_NONE)
            self._report()  # (blocks that left the quarantine to make room were checked)
        else:
            addr = self.kernels.heap_malloc(self.mem, self.state, self._size(n))
        if addr == 0:
            raise self._no_room(n)
        self._freed.handed_out(int(addr), int(n))
        return int(addr)

    def calloc(self, n: int) -> int:
        """Address of a new block of `n` zeroed bytes; OutOfMemory if no room."""
        if self.dbg is not None:
            addr = dbgheap.dbg_calloc(self._carrier, self.dbg, self._size(n), dbgheap.SITE_NONE)
            self._report()
        else:
            addr = self.kernels.heap_calloc(self.mem, self.state, self._size(n))
        if addr == 0:
            raise self._no_room(n)
        self._freed.handed_out(int(addr), int(n))
        return int(addr)

    def realloc(self, addr: int, n: int) -> int:
        """Resize block `addr` to `n` bytes keeping its contents; returns the (maybe new) address.

        OutOfMemory (block left intact) if no room; InvalidFree/DoubleFree for a bad address.
        `addr` 0 allocates, as C's realloc(NULL, n) does.
        """
        if _int(addr, "heap address") == 0:
            return self.malloc(n)
        n = self._size(n)
        if self.dbg is not None:
            return self._debug_realloc(addr, int(n))
        result = int(self.kernels.heap_realloc(self.mem, self.state, self._addr(addr), n))
        if result < 0:
            self._raise_status(-result, addr, "realloc")
        if result == 0:
            raise self._no_room(int(n))
        if result != addr:
            self._freed.freed(int(addr))
        self._freed.handed_out(result, int(n))
        return result

    def _debug_realloc(self, addr: int, n: int) -> int:
        """realloc on the debugging heap: always a new block (the old one goes to the quarantine)."""
        old = self.size_of(addr)
        new = self.malloc(n)
        keep = (min(old, n) + 3) >> 2
        self.mem[new >> 2 : (new >> 2) + keep] = self.mem[addr >> 2 : (addr >> 2) + keep]
        self.free(addr)
        return new

    def free(self, addr: int) -> None:
        """Free block `addr`; InvalidFree if it is not a live block, DoubleFree if already free.

        Debugging heap: HeapCorruption (after the free) if a red zone of the block was
        overwritten, or if a block that left the quarantine was written after its free.
        """
        if self.dbg is not None:
            status = int(dbgheap.dbg_free(self._carrier, self.dbg, self._addr(addr)))
            if status == HEAP_DOUBLE_FREE:
                self._reported = int(self.dbg[dbgheap.D_NFIND])  # the DoubleFree says it
            self._raise_status(status, addr, "free")
            self._report()
            return
        self._raise_status(int(self.kernels.heap_free(self.mem, self.state, self._addr(addr))), addr, "free")
        self._freed.freed(int(addr))

    def size_of(self, addr: int) -> int:
        """The byte count requested for live block `addr`; InvalidFree/DoubleFree otherwise."""
        a = self._addr(addr)
        if self.dbg is not None:
            if not dbgheap.dbg_is_live(self._carrier, self.dbg, a):
                self._raise_status(HEAP_DOUBLE_FREE if self._quarantined(a) else HEAP_INVALID_FREE, addr, "size_of")
            return int(dbgheap.dbg_size_of(self._carrier, self.dbg, a))
        self._raise_status(int(self.kernels.heap_addr_status(self.state, a)), addr, "size_of")
        return int(self.kernels.heap_size_of(self.mem, self.state, a))

    def _quarantined(self, a) -> bool:
        p = int(a) - dbgheap.LEFT
        return p > 0 and self._policy_live(p) and int(self.mem[(int(a) - 8) >> 2]) == dbgheap.QUARANTINED

    def _policy_live(self, p: int) -> bool:
        """True iff `p` is the address of a live block of the policy (debugging heap: with its
        zones, so also while quarantined)."""
        return bool(self.kernels.heap_is_live(self.state, self._addr(p)))

    def is_live(self, addr: int) -> bool:
        """True iff `addr` is the address of a live block."""
        if self.dbg is not None:
            return bool(dbgheap.dbg_is_live(self._carrier, self.dbg, self._addr(addr)))
        return bool(self.kernels.heap_is_live(self.state, self._addr(addr)))

    @property
    def live_bytes(self) -> int:
        """Sum of the requested sizes of live blocks."""
        if self.dbg is not None:
            return int(self.dbg[dbgheap.D_LIVE_BYTES])
        return int(self.state[core.M_LIVE_BYTES])

    def leaks(self) -> list[dict[str, int]]:
        """Debugging heap: the live blocks as {addr, nbytes, site} (site: dbgheap.SITE_NONE for
        blocks Heap allocated, a UM pc for a UM program's segments), newest first."""
        if self.dbg is None:
            raise InvalidArgument("leaks() needs a debugging heap: Heap(..., debug=True)")
        return debug_leaks(self._carrier, self.dbg)

    def stats(self) -> dict[str, int | str]:
        """Counters and sizes (the same keys for every policy, plus a few of the policy's own).

        footprint: high-water extent of the blocks above base, in bytes; peak_live_bytes
        counts requested bytes only (no headers, no alignment); hole_bytes / largest_hole:
        free space inside the footprint and its largest piece; free_list_len: blocks on the
        free lists and caches; largest_free: the largest block one malloc could get now
        (header included; the unused range above the footprint counted); searched: free
        blocks examined by the list policies' searches.
        """
        out = np.zeros(STAT_COUNT, dtype=np.int64)
        self.kernels.heap_stats(self.mem, self.state, out)
        s: dict[str, int | str] = {"policy": self.policy, "base": self.base, "limit": self.limit}
        s.update({name: int(v) for name, v in zip(STAT_FIELDS, out)})
        s["largest_free"] = int(self.kernels.heap_largest_free(self.mem, self.state))
        s.update(_policy_stats(self))
        if self.dbg is not None:  # the user's blocks, not the policy's (which hold zones and the quarantine)
            d = self.dbg
            s.update(live_bytes=int(d[dbgheap.D_LIVE_BYTES]), live_blocks=int(d[dbgheap.D_LIVE]),
                     peak_live_bytes=int(d[dbgheap.D_PEAK_LIVE]), quarantined_blocks=int(d[dbgheap.D_Q_COUNT]),
                     quarantined_bytes=int(d[dbgheap.D_Q_BYTES]))
        return s

    def check(self, max_findings: int = 100) -> list[str]:
        """Walk every block and free list; return the broken invariants (empty when healthy)."""
        out = np.zeros((max_findings, 3), dtype=np.int64)
        n = int(self.kernels.heap_check(self.mem, self.state, out))
        found = describe_findings(out, n, self.kernels.CHECK_MESSAGES)
        if self.dbg is not None and not found:  # the user's blocks, once the policy's are sound
            rows = np.zeros((max_findings, 4), dtype=np.int64)
            k = int(dbgheap.dbg_scan(self._carrier, self.dbg, rows))
            found += [dbgheap.finding_text(*(int(v) for v in row)) for row in rows[: min(k, max_findings)]]
        return found

    def __repr__(self) -> str:
        s = self.stats()
        return (f"Heap({self.base:#x}..{self.limit:#x}, {self.policy}, live {s['live_blocks']} blocks / "
                f"{s['live_bytes']} bytes, footprint {s['footprint']})")


def _policy_stats(heap: Heap) -> dict[str, int]:
    """The stats keys only some policies have: tlsf's top, free lists and caches, sharded's
    pages, the free lists' blocks and bytes of the others."""
    m = heap.state
    if heap.policy == "tlsf":
        return {
            "top": int(m[core.M_TOP] - core.HEADER),
            "free_bytes": int(m[core.M_FREE_BYTES]),
            "free_blocks": int(m[core.M_FREE_BLOCKS]),
            "cached_bytes": int(m[core.M_CACHE_BYTES]),
            "cached_blocks": int(core.heap_cached_blocks(heap.mem, m)),
        }
    module = heap.kernels
    if heap.policy == "sharded":
        return {"pages": int(m[module.M_PAGES]), "arena_bytes": int(m[module.M_ARENA_TOP] - m[module.M_ARENA_LOW])}
    if hasattr(module, "SEARCH"):
        from vm32.heap import freelist

        return {"free_bytes": int(m[freelist.M_FREE_BYTES]), "free_blocks": int(m[freelist.M_COUNT]),
                "lost_blocks": int(m[freelist.M_LOST])}
    return {"free_bytes": int(m[module.M_FREE_BYTES]), "free_blocks": int(m[module.M_FREE_BLOCKS])}


def debug_leaks(carrier, dbg: np.ndarray) -> list[dict[str, int]]:
    """The live blocks of a debugging heap as {addr, nbytes, site} rows, newest first."""
    n = int(dbg[dbgheap.D_LIVE])
    rows = np.zeros((n + 1, 3), dtype=np.int64)
    k = min(int(dbgheap.dbg_leaks(carrier, dbg, rows)), n + 1)
    return [{"addr": int(a), "nbytes": int(b), "site": int(c)} for a, b, c in rows[:k]]
