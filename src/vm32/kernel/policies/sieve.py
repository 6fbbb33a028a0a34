"""SIEVE (Zhang et al., NSDI 2024), as libCacheSim counts it.

Frames sit on a list in load order, the newest at the head; nothing moves on a
hit.  The visited mark is the page's Accessed bit, and a page comes in
unvisited (ACCESSED_ON_LOAD is False: the faulting access does not count).
The hand starts at the tail and walks toward the head, wrapping to the tail:
a visited page loses its mark and stays, the first unvisited one goes, and the
hand stops at the page after it (toward the head).
"""

from __future__ import annotations

from vm32.jit import leaf_kernel
from vm32.kernel.frametable import frame_clear_referenced, frame_evictable
from vm32.kernel.layout import FT_OWNER
from vm32.kernel.policies import base
from vm32.kernel.policies.base import POL_HAND, POL_Q0
from vm32.kernel.policies.lists import dl_init, dl_len, dl_push_head, dl_remove, frame_links, frame_list_words

NAME = "sieve"
ID = 7
SEES_EVERY_ACCESS = False
ACCESSED_ON_LOAD = False
NEEDS_FUTURE = False
REASON = "the hand found it unvisited (Accessed clear)"

# the parts of the interface this policy does not need
on_fault = base.ignore_fault
on_access = base.ignore_frame

_LIST = POL_Q0  # the list of frames (lists.frame_list_words)


def state_size(nframes: int) -> int:
    """The list of frames."""
    return frame_list_words(nframes)


def init_state(pol, nframes: int) -> None:
    """An empty list and no hand (-1: start from the tail)."""
    dl_init(pol, _LIST)
    pol[POL_HAND] = -1


@leaf_kernel
def _take(pol, f):
    """Take frame f off the list, moving the hand past it if it points there."""
    on, nxt, prv = frame_links(pol, _LIST)
    if pol[POL_HAND] == f:
        pol[POL_HAND] = pol[prv + f]
    dl_remove(pol, _LIST, nxt, prv, f)
    pol[on + f] = 0


@leaf_kernel
def on_map(ft, pol, f):
    """Frame f was loaded: it goes to the head."""
    on, nxt, prv = frame_links(pol, _LIST)
    if pol[on + f]:
        _take(pol, f)
    dl_push_head(pol, _LIST, nxt, prv, f)
    pol[on + f] = 1


@leaf_kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The first unvisited evictable frame from the hand toward the head; -1 if none."""
    on, nxt, prv = frame_links(pol, _LIST)
    f = pol[POL_HAND] if pol[POL_HAND] >= 0 else pol[_LIST + 1]
    for _ in range(2 * dl_len(pol, _LIST) + 1):  # two rounds clear every mark
        if f < 0:
            return -1
        toward_head = pol[prv + f]
        if ft[f, FT_OWNER] < 0:  # freed meanwhile: forget it
            _take(pol, f)
        elif frame_evictable(ft, f) and not frame_clear_referenced(words, ft, f, tlb, cpus, cpu):
            pol[POL_HAND] = toward_head
            dl_remove(pol, _LIST, nxt, prv, f)
            pol[on + f] = 0
            return f
        f = toward_head if toward_head >= 0 else pol[_LIST + 1]  # past the head: the tail again
    return -1
