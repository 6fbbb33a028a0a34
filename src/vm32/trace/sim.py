"""Trace replay through the kernel's own page tables, TLB and replacement policies.

    simulate(trace, policy="clock", frames=64, tlb=1024) -> SimResult

The simulated machine has no data: ``frames`` frames hold the trace's pages
(frames 0..N-1: the policies look at exactly those), and the page directory
and page tables are extra frames after them, installed up front for every
4 MiB chunk the trace touches, pinned and not counted (so the classic 3- and
4-frame examples work).  Physical memory is only the tables' words; the data
frames are frame numbers in PTEs and frame-table rows, never touched.

Every reference goes the way of a user-mode access on a CPU of the kernel:

    TLB lookup (vm32.mmu.tlb) -> on a miss, the MMU walk (vm32.mmu.walk: sets
    Accessed, and Dirty on a write) and a TLB fill -> on a not-present entry, a
    page fault: a free frame, or the policy's victim, unmapped (its PTE made
    not present, its TLB entry invalidated; a write-back counted if Dirty);
    then the page is mapped (pte_make) and the access completes.

The policy sees its usual calls: on_map after a fault, choose_victim when no
frame is free, and, if it wants to see every access (LRU), on_access on each
TLB hit and walk.  A policy reads the Accessed/Dirty bits of its pages through
the PTEs, as in the live kernel, and clearing Accessed drops the TLB entry.

Counters (`SimResult`): references, misses (page faults), cold misses (the
first reference to a page: its PTE was never made present before), write-backs
(evictions of Dirty pages), TLB hits.
"""

from __future__ import annotations

import time
import types
from dataclasses import asdict, dataclass

import numba
import numpy as np

from vm32.errors import InvalidArgument
from vm32.jit import kernel
from vm32.kernel.layout import C_CR3, C_PID, CPU_STRIDE, FF_PINNED, FF_TABLE, FREE, FT_COLS, FT_FLAGS, FT_META
from vm32.kernel.layout import FT_OWNER, FT_PTE, FT_SLOT, FT_VPN
from vm32.kernel.policies import (
    BUILTIN,
    load_policy,
    make_dispatchers,
    make_policy_state,
    policy_choose_victim,
    policy_on_access,
    policy_on_fault,
    policy_on_map,
)
from vm32.kernel.policies.base import KEY_VPN_BITS, POL_NEXT, POL_SHARED
from vm32.mmu.entry import (
    PAGE_SHIFT, PAGE_SIZE, PAGE_WORDS, PTE_A, PTE_D, PTE_SWAPPED, PTE_U, PTE_W, pte_make, pte_pfn,
)
from vm32.mmu.tlb import tlb_fill, tlb_invalidate, tlb_lookup, tlb_need
from vm32.mmu.walk import mmu_walk, pde_install, pt_walk
from vm32.trace.fold import CHUNK_SHIFT, FIRST_PLACE
from vm32.trace.future import next_uses
from vm32.trace.readers import Trace

MAX_FRAMES = 1 << 20  # frame numbers are 20 bits (a PTE's frame field)
PID = 0  # the one process whose address space holds the trace
CPU = 0

# counters: c[K_*]
K_MISSES, K_COLD, K_WRITEBACKS, K_TLB_HITS, K_USED = 0, 1, 2, 3, 4  # K_USED: frames handed out
K_SIZE = 8

# explain events: ev[i, E_*] for reference i
E_TLB = 0  # 1 TLB hit, 0 miss (walked), -1 no TLB (walked)
E_FAULT = 1  # 1 if the reference faulted
E_FRAME = 2  # the frame that holds the page after the reference
E_VICTIM = 3  # frame whose page was evicted (-1: a free frame was used)
E_VICTIM_VPN = 4
E_WRITEBACK = 5  # 1 if the victim was Dirty
E_COLS = 6


@dataclass
class SimResult:
    """The figures of one replay: one policy, one frame count."""

    policy: str
    frames: int
    refs: int
    misses: int
    cold_misses: int
    miss_ratio: float
    writebacks: int | None  # None: not measured (LRU curves from stack distances)
    tlb_hit_rate: float | None
    refs_per_s: float
    tlb: int = 0
    seconds: float = 0.0

    @property
    def hits(self) -> int:
        """References that found their page in memory."""
        return self.refs - self.misses

    def as_dict(self) -> dict:
        """The fields of ``--json`` and ``--csv``, in their order."""
        d = asdict(self)
        return {k: d[k] for k in FIELDS}


FIELDS = ("policy", "frames", "refs", "misses", "cold_misses", "miss_ratio", "writebacks", "tlb_hit_rate", "refs_per_s")


@kernel
def fault_in(words, ft, pol, tlb, cpus, c, ev, i, vpn, pte_pa, write, nframes, accessed):
    """Serve the page fault of reference i to page `vpn` (PTE at `pte_pa`): a free frame
    or the policy's victim (unmapped, its TLB entry dropped, a write-back counted if
    Dirty), then the page mapped, Accessed set if `accessed`; returns the frame, or -1
    if every frame is pinned."""
    old = np.int64(words[pte_pa >> 2])
    c[K_MISSES] += 1
    if old == 0:
        c[K_COLD] += 1
    policy_on_fault(ft, pol, (PID << KEY_VPN_BITS) | vpn)
    used = c[K_USED]
    if used < nframes:
        f = used
        c[K_USED] = used + 1
        if ev.shape[0]:
            ev[i, E_VICTIM] = -1
    else:
        f = policy_choose_victim(words, ft, pol, tlb, cpus, CPU)
        if f < 0:
            return -1
        gone = np.int64(words[ft[f, FT_PTE] >> 2])
        dirty = 1 if gone & PTE_D else 0
        c[K_WRITEBACKS] += dirty
        words[ft[f, FT_PTE] >> 2] = np.uint32(PTE_SWAPPED | PTE_W | PTE_U)  # "was here": not cold again
        if tlb.shape[1]:
            tlb_invalidate(tlb, CPU, ft[f, FT_VPN])
        if ev.shape[0]:
            ev[i, E_VICTIM] = f
            ev[i, E_VICTIM_VPN] = ft[f, FT_VPN]
            ev[i, E_WRITEBACK] = dirty
    ft[f, FT_OWNER] = PID
    ft[f, FT_VPN] = vpn
    ft[f, FT_FLAGS] = 0
    ft[f, FT_SLOT] = -1
    ft[f, FT_PTE] = pte_pa
    ft[f, FT_META] = 0
    policy_on_map(ft, pol, f)
    flags = PTE_W | PTE_U | (PTE_A if accessed else 0) | (PTE_D if write else 0)
    words[pte_pa >> 2] = np.uint32(pte_make(f, flags))
    return f


@kernel
def replay(vpns, writes, future, words, ft, pol, tlb, cpus, pgdir, nframes, track, accessed, c, ev):
    """Replay references ``vpns[i]`` (a write if ``writes[i]``) on the simulated machine.

    The policy's declarations come in as flags: `track` (SEES_EVERY_ACCESS: on_access
    on every access), `accessed` (ACCESSED_ON_LOAD); ``future[i]`` (empty unless the
    policy NEEDS_FUTURE) is the next use of reference i's page.  ``tlb.shape[1] == 0``:
    no TLB, every access walks.  Counts into c[K_*]; fills ev[i] when ``ev`` has rows.
    Returns the number of references replayed (fewer only if every frame was pinned).
    """
    use_tlb = tlb.shape[1] > 0
    explain = ev.shape[0] > 0
    future_known = future.shape[0] > 0
    hits = 0
    for i in range(vpns.shape[0]):
        vpn = np.int64(vpns[i])
        w = np.int64(writes[i])
        va = vpn << PAGE_SHIFT
        if future_known:
            pol[POL_NEXT] = future[i]
        if use_tlb:
            pa = tlb_lookup(tlb, CPU, va, tlb_need(w, 1))
            if pa >= 0:
                hits += 1
                if track:
                    policy_on_access(ft, pol, pa >> PAGE_SHIFT)
                if explain:
                    ev[i, E_TLB] = 1
                    ev[i, E_FRAME] = pa >> PAGE_SHIFT
                continue
        pte = mmu_walk(words, pgdir, va, w, 1)
        if pte < 0:  # not present: the page fault
            f = fault_in(words, ft, pol, tlb, cpus, c, ev, i, vpn, pt_walk(words, pgdir, va), w, nframes, accessed)
            if f < 0:
                c[K_TLB_HITS] += hits
                return i
            if explain:
                ev[i, E_FAULT] = 1
            if not accessed:  # the fault completes the access: no walk, no fill, Accessed stays clear
                if explain:
                    ev[i, E_TLB] = 0 if use_tlb else -1
                    ev[i, E_FRAME] = f
                continue
            pte = mmu_walk(words, pgdir, va, w, 1)
        elif track:
            policy_on_access(ft, pol, pte_pfn(pte))
        if use_tlb:
            tlb_fill(tlb, CPU, va, pte)
        if explain:
            ev[i, E_TLB] = 0 if use_tlb else -1
            ev[i, E_FRAME] = pte_pfn(pte)
    c[K_TLB_HITS] += hits
    return vpns.shape[0]


_REPLAYS: dict = {}  # id(policy) -> (policy, its replay kernel), for policies not built in


def replay_kernel(policy):
    """The compiled replay loop for `policy`: `replay` itself (cached on disk) for a built-in
    policy; for another, the same code compiled again (once per process) with dispatchers
    of that policy alone."""
    if policy in BUILTIN:
        return replay
    if id(policy) not in _REPLAYS:
        hooks = make_dispatchers((policy,))  # its pol[POL_KIND] is its own ID
        fault = _rejit(fault_in, hooks)
        _REPLAYS[id(policy)] = (policy, _rejit(replay, {**hooks, "fault_in": fault}))
    return _REPLAYS[id(policy)][1]


def _rejit(dispatcher, names: dict):
    """`dispatcher`'s Python function compiled anew with some of its globals replaced."""
    fn = dispatcher.py_func
    glob = {**fn.__globals__, **names}
    return numba.njit(nogil=True)(types.FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__, fn.__closure__))


class SimMachine:
    """The arrays of a simulated machine for one policy and frame count (see the module
    docstring): tables for the trace's chunks, a frame table, a TLB, one CPU."""

    def __init__(self, trace: Trace, policy: str, frames: int, tlb: int, seed: int = 1):
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
            raise InvalidArgument(f"frames must be an integer >= 1, not {frames!r}")
        if frames > MAX_FRAMES:
            raise InvalidArgument(f"frames={frames} exceeds the {MAX_FRAMES} frames of a 32-bit machine")
        if isinstance(tlb, bool) or not isinstance(tlb, (int, np.integer)) or tlb < 0 or (tlb & (tlb - 1)):
            raise InvalidArgument(f"tlb must be 0 (no TLB) or a power of two (it is direct-mapped), not {tlb!r}")
        self.module = load_policy(policy)
        self.kind = int(self.module.ID)
        self.policy = self.module.NAME
        self.frames = int(frames)
        places = int(np.max(trace.vpns) >> CHUNK_SHIFT) - FIRST_PLACE + 1
        self.pgdir_frame = self.frames
        total = self.frames + 1 + places
        self.words = np.zeros(total * PAGE_WORDS, dtype=np.uint32)
        self.ft = np.zeros((total, FT_COLS), dtype=np.int64)
        self.ft[:, FT_OWNER] = FREE
        self.ft[:, FT_PTE] = -1
        self.ft[self.frames:, FT_OWNER] = PID
        self.ft[self.frames:, FT_FLAGS] = FF_PINNED | FF_TABLE
        pgdir = self.pgdir_frame * PAGE_SIZE
        for k in range(places):
            va = (FIRST_PLACE + k) << (CHUNK_SHIFT + PAGE_SHIFT)
            pde_install(self.words, pgdir, va, self.frames + 1 + k, PTE_W | PTE_U)
        self.pgdir = pgdir
        self.pol = make_policy_state(self.kind, self.frames, seed)
        self.pol[POL_SHARED] = 0  # one CPU: the policy's hooks need no lock
        self.tlb = np.zeros((1, tlb), dtype=np.int64)
        self.cpus = np.zeros(CPU_STRIDE, dtype=np.int64)
        self.cpus[C_PID] = PID
        self.cpus[C_CR3] = pgdir
        self.counters = np.zeros(K_SIZE, dtype=np.int64)

    def run(self, trace: Trace, events: np.ndarray | None = None) -> int:
        """Replay the whole trace (events: an (refs, E_COLS) array to fill for --explain)."""
        ev = np.zeros((0, E_COLS), dtype=np.int64) if events is None else events
        future = trace_future(trace) if self.module.NEEDS_FUTURE else _NO_FUTURE
        return replay_kernel(self.module)(trace.vpns, trace.writes, future, self.words, self.ft, self.pol, self.tlb,
                                          self.cpus, self.pgdir, self.frames, bool(self.module.SEES_EVERY_ACCESS),
                                          bool(self.module.ACCESSED_ON_LOAD), self.counters, ev)


_NO_FUTURE = np.zeros(0, dtype=np.int64)


def trace_future(trace: Trace) -> np.ndarray:
    """The next use of each reference's page (computed once per trace, kept in its meta)."""
    if "next_uses" not in trace.meta:
        trace.meta["next_uses"] = next_uses(trace.vpns)
    return trace.meta["next_uses"]


def simulate(trace: Trace, policy: str = "clock", frames: int = 64, tlb: int = 1024, seed: int = 1) -> SimResult:
    """Replay `trace` with `policy` on `frames` frames and a TLB of `tlb` entries (0: none)."""
    m = SimMachine(trace, policy, frames, tlb, seed)
    t0 = time.perf_counter()
    m.run(trace)
    seconds = time.perf_counter() - t0
    return result_of(m, trace, seconds)


def result_of(m: SimMachine, trace: Trace, seconds: float) -> SimResult:
    """The SimResult of machine `m` after replaying `trace` in `seconds`."""
    c = m.counters
    refs = trace.refs
    return SimResult(
        policy=m.policy, frames=m.frames, refs=refs, misses=int(c[K_MISSES]), cold_misses=int(c[K_COLD]),
        miss_ratio=float(c[K_MISSES]) / refs, writebacks=int(c[K_WRITEBACKS]),
        tlb_hit_rate=float(c[K_TLB_HITS]) / refs if m.tlb.shape[1] else None,
        refs_per_s=refs / seconds if seconds > 0 else 0.0, tlb=int(m.tlb.shape[1]), seconds=seconds)


def explain_events(trace: Trace, policy: str, frames: int, tlb: int, seed: int = 1):
    """Replay `trace` recording every reference: (the SimResult, the events ev[i, E_*], the
    policy module), for ``--explain``."""
    m = SimMachine(trace, policy, frames, tlb, seed)
    ev = np.zeros((trace.refs, E_COLS), dtype=np.int64)
    m.run(trace, ev)
    return result_of(m, trace, 0.0), ev, m.module
