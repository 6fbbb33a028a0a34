"""OPT (Belady): evict the page whose next use is farthest in the future.

Traces only (NEEDS_FUTURE): the replay sets ``pol[POL_NEXT]`` to the index of
the next reference to the page being referenced (vm32.trace.future.next_uses,
one pass) before every on_map and on_access; the live kernel refuses OPT.

A frame's key (FT_META) is the next use of its page.  A max-heap holds
(key, frame) entries.  A use only stores the frame's new key and, the first
time since the last fault, notes the frame as touched; a fault first pushes
the touched frames with their current keys, then pops.  The entry a frame had
before goes stale without being looked for: a stale entry's key is the time of
a use that has happened, while the key of every resident frame lies in the
future, so the heap's top is always a live entry, the frame used again farthest
ahead.  When the heap is full it is rebuilt from the resident frames' keys
(amortised O(1)).  Pages never used again (key NEVER) tie; which of them goes
does not change the miss count.
"""

from __future__ import annotations

from vm32.jit import inline_leaf_kernel, leaf_kernel
from vm32.kernel.frametable import frame_evictable
from vm32.kernel.layout import FT_META, FT_OWNER
from vm32.kernel.policies import base
from vm32.kernel.policies.base import POL_NEXT, POL_NFRAMES, POL_Q0

NAME = "opt"
ID = 6
SEES_EVERY_ACCESS = True
ACCESSED_ON_LOAD = True
NEEDS_FUTURE = True
REASON = "the farthest next use"
on_fault = base.ignore_fault  # OPT's key comes with on_map

_SIZE = POL_Q0  # entries in the heap
_TOUCHED = POL_Q0 + 1  # frames noted as touched since the last fault
_HEAP = POL_Q0 + 2  # entry k: key at _HEAP + 2k, frame at _HEAP + 2k + 1
ROOM = 4  # heap entries per frame before a rebuild


def state_size(nframes: int) -> int:
    """The heap (ROOM entries per frame, and a few more), the touched frames and their marks."""
    return 2 + 2 * (ROOM * nframes + 4) + 2 * nframes


@inline_leaf_kernel
def _list(pol):  # + k: the k-th touched frame
    return _HEAP + 2 * (ROOM * pol[POL_NFRAMES] + 4)


@inline_leaf_kernel
def _mark(pol):  # + f: 1 while frame f is on the touched list
    return _list(pol) + pol[POL_NFRAMES]


def init_state(pol, nframes: int) -> None:
    """An empty heap."""


@inline_leaf_kernel
def _swap(pol, a, b):
    ka, fa = pol[_HEAP + 2 * a], pol[_HEAP + 2 * a + 1]
    pol[_HEAP + 2 * a], pol[_HEAP + 2 * a + 1] = pol[_HEAP + 2 * b], pol[_HEAP + 2 * b + 1]
    pol[_HEAP + 2 * b], pol[_HEAP + 2 * b + 1] = ka, fa


@inline_leaf_kernel
def _up(pol, k):
    while k > 0 and pol[_HEAP + 2 * ((k - 1) >> 1)] < pol[_HEAP + 2 * k]:
        _swap(pol, k, (k - 1) >> 1)
        k = (k - 1) >> 1


@leaf_kernel
def _down(pol, k, n):
    while True:
        big, a, b = k, 2 * k + 1, 2 * k + 2
        if a < n and pol[_HEAP + 2 * a] > pol[_HEAP + 2 * big]:
            big = a
        if b < n and pol[_HEAP + 2 * b] > pol[_HEAP + 2 * big]:
            big = b
        if big == k:
            return
        _swap(pol, k, big)
        k = big


@leaf_kernel
def _rebuild(ft, pol):
    """The heap anew: one entry per resident frame, with its current key."""
    n = 0
    for f in range(pol[POL_NFRAMES]):
        if ft[f, FT_OWNER] >= 0:
            pol[_HEAP + 2 * n] = ft[f, FT_META]
            pol[_HEAP + 2 * n + 1] = f
            n += 1
    pol[_SIZE] = n
    for k in range(n // 2 - 1, -1, -1):
        _down(pol, k, n)


@inline_leaf_kernel
def _push(ft, pol, key, f):
    k = pol[_SIZE]
    if k >= ROOM * pol[POL_NFRAMES] + 4:
        _rebuild(ft, pol)  # f's new key is in FT_META already
        return
    pol[_SIZE] = k + 1
    pol[_HEAP + 2 * k] = key
    pol[_HEAP + 2 * k + 1] = f
    _up(pol, k)


@leaf_kernel
def _pop(pol):
    """Remove the top entry (the heap must not be empty)."""
    n = pol[_SIZE] - 1
    pol[_SIZE] = n
    _swap(pol, 0, n)
    _down(pol, 0, n)


@leaf_kernel
def on_map(ft, pol, f):
    """Frame f was loaded: its key is the next use of its page."""
    ft[f, FT_META] = pol[POL_NEXT]
    _push(ft, pol, pol[POL_NEXT], f)


@inline_leaf_kernel
def on_access(ft, pol, f):
    """The page in frame f was used: its key moves on to its next use."""
    ft[f, FT_META] = pol[POL_NEXT]
    if not pol[_mark(pol) + f]:
        pol[_mark(pol) + f] = 1
        pol[_list(pol) + pol[_TOUCHED]] = f
        pol[_TOUCHED] += 1


@leaf_kernel
def choose_victim(words, ft, pol, tlb, cpus, cpu):
    """The evictable frame used again farthest in the future; -1 if none."""
    for k in range(pol[_TOUCHED]):
        f = pol[_list(pol) + k]
        pol[_mark(pol) + f] = 0
        _push(ft, pol, ft[f, FT_META], f)
    pol[_TOUCHED] = 0
    while pol[_SIZE] > 0:
        key, f = pol[_HEAP], pol[_HEAP + 1]
        _pop(pol)
        if ft[f, FT_META] == key and frame_evictable(ft, f):
            return f
    return -1
