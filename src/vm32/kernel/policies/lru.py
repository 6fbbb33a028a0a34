"""Least recently used: evict the evictable frame with the oldest use stamp.

The stamp comes from `on_access`, which the kernel calls on every access when
this policy is active (the TLB hit path included).  With several CPUs the
shared tick is bumped without atomics: stamps may tie or lose an update, which
only blurs the order a little.  The victim search is a linear scan.
"""

from __future__ import annotations

from vm32.jit import kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.layout import FT_META
from vm32.kernel.policies.base import POL_NFRAMES, POL_TICK


@kernel
def on_map(ft, pol, f):
    """A loaded page counts as just used."""
    pol[POL_TICK] += 1
    ft[f, FT_META] = pol[POL_TICK]


@kernel
def on_access(ft, pol, f):
    """Stamp frame f with the next tick."""
    pol[POL_TICK] += 1
    ft[f, FT_META] = pol[POL_TICK]


@kernel
def choose_victim(words, ft, pol, tlb, cpu, cur_pid):
    """The evictable frame with the smallest stamp (lowest frame number on ties); -1 if none."""
    best = -1
    for f in range(pol[POL_NFRAMES]):
        if frame_evictable(ft, f) and (best < 0 or ft[f, FT_META] < ft[best, FT_META]):
            best = f
    return best
