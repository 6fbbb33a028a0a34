"""The `recycler` policy: a bump pointer plus one LIFO stack of freed blocks per block size.

The 32-bit design this project began from.  A block is never split and never merged: a
freed block waits on the stack of its exact size for a request of that size; anything
else comes from the bump pointer, until the range is used up.  On the UM's traces (few
sizes, freed soon) that is the fastest policy there is; on a mix of sizes every freed
block of an unusual size is space lost for good.  Kept so that users can see both.

Words
-----
*block*   [p - 4, p - 4 + size) named by its payload address p (8-aligned); size =
          (nbytes + 11) & ~7, as in tlsf: the header word p - 4 holds nbytes, live or free.
*top*     the bump pointer: the payload address of the next new block (M_TOP);
          footprint = top - 4 - base.
*stack*   a LIFO list of freed blocks of one size, linked through their first payload word
          (0 ends it): heap[M_HEADS + size / 8] for sizes below LARGE; larger freed blocks
          share one overflow list, searched for an exact size.
*tags*    one byte per 8-byte granule of the range, by payload address: T_LIVE or T_FREE
          where a block starts, 0 elsewhere.

Invariants (checked by heap_check)
----------------------------------
    blocks tile [base + 4, top - 4): each starts with T_LIVE or T_FREE, interior tags 0
    size == (nbytes + 11) & ~7 for every block (nbytes in its header)
    every T_FREE block is on exactly the stack of its size (or the overflow list if size
        >= LARGE); free_bytes == sum of their sizes, free_blocks == their number
    live_bytes == sum of nbytes of live blocks; mallocs - frees == number of live blocks

Cost: malloc and free O(1) (a pop or a push), but for the overflow list (O(its length)).
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
    M_SPAN,
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
from vm32.heap.bits import load_byte, prefetch_word, store_byte
from vm32.jit import leaf_kernel, outline_leaf_kernel

NAME = "recycler"
ID = 5
SUMMARY = "bump pointer + per-size LIFO stacks: no split, no merge (fast, wasteful on mixed sizes)"
PARAMS: dict = {}
"""Heap(policy="recycler") takes no parameters of its own."""

ALIGN = 8
HEADER = 4
T_LIVE = 1
T_FREE = 2
CLASSES = 1 << 16  # stacks for block sizes below LARGE
LARGE = CLASSES * ALIGN  # 512 KiB: larger freed blocks go to the overflow list

M_TOP = M_OWN  # payload address of the next new block
M_FREE_BYTES = M_OWN + 1
M_FREE_BLOCKS = M_OWN + 2
M_OVERFLOW = M_OWN + 3  # head of the overflow list
M_TAG_ORIGIN = M_OWN + 4  # byte index of the tag of payload p: M_TAG_ORIGIN + p // 8
M_HEADS = 32
M_TAGS = M_HEADS + CLASSES

C_BAD_TAG = 1
C_BAD_SIZE = 2
C_INTERIOR_TAG = 3
C_LIVE_BYTES = 4
C_LIVE_BLOCKS = 5
C_FREE_BYTES = 6
C_FREE_BLOCKS = 7
C_STACK_NOT_FREE = 8
C_WRONG_STACK = 9
C_STACK_COUNT = 10
C_TAG_BEYOND_TOP = 11

CHECK_MESSAGES = {
    C_BAD_TAG: "block at {a:#x} has tag {v}: neither live nor free",
    C_BAD_SIZE: "block at {a:#x} has a bad size {v}",
    C_INTERIOR_TAG: "granule {a:#x} inside a block has tag {v}",
    C_LIVE_BYTES: "live blocks hold {a} bytes but the counter says {v}",
    C_LIVE_BLOCKS: "{a} live blocks but the counter says {v}",
    C_FREE_BYTES: "freed blocks hold {a} bytes but the counter says {v}",
    C_FREE_BLOCKS: "{a} freed blocks but the counter says {v}",
    C_STACK_NOT_FREE: "stack {v} holds {a:#x}, which is not a freed block in range",
    C_WRONG_STACK: "block {a:#x} is on stack {v}, not the one of its size",
    C_STACK_COUNT: "the stacks hold {a} blocks but the walk found {v} freed blocks (or a cycle)",
    C_TAG_BEYOND_TOP: "granule {a:#x} at or above top has tag {v}",
}


def state_words(base: int, limit: int) -> int:
    """Length of the state array of a recycler heap over [base, limit)."""
    return M_TAGS + ((limit - base) >> 6) + 2


@leaf_kernel
def heap_init(mem, heap, base, limit):
    """Set up an empty heap over [base, limit) in a state from `new_state` (touches no memory)."""
    heap[M_BASE] = base
    heap[M_LIMIT] = limit
    heap[M_SPAN] = limit - base
    heap[M_TOP] = base + ALIGN
    heap[M_TAG_ORIGIN] = 8 * M_TAGS - (base >> 3)


@leaf_kernel
def block_size(nbytes):
    """Size of the block that holds `nbytes` (header included, 8-aligned)."""
    return (nbytes + (HEADER + ALIGN - 1)) & ~(ALIGN - 1)


@leaf_kernel
def tag_of(heap, p):
    """The tag of payload address `p` (8-aligned, in range)."""
    return load_byte(heap, np.uint64(heap[M_TAG_ORIGIN] + (p >> 3)))


@leaf_kernel
def set_tag(heap, p, tag):
    """Set the tag of payload address `p`."""
    store_byte(heap, np.uint64(heap[M_TAG_ORIGIN] + (p >> 3)), tag)


@leaf_kernel
def take_overflow(mem, heap, size):
    """Unlink and return the first block of exactly `size` bytes on the overflow list, or 0."""
    prev = np.int64(0)
    p = heap[M_OVERFLOW]
    while p != 0:
        nxt = load(mem, p)
        if block_size(load(mem, p - HEADER)) == size:
            if prev == 0:
                heap[M_OVERFLOW] = nxt
            else:
                store(mem, prev, nxt)
            return p
        prev = p
        p = nxt
    return np.int64(0)


@leaf_kernel
def hand_out(mem, heap, p, nbytes):
    """Make block `p` live for `nbytes` bytes: its tag, its header, the counters."""
    set_tag(heap, p, T_LIVE)
    store(mem, p - HEADER, nbytes)
    note_alloc(heap, nbytes)


@leaf_kernel
def push_freed(mem, heap, i, p, size):
    """Push block `p` of `size` bytes, no longer live, on the list whose head is heap[i]."""
    store(mem, p, heap[i])
    heap[i] = p
    heap[M_FREE_BYTES] += size
    heap[M_FREE_BLOCKS] += 1
    set_tag(heap, p, T_FREE)


@leaf_kernel
def heap_malloc(mem, heap, nbytes):
    """Address of a new block of `nbytes` bytes: a freed block of its size, else a new one
    from the bump pointer; 0 if neither exists.

    The pop from a stack is this short function, which LLVM inlines into callers;
    everything else is one call (malloc_slow).
    """
    size = block_size(np.int64(nbytes))
    if np.uint64(size) < LARGE and nbytes >= 0:
        i = np.uint64(M_HEADS + (size >> 3))
        p = heap[i]
        if p != 0:
            nxt = load(mem, p)
            heap[i] = nxt
            prefetch_word(mem, nxt)  # the next pop of this size reads nxt's link: start now
            heap[M_FREE_BYTES] -= size
            heap[M_FREE_BLOCKS] -= 1
            hand_out(mem, heap, p, np.int64(nbytes))
            return p
    return malloc_slow(mem, heap, nbytes)


@outline_leaf_kernel
def malloc_slow(mem, heap, nbytes):
    """heap_malloc without a freed block below LARGE: the overflow list, else the bump pointer."""
    if nbytes < 0 or nbytes > heap[M_SPAN]:
        heap[M_FAILED] += 1
        return np.int64(0)
    size = block_size(np.int64(nbytes))
    p = take_overflow(mem, heap, size) if size >= LARGE else np.int64(0)
    if p != 0:
        heap[M_FREE_BYTES] -= size
        heap[M_FREE_BLOCKS] -= 1
    else:
        p = heap[M_TOP]
        if p + size > heap[M_LIMIT]:
            heap[M_FAILED] += 1
            return np.int64(0)
        heap[M_TOP] = p + size
    hand_out(mem, heap, p, np.int64(nbytes))
    return p


@leaf_kernel
def heap_calloc(mem, heap, nbytes):
    """Like heap_malloc, with the first nbytes (rounded up to words) zeroed."""
    p = heap_malloc(mem, heap, nbytes)
    if p != 0:
        fill_words(mem, p, (np.int64(nbytes) + 3) >> 2, 0)
        heap[M_CALLOCS] += 1
    return p


@leaf_kernel
def heap_is_live(heap, addr):
    """True iff `addr` (any int64) is the payload address of a live block. O(1), never faults."""
    # As tlsf's (vm32.heap.core): the granule index rotated right by 3 bits, so that one
    # unsigned compare checks range and alignment.
    x = np.uint64(np.int64(addr) - heap[M_BASE] - ALIGN)
    g = (x >> np.uint64(3)) | (x << np.uint64(61))
    if g >= np.uint64((heap[M_SPAN] - ALIGN) >> 3):
        return False
    return load_byte(heap, np.uint64(8 * M_TAGS + 1) + g) == T_LIVE


@leaf_kernel
def heap_addr_status(heap, addr):
    """HEAP_OK if `addr` is live, else HEAP_DOUBLE_FREE or HEAP_INVALID_FREE."""
    if heap_is_live(heap, addr):
        return HEAP_OK
    off = np.int64(addr) - heap[M_BASE]
    if off <= 0 or off >= heap[M_SPAN] or (off & 7) != 0:
        return HEAP_INVALID_FREE
    return HEAP_DOUBLE_FREE if tag_of(heap, np.int64(addr)) == T_FREE else HEAP_INVALID_FREE


@leaf_kernel
def heap_size_of(mem, heap, addr):
    """The nbytes requested for live block `addr` (the caller has checked it is live)."""
    return load(mem, np.int64(addr) - HEADER)


@leaf_kernel
def heap_free(mem, heap, addr):
    """Push live block `addr` on the stack of its size; HEAP_OK, or HEAP_INVALID_FREE /
    HEAP_DOUBLE_FREE (nothing changed).  The push below LARGE is this short function
    (inlined into callers); the rest is one call (free_slow)."""
    if heap_is_live(heap, addr) and heap[M_DEBUG] == 0:
        p = np.int64(addr)
        nbytes = load(mem, p - HEADER)
        size = block_size(nbytes)
        if size < LARGE:
            note_free(heap, nbytes)
            push_freed(mem, heap, np.uint64(M_HEADS + (size >> 3)), p, size)
            return HEAP_OK
    return free_slow(mem, heap, addr)


@outline_leaf_kernel
def free_slow(mem, heap, addr):
    """heap_free for a bad address (its status), a block of LARGE bytes or more (the overflow
    list), or any free of a debug heap (the freed payload filled with FREED_MARK)."""
    if not heap_is_live(heap, addr):
        return heap_addr_status(heap, addr)
    p = np.int64(addr)
    nbytes = load(mem, p - HEADER)
    size = block_size(nbytes)
    note_free(heap, nbytes)
    if heap[M_DEBUG] != 0 and size > ALIGN:
        fill_words(mem, p + 4, (size - 2 * HEADER) >> 2, FREED_MARK)  # (the link takes word p)
    push_freed(mem, heap, np.uint64(M_HEADS + (size >> 3) if size < LARGE else M_OVERFLOW), p, size)
    return HEAP_OK


@leaf_kernel
def heap_realloc(mem, heap, addr, nbytes):
    """Resize live block `addr` to `nbytes` keeping min(old, new) bytes; returns the (maybe
    moved) address, 0 if no room (block intact), -HEAP_INVALID_FREE / -HEAP_DOUBLE_FREE for
    a bad address.  In place when the block size stays the same, else malloc, copy, free."""
    if not heap_is_live(heap, addr):
        return -heap_addr_status(heap, addr)
    if nbytes < 0 or nbytes > heap[M_SPAN]:
        heap[M_FAILED] += 1
        return np.int64(0)
    p = np.int64(addr)
    old = load(mem, p - HEADER)
    if block_size(np.int64(nbytes)) == block_size(old):
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
def largest_stacked(mem, heap):
    """Size of the largest freed block (0 if none)."""
    best = np.int64(0)
    p = heap[M_OVERFLOW]
    while p != 0:
        best = max(best, block_size(load(mem, p - HEADER)))
        p = load(mem, p)
    if best == 0:
        for c in range(CLASSES - 1, 0, -1):
            if heap[M_HEADS + c] != 0:
                return np.int64(c) << 3
    return best


@leaf_kernel
def heap_largest_free(mem, heap):
    """The largest block one malloc can get: the room above top, or a freed block."""
    return max(heap[M_LIMIT] - heap[M_TOP], largest_stacked(mem, heap))


@leaf_kernel
def heap_footprint(heap):
    """Bytes from base to the high-water mark of the blocks (the state only: never touches memory)."""
    return heap[M_TOP] - HEADER - heap[M_BASE]


@leaf_kernel
def heap_stats(mem, heap, out):
    """Fill out[S_*] (vm32.heap.base); the holes are the freed blocks."""
    common_stats(heap, out)
    out[S_FOOTPRINT] = heap_footprint(heap)
    out[S_HOLE_BYTES] = heap[M_FREE_BYTES]
    out[S_LARGEST_HOLE] = largest_stacked(mem, heap)
    out[S_FREE_LIST_LEN] = heap[M_FREE_BLOCKS]


@leaf_kernel
def heap_block_bytes(heap, nbytes):
    """The bytes a live block of `nbytes` occupies (header and alignment included)."""
    return block_size(nbytes)


@leaf_kernel
def heap_check(mem, heap, out):
    """Walk every block and stack; write up to len(out) findings (code, address, value);
    return their number (0: healthy)."""
    n = 0
    top = heap[M_TOP]
    live_bytes = np.int64(0)
    live_blocks = np.int64(0)
    free_bytes = np.int64(0)
    free_blocks = np.int64(0)
    p = heap[M_BASE] + ALIGN
    while p < top:
        t = tag_of(heap, p)
        size = block_size(load(mem, p - HEADER))
        if t == T_LIVE:
            live_bytes += load(mem, p - HEADER)
            live_blocks += 1
        elif t == T_FREE:
            free_bytes += size
            free_blocks += 1
        else:
            return add_finding(out, n, C_BAD_TAG, p, t)
        if p + size > top:
            return add_finding(out, n, C_BAD_SIZE, p, size)
        for a in range(p + ALIGN, p + size, ALIGN):
            if tag_of(heap, a) != 0:
                n = add_finding(out, n, C_INTERIOR_TAG, a, tag_of(heap, a))
        p += size
    for a in range(top, min(top + 8 * ALIGN, heap[M_LIMIT]), ALIGN):
        if tag_of(heap, a) != 0:
            n = add_finding(out, n, C_TAG_BEYOND_TOP, a, tag_of(heap, a))
    if live_bytes != heap[M_LIVE_BYTES]:
        n = add_finding(out, n, C_LIVE_BYTES, live_bytes, heap[M_LIVE_BYTES])
    if live_blocks != heap[M_MALLOCS] - heap[M_FREES]:
        n = add_finding(out, n, C_LIVE_BLOCKS, live_blocks, heap[M_MALLOCS] - heap[M_FREES])
    if free_bytes != heap[M_FREE_BYTES]:
        n = add_finding(out, n, C_FREE_BYTES, free_bytes, heap[M_FREE_BYTES])
    if free_blocks != heap[M_FREE_BLOCKS]:
        n = add_finding(out, n, C_FREE_BLOCKS, free_blocks, heap[M_FREE_BLOCKS])
    return check_stacks(mem, heap, out, n, free_blocks)


@leaf_kernel
def check_stacks(mem, heap, out, n, expected):
    """The stack half of heap_check: every stacked block is free and on its size's stack."""
    found = np.int64(0)
    for c in range(CLASSES + 1):
        i = M_HEADS + c if c < CLASSES else M_OVERFLOW
        p = heap[i]
        while p != 0:
            off = p - heap[M_BASE]
            if off <= 0 or p >= heap[M_TOP] or (off & 7) != 0 or tag_of(heap, p) != T_FREE:
                n = add_finding(out, n, C_STACK_NOT_FREE, p, c)
                break
            size = block_size(load(mem, p - HEADER))
            if (c < CLASSES and size != c << 3) or (c == CLASSES and size < LARGE):
                n = add_finding(out, n, C_WRONG_STACK, p, c)
            found += 1
            if found > expected:
                return add_finding(out, n, C_STACK_COUNT, found, expected)
            p = load(mem, p)
    if found != expected:
        n = add_finding(out, n, C_STACK_COUNT, found, expected)
    return n


def new_state(base: int, limit: int, *, debug: bool = False, **params) -> np.ndarray:
    """A recycler state over [base, limit) ready for `heap_init` (the policy has no parameters)."""
    if params:
        raise InvalidArgument(f"the recycler policy takes no parameters, not {', '.join(sorted(params))}")
    state = np.zeros(state_words(base, limit), dtype=np.int64)
    state[M_DEBUG] = int(debug)
    state[M_POLICY] = ID
    return state
