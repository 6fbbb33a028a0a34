"""Not Recently Used: evict a page of the lowest class, class = 2*Accessed + Dirty.

    class 0: not referenced, clean      class 2: referenced, clean
    class 1: not referenced, dirty      class 3: referenced, dirty

Accessed bits are cleared every `POL_PERIOD` victim choices (the kernel has no
timer interrupt; a choice is its clock tick), after the choice, so classes
describe the last period.  Ties go to the first frame at or after a rotating
hand, so equal pages leave in turn.
"""

from __future__ import annotations

from vm32.jit import kernel
from vm32.kernel.frametable import frame_clear_referenced, frame_dirty, frame_evictable, frame_referenced
from vm32.kernel.policies import base
from vm32.kernel.policies.base import POL_COUNT, POL_HAND, POL_NFRAMES, POL_PERIOD

NAME = "nru"
ID = 2
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = False
REASON = "the lowest Accessed/Dirty class from the hand"

# the parts of the interface this policy does not need
on_fault = base.ignore_fault
on_access = base.ignore_frame
on_map = base.ignore_frame
init_state = base.no_init
state_size = base.no_state


@kernel
def clear_all(words, ft, pol, tlb, cpus, cpu):
    """Clear the Accessed bit of every evictable frame (the periodic reset)."""
    for f in range(pol[POL_NFRAMES]):
        if frame_evictable(ft, f):
            frame_clear_referenced(words, ft, f, tlb, cpus, cpu)


@kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The first evictable frame of the lowest class from the hand on; -1 if none."""
    n = pol[POL_NFRAMES]
    best, best_cls = -1, 4
    f = pol[POL_HAND]
    for _ in range(n):
        if frame_evictable(ft, f):
            cls = 2 * frame_referenced(words, ft, f) + frame_dirty(words, ft, f)
            if cls < best_cls:
                best, best_cls = f, cls
                if cls == 0:
                    break
        f = f + 1 if f + 1 < n else 0
    if best >= 0:
        pol[POL_HAND] = best + 1 if best + 1 < n else 0
    pol[POL_COUNT] += 1
    if pol[POL_COUNT] >= pol[POL_PERIOD]:
        pol[POL_COUNT] = 0
        clear_all(words, ft, pol, tlb, cpus, cpu)
    return best
