"""Random replacement, seeded: a xorshift64 generator in the policy state picks frames
until it hits an evictable one (after 64 misses, the next evictable frame after the
last pick), so runs with the same seed evict the same frames."""

from __future__ import annotations

from vm32.jit import kernel, leaf_kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.policies.base import POL_NFRAMES, POL_RNG

NAME = "random"
ID = 4
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = False
REASON = "picked at random"


def state_size(nframes: int) -> int:
    """The generator's state is in the common header."""
    return 0


def init_state(pol, nframes: int) -> None:
    """Nothing to set (the seed is in the header)."""


@leaf_kernel
def on_fault(ft, pol, key):
    """Random does not care which page comes in."""


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


@leaf_kernel
def on_map(ft, pol, f):
    """Random needs no bookkeeping."""


@leaf_kernel
def on_access(ft, pol, f):
    """Random ignores uses."""


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
