"""A replacement policy written outside vm32, as a user would: MRU (evict the most recently
used page), to test that ``--policy user_policy:MRU`` and `register` run it unchanged."""

from vm32.jit import leaf_kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.layout import FT_META
from vm32.kernel.policies.base import POL_NFRAMES, POL_TICK


@leaf_kernel
def _on_fault(ft, pol, key):
    pass


@leaf_kernel
def _stamp(ft, pol, f):
    pol[POL_TICK] += 1
    ft[f, FT_META] = pol[POL_TICK]


@leaf_kernel
def _choose_victim(words, ft, pol, tlb, cpus, cpu):
    best = -1
    for f in range(pol[POL_NFRAMES]):
        if frame_evictable(ft, f) and (best < 0 or ft[f, FT_META] > ft[best, FT_META]):
            best = f
    return best


class MRU:
    """The policy: its declarations and its four kernels."""

    NAME = "mru"
    ID = 100
    SEES_EVERY_ACCESS = True
    ACCESSED_ON_LOAD = True
    NEEDS_FUTURE = False
    REASON = "the most recently used page"
    on_fault = _on_fault
    on_map = _stamp
    on_access = _stamp
    choose_victim = _choose_victim

    @staticmethod
    def state_size(nframes):
        return 0

    @staticmethod
    def init_state(pol, nframes):
        pass


def mru_faults(refs, nframes):
    """The plain oracle: faults of MRU."""
    frames, faults = [], 0
    for p in refs:
        if p in frames:
            frames.remove(p)
            frames.append(p)
            continue
        faults += 1
        if len(frames) == nframes:
            frames.pop()
        frames.append(p)
    return faults
