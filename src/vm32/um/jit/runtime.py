"""The JIT's runtime: runs tier 0, compiles hot regions, installs and invalidates them.

`JitDriver` owns a `JitSpace` (vm32.um.jit.space) and calls tier 0
(vm32.um.kernel.um_run_tiered) until it returns a status the UM driver must see; in
between it acts on the JIT's own statuses:

    JIT_HOT       form the region entered at the hot pc (front end) and write its IR
                  (back end); reuse machine code compiled for the same words, or hand the
                  IR to the worker thread (engine), which compiles it while tier 0 goes on
    JIT_STALE     a store changed compiled code: drop every region holding that word (a
                  region still compiling is dropped when it is done)
    JIT_NEW_CODE  segment 0 was replaced: drop every region (their code stays in the
                  cache: when the same words come back, they are reused, not recompiled)

and after every call it installs the regions the worker has finished: entries, and
nothing else, since their words were marked compiled when their compile began.

Invariants (between calls of tier 0):
    bitmap[w] != 0  <=>  coverage[w] > 0  <=>  a live or compiling region holds word w
    entries[pc] != 0  =>  entries[pc] is the address of a live region with a block at pc
    a live region stores without a check only into words no live region holds
A region whose words keep changing is recompiled after exponentially more entries
each time, and not at all after MAX_INVALIDATIONS: such code runs in the interpreter.

Code that keeps being replaced (COLD_AFTER short-lived segment 0s in a row: see
REGION_SECONDS) runs *cold*:
flat's own interpreter (vm32.um.kernel.um_run) on the same memory and heap, which counts
nothing, goes on through load programs without returning, and compiles nothing, so such
a program runs at flat's speed.  Flat's map and unmap do not keep the segment table; it
is rebuilt from the heap when a segment 0 has lived LONG_LIVED instructions and tier 0
takes over again (or the debugger steps on the space).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vm32.memory import PhysicalMemory
from vm32.um import status as S
from vm32.um.flat import CODE, FlatSpace
from vm32.um.jit import abi
from vm32.um.jit.abi import JX_HOT, JX_STALE
from vm32.um.jit.frontend import MAX_REGION_WORDS, Region, form_region, segment_registers
from vm32.um.jit.space import JitSpace, new_jit_space, new_tables, rebuild_segment_table, set_tables
from vm32.um.kernel import ST_ICOUNT, ST_LOADPROGS, ST_PC, um_run, um_run_tiered

THRESHOLD = 20_000
"""Entries of a jump target in tier 0 that make it hot.  Compiling a word costs about as
much as interpreting it a hundred thousand times, so only code that runs that much pays."""
FOLLOW_SHIFT = 4
"""A region follows a jump target entered at least THRESHOLD >> FOLLOW_SHIFT times."""
PAYOFF = 1e9
"""Instructions the regions compiled for one segment 0 must run per second of their compile
time to pay for it (compiled code saves about a nanosecond per instruction)."""
MAX_BACKOFF = 16
"""The threshold doubles each time a segment 0's regions did not pay for themselves (when
a load program replaces it), up to 2**MAX_BACKOFF times THRESHOLD, and halves back each
time they did."""
LONG_LIVED = 1 << 24
"""Instructions after which a segment 0 counts as long-lived: the threshold halves back
(one step of the backoff) for every LONG_LIVED instructions it runs."""
REGION_SECONDS = 0.005
"""About the least compile time of a region: a segment 0 replaced before it ran PAYOFF times
as many instructions (a short-lived one) could not have paid for one."""
COLD_AFTER = 2
"""Short-lived segment 0s replaced in a row after which the driver runs cold (flat's
interpreter, nothing counted or compiled) until a segment 0 lives LONG_LIVED instructions."""
MAX_INVALIDATIONS = 12
"""Invalidations of regions entered at one pc after which that pc is never compiled again."""
CACHE_REGIONS = 512
"""Compiled regions kept for reuse after they were dropped (least recently used go first)."""
BACKGROUND = True
"""Compile on the worker thread while tier 0 goes on (False: wait for each region; tests
that must run compiled code from the first hot target use it)."""
PENDING_SLICE = 1 << 20
"""Instructions per call of tier 0 while regions compile (how soon a finished one is installed)."""
NEVER = -(1 << 62)
"""An entry that never counts down to 0: a target being compiled, or never to be."""
PERF_MAP = bool(os.environ.get("VM32_JIT_PERF_MAP"))
"""Append each compiled region to /tmp/perf-PID.map, where `perf report` finds JIT code names."""


STATS = ("jit_regions", "jit_words", "jit_compile_seconds", "jit_invalidations", "jit_instructions", "jit_calls")
"""The JIT's counters in the machine's stats (and --stats), besides interp_instructions."""


def interpreter_only_stats() -> dict:
    """The JIT's counters of a jit run that compiles nothing (an option that must see
    every instruction keeps it in the interpreter tier)."""
    return dict(zip(STATS, (0, 0, 0.0, 0, 0, 0)))


@dataclass
class Compiled:
    """A region's machine code and what the driver knows of it."""

    key: tuple
    region: Region
    ir: str
    unchecked: frozenset[int]  # words of segment 0 it stores into without a check
    words: np.ndarray  # the pcs of its words
    code: object = None  # engine.CompiledRegion, once compiled
    future: object = None  # while compiling
    generation: int = 0  # the segment 0 it was compiled for
    stale: bool = False  # its words changed while it compiled
    ran_before: int = 0  # instructions run at its entries before it was installed


class JitDriver:
    """Runs a UM program on the jit backend: tier 0 and compiled regions over one JitSpace."""

    def __init__(self, words: np.ndarray, memory: PhysicalMemory, st: np.ndarray, outbuf: np.ndarray,
                 *, threshold: int | None = None, compile: bool = True, background: bool | None = None,
                 max_words: int = MAX_REGION_WORDS):
        """A jit space over `memory` holding program `words`; `st` and `outbuf` are the
        machine's state and output buffer (compiled code writes them).  With
        `compile=False` everything runs in tier 0 (the interpreter); with
        `background=False` regions compile before tier 0 goes on (a deterministic run).
        `threshold` and `background` default to THRESHOLD and BACKGROUND (read at each
        call: tests change them)."""
        self.jx = abi.new_context()
        self.space, self.heap = new_jit_space(words, memory, self.jx)
        self.flat_space = FlatSpace(self.space.mem, self.space.heap, self.space.meta)  # running cold
        self.memory = memory
        self.st = st
        self.compile_enabled = compile
        self.background = BACKGROUND if background is None else background
        self.max_words = max_words
        self.jx[abi.JX_OUT] = outbuf.ctypes.data
        self.jx[abi.JX_OUT_CAP] = outbuf.shape[0]
        self.threshold = THRESHOLD if threshold is None else threshold
        self.backoff = 0  # the threshold in force is threshold << backoff (see PAYOFF)
        self.after = self.threshold  # entries that make a target hot, from the next fill on
        self.spent = 0.0  # compile seconds for this segment 0 (and what finished after its end)
        self.earned = 0  # instructions run by this segment 0's regions that were dropped
        self.lived = 0  # instruction count when this segment 0 (or its last backoff step) began
        self.loaded = 0  # instruction count when this segment 0 began
        self.short_lived = 0  # short-lived segment 0s replaced in a row (see REGION_SECONDS)
        self.cold = False  # running flat's interpreter: the segment table is not kept
        self.quiet = 0  # instructions run cold since a load program was last seen
        self._set_tables(self.space.bitmap.shape[0])
        self.live: dict[int, Compiled] = {}  # region id -> region
        self.cache: OrderedDict[tuple, Compiled] = OrderedDict()
        self.pending: list[Compiled] = []
        self.unchecked: dict[int, set[int]] = {}  # word -> live regions storing into it unchecked
        self.invalidated: dict[int, int] = {}  # entry pc -> invalidations of its regions
        self.generation = 0
        self._serial = 0
        self.compiled_regions = 0
        self.compiled_words = 0
        self.compile_seconds = 0.0
        self.invalidations = 0

    # -- running ---------------------------------------------------------------------

    def run_slice(self, regs: np.ndarray, st: np.ndarray, inbuf: np.ndarray, outbuf: np.ndarray,
                  budget: int) -> int:
        """Run about `budget` instructions (um_run's contract); return um_run's status."""
        start = int(st[ST_ICOUNT])
        while True:
            left = budget - (int(st[ST_ICOUNT]) - start)
            if left <= 0:
                return S.BUDGET
            if self.cold:
                return self._run_cold(regs, st, inbuf, outbuf, left)
            if self.pending:
                left = min(left, PENDING_SLICE)
            status = um_run_tiered(self.space, regs, st, inbuf, outbuf, left)
            if self.pending:
                self._install_finished()
            if self.backoff and int(st[ST_ICOUNT]) - self.lived >= LONG_LIVED:
                self._relax(int(st[ST_ICOUNT]))
            if status == S.JIT_HOT:
                self._hot(int(self.jx[JX_HOT]), regs)
            elif status in (S.JIT_STALE, S.JIT_NEW_CODE):
                self.settle(status, int(st[ST_ICOUNT]))
                self.cold = self.short_lived >= COLD_AFTER and self.compile_enabled
                self.quiet = 0
            elif status != S.BUDGET or int(st[ST_ICOUNT]) - start >= budget:
                return status

    def settle(self, status: int, icount: int) -> None:
        """Act on JIT_STALE (a store changed compiled code) or JIT_NEW_CODE (segment 0 was
        replaced; `icount` instructions have run), as returned by tier 0 or by the debugger's
        kernel (vm32.um.debug), which stops at both on this backend for this reason."""
        if status == S.JIT_STALE:
            word = int(self.jx[JX_STALE]) - 1
            self.jx[JX_STALE] = 0
            self._stale(word)
        else:
            self._new_code(icount)

    def _run_cold(self, regs: np.ndarray, st: np.ndarray, inbuf: np.ndarray, outbuf: np.ndarray,
                  budget: int) -> int:
        """Run about `budget` instructions with flat's interpreter (see the module docstring);
        go back to tier 0 once segment 0 has not been replaced for LONG_LIVED instructions."""
        loads, start = int(st[ST_LOADPROGS]), int(st[ST_ICOUNT])
        status = um_run(self.flat_space, regs, st, inbuf, outbuf, budget)
        if self.pending:
            self._install_finished()  # regions of earlier segment 0s: cached, not installed
        if int(st[ST_LOADPROGS]) != loads:
            self.quiet = 0
        else:
            self.quiet += int(st[ST_ICOUNT]) - start
            if self.quiet >= LONG_LIVED:
                self.warm()
        return status

    def warm(self) -> None:
        """Leave cold running, if the driver runs cold: rebuild the segment table, and give
        tier 0 fresh tables for the segment 0 in place (it may have been replaced meanwhile)."""
        if not self.cold:
            return
        rebuild_segment_table(self.space)
        self.cold = False
        self._new_code(int(self.st[ST_ICOUNT]))
        self.short_lived = 0

    def stats(self) -> dict:
        """The JIT's counters, by their --stats names (STATS)."""
        return dict(zip(STATS, (self.compiled_regions, self.compiled_words, self.compile_seconds, self.invalidations,
                                int(self.jx[abi.JX_JIT_ICOUNT]), int(self.jx[abi.JX_CALLS]))))

    def close(self) -> None:
        """Release every region's machine code (the driver must not run again)."""
        regions = {id(r): r for r in [*self.live.values(), *self.cache.values(), *self.pending]}
        if not regions:
            return  # nothing compiled: the engine (LLVM, the helpers) is never loaded
        from vm32.um.jit.engine import worker

        for r in regions.values():
            if r.code is not None:
                worker().release(r.code)
            elif r.future is not None:
                r.future.add_done_callback(lambda f: worker().release(f.result()) if not f.exception() else None)
        self.live.clear()
        self.cache.clear()
        self.pending.clear()

    # -- segment 0 and the tables ------------------------------------------------------

    def code_words(self) -> np.ndarray:
        """The current words of segment 0 (a view)."""
        base = int(self.space.meta[CODE])
        return self.memory.words[base >> 2: (base >> 2) + (self.heap.size_of(base) >> 2)]

    def _set_tables(self, words: int) -> None:
        """Give the space empty tables for a segment 0 of `words` words (reused when big enough)."""
        space = self.space
        if space.bitmap.shape[0] >= words:
            space.bitmap[:] = 0
            space.ran[:] = 0
        else:
            self.space = JitSpace(space.mem, space.heap, space.meta, space.segwords, *new_tables(words), self.jx)
            set_tables(self.space)
        self.space.entries[:] = -self.after  # every target counts down from the threshold
        self.coverage = np.zeros(self.space.bitmap.shape[0], np.int32)
        self.owner = np.zeros(self.space.bitmap.shape[0], np.int64)  # region id at each entry

    def _new_code(self, icount: int) -> None:
        """Segment 0 was replaced: no region is live any more, none compiling will be."""
        lived, self.loaded = icount - self.loaded, icount
        self.short_lived = self.short_lived + 1 if lived < PAYOFF * REGION_SECONDS else 0
        for rid in list(self.live):
            self._drop(rid)
        self._judge()
        self.lived = icount
        self.generation += 1
        self._set_tables(self.code_words().shape[0])
        self.invalidated.clear()

    # -- compiling -----------------------------------------------------------------------

    def _hot(self, pc: int, regs: np.ndarray) -> None:
        """Install the region entered at the hot jump target `pc`: reuse its machine code,
        or start compiling it (and wait, without `background`)."""
        entries = self.space.entries
        if not self.compile_enabled:
            entries[pc] = NEVER
            return
        code = self.code_words()
        warm = max(1, self.after >> FOLLOW_SHIFT) - self.after  # entered THRESHOLD >> FOLLOW_SHIFT times
        region = form_region(code, code.shape[0], pc,
                             lambda t: entries[t] >= warm or NEVER < entries[t] < -self.after,
                             self.max_words, lambda t: entries[t] > 0 or entries[t] <= NEVER)
        region.assume_zero = frozenset(r for r in segment_registers(region, code) if regs[r] == 0)
        key = (region.assume_zero, code.shape[0], tuple((s, e, code[s:e].tobytes()) for s, e in region.spans()))
        cached = self.cache.get(key)
        if cached is not None and not any(self.coverage[w] for w in cached.unchecked):
            self.cache.move_to_end(key)
            self._install(cached)
            return
        job = self._start(region, code, key)
        starts = np.fromiter(region.blocks, np.int64)
        starts = starts[entries[starts] <= 0]
        entries[starts] = NEVER  # no other region for them meanwhile
        if not self.background:
            job.future.result()
            self._install_finished()

    def _start(self, region: Region, code: np.ndarray, key: tuple) -> Compiled:
        """Write `region`'s IR and hand it to the worker; its words count as compiled from now."""
        from vm32.um.jit.codegen import RegionCompiler
        from vm32.um.jit.engine import worker
        from vm32.um.jit.flatmem import FlatMemory

        name = "vm32_region"
        memory = FlatMemory(self.space.segwords.shape[0], code.shape[0])
        compiler = RegionCompiler(region, code, memory, name, compiled=lambda w: self.coverage[w] != 0)
        ir = compiler.module()
        words = np.concatenate([np.arange(s, e) for s, e in region.spans()])
        job = Compiled(key, region, ir, frozenset(compiler.unchecked), words, generation=self.generation)
        self._cover(words, 1)
        job.future = worker().submit("compile", ir, name)
        self.pending.append(job)
        return job

    def _install_finished(self) -> None:
        """Install the regions the worker has finished, unless their words changed meanwhile."""
        for job in [j for j in self.pending if j.future.done()]:
            self.pending.remove(job)
            job.code = job.future.result()  # an LLVM error is a bug: let it show
            job.future = None
            self.compile_seconds += job.code.seconds
            if job.generation == self.generation:
                self.spent += job.code.seconds
            self.compiled_regions += 1
            self.compiled_words += job.region.words
            if PERF_MAP:
                with open(f"/tmp/perf-{os.getpid()}.map", "a") as perf_map:
                    perf_map.write(f"{job.code.address:x} {job.code.size:x} um_region_{job.region.entry}\n")
            self._keep(job)  # its machine code is right for its words, whenever they come back
            if job.generation != self.generation:
                continue  # segment 0 was replaced, and the tables with it
            if job.stale:  # its words changed: its other blocks count again, its entry backs off
                self._cover(job.words, -1)
                self._count_again(job, keep=job.region.entry)
                continue
            self._cover(job.words, -1)
            self._count_again(job)
            if not any(self.coverage[w] for w in job.unchecked):  # else compile it again when hot
                self._install(job)

    def _count_again(self, job: Compiled, keep: int | None = None) -> None:
        """The blocks of `job` (still compiling till now) count towards the threshold again
        (all but `keep`, whose count backs off)."""
        starts = np.fromiter(job.region.blocks, np.int64)
        starts = starts[(self.space.entries[starts] == NEVER) & (starts != (-1 if keep is None else keep))]
        self.space.entries[starts] = -self.after

    def _keep(self, job: Compiled) -> None:
        """Put `job` in the cache of compiled regions; release what falls out of it."""
        self.cache[job.key] = job
        while len(self.cache) > CACHE_REGIONS:
            _, old = self.cache.popitem(last=False)
            if all(old is not r for r in self.live.values()):
                self._release(old)

    def _release(self, job: Compiled) -> None:
        """Unload `job`'s machine code (it is neither live nor cached)."""
        from vm32.um.jit.engine import worker

        if job.code is not None:
            worker().release(job.code)
            job.code = None

    def _cover(self, words: np.ndarray, delta: int) -> None:
        """Count `words` in (delta 1) or out of (-1) the compiled words; keep the bitmap."""
        self.coverage[words] += delta
        self.space.bitmap[words] = self.coverage[words] > 0

    def _install(self, job: Compiled) -> None:
        """Make compiled region `job` live: its words compiled, its blocks entries."""
        for w in {int(w) for w in job.words} & self.unchecked.keys():  # their stores went unchecked
            for rid in list(self.unchecked.get(w, ())):
                self._drop(rid)
        self._serial += 1
        rid = self._serial
        self.live[rid] = job
        job.ran_before = self._ran(job)
        self._cover(job.words, 1)
        starts = np.fromiter(job.region.blocks, np.int64)
        self.space.entries[starts] = job.code.address
        self.owner[starts] = rid
        for w in job.unchecked:
            self.unchecked.setdefault(w, set()).add(rid)

    def _drop(self, rid: int) -> None:
        """Make region `rid` not live: its entries and words go back to tier 0."""
        job = self.live.pop(rid)
        self.earned += self._ran(job) - job.ran_before
        self._cover(job.words, -1)
        starts = np.fromiter(job.region.blocks, np.int64)
        mine = starts[self.owner[starts] == rid]
        self.space.entries[mine] = -self.after
        self.owner[mine] = 0
        for w in job.unchecked:
            regions = self.unchecked.get(w)
            if regions is not None:
                regions.discard(rid)
                if not regions:
                    del self.unchecked[w]
        if self.cache.get(job.key) is not job:
            self._release(job)

    def _ran(self, job: Compiled) -> int:
        """Instructions run so far by region calls entered at `job`'s blocks."""
        return int(self.space.ran[np.fromiter(job.region.blocks, np.int64)].sum())

    def _relax(self, icount: int) -> None:
        """Segment 0 has lived long: halve the threshold, and every count still running."""
        self.backoff -= 1
        self.after = self.threshold << self.backoff
        self.lived = icount
        entries = self.space.entries
        counting = (entries <= 0) & (entries > NEVER)
        entries[counting] >>= 1  # (an arithmetic shift: -5 becomes -3)

    def _judge(self) -> None:
        """Segment 0 is being replaced: if its regions did not earn their compile time (or
        some were still compiling), its hot code did not last, so wait for hotter code
        (double the threshold); if they did, come back towards THRESHOLD."""
        wasted = any(job.generation == self.generation for job in self.pending)  # never ran at all
        if self.spent > 0 or wasted:
            if wasted or self.earned < PAYOFF * self.spent:
                self.backoff = min(self.backoff + 1, MAX_BACKOFF)
            else:
                self.backoff = max(self.backoff - 1, 0)
            self.after = self.threshold << self.backoff
        self.spent, self.earned = 0.0, 0

    def _stale(self, word: int) -> None:
        """A store changed `word` of segment 0, which compiled code holds: drop those regions
        (and those still compiling), and back off from compiling their entries again."""
        for rid, job in list(self.live.items()):
            if job.region.holds(word):
                self._drop(rid)
                self._back_off(job.region.entry)
        for job in self.pending:
            if not job.stale and job.region.holds(word):
                job.stale = True
                self._back_off(job.region.entry)

    def _back_off(self, pc: int) -> None:
        """Regions entered at `pc` were invalidated once more: compile there only after
        2**n times the threshold entries (n invalidations), or never after MAX_INVALIDATIONS."""
        self.invalidations += 1
        n = self.invalidated.get(pc, 0) + 1
        self.invalidated[pc] = n
        self.space.entries[pc] = NEVER if n >= MAX_INVALIDATIONS else -(self.after << n)
