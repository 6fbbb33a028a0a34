"""One pass over a trace that each replay policy may need: the future, and stack distances.

    next_uses(vpns) -> int64 array     next_uses[i]: the index of the next reference to the
                                       page of reference i, or NEVER (OPT's key)
    stack_distances(vpns) -> (hist, cold)
                                       hist[d]: references at LRU stack distance d (1 = the
                                       page used just before); cold: first references

Mattson et al. (1970): LRU is a stack algorithm, so one pass gives its misses
for every cache size at once: with N frames a reference misses iff it is cold
or its stack distance exceeds N.  `lru_misses(hist, cold, frames)` turns the
histogram into that curve.

The stack distance of a reference is one plus the number of distinct pages
used since the last use of its page.  Counted with a Fenwick tree over time
slots: a slot is marked while it holds the latest use of some page, so the
distance is the number of marked slots after the page's last slot, plus the
pages above the tree: the TOP most recent pages sit in a small array, scanned
first, so the many references to a recently used page cost no tree operation.  The tree
covers a window of slots twice the number of distinct pages; when the window
fills, the marked slots (one per page) are renumbered from 0 in order (amortised
O(1) per reference).
"""

from __future__ import annotations

import numpy as np

from vm32.jit import leaf_kernel

NEVER = np.iinfo(np.int64).max  # OPT: "not used again"
VPN_LIMIT = 1 << 20  # virtual page numbers of the 32-bit space
TOP = 16  # the most recent pages of the LRU stack, kept in a plain array


@leaf_kernel
def _next_uses(vpns, last, out):
    """out[i] = index of the next reference to vpns[i], NEVER if none; `last` (VPN_LIMIT
    int64, filled with NEVER) is scratch."""
    for i in range(vpns.shape[0] - 1, -1, -1):
        v = vpns[i]
        out[i] = last[v]
        last[v] = i


def next_uses(vpns: np.ndarray) -> np.ndarray:
    """For each reference, the index of the next reference to the same page (NEVER if none)."""
    out = np.empty(vpns.shape[0], dtype=np.int64)
    _next_uses(vpns, np.full(VPN_LIMIT, NEVER, dtype=np.int64), out)
    return out


@leaf_kernel
def _bit_add(tree, i, delta):
    i += 1
    n = tree.shape[0]
    while i < n:
        tree[i] += delta
        i += i & -i


@leaf_kernel
def _bit_prefix(tree, i):
    """Sum of marks at slots 0..i."""
    s = 0
    i += 1
    while i > 0:
        s += tree[i]
        i -= i & -i
    return s


@leaf_kernel
def _compact(tree, slot_of, page_at, used):
    """Renumber the marked slots among 0..used-1 from 0 in order; rebuild the tree; return
    the number of marked slots (the next free slot)."""
    m = 0
    for s in range(used):
        p = page_at[s]
        if p >= 0 and slot_of[p] == s:
            page_at[m] = p
            slot_of[p] = m
            m += 1
    for s in range(m, used):
        page_at[s] = -1
    n = tree.shape[0]
    for k in range(n):
        tree[k] = 0
    for k in range(1, n):  # the linear-time build: each node adds its sum to its parent's
        if k <= m:
            tree[k] += 1
        parent = k + (k & -k)
        if parent < n:
            tree[parent] += tree[k]
    return m


@leaf_kernel
def _to_front(top, j, p):
    """Move the entries top[0:j] one place down and put p at top[0]."""
    for k in range(j, 0, -1):
        top[k] = top[k - 1]
    top[0] = p


@leaf_kernel
def _stack_distances(vpns, slot_of, page_at, tree, top, in_top, hist):
    """Histogram of stack distances into hist (hist[d] for d >= 1); returns the cold count.

    The stack's TOP most recent pages are the array `top` (most recent first), the
    others are marked slots of the tree: a reference found in `top` (most of them)
    costs a short scan and no tree operation.  slot_of (VPN_LIMIT, -1), in_top
    (VPN_LIMIT, 0), page_at (window, -1) and tree (window + 1, 0) are scratch.
    """
    window = page_at.shape[0]
    cold, used, below, ntop = 0, 0, 0, 0  # below: pages in the tree
    for i in range(vpns.shape[0]):
        p = np.int64(vpns[i])
        if in_top[p]:
            j = 0
            while top[j] != p:
                j += 1
            hist[j + 1] += 1
            _to_front(top, j, p)
            continue
        s = slot_of[p]
        if s < 0:
            cold += 1
        else:
            hist[ntop + below - _bit_prefix(tree, s) + 1] += 1
            _bit_add(tree, s, -1)
            slot_of[p] = -1
            below -= 1
        if ntop == top.shape[0]:  # the least recent of the top goes into the tree, newest there
            q = top[ntop - 1]
            in_top[q] = 0
            if used == window:
                used = _compact(tree, slot_of, page_at, used)
            _bit_add(tree, used, 1)
            slot_of[q] = used
            page_at[used] = q
            used += 1
            below += 1
            _to_front(top, ntop - 1, p)
        else:
            _to_front(top, ntop, p)
            ntop += 1
        in_top[p] = 1
    return cold


def stack_distances(vpns: np.ndarray) -> tuple[np.ndarray, int]:
    """(hist, cold): hist[d] = references at LRU stack distance d, cold = first references."""
    distinct = int(np.count_nonzero(np.bincount(vpns, minlength=1))) if vpns.size else 0
    window = max(2 * distinct, 1024)
    hist = np.zeros(distinct + 2, dtype=np.int64)
    cold = _stack_distances(vpns, np.full(VPN_LIMIT, -1, dtype=np.int64), np.full(window, -1, dtype=np.int64),
                            np.zeros(window + 1, dtype=np.int64), np.full(TOP, -1, dtype=np.int64),
                            np.zeros(VPN_LIMIT, dtype=np.uint8), hist)
    return hist, int(cold)


def lru_misses(hist: np.ndarray, cold: int, frames) -> np.ndarray:
    """LRU's misses with each frame count in `frames`: cold ones plus distances > frames."""
    beyond = np.concatenate([np.cumsum(hist[::-1])[::-1], [0]])  # beyond[d] = sum(hist[d:])
    f = np.minimum(np.asarray(frames, dtype=np.int64) + 1, beyond.size - 1)
    return cold + beyond[f]
