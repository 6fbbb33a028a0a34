"""Page-replacement policies, one small module each, chosen by name.

    fifo     first in, first out (load order)
    clock    second chance: Accessed bit as the reference bit, a sweeping hand
    nru      not recently used: classes from Accessed/Dirty, Accessed cleared periodically
    lru      least recently used: a use stamp on every access
    random   seeded pseudo-random

They only read and write the frame table `ft`, the policy state `pol` (see
base.py) and the A/D bits of PTEs in `words`, so the trace simulator runs the
very same code.  The dispatchers below pick the module by ``pol[POL_KIND]``.
"""

from __future__ import annotations

from vm32.errors import InvalidArgument
from vm32.jit import kernel
from vm32.kernel.policies import clock, fifo, lru, nru, random_
from vm32.kernel.policies.base import POL_KIND, make_policy_state  # noqa: F401

P_FIFO, P_CLOCK, P_NRU, P_LRU, P_RANDOM = 0, 1, 2, 3, 4
POLICIES = {"fifo": P_FIFO, "clock": P_CLOCK, "nru": P_NRU, "lru": P_LRU, "random": P_RANDOM}
ALIASES = {"second-chance": "clock", "secondchance": "clock", "sc": "clock"}


def policy_id(name: str) -> int:
    """Id of the policy called `name` (case-insensitive; 'second-chance' = 'clock')."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in POLICIES:
        raise InvalidArgument(f"unknown replacement policy {name!r}; choose one of {', '.join(POLICIES)}")
    return POLICIES[key]


def policy_name(kind: int) -> str:
    """Name of policy id `kind`."""
    return {v: k for k, v in POLICIES.items()}[int(kind)]


@kernel
def policy_on_map(ft, pol, f):
    """Tell the active policy that frame f was just given a page."""
    k = pol[POL_KIND]
    if k == P_FIFO:
        fifo.on_map(ft, pol, f)
    elif k == P_LRU:
        lru.on_map(ft, pol, f)


@kernel
def policy_on_access(ft, pol, f):
    """Tell the active policy that the page in frame f was used."""
    if pol[POL_KIND] == P_LRU:
        lru.on_access(ft, pol, f)


@kernel
def policy_choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The active policy's victim frame (evictable), or -1 if every frame is pinned or free."""
    k = pol[POL_KIND]
    if k == P_FIFO:
        return fifo.choose_victim(words, ft, pol, tlb, cpus, cpu)
    if k == P_CLOCK:
        return clock.choose_victim(words, ft, pol, tlb, cpus, cpu)
    if k == P_NRU:
        return nru.choose_victim(words, ft, pol, tlb, cpus, cpu)
    if k == P_LRU:
        return lru.choose_victim(words, ft, pol, tlb, cpus, cpu)
    return random_.choose_victim(words, ft, pol, tlb, cpus, cpu)
