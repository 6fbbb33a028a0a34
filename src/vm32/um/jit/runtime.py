"""The JIT's runtime: runs tier 0, compiles hot regions, installs and invalidates them.

`JitDriver` owns a `JitSpace` (vm32.um.jit.space) and calls tier 0
(vm32.um.kernel.um_run_tiered) until it returns a status the UM driver must see; in
between it acts on the JIT's own statuses:

    JIT_HOT       form the region entered at the hot pc (front end), reuse compiled
                  code for the same words or compile it (back end, engine), install it:
                  entries, compiled-word bitmap
    JIT_STALE     a store changed compiled code: drop every region holding that word
    JIT_NEW_CODE  segment 0 was replaced: drop every region (their code stays in the
                  cache: when the same words come back, they are reused, not recompiled)

Invariants (between calls of tier 0):
    bitmap[w] != 0  <=>  coverage[w] > 0  <=>  some live region holds word w
    entries[pc] != 0  =>  entries[pc] is the address of a live region with a block at pc
    a live region stores without a check only into words no live region holds
A region whose words keep changing is recompiled after exponentially more entries
each time (`BACKOFF`), and not at all after `MAX_INVALIDATIONS`: such code runs in
the interpreter.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from vm32.memory import PhysicalMemory
from vm32.um import status as S
from vm32.um.flat import CODE
from vm32.um.jit import abi
from vm32.um.jit.abi import JX_STALE, JX_THRESHOLD
from vm32.um.jit.frontend import MAX_REGION_WORDS, Region, form_region, segment_registers
from vm32.um.jit.space import JitSpace, new_jit_space, new_tables
from vm32.um.kernel import ST_ICOUNT, ST_PC, um_run_tiered

THRESHOLD = 1000
"""Entries of a jump target in tier 0 that make it hot."""
MAX_INVALIDATIONS = 12
"""Invalidations of regions entered at one pc after which that pc is never compiled again."""
CACHE_REGIONS = 512
"""Compiled regions kept for reuse after they were dropped (least recently used go first)."""
NEVER = -(1 << 31)
"""A count that never reaches the threshold."""


@dataclass
class LiveRegion:
    """A compiled region and what the driver knows of it."""

    key: tuple
    region: Region
    compiled: object  # engine.CompiledRegion
    ir: str
    unchecked: frozenset[int]
    words: np.ndarray = field(default=None)  # the pcs of its words


class JitDriver:
    """Runs a UM program on the jit backend: tier 0 and compiled regions over one JitSpace."""

    def __init__(self, words: np.ndarray, memory: PhysicalMemory, st: np.ndarray, outbuf: np.ndarray,
                 *, threshold: int | None = None, compile: bool = True, max_words: int = MAX_REGION_WORDS):
        """A jit space over `memory` holding program `words`; `st` and `outbuf` are the
        machine's state and output buffer (compiled code writes them).  With
        `compile=False` everything runs in tier 0 (the interpreter).  `threshold`
        defaults to THRESHOLD (read at each call: tests lower it)."""
        self.jx = abi.new_context()
        self.space, self.heap = new_jit_space(words, memory, self.jx)
        self.memory = memory
        self.compile_enabled = compile
        self.max_words = max_words
        jx = self.jx
        jx[abi.JX_MEM] = memory.words.ctypes.data
        jx[abi.JX_MEM_WORDS] = memory.words.shape[0]
        jx[abi.JX_HEAP] = self.space.heap.ctypes.data
        jx[abi.JX_HEAP_WORDS] = self.space.heap.shape[0]
        jx[abi.JX_META] = self.space.meta.ctypes.data
        jx[abi.JX_OUT] = outbuf.ctypes.data
        jx[abi.JX_OUT_CAP] = outbuf.shape[0]
        jx[JX_THRESHOLD] = THRESHOLD if threshold is None else threshold
        self._set_tables(self.space.bitmap.shape[0])
        self.live: dict[int, LiveRegion] = {}  # region id -> region
        self.cache: OrderedDict[tuple, LiveRegion] = OrderedDict()
        self.unchecked: dict[int, set[int]] = {}  # word -> live regions storing into it unchecked
        self.invalidated: dict[int, int] = {}  # entry pc -> invalidations of its regions
        self._serial = 0
        self.compiled_regions = 0
        self.compiled_words = 0
        self.compile_seconds = 0.0
        self.invalidations = 0
        self._engine = None

    # -- running ---------------------------------------------------------------------

    def run_slice(self, regs: np.ndarray, st: np.ndarray, inbuf: np.ndarray, outbuf: np.ndarray,
                  budget: int) -> int:
        """Run about `budget` instructions (um_run's contract); return um_run's status."""
        start = int(st[ST_ICOUNT])
        while True:
            left = budget - (int(st[ST_ICOUNT]) - start)
            if left <= 0:
                return S.BUDGET
            status = um_run_tiered(self.space, regs, st, inbuf, outbuf, left)
            if status == S.JIT_HOT:
                self._hot(int(st[ST_PC]), regs)
            elif status == S.JIT_STALE:
                word = int(self.jx[JX_STALE]) - 1
                self.jx[JX_STALE] = 0
                self._stale(word)
            elif status == S.JIT_NEW_CODE:
                self._new_code()
            else:
                return status

    def stats(self) -> dict:
        """The JIT's counters, by their --stats names."""
        jit = int(self.jx[abi.JX_JIT_ICOUNT])
        return {
            "jit_regions": self.compiled_regions,
            "jit_words": self.compiled_words,
            "jit_compile_seconds": self.compile_seconds,
            "jit_invalidations": self.invalidations,
            "jit_instructions": jit,
            "jit_calls": int(self.jx[abi.JX_CALLS]),
        }

    # -- segment 0 and the tables ------------------------------------------------------

    def code_words(self) -> np.ndarray:
        """The current words of segment 0 (a view)."""
        base = int(self.space.meta[CODE])
        return self.memory.words[base >> 2: (base >> 2) + (self.heap.size_of(base) >> 2)]

    def _set_tables(self, words: int) -> None:
        """Give the space empty tables for a segment 0 of `words` words (reused when big enough)."""
        if self.space.bitmap.shape[0] >= words:
            self.space.bitmap[:] = 0
            self.space.entries[:] = 0
            self.space.counts[:] = 0
        else:
            self.space = JitSpace(self.space.mem, self.space.heap, self.space.meta, *new_tables(words), self.jx)
        self.jx[abi.JX_BITMAP] = self.space.bitmap.ctypes.data
        self.coverage = np.zeros(self.space.bitmap.shape[0], np.int32)
        self.owner = np.zeros(self.space.bitmap.shape[0], np.int64)  # region id at each entry

    def _new_code(self) -> None:
        """Segment 0 was replaced: no region is live any more."""
        for rid in list(self.live):
            self._drop(rid)
        self._set_tables(self.code_words().shape[0])
        self.invalidated.clear()

    # -- compiling -----------------------------------------------------------------------

    def _hot(self, pc: int, regs: np.ndarray) -> None:
        """Compile (or reuse) and install the region entered at the hot jump target `pc`."""
        counts = self.space.counts
        if not self.compile_enabled:
            counts[pc] = NEVER
            return
        code = self.code_words()
        entries = self.space.entries
        region = form_region(code, code.shape[0], pc, lambda t: counts[t] != 0, self.max_words,
                             lambda t: entries[t] != 0)
        region.assume_zero = frozenset(r for r in segment_registers(region, code) if regs[r] == 0)
        key = (region.assume_zero, code.shape[0],
               tuple((s, e, code[s:e].tobytes()) for s, e in region.spans()))
        entry = self.cache.pop(key, None)
        if entry is not None and any(self.coverage[w] for w in entry.unchecked):
            entry = None  # it stores unchecked into words that are compiled code now
        if entry is None:
            entry = self._compile(region, code, key)
        self.cache[key] = entry
        while len(self.cache) > CACHE_REGIONS:
            self.cache.popitem(last=False)
        self._install(entry)

    def _compile(self, region: Region, code: np.ndarray, key: tuple) -> LiveRegion:
        """Compile `region` of segment 0's words `code`."""
        from vm32.um.jit.codegen import RegionCompiler
        from vm32.um.jit.engine import engine
        from vm32.um.jit.flatmem import FlatMemory

        start = time.perf_counter()
        name = "vm32_region"
        heap = self.space.heap
        memory = FlatMemory(int(heap[0]), int(heap[2]), code.shape[0])  # M_BASE, M_SPAN
        compiler = RegionCompiler(region, code, memory, name, compiled=lambda w: self.space.bitmap[w] != 0)
        ir = compiler.module()
        compiled = engine().compile(ir, name)
        self.compile_seconds += time.perf_counter() - start
        self.compiled_regions += 1
        self.compiled_words += region.words
        words = np.concatenate([np.arange(s, e) for s, e in region.spans()])
        return LiveRegion(key, region, compiled, ir, frozenset(compiler.unchecked), words)

    def _install(self, entry: LiveRegion) -> None:
        """Make `entry` live: its words compiled, its blocks entries."""
        words = entry.words
        for w in {int(w) for w in words} & self.unchecked.keys():  # their stores went unchecked
            for rid in list(self.unchecked.get(w, ())):
                self._drop(rid)
        self._serial += 1
        rid = self._serial
        self.live[rid] = entry
        self.coverage[words] += 1
        self.space.bitmap[words] = 1
        starts = np.fromiter(entry.region.blocks, np.int64)
        self.space.entries[starts] = entry.compiled.address
        self.owner[starts] = rid
        for w in entry.unchecked:
            self.unchecked.setdefault(w, set()).add(rid)

    def _drop(self, rid: int) -> None:
        """Make region `rid` not live: its entries and words go back to tier 0."""
        entry = self.live.pop(rid)
        words = entry.words
        self.coverage[words] -= 1
        self.space.bitmap[words] = self.coverage[words] > 0
        starts = np.fromiter(entry.region.blocks, np.int64)
        mine = starts[self.owner[starts] == rid]
        self.space.entries[mine] = 0
        self.owner[mine] = 0
        for w in entry.unchecked:
            regions = self.unchecked.get(w)
            if regions is not None:
                regions.discard(rid)
                if not regions:
                    del self.unchecked[w]

    def _stale(self, word: int) -> None:
        """A store changed `word` of segment 0, which compiled code holds: drop those regions."""
        for rid, entry in list(self.live.items()):
            if entry.region.holds(word):
                self._drop(rid)
                self.cache.pop(entry.key, None)
                self.invalidations += 1
                pc = entry.region.entry
                n = self.invalidated.get(pc, 0) + 1
                self.invalidated[pc] = n
                threshold = int(self.jx[JX_THRESHOLD])
                self.space.counts[pc] = NEVER if n >= MAX_INVALIDATIONS else threshold - (threshold << n)
