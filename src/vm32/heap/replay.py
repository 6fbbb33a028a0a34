"""Replay allocation traces through the heap policies and measure them.

A trace is an event array (vm32.heap.alloctrace's format: event i >= 0 allocates that
many 32-bit words as handle i, event i < 0 frees handle -event - 1).  `replay` runs one
through one policy in a compiled loop (vm32.heap.dispatch: the policy's kernels inlined)
over a fresh heap in a 4 GiB memory, and returns its figures:

    ns_per_op        wall time of the compiled loop per event
    footprint_bytes  the heap's high-water extent; peak_live_bytes: the most bytes
                     requested by live blocks at once; footprint_ratio = their quotient
    internal_frag    bytes in live blocks beyond the bytes requested, over the bytes
                     requested, at the peak of requested bytes
    external_frag    1 - largest free block / all free bytes, inside the footprint, at the end
    largest_free     that largest free block (bytes); free_list_len: blocks on the free
                     lists and caches at the end

Before the timed loop the events are renamed to *slots* (`compact_events`): a freed
handle's slot is reused, as the UM reuses segment ids, so the table of addresses is as
long as the most blocks live at once, not as the trace.

Built-in traces: `mix_trace` (sizes log-uniform over 1..65535 words, alloc or free of a
random live block 50/50: the figures' "mix") and `tiny_trace` (1..19-word blocks, mostly
freed soon after).  The sandmark trace is a recording of a UM program (vm32.um.recording).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from vm32.heap import Heap
from vm32.heap.base import STAT_COUNT, STAT_FIELDS
from vm32.heap.dispatch import heap_ref, pol_block_bytes, pol_free, pol_malloc
from vm32.jit import kernel, leaf_kernel
from vm32.memory import PhysicalMemory

BASE = 4096  # the heap starts above page 0, as the UM's flat backend's does
CHUNK = 1 << 22  # events per call of the compiled loop (progress is reported between calls)
CHECK_LIMIT = 1 << 28  # check() walks the heap only when its footprint is below this
FIELDS = ("policy", "trace", "ops", "ns_per_op", "footprint_bytes", "peak_live_bytes", "footprint_ratio",
          "internal_frag", "external_frag", "largest_free", "free_list_len")
"""The fields of a replay's figures, in `--json`'s order (`replay` adds failed, check, seconds)."""


@kernel
def compact_events(ev, out):
    """Rewrite handle-based events as slot-based ones (out[i]); returns the number of slots.

        out[i] = slot << 32 | nwords   allocate nwords words into slot
        out[i] = -slot - 1             free the block in slot
    """
    slot_of = np.empty(ev.shape[0], np.int64)
    free_slots = np.empty(ev.shape[0] + 1, np.int64)
    nfree = 0
    nslots = 0
    for i in range(ev.shape[0]):
        e = np.int64(ev[i])
        if e >= 0:
            if nfree > 0:
                nfree -= 1
                s = free_slots[nfree]
            else:
                s = nslots
                nslots += 1
            slot_of[i] = s
            out[i] = (s << 32) | e
        else:
            s = slot_of[-e - 1]
            out[i] = -s - 1
            free_slots[nfree] = s
            nfree += 1
    return nslots


@leaf_kernel
def replay_slots(c, ev, addrs):
    """Replay slot-based events `ev` on carrier `c`; returns the failed operations."""
    failed = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        if e >= 0:
            a = pol_malloc(c, (e & 0xFFFFFFFF) * 4)
            addrs[e >> 32] = a
            failed += a == 0
        else:
            failed += pol_free(c, addrs[-e - 1]) != 0
    return failed


@leaf_kernel
def replay_handles(c, ev, out):
    """Replay handle-based events on carrier `c`: out[i] = the address event i allocated (0
    if it failed, or for a free).  Returns the failed operations."""
    failed = 0
    for i in range(ev.shape[0]):
        e = np.int64(ev[i])
        if e >= 0:
            out[i] = pol_malloc(c, 4 * e)
            failed += out[i] == 0
        else:
            failed += pol_free(c, out[-e - 1]) != 0
            out[i] = 0
    return failed


def addresses(events: np.ndarray, policy: str, memory: PhysicalMemory) -> np.ndarray:
    """The address each event of `events` allocated through `policy` on a fresh heap (0 for frees)."""
    heap = Heap(memory, BASE, memory.size, policy=policy)
    out = np.zeros(events.shape[0], dtype=np.int64)
    replay_handles(heap_ref(heap.policy, heap.mem, heap.state), events, out)
    return out


@leaf_kernel
def bytes_at_peak(c, ev):
    """(peak requested bytes, live block bytes at that moment) of handle-based events `ev`,
    block sizes by carrier `c`'s policy (no allocator runs)."""
    requested = np.int64(0)
    blocks = np.int64(0)
    peak = np.int64(0)
    at_peak = np.int64(0)
    for i in range(ev.shape[0]):
        e = np.int64(ev[i])
        if e >= 0:
            requested += 4 * e
            blocks += pol_block_bytes(c, 4 * e)
            if requested > peak:
                peak = requested
                at_peak = blocks
        else:
            n = 4 * np.int64(ev[-e - 1])
            requested -= n
            blocks -= pol_block_bytes(c, n)
    return peak, at_peak


@kernel
def mix_events(words, coin, pick):
    """Events of the mix: allocate words[i] if coin[i] (or nothing is live), else free the
    live block number (pick[i] * live) >> 32 (swap-remove from the live list)."""
    ops = words.shape[0]
    ev = np.empty(ops, np.int32)
    live = np.empty(ops, np.int64)
    n = 0
    for i in range(ops):
        if coin[i] or n == 0:
            ev[i] = words[i]
            live[n] = i
            n += 1
        else:
            j = (pick[i] * n) >> 32
            ev[i] = -live[j] - 1
            n -= 1
            live[j] = live[n]
    return ev


def mix_trace(ops: int = 10_000_000, seed: int = 1) -> np.ndarray:
    """The mix: `ops` events, sizes log-uniform over 1..65535 words, alloc or free 50/50."""
    rng = np.random.default_rng(seed)
    words = np.exp(rng.uniform(0, np.log(65536), ops)).astype(np.int64).clip(1, 65535)
    coin = rng.random(ops) < 0.5
    pick = rng.integers(0, 1 << 32, ops, dtype=np.int64)
    return mix_events(words, coin, pick)


@kernel
def tiny_events(sizes, u, back):
    """Events of the tiny trace: allocate sizes[i] words, or (u[i] < 0.5, something live)
    free the live block `back[i]` places from the most recent one (clipped)."""
    ops = sizes.shape[0]
    ev = np.empty(ops, np.int32)
    live = np.empty(ops, np.int64)
    n = 0
    for i in range(ops):
        if n > 0 and u[i] < 0.5:
            k = n - 1 - min(back[i], n - 1)
            ev[i] = -live[k] - 1
            n -= 1
            live[k] = live[n]
        else:
            ev[i] = sizes[i]
            live[n] = i
            n += 1
    return ev


def tiny_trace(ops: int = 2_000_000, seed: int = 1) -> np.ndarray:
    """A sandmark-like trace: 1..19-word blocks, most freed soon after, a few long-lived."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.geometric(0.25, ops), 19).astype(np.int64)
    return tiny_events(sizes, rng.random(ops), rng.geometric(0.3, ops).astype(np.int64) - 1)


def replay(events: np.ndarray, policy: str, trace: str, memory: PhysicalMemory, *,
           slots: tuple[np.ndarray, int] | None = None,
           on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Replay `events` through `policy` on a fresh heap over `memory`; return its figures.

    `slots`: the result of `slot_events(events)`, when several policies replay one trace.
    `on_progress(done, total)` is called between compiled chunks.
    """
    ev, nslots = slots if slots is not None else slot_events(events)
    heap = Heap(memory, BASE, memory.size, policy=policy)
    carrier = heap_ref(heap.policy, heap.mem, heap.state)
    addrs = np.zeros(max(nslots, 1), dtype=np.int64)
    replay_slots(carrier, ev[:0], addrs)  # compile (or load) outside the timing
    seconds = 0.0
    failed = 0
    for start in range(0, ev.shape[0], CHUNK):
        stop = min(start + CHUNK, ev.shape[0])
        t = time.perf_counter()
        failed += int(replay_slots(carrier, ev[start:stop], addrs))
        seconds += time.perf_counter() - t
        if on_progress is not None:
            on_progress(stop, ev.shape[0])
    return figures(heap, events, trace, seconds, failed)


def slot_events(events: np.ndarray) -> tuple[np.ndarray, int]:
    """(slot-based events, number of slots) of handle-based `events` (see compact_events)."""
    out = np.empty(events.shape[0], dtype=np.int64)
    return out, int(compact_events(events, out))


def figures(heap: Heap, events: np.ndarray, trace: str, seconds: float, failed: int) -> dict:
    """The figures of a finished replay (see the module docstring)."""
    out = np.zeros(STAT_COUNT, dtype=np.int64)
    heap.kernels.heap_stats(heap.mem, heap.state, out)
    s = dict(zip(STAT_FIELDS, (int(v) for v in out)))
    peak, blocks = bytes_at_peak(heap_ref(heap.policy, heap.mem, heap.state), events)
    ops = max(int(events.shape[0]), 1)
    problems = heap.check(5) if s["footprint"] < CHECK_LIMIT else None
    return {
        "policy": heap.policy,
        "trace": trace,
        "ops": int(events.shape[0]),
        "ns_per_op": 1e9 * seconds / ops,
        "footprint_bytes": s["footprint"],
        "peak_live_bytes": s["peak_live_bytes"],
        "footprint_ratio": s["footprint"] / max(s["peak_live_bytes"], 1),
        "internal_frag": (int(blocks) - int(peak)) / max(int(peak), 1),
        "external_frag": 1 - s["largest_hole"] / s["hole_bytes"] if s["hole_bytes"] else 0.0,
        "largest_free": s["largest_hole"],
        "free_list_len": s["free_list_len"],
        "failed": failed,
        "check": "skipped" if problems is None else ("ok" if not problems else problems[0]),
        "seconds": seconds,
    }
