"""Pictures of a replay: where every block lived over time, and footprint against live bytes.

`heap_picture` replays a trace through a policy once more (untimed) and paints each block
into a raster as it is freed: time (operation number) across, address up, the block's
size class as the value (0: free or unused).  It also samples the footprint and the
requested live bytes.  vm32.ui.heap draws the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vm32.heap import Heap
from vm32.heap.base import M_LIVE_BYTES, S_FOOTPRINT, STAT_COUNT
from vm32.heap.dispatch import heap_ref, pol_block_bytes, pol_free, pol_malloc, pol_stats
from vm32.heap.replay import BASE
from vm32.jit import leaf_kernel

CLASS_EDGES = np.array([0, 16, 64, 256, 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 40], dtype=np.int64)
"""Block sizes (bytes) that bound the colour classes: class k holds sizes in [edge k-1, edge k)."""


@dataclass
class HeapPicture:
    """A heap map (raster[address bin, time bin] = size class, 0 free) and sampled series."""

    policy: str
    trace: str
    ops: int
    low: int  # the address of raster row 0
    high: int  # one past the address of the last row
    raster: np.ndarray
    class_edges: np.ndarray
    sample_ops: np.ndarray
    footprint: np.ndarray
    live: np.ndarray


@leaf_kernel
def size_class(nbytes, edges):
    """The colour class (1..) of a block of `nbytes` bytes."""
    k = 1
    while k < edges.shape[0] - 1 and nbytes >= edges[k]:
        k += 1
    return k


@leaf_kernel
def paint(raster, t0, t1, addr, nbytes, low, span, ops, value):
    """Fill the raster cells of a block: times [t0, t1), addresses [addr, addr + nbytes)."""
    h, w = raster.shape
    c0 = t0 * w // ops
    c1 = max(c0 + 1, (t1 * w + ops - 1) // ops)
    r0 = max((addr - low) * h // span, 0)
    r1 = min(max(r0 + 1, (addr + nbytes - low) * h // span), h)
    for r in range(r0, r1):
        for c in range(c0, min(c1, w)):
            raster[r, c] = value


@leaf_kernel
def picture_pass(c, ev, addrs, born, sizes, raster, low, span, fold, edges, every, sample_ops, footprint, live,
                 stats):
    """Replay slot-based events on carrier `c`, painting each block when it is freed (and the
    live ones at the end), sampling footprint and live bytes every `every` operations.
    A block at or above low + span is painted `fold` bytes lower (see heap_picture).
    Returns the number of samples taken."""
    ops = ev.shape[0]
    k = 0
    for i in range(ops):
        e = ev[i]
        if e >= 0:
            n = (e & 0xFFFFFFFF) * 4
            s = e >> 32
            addrs[s] = pol_malloc(c, n)
            born[s] = i
            sizes[s] = pol_block_bytes(c, n)
        else:
            s = -e - 1
            a = addrs[s]
            if a != 0 and pol_free(c, a) == 0:
                a = a - fold if a >= low + span else a
                paint(raster, born[s], i, a, sizes[s], low, span, ops, size_class(sizes[s], edges))
            addrs[s] = 0
        if (i + 1) % every == 0 and k < sample_ops.shape[0]:
            pol_stats(c, stats)
            sample_ops[k] = i + 1
            footprint[k] = stats[S_FOOTPRINT]
            live[k] = c.heap[M_LIVE_BYTES]
            k += 1
    for s in range(addrs.shape[0]):
        if addrs[s] != 0:
            a = addrs[s] - fold if addrs[s] >= low + span else addrs[s]
            paint(raster, born[s], ops, a, sizes[s], low, span, ops, size_class(sizes[s], edges))
    return k


def heap_picture(slots: tuple[np.ndarray, int], policy: str, trace: str, memory, high: int,
                 width: int = 800, height: int = 500, samples: int = 1000) -> HeapPicture:
    """The picture of slot-based events (vm32.heap.replay.slot_events) through `policy` on a
    fresh heap over `memory`; `high`: the footprint the timed replay reached (the top row).
    A policy whose blocks are not all below base + footprint (sharded: its pages come from
    the range's top down) names the address its top row stands for (`picture_top(state)`):
    blocks above base + footprint are painted that far down, onto the rows below the top."""
    ev, nslots = slots
    heap = Heap(memory, BASE, memory.size, policy=policy)
    carrier = heap_ref(heap.policy, heap.mem, heap.state)
    n = max(nslots, 1)
    addrs, born, sizes = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    raster = np.zeros((height, width), np.uint8)
    ops = max(int(ev.shape[0]), 1)
    every = max(ops // samples, 1)
    sample_ops, footprint, live = (np.zeros(samples + 1, np.int64) for _ in range(3))
    span = max(int(high), 1)
    top = heap.kernels.picture_top(heap.state) if hasattr(heap.kernels, "picture_top") else BASE + span
    fold = np.int64(max(top - (BASE + span), 0))
    k = picture_pass(carrier, ev, addrs, born, sizes, raster, np.int64(BASE), np.int64(span), fold, CLASS_EDGES,
                     np.int64(every), sample_ops, footprint, live, np.zeros(STAT_COUNT, np.int64))
    return HeapPicture(heap.policy, trace, ops, BASE, BASE + span, raster, CLASS_EDGES, sample_ops[:k],
                       footprint[:k], live[:k])
