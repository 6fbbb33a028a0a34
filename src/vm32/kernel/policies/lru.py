"""Least recently used: evict the evictable frame with the oldest use stamp.

The stamp comes from `on_access`, which the kernel calls on every access when
this policy is active (the TLB hit path included), from several CPUs at once
and without the machine lock.  The shared tick is therefore bumped with an
atomic add: a plain ``+= 1`` could also lose updates, and a CPU delayed between
its load and its store would move the tick *back*, making every page stamped
later look older than pages stamped before (LRU inverted for a while).  Two
CPUs stamping the same frame at once may leave the smaller of their two
stamps: both uses are "now", so that is harmless.  The victim search is a
linear scan.
"""

from __future__ import annotations

from vm32.jit import kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.layout import FT_META
from vm32.kernel.policies.base import POL_NFRAMES, POL_TICK
from vm32.mmu.atomic import atomic_add


@kernel
def on_map(ft, pol, f):
    """A loaded page counts as just used."""
    ft[f, FT_META] = atomic_add(pol, POL_TICK, 1) + 1


@kernel
def on_access(ft, pol, f):
    """Stamp frame f with the next tick."""
    ft[f, FT_META] = atomic_add(pol, POL_TICK, 1) + 1


@kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The evictable frame with the smallest stamp (lowest frame number on ties); -1 if none."""
    best = -1
    for f in range(pol[POL_NFRAMES]):
        if frame_evictable(ft, f) and (best < 0 or ft[f, FT_META] < ft[best, FT_META]):
            best = f
    return best
