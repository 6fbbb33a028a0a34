"""Random replacement, seeded: a xorshift64 generator in the policy state picks frames
until it hits an evictable one (after 64 misses, the next evictable frame after the
last pick), so runs with the same seed evict the same frames."""

from __future__ import annotations

from vm32.jit import kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.policies import base
from vm32.kernel.policies.base import POL_NFRAMES, POL_RNG

NAME = "random"
ID = 4
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = False
REASON = "picked at random"

# the parts of the interface this policy does not need
on_fault = base.ignore_fault
on_access = base.ignore_frame
on_map = base.ignore_frame
init_state = base.no_init
state_size = base.no_state


@kernel
def next_random(pol):
    """Advance the xorshift64 state and return a non-negative 63-bit number."""
    x = pol[POL_RNG]
    x ^= (x << 13) & 0x7FFFFFFFFFFFFFFF
    x ^= x >> 7
    x ^= (x << 17) & 0x7FFFFFFFFFFFFFFF
    x &= 0x7FFFFFFFFFFFFFFF
    if x == 0:
        x = 1
    pol[POL_RNG] = x
    return x


@kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """A pseudo-random evictable frame; -1 if none."""
    n = pol[POL_NFRAMES]
    f = 0
    for _ in range(64):
        f = next_random(pol) % n
        if frame_evictable(ft, f):
            return f
    for _ in range(n):
        f = f + 1 if f + 1 < n else 0
        if frame_evictable(ft, f):
            return f
    return -1
