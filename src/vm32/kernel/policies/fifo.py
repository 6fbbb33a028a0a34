"""FIFO: evict the page that was loaded first.

A ring of (load stamp, frame) entries in load order.  An entry is stale when
its frame was freed or reloaded since (the frame's FT_META stamp differs); stale
entries are skipped, and squeezed out when the ring is full.  A pinned frame at
the head goes back to the tail: FIFO order among the pages that may leave.
"""

from __future__ import annotations

from vm32.jit import kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.layout import FT_META, FT_OWNER
from vm32.kernel.policies import base
from vm32.kernel.policies.base import FIFO_FRAME_BITS, POL_Q0, POL_QCAP, POL_QHEAD, POL_QTAIL, POL_TICK

NAME = "fifo"
ID = 0
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = False
REASON = "the oldest page"

# the parts of the interface this policy does not need
on_fault = base.ignore_fault
on_access = base.ignore_frame

_FMASK = (1 << FIFO_FRAME_BITS) - 1


def state_size(nframes: int) -> int:
    """The queue: two entries per frame (stale entries are squeezed out when it fills)."""
    return 2 * nframes


def init_state(pol, nframes: int) -> None:
    """Set the queue's capacity."""
    pol[POL_QCAP] = 2 * nframes


@kernel
def _entry_live(ft, e):
    f = e & _FMASK
    return ft[f, FT_OWNER] >= 0 and ft[f, FT_META] == (e >> FIFO_FRAME_BITS)


@kernel
def _push(ft, pol, e):
    cap = pol[POL_QCAP]
    if pol[POL_QTAIL] - pol[POL_QHEAD] >= cap:
        # full of entries, at most half of them live: rebuild in place, in order
        head, tail, n = pol[POL_QHEAD], pol[POL_QTAIL], 0
        for k in range(head, tail):
            x = pol[POL_Q0 + k % cap]
            if _entry_live(ft, x):
                pol[POL_Q0 + (head + n) % cap] = x
                n += 1
        pol[POL_QTAIL] = head + n
    pol[POL_Q0 + pol[POL_QTAIL] % cap] = e
    pol[POL_QTAIL] += 1


@kernel
def on_map(ft, pol, f):
    """Frame f was just loaded: stamp it and append it to the queue."""
    pol[POL_TICK] += 1
    ft[f, FT_META] = pol[POL_TICK]
    _push(ft, pol, (pol[POL_TICK] << FIFO_FRAME_BITS) | f)




@kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The oldest-loaded evictable frame, removed from the queue; -1 if none."""
    cap = pol[POL_QCAP]
    for _ in range(pol[POL_QTAIL] - pol[POL_QHEAD]):
        e = pol[POL_Q0 + pol[POL_QHEAD] % cap]
        pol[POL_QHEAD] += 1
        if not _entry_live(ft, e):
            continue
        f = e & _FMASK
        if frame_evictable(ft, f):
            return f
        _push(ft, pol, e)  # pinned: keep its place among the pinned
    return -1
