"""Doubly linked lists of small integers (frames, ghost entries) kept inside the policy state.

A list is two words of `pol`: ``pol[h]`` its head (most recently added) and
``pol[h + 1]`` its tail; -1 marks an empty list and the ends of the chain.
Its nodes' links are two arrays inside `pol` as well: ``pol[nxt + x]`` is the
node after x (toward the tail) and ``pol[prv + x]`` the node before it.  A node
is on at most one list of a given pair of link arrays at a time; ``pol[h + 2]``
counts the list's nodes.  FIFO-like policies add at the head and take from the
tail; LRU-like ones also move a used node back to the head.

    head ->  x0  <->  x1  <->  ...  <->  xk  <- tail
            (newest)                   (oldest)
"""

from __future__ import annotations

from vm32.jit import inline_leaf_kernel
from vm32.kernel.policies.base import POL_NFRAMES

LIST_WORDS = 3  # head, tail, length


def frame_list_words(nframes: int) -> int:
    """Words of a list of frames at `h`: its header, then per frame an on-list flag and two links."""
    return LIST_WORDS + 3 * nframes


@inline_leaf_kernel
def frame_links(pol, h):
    """(on, nxt, prv) of the list of frames at pol[h] (laid out as frame_list_words says):
    ``pol[on + f]`` is 1 while frame f is on it."""
    on = h + LIST_WORDS
    n = pol[POL_NFRAMES]
    return on, on + n, on + 2 * n


@inline_leaf_kernel
def dl_init(pol, h):
    """Make the list at pol[h] empty."""
    pol[h] = -1
    pol[h + 1] = -1
    pol[h + 2] = 0


@inline_leaf_kernel
def dl_push_head(pol, h, nxt, prv, x):
    """Add node x at the head of the list at pol[h]."""
    old = pol[h]
    pol[nxt + x] = old
    pol[prv + x] = -1
    if old >= 0:
        pol[prv + old] = x
    else:
        pol[h + 1] = x
    pol[h] = x
    pol[h + 2] += 1


@inline_leaf_kernel
def dl_remove(pol, h, nxt, prv, x):
    """Take node x (which must be on it) out of the list at pol[h]."""
    a, b = pol[prv + x], pol[nxt + x]
    if a >= 0:
        pol[nxt + a] = b
    else:
        pol[h] = b
    if b >= 0:
        pol[prv + b] = a
    else:
        pol[h + 1] = a
    pol[h + 2] -= 1


@inline_leaf_kernel
def dl_to_head(pol, h, nxt, prv, x):
    """Move node x (on the list at pol[h]) to its head."""
    if pol[h] != x:
        dl_remove(pol, h, nxt, prv, x)
        dl_push_head(pol, h, nxt, prv, x)


@inline_leaf_kernel
def dl_len(pol, h):
    """Number of nodes on the list at pol[h]."""
    return pol[h + 2]
