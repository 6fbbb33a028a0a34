"""SIEVE (Zhang et al., NSDI 2024), as libCacheSim counts it.

Frames sit on a list in load order, the newest at the head; nothing moves on a
hit.  The visited mark is the page's Accessed bit, and a page comes in
unvisited (ACCESSED_ON_LOAD is False: the faulting access does not count).
The hand starts at the tail and walks toward the head, wrapping to the tail:
a visited page loses its mark and stays, the first unvisited one goes, and the
hand stops at the page after it (toward the head).
"""

from __future__ import annotations

from vm32.jit import inline_leaf_kernel, leaf_kernel
from vm32.kernel.frametable import frame_clear_referenced, frame_evictable
from vm32.kernel.layout import FT_OWNER
from vm32.kernel.policies.base import POL_HAND, POL_NFRAMES, POL_Q0
from vm32.kernel.policies.lists import LIST_WORDS, dl_init, dl_len, dl_push_head, dl_remove

NAME = "sieve"
ID = 7
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = False
NEEDS_FUTURE = False
REASON = "the hand found it unvisited (Accessed clear)"

_LIST = POL_Q0
_ON = POL_Q0 + LIST_WORDS  # _ON + f: 1 while frame f is on the list


def state_size(nframes: int) -> int:
    """The list header, an on-list flag and two links per frame."""
    return LIST_WORDS + 3 * nframes


def init_state(pol, nframes: int) -> None:
    """An empty list and no hand (-1: start from the tail)."""
    dl_init(pol, _LIST)
    pol[POL_HAND] = -1


@inline_leaf_kernel
def _next(pol):
    return _ON + pol[POL_NFRAMES]


@inline_leaf_kernel
def _prev(pol):
    return _ON + 2 * pol[POL_NFRAMES]


@leaf_kernel
def _take(pol, f):
    """Take frame f off the list, moving the hand past it if it points there."""
    if pol[POL_HAND] == f:
        pol[POL_HAND] = pol[_prev(pol) + f]
    dl_remove(pol, _LIST, _next(pol), _prev(pol), f)
    pol[_ON + f] = 0


@leaf_kernel
def on_fault(ft, pol, key):
    """SIEVE does not care which page comes in."""


@leaf_kernel
def on_map(ft, pol, f):
    """Frame f was loaded: it goes to the head."""
    if pol[_ON + f]:
        _take(pol, f)
    dl_push_head(pol, _LIST, _next(pol), _prev(pol), f)
    pol[_ON + f] = 1


@leaf_kernel
def on_access(ft, pol, f):
    """SIEVE ignores uses (the Accessed bit records them)."""


@leaf_kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The first unvisited evictable frame from the hand toward the head; -1 if none."""
    prv = _prev(pol)
    f = pol[POL_HAND] if pol[POL_HAND] >= 0 else pol[_LIST + 1]
    for _ in range(2 * dl_len(pol, _LIST) + 1):  # two rounds clear every mark
        if f < 0:
            return -1
        toward_head = pol[prv + f]
        if ft[f, FT_OWNER] < 0:  # freed meanwhile: forget it
            _take(pol, f)
        elif frame_evictable(ft, f) and not frame_clear_referenced(words, ft, f, tlb, cpus, cpu):
            pol[POL_HAND] = toward_head
            dl_remove(pol, _LIST, _next(pol), prv, f)
            pol[_ON + f] = 0
            return f
        f = toward_head if toward_head >= 0 else pol[_LIST + 1]  # past the head: the tail again
    return -1
