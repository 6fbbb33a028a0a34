"""The `buddy` policy: binary buddy allocation with power-of-two blocks.

Words
-----
*arena*   the range seen from its *origin* O = base + 4, so that a block's payload (4 bytes
          into the block) is 8-aligned; the arena is [O, O + span), span = (limit - O) & ~7.
*block*   [b, b + 2**k) with offset off = b - O a multiple of 2**k, order k from MIN_ORDER (3:
          8 bytes) to MAX_ORDER (32).  A live block holds nbytes in its first word (the header)
          and its payload at p = b + 4: k = max(3, ceil(log2(nbytes + 4))).
*buddy*   the block at offset off ^ 2**k: the other half of the block of order k + 1 that
          both came from.  The arena is the greedy tiling of [0, span) by the largest
          aligned power-of-two blocks that fit; a block whose buddy would leave the arena
          never merges.
*reserve* the blocks of that tiling not listed yet (from heap[M_RESERVE] on): the first is
          listed at the start, the next ones (in address order) only when no listed block
          is large enough, so that small requests do not go to the small tiling blocks at
          the range's end.
*lists*   one doubly linked free list per order, through the free blocks (next at b, prev at
          b + 4; 0 ends a list); bit k of heap[M_ORDER_MAP] says list k is non-empty.
*tags*    one host byte per 8-byte granule of the arena, at a block's offset: T_LIVE | k or
          T_FREE | k; 0 inside blocks.

malloc takes the head of the first non-empty list of order >= k (a bit scan) and splits it
in halves down to order k, listing every upper half.  free merges the block with its buddy
while the buddy is free and of the same order, then lists the result.

Invariants (checked by heap_check)
----------------------------------
    blocks tile [0, reserve): each starts at a multiple of its size with tag T_LIVE | k or
        T_FREE | k; interior tags are 0 (checked below the high-water mark)
    a free block's buddy is never a free block of the same order (they would have merged)
    every free block is in list k of its order, prev links match; bit k <=> list k non-empty
    free_bytes == sum of free block sizes; free_blocks == their number
    live_bytes == sum of nbytes of live blocks; mallocs - frees == number of live blocks

Cost: O(log span) per malloc and free.  Waste: a block is the next power of two above
nbytes + 4, so up to twice the request.
"""

import numpy as np

from vm32.errors import InvalidArgument
from vm32.heap.base import (
    FREED_MARK,
    HEAP_DOUBLE_FREE,
    HEAP_INVALID_FREE,
    HEAP_OK,
    M_BASE,
    M_CALLOCS,
    M_DEBUG,
    M_FAILED,
    M_FREES,
    M_LIMIT,
    M_LIVE_BYTES,
    M_MALLOCS,
    M_OWN,
    M_POLICY,
    M_REALLOCS,
    S_FOOTPRINT,
    S_FREE_LIST_LEN,
    S_HOLE_BYTES,
    S_LARGEST_HOLE,
    add_finding,
    common_stats,
    copy_words,
    fill_words,
    load,
    note_alloc,
    note_free,
    note_resize,
    store,
)
from vm32.heap.bits import load_byte, lsb, msb, store_byte
from vm32.jit import leaf_kernel

NAME = "buddy"
ID = 6
SUMMARY = "binary buddy: power-of-two blocks split and merged with their buddies, O(log n)"
PARAMS: dict = {}
"""Heap(policy="buddy") takes no parameters of its own."""

HEADER = 4
MIN_ORDER = 3
MAX_ORDER = 32
T_LIVE = 0x40
T_FREE = 0x80
T_ORDER = 0x3F

M_ORIGIN = M_OWN  # O = base + 4
M_ARENA = M_OWN + 1  # span of the arena, a multiple of 8
M_HIGH = M_OWN + 2  # highest end of a block ever allocated: footprint = M_HIGH - base
M_FREE_BYTES = M_OWN + 3
M_FREE_BLOCKS = M_OWN + 4
M_ORDER_MAP = M_OWN + 5
M_RESERVE = M_OWN + 6  # arena offset of the reserve: the greedy tiling's blocks not yet listed
M_HEADS = 32  # MAX_ORDER + 1 list heads
M_TAGS = M_HEADS + MAX_ORDER + 1

C_BAD_TAG = 1
C_MISALIGNED = 2
C_INTERIOR_TAG = 3
C_UNMERGED = 4
C_LIVE_BYTES = 5
C_LIVE_BLOCKS = 6
C_FREE_BYTES = 7
C_FREE_BLOCKS = 8
C_LIST_NOT_FREE = 9
C_LIST_BAD_PREV = 10
C_LIST_COUNT = 11
C_ORDER_MAP = 12

CHECK_MESSAGES = {
    C_BAD_TAG: "block at offset {a:#x} has tag {v:#x}: not live or free of an order 3..32 inside the arena",
    C_MISALIGNED: "block at offset {a:#x} of order {v} does not start at a multiple of its size",
    C_INTERIOR_TAG: "granule at offset {a:#x} inside a block has tag {v:#x}",
    C_UNMERGED: "free block at offset {a:#x} of order {v} has a free buddy of the same order",
    C_LIVE_BYTES: "live blocks hold {a} bytes but the counter says {v}",
    C_LIVE_BLOCKS: "{a} live blocks but the counter says {v}",
    C_FREE_BYTES: "free blocks hold {a} bytes but the counter says {v}",
    C_FREE_BLOCKS: "{a} free blocks but the counter says {v}",
    C_LIST_NOT_FREE: "list {v} holds {a:#x}, which is not a free block of that order",
    C_LIST_BAD_PREV: "free block {a:#x} has prev link {v:#x}, not its predecessor in the list",
    C_LIST_COUNT: "the lists hold {a} blocks but the walk found {v} free blocks (or a cycle)",
    C_ORDER_MAP: "bit {a} of the order map is wrong (map {v:#x})",
}


def state_words(base: int, limit: int) -> int:
    """Length of the state array of a buddy heap over [base, limit)."""
    return M_TAGS + ((limit - base) >> 6) + 2


# ---------------------------------------------------------------- accessors


@leaf_kernel
def tag_at(heap, off):
    """The tag of arena offset `off` (a multiple of 8 below the arena's span)."""
    return load_byte(heap, np.uint64(8 * M_TAGS + (off >> 3)))


@leaf_kernel
def set_tag(heap, off, tag):
    """Set the tag of arena offset `off`."""
    store_byte(heap, np.uint64(8 * M_TAGS + (off >> 3)), tag)


@leaf_kernel
def order_of(nbytes):
    """The order of the block that holds `nbytes` (>= 0) behind its 4-byte header."""
    return max(np.int64(MIN_ORDER), msb(np.int64(nbytes) + HEADER - 1) + 1)


@leaf_kernel
def push(mem, heap, off, k):
    """List the block at offset `off` as free, of order k."""
    b = heap[M_ORIGIN] + off
    head = heap[M_HEADS + k]
    store(mem, b, head)
    store(mem, b + 4, 0)
    if head != 0:
        store(mem, head + 4, b)
    heap[M_HEADS + k] = b
    heap[M_ORDER_MAP] |= np.int64(1) << k
    set_tag(heap, off, T_FREE | k)
    heap[M_FREE_BYTES] += np.int64(1) << k
    heap[M_FREE_BLOCKS] += 1


@leaf_kernel
def unlink(mem, heap, off, k):
    """Take free block at offset `off` of order k out of its list; clears its tag."""
    b = heap[M_ORIGIN] + off
    nxt = load(mem, b)
    prv = load(mem, b + 4)
    if nxt != 0:
        store(mem, nxt + 4, prv)
    if prv != 0:
        store(mem, prv, nxt)
    else:
        heap[M_HEADS + k] = nxt
        if nxt == 0:
            heap[M_ORDER_MAP] &= ~(np.int64(1) << k)
    set_tag(heap, off, 0)
    heap[M_FREE_BYTES] -= np.int64(1) << k
    heap[M_FREE_BLOCKS] -= 1


@leaf_kernel
def greedy_order(off, span):
    """Order of the largest block at offset `off` that is aligned and fits in [0, span)."""
    k = np.int64(MAX_ORDER)
    if off != 0:
        k = min(k, lsb(off))
    while k >= MIN_ORDER and off + (np.int64(1) << k) > span:
        k -= 1
    return k


@leaf_kernel
def release_reserve(mem, heap, k):
    """List blocks of the reserve (in address order) until one of order >= k is listed;
    False when the reserve runs out first."""
    span = heap[M_ARENA]
    while True:
        off = heap[M_RESERVE]
        j = greedy_order(off, span)
        if j < MIN_ORDER:
            return False
        push(mem, heap, off, j)
        heap[M_RESERVE] = off + (np.int64(1) << j)
        if j >= k:
            return True


@leaf_kernel
def heap_init(mem, heap, base, limit):
    """Set up an empty heap over [base, limit) in a state from `new_state`: the first block of
    the greedy tiling listed (its links written into `mem`), the rest in reserve."""
    heap[M_BASE] = base
    heap[M_LIMIT] = limit
    heap[2] = limit - base  # M_SPAN
    origin = base + HEADER
    heap[M_ORIGIN] = origin
    heap[M_ARENA] = (limit - origin) & ~np.int64(7)
    heap[M_HIGH] = base
    heap[M_RESERVE] = 0
    release_reserve(mem, heap, 0)


# ---------------------------------------------------------------- kernels


@leaf_kernel
def heap_malloc(mem, heap, nbytes):
    """Address of a new block of `nbytes` bytes, or 0 if no free block is large enough."""
    if nbytes < 0 or nbytes > heap[M_ARENA]:
        heap[M_FAILED] += 1
        return np.int64(0)
    k = order_of(nbytes)
    if k > MAX_ORDER:
        heap[M_FAILED] += 1
        return np.int64(0)
    avail = heap[M_ORDER_MAP] & (np.int64(-1) << k)
    if avail == 0:
        if not release_reserve(mem, heap, k):
            heap[M_FAILED] += 1
            return np.int64(0)
        avail = heap[M_ORDER_MAP] & (np.int64(-1) << k)
    j = lsb(avail)
    b = heap[M_HEADS + j]
    off = b - heap[M_ORIGIN]
    unlink(mem, heap, off, j)
    while j > k:
        j -= 1
        push(mem, heap, off + (np.int64(1) << j), j)
    set_tag(heap, off, T_LIVE | k)
    store(mem, b, nbytes)
    end = b + (np.int64(1) << k)
    if end > heap[M_HIGH]:
        heap[M_HIGH] = end
    note_alloc(heap, np.int64(nbytes))
    return b + HEADER


@leaf_kernel
def heap_calloc(mem, heap, nbytes):
    """Like heap_malloc, with the first nbytes (rounded up to words) zeroed."""
    p = heap_malloc(mem, heap, nbytes)
    if p != 0:
        fill_words(mem, p, (np.int64(nbytes) + 3) >> 2, 0)
        heap[M_CALLOCS] += 1
    return p


@leaf_kernel
def live_offset(heap, addr):
    """Arena offset of the block whose payload would be `addr`, or -1 if none could be."""
    off = np.int64(addr) - HEADER - heap[M_ORIGIN]
    if off < 0 or off >= heap[M_ARENA] or (off & 7) != 0:
        return np.int64(-1)
    return off


@leaf_kernel
def heap_is_live(heap, addr):
    """True iff `addr` (any int64) is the payload address of a live block. O(1)."""
    off = live_offset(heap, addr)
    return off >= 0 and (tag_at(heap, off) & T_LIVE) != 0


@leaf_kernel
def heap_addr_status(heap, addr):
    """HEAP_OK if `addr` is live, else HEAP_DOUBLE_FREE or HEAP_INVALID_FREE."""
    off = live_offset(heap, addr)
    if off < 0:
        return HEAP_INVALID_FREE
    t = tag_at(heap, off)
    if t & T_LIVE:
        return HEAP_OK
    return HEAP_DOUBLE_FREE if t & T_FREE else HEAP_INVALID_FREE


@leaf_kernel
def heap_size_of(mem, heap, addr):
    """The nbytes requested for live block `addr` (the caller has checked it is live)."""
    return load(mem, np.int64(addr) - HEADER)


@leaf_kernel
def heap_free(mem, heap, addr):
    """Free live block `addr`, merged with free buddies; HEAP_OK, or HEAP_INVALID_FREE /
    HEAP_DOUBLE_FREE (nothing changed)."""
    off = live_offset(heap, addr)
    if off < 0 or (tag_at(heap, off) & T_LIVE) == 0:
        return heap_addr_status(heap, addr)
    k = np.int64(tag_at(heap, off) & T_ORDER)
    note_free(heap, load(mem, np.int64(addr) - HEADER))
    if heap[M_DEBUG] != 0 and k > MIN_ORDER:
        fill_words(mem, np.int64(addr) + 4, ((np.int64(1) << k) - 8) >> 2, FREED_MARK)  # (links: 2 words)
    set_tag(heap, off, 0)
    while k < MAX_ORDER:
        bo = off ^ (np.int64(1) << k)
        if bo + (np.int64(1) << k) > heap[M_ARENA] or tag_at(heap, bo) != (T_FREE | k):
            break
        unlink(mem, heap, bo, k)
        off = min(off, bo)
        k += 1
    push(mem, heap, off, k)
    return HEAP_OK


@leaf_kernel
def heap_realloc(mem, heap, addr, nbytes):
    """Resize live block `addr` to `nbytes` keeping min(old, new) bytes; returns the (maybe
    moved) address, 0 if no room (block intact), -HEAP_INVALID_FREE / -HEAP_DOUBLE_FREE for
    a bad address.  In place while the order stays the same, else malloc, copy, free."""
    if not heap_is_live(heap, addr):
        return -heap_addr_status(heap, addr)
    if nbytes < 0 or nbytes > heap[M_ARENA]:
        heap[M_FAILED] += 1
        return np.int64(0)
    p = np.int64(addr)
    old = load(mem, p - HEADER)
    if order_of(np.int64(nbytes)) == order_of(old):
        store(mem, p - HEADER, nbytes)
        note_resize(heap, old, np.int64(nbytes))
        return p
    q = heap_malloc(mem, heap, nbytes)
    if q == 0:
        return np.int64(0)
    copy_words(mem, q, p, (min(old, np.int64(nbytes)) + 3) >> 2)
    heap_free(mem, heap, p)
    heap[M_REALLOCS] += 1
    return q


@leaf_kernel
def heap_largest_free(mem, heap):
    """Size of the largest free block (header included)."""
    m = heap[M_ORDER_MAP]
    best = np.int64(0) if m == 0 else np.int64(1) << msb(m)
    k = greedy_order(heap[M_RESERVE], heap[M_ARENA])
    return max(best, np.int64(1) << k if k >= MIN_ORDER else np.int64(0))


@leaf_kernel
def heap_block_bytes(heap, nbytes):
    """The bytes a live block of `nbytes` occupies: the power of two that holds it."""
    return np.int64(1) << order_of(nbytes)


@leaf_kernel
def heap_footprint(heap):
    """Bytes from base to the high-water mark of the blocks (the state only: never touches memory)."""
    return heap[M_HIGH] - heap[M_BASE]


@leaf_kernel
def heap_stats(mem, heap, out):
    """Fill out[S_*] (vm32.heap.base); holes are the parts of free blocks below the
    high-water mark."""
    common_stats(heap, out)
    high = heap[M_HIGH]
    out[S_FOOTPRINT] = heap_footprint(heap)
    holes = np.int64(0)
    largest = np.int64(0)
    for k in range(MIN_ORDER, MAX_ORDER + 1):
        b = heap[M_HEADS + k]
        while b != 0:
            inside = min(b + (np.int64(1) << k), high) - b
            if inside > 0:
                holes += inside
                largest = max(largest, inside)
            b = load(mem, b)
    out[S_HOLE_BYTES] = holes
    out[S_LARGEST_HOLE] = largest
    out[S_FREE_LIST_LEN] = heap[M_FREE_BLOCKS]


@leaf_kernel
def heap_check(mem, heap, out):
    """Walk every block of the arena and every list; write up to len(out) findings (code,
    address, value); return their number (0: healthy)."""
    n = 0
    span = heap[M_RESERVE]
    inner_end = heap[M_HIGH] - heap[M_ORIGIN]  # interior tags are checked below this
    live_bytes = np.int64(0)
    live_blocks = np.int64(0)
    free_bytes = np.int64(0)
    free_blocks = np.int64(0)
    off = np.int64(0)
    while off + (np.int64(1) << MIN_ORDER) <= span:
        t = tag_at(heap, off)
        k = np.int64(t & T_ORDER)
        size = np.int64(1) << k
        kind = t & (T_LIVE | T_FREE)
        if kind == 0 or kind == (T_LIVE | T_FREE) or k < MIN_ORDER or k > MAX_ORDER or off + size > span:
            return add_finding(out, n, C_BAD_TAG, off, t)
        if off & (size - 1):
            n = add_finding(out, n, C_MISALIGNED, off, k)
        if t & T_LIVE:
            live_bytes += load(mem, heap[M_ORIGIN] + off)
            live_blocks += 1
        else:
            free_bytes += size
            free_blocks += 1
            bo = off ^ size
            if k < MAX_ORDER and bo + size <= heap[M_ARENA] and tag_at(heap, bo) == (T_FREE | k):
                n = add_finding(out, n, C_UNMERGED, off, k)
        for g in range(off + 8, min(off + size, inner_end), 8):
            if tag_at(heap, g) != 0:
                n = add_finding(out, n, C_INTERIOR_TAG, g, tag_at(heap, g))
        off += size
    if live_bytes != heap[M_LIVE_BYTES]:
        n = add_finding(out, n, C_LIVE_BYTES, live_bytes, heap[M_LIVE_BYTES])
    if live_blocks != heap[M_MALLOCS] - heap[M_FREES]:
        n = add_finding(out, n, C_LIVE_BLOCKS, live_blocks, heap[M_MALLOCS] - heap[M_FREES])
    if free_bytes != heap[M_FREE_BYTES]:
        n = add_finding(out, n, C_FREE_BYTES, free_bytes, heap[M_FREE_BYTES])
    if free_blocks != heap[M_FREE_BLOCKS]:
        n = add_finding(out, n, C_FREE_BLOCKS, free_blocks, heap[M_FREE_BLOCKS])
    return check_lists(mem, heap, out, n, free_blocks)


@leaf_kernel
def check_lists(mem, heap, out, n, expected):
    """The list half of heap_check: every listed block is free of the list's order."""
    found = np.int64(0)
    for k in range(MAX_ORDER + 1):
        b = heap[M_HEADS + k]
        if (b != 0) != (((heap[M_ORDER_MAP] >> k) & 1) != 0):
            n = add_finding(out, n, C_ORDER_MAP, k, heap[M_ORDER_MAP])
        prv = np.int64(0)
        while b != 0:
            off = b - heap[M_ORIGIN]
            if off < 0 or off >= heap[M_ARENA] or (off & 7) != 0 or tag_at(heap, off) != (T_FREE | k):
                n = add_finding(out, n, C_LIST_NOT_FREE, b, k)
                break
            if load(mem, b + 4) != prv:
                n = add_finding(out, n, C_LIST_BAD_PREV, b, load(mem, b + 4))
            found += 1
            if found > expected:
                return add_finding(out, n, C_LIST_COUNT, found, expected)
            prv = b
            b = load(mem, b)
    if found != expected:
        n = add_finding(out, n, C_LIST_COUNT, found, expected)
    return n


def new_state(base: int, limit: int, *, debug: bool = False, **params) -> np.ndarray:
    """A buddy state over [base, limit) ready for `heap_init` (the policy has no parameters)."""
    if params:
        raise InvalidArgument(f"the buddy policy takes no parameters, not {', '.join(sorted(params))}")
    state = np.zeros(state_words(base, limit), dtype=np.int64)
    state[M_DEBUG] = int(debug)
    state[M_POLICY] = ID
    return state
