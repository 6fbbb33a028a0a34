"""Second chance (clock): sweep a hand over the frames; a referenced page loses its
Accessed bit and is passed over once, the first unreferenced evictable page goes."""

from __future__ import annotations

from vm32.jit import kernel
from vm32.kernel.frametable import frame_clear_referenced, frame_evictable
from vm32.kernel.policies import base
from vm32.kernel.policies.base import POL_HAND, POL_NFRAMES

NAME = "clock"
ID = 1
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = True  # the faulting access counts as a use: the MMU sets Accessed on it
NEEDS_FUTURE = False
REASON = "the hand found its Accessed bit clear"

# the parts of the interface this policy does not need
on_fault = base.ignore_fault
on_access = base.ignore_frame
on_map = base.ignore_frame
init_state = base.no_init
state_size = base.no_state


@kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The first evictable frame at or after the hand whose Accessed bit is clear; -1 if none."""
    n = pol[POL_NFRAMES]
    hand = pol[POL_HAND]
    for _ in range(2 * n + 1):  # two sweeps clear every bit, so the third finds a victim
        f = hand
        hand = hand + 1 if hand + 1 < n else 0
        if not frame_evictable(ft, f):
            continue
        if frame_clear_referenced(words, ft, f, tlb, cpus, cpu):
            continue
        pol[POL_HAND] = hand
        return f
    pol[POL_HAND] = hand
    return -1
