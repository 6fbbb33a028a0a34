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
from vm32.kernel.policies import base
from vm32.kernel.policies.base import POL_Q0
from vm32.kernel.policies.lists import dl_init, dl_push_head, dl_remove, dl_to_head, frame_links, frame_list_words

NAME = "lru"
ID = 3
SEES_EVERY_ACCESS = True
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = False
REASON = "the least recently used page"
on_fault = base.ignore_fault  # LRU does not care which page comes in

_LIST = POL_Q0  # the list of frames (lists.frame_list_words)


def state_size(nframes: int) -> int:
    """The list of frames."""
    return frame_list_words(nframes)


def init_state(pol, nframes: int) -> None:
    """An empty list."""
    dl_init(pol, _LIST)


@leaf_kernel
def on_map(ft, pol, f):
    """A loaded page counts as just used: frame f goes to the head."""
    on, nxt, prv = frame_links(pol, _LIST)
    if pol[on + f]:
        dl_remove(pol, _LIST, nxt, prv, f)
    dl_push_head(pol, _LIST, nxt, prv, f)
    pol[on + f] = 1


@inline_leaf_kernel
def on_access(ft, pol, f):
    """The page in frame f was used: move it to the head."""
    on, nxt, prv = frame_links(pol, _LIST)
    if pol[on + f]:
        dl_to_head(pol, _LIST, nxt, prv, f)


@leaf_kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The evictable frame nearest the tail, taken off the list; -1 if none."""
    on, nxt, prv = frame_links(pol, _LIST)
    f = pol[_LIST + 1]
    while f >= 0:
        before = pol[prv + f]
        if ft[f, FT_OWNER] < 0 or frame_evictable(ft, f):  # freed meanwhile (forget it), or the victim
            dl_remove(pol, _LIST, nxt, prv, f)
            pol[on + f] = 0
            if ft[f, FT_OWNER] >= 0:
                return f
        f = before
    return -1
