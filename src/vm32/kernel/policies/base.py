"""Policy state shared by every replacement policy: one int64 array `pol`.

    pol[POL_KIND]    policy id (see vm32.kernel.policies.POLICIES)
    pol[POL_HAND]    clock / NRU scan position
    pol[POL_TICK]    logical clock for FIFO load stamps and LRU use stamps
    pol[POL_RNG]     xorshift64 state of the random policy (never 0)
    pol[POL_PERIOD]  NRU: clear every Accessed bit once per this many victim choices
    pol[POL_COUNT]   NRU: victim choices since the last clearing
    pol[POL_QHEAD], pol[POL_QTAIL]  FIFO queue: absolute indices, entries in pol[POL_Q0:]
    pol[POL_QCAP]    FIFO queue capacity (2 * frames)
    pol[POL_NFRAMES] number of frames the policy looks at

Every policy module offers the same three kernels:

    on_map(ft, pol, f)          frame f has just been given a page
    on_access(ft, pol, f)       the page in frame f was used (only LRU cares)
    choose_victim(words, ft, pol, tlb, cpus, cpu) -> f, or -1 if no frame is evictable

`choose_victim` never returns a pinned or unowned frame and does not evict: the
caller does.  `tlb, cpus, cpu` are only used to drop TLB entries when a policy
clears an Accessed bit (see frametable.frame_clear_referenced); the trace
simulator passes an empty `cpus` and cpu = -1.
"""

from __future__ import annotations

import numpy as np

POL_KIND = 0
POL_HAND = 1
POL_TICK = 2
POL_RNG = 3
POL_PERIOD = 4
POL_COUNT = 5
POL_QHEAD = 6
POL_QTAIL = 7
POL_QCAP = 8
POL_NFRAMES = 9
POL_Q0 = 16
FIFO_FRAME_BITS = 21  # a FIFO queue entry is (stamp << 21) | frame; frames < 2**21


def make_policy_state(kind: int, nframes: int, seed: int = 1, nru_period: int = 16) -> np.ndarray:
    """A fresh `pol` array for policy id `kind` over `nframes` frames."""
    pol = np.zeros(POL_Q0 + 2 * nframes, dtype=np.int64)
    pol[POL_KIND] = kind
    pol[POL_RNG] = (seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & 0x7FFFFFFFFFFFFFFF or 1
    pol[POL_PERIOD] = max(1, nru_period)
    pol[POL_QCAP] = 2 * nframes
    pol[POL_NFRAMES] = nframes
    return pol
