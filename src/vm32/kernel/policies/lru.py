"""Least recently used: a list of frames in order of use, the least recent at the tail.

Every use moves the frame to the head (the kernel calls on_access on every
access, TLB hits included: SEES_EVERY_ACCESS), a loaded page counts as just
used, and the victim is the evictable frame nearest the tail.  O(1) per use and
per victim, as libCacheSim's LRU.

A frame freed without the policy being told (its process exited) may still be
on the list: the victim search drops it when it meets it, and on_map takes a
frame off the list before putting it at the head, so no frame is on it twice.
"""

from __future__ import annotations

from vm32.jit import inline_leaf_kernel, leaf_kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.layout import FT_OWNER
from vm32.kernel.policies.base import POL_NFRAMES, POL_Q0
from vm32.kernel.policies.lists import LIST_WORDS, dl_init, dl_push_head, dl_remove, dl_to_head

NAME = "lru"
ID = 3
SEES_EVERY_ACCESS = True
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = False
REASON = "the least recently used page"

_LIST = POL_Q0  # head, tail, length
_ON = POL_Q0 + LIST_WORDS  # _ON + f: 1 while frame f is on the list
# links: next at _next(pol) + f, prev at _prev(pol) + f (after the _ON words)


def state_size(nframes: int) -> int:
    """The list header, an on-list flag and two links per frame."""
    return LIST_WORDS + 3 * nframes


def init_state(pol, nframes: int) -> None:
    """An empty list."""
    dl_init(pol, _LIST)


@inline_leaf_kernel
def _next(pol):
    return _ON + pol[POL_NFRAMES]


@inline_leaf_kernel
def _prev(pol):
    return _ON + 2 * pol[POL_NFRAMES]


@leaf_kernel
def on_fault(ft, pol, key):
    """LRU does not care which page comes in."""


@leaf_kernel
def on_map(ft, pol, f):
    """A loaded page counts as just used: frame f goes to the head."""
    if pol[_ON + f]:
        dl_remove(pol, _LIST, _next(pol), _prev(pol), f)
    dl_push_head(pol, _LIST, _next(pol), _prev(pol), f)
    pol[_ON + f] = 1


@inline_leaf_kernel
def on_access(ft, pol, f):
    """The page in frame f was used: move it to the head."""
    if pol[_ON + f]:
        dl_to_head(pol, _LIST, _next(pol), _prev(pol), f)


@leaf_kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The evictable frame nearest the tail, taken off the list; -1 if none."""
    nxt, prv = _next(pol), _prev(pol)
    f = pol[_LIST + 1]
    while f >= 0:
        before = pol[prv + f]
        if ft[f, FT_OWNER] < 0:  # freed meanwhile: forget it
            dl_remove(pol, _LIST, nxt, prv, f)
            pol[_ON + f] = 0
        elif frame_evictable(ft, f):
            dl_remove(pol, _LIST, nxt, prv, f)
            pol[_ON + f] = 0
            return f
        f = before
    return -1
