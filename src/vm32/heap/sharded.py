"""The `sharded` policy: mimalloc-style free-list sharding for small blocks, tlsf for the rest.

Small requests (a block of at most SMALL_MAX bytes) come from *pages*: PAGE-byte,
PAGE-aligned runs of the range, each holding slots of one size class, each with its own
free lists (the free list is sharded by page, as in mimalloc: Leijen, Zorn and de Moura,
"Mimalloc: Free List Sharding in Action", 2019).  A page's slots are handed out in address
order from its bump pointer first, then from its *free* list; a free pushes the slot on
the page's *local* list, which becomes the free list when the free list runs dry, so a
page reuses its own slots, in batches.  Pages come from the top of the range down (the
*arena*); a page whose slots are all free again is retired to the empty-page stack (unless
it is its class's first page) and serves any class next.  Larger blocks are tlsf's
(vm32.heap.core), over the range below the arena: this state is a tlsf state whose limit
is the arena's low end, plus this policy's words after tlsf's.

Words
-----
*class*   c in [0, CLASSES): slot size class_size(c): 8, 16, ..., 128 (one class per 8 bytes),
          then four per power of two up to SMALL_MAX (160, 192, 224, 256, 320, ...); a
          block of size = (nbytes + 11) & ~7 (as tlsf's) goes to the smallest class >= size.
*arena*   [heap[M_ARENA_LOW], heap[M_ARENA_TOP]); ARENA_TOP = limit rounded down to PAGE;
          page k is [ARENA_TOP - (k + 1) * PAGE, ARENA_TOP - k * PAGE), so the page of an
          address a is k = (ARENA_TOP - 1 - a) >> PAGE_LOG (one shift: no search).
          tlsf's limit heap[M_LIMIT] == ARENA_LOW: the arena grows down while tlsf's
          high-water mark stays below it.
*slot*    slot i of page k with class size s: payload q = page start + 8 + i * s, header
          word q - 4 (nbytes, as every policy); i < slots(c) = (PAGE - 4) // s.
*record*  eight words per page from heap[M_REC0]: R_CLASS (c + 1; 0 for an empty page),
          R_FREE and R_LOCAL (heads of its free and local lists, linked through the
          slots' first payload word, 0 ends), R_BUMP (payload of the next never-used slot,
          0 once all are carved), R_USED (live slots), R_NEXT / R_PREV (its class's queue:
          record indices, 0 ends; R_NEXT links the empty-page stack too), R_FULL (1 while
          off the queue).
*queue*   heap[heap[M_QUEUE] + c]: the record of the first page of class c that may have a free
          slot; malloc's fast path pops that page's free list.
*tags*    tlsf's tag map, one byte per granule: tlsf's T_LIVE, T_FREE, ... below the arena;
          S_LIVE or S_FREE at a carved slot's payload in the arena, 0 elsewhere there.

Invariants (checked by heap_check)
----------------------------------
    tlsf's invariants (vm32.heap.core) over [base, ARENA_LOW), its counters being the
        common ones less the slots: live_bytes - slot_live_bytes, live blocks - live slots
    tlsf's high-water mark <= ARENA_LOW == ARENA_TOP - pages * PAGE == heap[M_LIMIT]
    for a page of class c: its carved slots are those below R_BUMP (all when R_BUMP == 0);
        tag == S_LIVE or S_FREE at each, 0 at every other granule of the page
    S_FREE slots of the page == the slots on its free list + its local list (each once)
    R_USED == its S_LIVE slots; block_size(nbytes) of each is in class c
    R_FULL == 1  =>  no free slot, no local slot, R_BUMP == 0
    a page with R_FULL == 0 is on its class's queue exactly once (prev links match)
    an empty page (R_CLASS == 0) is on the empty-page stack exactly once, with tags 0

Cost: malloc and free of a small block O(1) (a pop, a push, one page record); a page
becomes full, non-full or empty in O(1) but for the retire, which clears the page's
slot tags (O(slots)).  Large blocks: tlsf's O(1).
Waste: a slot rounds its block up to the class size (up to 25% above 128 bytes); each
class holds at least one partly used page; empty pages are reused by any class but not
given back to tlsf (the arena only grows).
Measured (benchmarks/heap_replay.py, medians of 5 rounds, tlsf and glibc in the same
rounds): sandmark's trace 6.6-6.9 ns at 1.36x peak live (tlsf 6.6-7.3 ns at 1.19x);
the mix 81-113 ns at 1.07x, the smallest footprint of every policy (tlsf 69-71 ns at
1.10x, glibc 1.08x): slots of one class packed in pages leave less free space between
large blocks than tlsf's small blocks do.
"""

import numpy as np

from vm32.errors import InvalidArgument
from vm32.heap import core
from vm32.heap.base import (
    FREED_MARK,
    HEAP_DOUBLE_FREE,
    HEAP_OK,
    M_BASE,
    M_CALLOCS,
    M_DEBUG,
    M_FAILED,
    M_LIMIT,
    M_LIVE_BYTES,
    M_MALLOCS,
    M_POLICY,
    M_SPAN,
    S_FOOTPRINT,
    S_FREE_LIST_LEN,
    S_HOLE_BYTES,
    S_LARGEST_HOLE,
    add_finding,
    copy_words,
    fill_words,
    load,
    note_alloc,
    note_free,
    note_resize,
    store,
)
from vm32.heap.bits import load_byte
from vm32.heap.core import ALIGN, HEADER, T_LIVE, block_size, set_tag, tag_of
from vm32.jit import inline_leaf_kernel, leaf_kernel, outline_leaf_kernel

NAME = "sharded"
ID = 7
SUMMARY = "mimalloc-style size-class pages with page-local free lists; large blocks in tlsf"
PARAMS: dict = {}
"""Heap(policy="sharded") takes no parameters of its own."""

PAGE_LOG = 13
PAGE = 1 << PAGE_LOG  # 8 KiB pages
SMALL_MAX = 1024  # blocks up to this size are slots; larger ones are tlsf's
EXACT_MAX = 128  # one class per 8 bytes up to here, then four per power of two
S_LIVE = 16  # tag of a live slot (tlsf's own tags are 1, 2, 4, 8)
S_FREE = 32  # tag of a free slot (on its page's free or local list)


def _class_sizes() -> list[int]:
    sizes = list(range(8, EXACT_MAX + 1, 8))
    while sizes[-1] < SMALL_MAX:
        step = sizes[-1] // 4 if sizes[-1] & (sizes[-1] - 1) == 0 else sizes[-1] - sizes[-2]
        sizes.append(sizes[-1] + step)
    return sizes


CLASS_SIZES = _class_sizes()
CLASSES = len(CLASS_SIZES)

# this policy's scalars: words of the common part that tlsf leaves unused
M_REC0 = 24  # index of page 0's record
M_ARENA_TOP = 25
M_ARENA_LOW = 26
M_PAGES = 27  # pages in the arena
M_EMPTY = 28  # record of the first empty page (0: none)
M_QUEUE = 29  # index of the CLASSES queue heads
M_CLASS_OF = 30  # index of the class-of-size table: SMALL_MAX // 8 + 1 words
M_CLASS_SIZE = 31  # index of the CLASSES class sizes

REC = 8
R_CLASS, R_FREE, R_LOCAL, R_BUMP, R_USED, R_NEXT, R_PREV, R_FULL = range(REC)

C_TLSF_LIMIT = 101
C_SLOT_TAG = 102
C_SLOT_SIZE = 103
C_PAGE_USED = 104
C_PAGE_LISTS = 105
C_PAGE_FULL = 106
C_QUEUE = 107
C_EMPTY_PAGE = 108
C_EMPTY_STACK = 109

CHECK_MESSAGES = {
    **core.CHECK_MESSAGES,
    C_TLSF_LIMIT: "tlsf's limit {a:#x} is not the arena's low end {v:#x} (or its high-water mark is above it)",
    C_SLOT_TAG: "granule {a:#x} of a page has tag {v}, not what its slot says",
    C_SLOT_SIZE: "slot {a:#x} holds {v} bytes, not a block of its page's class",
    C_PAGE_USED: "page at {a:#x} has {v} live slots, not its count",
    C_PAGE_LISTS: "page at {a:#x}: its free and local lists hold {v} slots, not its free slots (or a cycle)",
    C_PAGE_FULL: "page at {a:#x} is marked full but has free slots ({v})",
    C_QUEUE: "page at {a:#x} is not on its class's queue once, with its links ({v})",
    C_EMPTY_PAGE: "empty page at {a:#x} has a tag {v}",
    C_EMPTY_STACK: "the empty-page stack holds {a} pages but {v} pages are empty (or a cycle)",
}


def state_words(base: int, limit: int) -> int:
    """Length of the state array of a sharded heap over [base, limit)."""
    pages = max((limit & -PAGE) - base, 0) >> PAGE_LOG
    return core.state_words(base, limit) + CLASSES + SMALL_MAX // 8 + 1 + CLASSES + REC * (pages + 1)


# ---------------------------------------------------------------- pages


@leaf_kernel
def rec_of(heap, q):
    """Record index of the page holding arena address `q`."""
    return heap[M_REC0] + ((heap[M_ARENA_TOP] - 1 - q) >> PAGE_LOG) * REC


@leaf_kernel
def page_start(heap, r):
    """First byte of the page of record `r`."""
    return heap[M_ARENA_TOP] - ((r - heap[M_REC0]) // REC + 1) * PAGE


@leaf_kernel
def page_end_payload(heap, r, size):
    """One past the payload of the last slot of size `size` that fits in the page of record r."""
    start = page_start(heap, r)
    return start + ALIGN + ((PAGE - HEADER) // size) * size


@leaf_kernel
def queue_push(heap, c, r):
    """Put page `r` at the head of class c's queue."""
    head = heap[heap[M_QUEUE] + c]
    heap[r + R_NEXT] = head
    heap[r + R_PREV] = 0
    if head != 0:
        heap[head + R_PREV] = r
    heap[heap[M_QUEUE] + c] = r
    heap[r + R_FULL] = 0


@leaf_kernel
def queue_remove(heap, c, r):
    """Take page `r` off class c's queue."""
    nxt = heap[r + R_NEXT]
    prv = heap[r + R_PREV]
    if prv != 0:
        heap[prv + R_NEXT] = nxt
    else:
        heap[heap[M_QUEUE] + c] = nxt
    if nxt != 0:
        heap[nxt + R_PREV] = prv
    heap[r + R_NEXT] = 0
    heap[r + R_PREV] = 0


@leaf_kernel
def new_page(heap, c):
    """A page for class c (an empty one, else a new one below the arena), on the head of
    c's queue; its record, or 0 if tlsf's blocks leave no room."""
    r = heap[M_EMPTY]
    if r != 0:
        heap[M_EMPTY] = heap[r + R_NEXT]
    else:
        low = heap[M_ARENA_LOW] - PAGE
        if low < heap[core.M_HIGH] or low < heap[M_BASE] + ALIGN:
            return np.int64(0)
        heap[M_ARENA_LOW] = low
        heap[M_LIMIT] = low
        heap[M_PAGES] += 1
        r = heap[M_REC0] + (heap[M_PAGES] - 1) * REC
    heap[r + R_CLASS] = c + 1
    heap[r + R_FREE] = 0
    heap[r + R_LOCAL] = 0
    heap[r + R_USED] = 0
    heap[r + R_BUMP] = page_start(heap, r) + ALIGN
    queue_push(heap, c, r)
    return r


@leaf_kernel
def retire(heap, c, r):
    """Page `r` of class c has no live slot: off its queue, its slot tags cleared, onto the
    empty-page stack."""
    queue_remove(heap, c, r)
    size = heap[heap[M_CLASS_SIZE] + c]
    stop = heap[r + R_BUMP] if heap[r + R_BUMP] != 0 else page_end_payload(heap, r, size)
    for q in range(page_start(heap, r) + ALIGN, stop, size):
        set_tag(heap, q, 0)
    heap[r + R_CLASS] = 0
    heap[r + R_NEXT] = heap[M_EMPTY]
    heap[M_EMPTY] = r


@leaf_kernel
def take_slot(mem, heap, c, r):
    """A free slot of page `r` (class c): its free list, else its local list (which becomes
    the free list), else the bump pointer; 0 if the page is full."""
    q = heap[r + R_FREE]
    if q == 0:
        q = heap[r + R_LOCAL]
        heap[r + R_LOCAL] = 0
    if q != 0:
        heap[r + R_FREE] = load(mem, q)
        return q
    q = heap[r + R_BUMP]
    if q != 0:
        size = heap[heap[M_CLASS_SIZE] + c]
        nxt = q + size
        heap[r + R_BUMP] = nxt if nxt < page_end_payload(heap, r, size) else 0
    return q


# ---------------------------------------------------------------- kernels


@leaf_kernel
def heap_init(mem, heap, base, limit):
    """Set up an empty heap over [base, limit) in a state from `new_state`: tlsf's over the
    whole range (its limit then lowered to the empty arena's end), the class tables."""
    core.heap_init(mem, heap, base, limit)
    top = limit & -PAGE
    if top - PAGE < base + ALIGN:  # not one page: all of it is tlsf's
        top = limit
    heap[M_ARENA_TOP] = top
    heap[M_ARENA_LOW] = top
    heap[M_LIMIT] = top
    first = core.M_TAGS + ((limit - base) >> 6) + 2  # core.state_words
    heap[M_QUEUE] = first
    heap[M_CLASS_OF] = first + CLASSES
    heap[M_CLASS_SIZE] = first + CLASSES + SMALL_MAX // 8 + 1
    heap[M_REC0] = heap[M_CLASS_SIZE] + CLASSES
    c = 0
    for i in range(CLASSES):
        heap[heap[M_CLASS_SIZE] + i] = class_size_at(i)
    for s8 in range(SMALL_MAX // 8 + 1):
        while c < CLASSES - 1 and heap[heap[M_CLASS_SIZE] + c] < s8 * 8:
            c += 1
        heap[heap[M_CLASS_OF] + s8] = c


@leaf_kernel
def class_size_at(i):
    """class_size(i): one class per 8 bytes to EXACT_MAX, then four per power of two."""
    if i < EXACT_MAX // 8:
        return np.int64(8 * (i + 1))
    j = i - EXACT_MAX // 8
    k = np.int64(EXACT_MAX) << (j // 4)
    return k + (k >> 2) * (j % 4 + 1)


@inline_leaf_kernel
def heap_malloc(mem, heap, nbytes):
    """Address of a new block of `nbytes` bytes, or 0 if no room: a slot popped off the free
    list (or the local list) of its class's first page (this short function, inlined into
    callers), else malloc_slow; a large block is tlsf's general path."""
    size = block_size(np.int64(nbytes))
    if np.uint64(size) > SMALL_MAX or nbytes < 0:  # tlsf's, past its caches (which hold <= 256 bytes)
        return core.malloc_general(mem, heap, nbytes)
    c = heap[np.uint64(heap[M_CLASS_OF] + (size >> 3))]
    r = heap[np.uint64(heap[M_QUEUE] + c)]
    if r != 0:
        q = heap[np.uint64(r + R_FREE)]
        if q == 0:  # the local list becomes the free list
            q = heap[np.uint64(r + R_LOCAL)]
            heap[np.uint64(r + R_LOCAL)] = 0
        if q != 0:
            heap[np.uint64(r + R_FREE)] = load(mem, q)
            heap[np.uint64(r + R_USED)] += 1
            set_tag(heap, q, S_LIVE)
            store(mem, q - HEADER, nbytes)
            note_alloc(heap, np.int64(nbytes))
            return q
    return malloc_slow(mem, heap, nbytes)


@outline_leaf_kernel
def malloc_slow(mem, heap, nbytes):
    """heap_malloc without a slot on the first page's free list: that page's local list or
    bump pointer, the class's other pages (dropping full ones from the queue), a new page;
    tlsf for large blocks (and small ones when no page can be had)."""
    size = block_size(np.int64(nbytes))
    if nbytes < 0 or size > SMALL_MAX:
        return core.heap_malloc(mem, heap, nbytes)
    c = heap[heap[M_CLASS_OF] + (size >> 3)]
    q = np.int64(0)
    r = heap[heap[M_QUEUE] + c]
    while r != 0:
        q = take_slot(mem, heap, c, r)
        if q != 0:
            break
        nxt = heap[r + R_NEXT]
        queue_remove(heap, c, r)
        heap[r + R_FULL] = 1
        r = nxt
    if q == 0:
        r = new_page(heap, c)
        if r == 0:
            return core.heap_malloc(mem, heap, nbytes)
        q = take_slot(mem, heap, c, r)
    elif heap[heap[M_QUEUE] + c] != r:  # the page that served goes first: the next malloc pops it
        queue_remove(heap, c, r)
        queue_push(heap, c, r)
    heap[r + R_USED] += 1
    set_tag(heap, q, S_LIVE)
    store(mem, q - HEADER, nbytes)
    note_alloc(heap, np.int64(nbytes))
    return q


@inline_leaf_kernel
def heap_calloc(mem, heap, nbytes):
    """Like heap_malloc, with the first nbytes (rounded up to words) zeroed."""
    p = heap_malloc(mem, heap, nbytes)
    if p != 0:
        fill_words(mem, p, (np.int64(nbytes) + 3) >> 2, 0)
        heap[M_CALLOCS] += 1
    return p


@inline_leaf_kernel
def tag_at(heap, addr):
    """The tag of `addr` (any int64) if it is an 8-aligned payload address in range, else 0."""
    x = np.uint64(np.int64(addr) - heap[M_BASE] - ALIGN)  # as core.heap_is_live
    g = (x >> np.uint64(3)) | (x << np.uint64(61))
    if g >= np.uint64((heap[M_SPAN] - ALIGN) >> 3):
        return 0
    return load_byte(heap, np.uint64(8 * core.M_TAGS + 1) + g)


@inline_leaf_kernel
def heap_is_live(heap, addr):
    """True iff `addr` (any int64) is the payload address of a live block (slot or tlsf's)."""
    return (tag_at(heap, addr) & (T_LIVE | S_LIVE)) != 0


@inline_leaf_kernel
def heap_size_of(mem, heap, addr):
    """The nbytes requested for live block `addr` (the caller has checked it is live)."""
    return load(mem, np.int64(addr) - HEADER)


@leaf_kernel
def heap_addr_status(heap, addr):
    """HEAP_OK if `addr` is live, else HEAP_DOUBLE_FREE or HEAP_INVALID_FREE."""
    t = tag_at(heap, addr)
    if t & (T_LIVE | S_LIVE):
        return HEAP_OK
    if t & S_FREE:
        return HEAP_DOUBLE_FREE
    return core.addr_status(heap, addr)


@inline_leaf_kernel
def heap_free(mem, heap, addr):
    """Free live block `addr`; HEAP_OK, or HEAP_INVALID_FREE / HEAP_DOUBLE_FREE (nothing
    changed).  A slot goes on its page's local list (this short function, inlined into
    callers); a page that was full, or is now unused and not its class's first page (to be
    retired), and everything else, is free_slow's."""
    t = tag_at(heap, addr)
    if t == T_LIVE:  # tlsf's block, merged at once (its caches would hold <= 256 bytes)
        return core.free_slow(mem, heap, addr)
    if t == S_LIVE and heap[M_DEBUG] == 0:
        q = np.int64(addr)
        r = rec_of(heap, q)
        used = heap[r + R_USED] - 1
        if heap[r + R_FULL] == 0 and (used != 0 or heap[heap[M_QUEUE] + heap[r + R_CLASS] - 1] == r):
            note_free(heap, load(mem, q - HEADER))
            store(mem, q, heap[r + R_LOCAL])
            heap[r + R_LOCAL] = q
            heap[r + R_USED] = used
            set_tag(heap, q, S_FREE)
            return HEAP_OK
    return free_slow(mem, heap, addr)


@outline_leaf_kernel
def free_slow(mem, heap, addr):
    """heap_free of a slot whose page was full (back on its queue) or is now unused
    (retired unless it is its class's first page), of any slot of a debug heap (filled with
    FREED_MARK), of a tlsf block, or of a bad address (its status)."""
    t = tag_at(heap, addr)
    if t & T_LIVE:
        return core.free_slow(mem, heap, addr)
    if t != S_LIVE:
        return heap_addr_status(heap, addr)
    q = np.int64(addr)
    r = rec_of(heap, q)
    c = heap[r + R_CLASS] - 1
    nbytes = load(mem, q - HEADER)
    note_free(heap, nbytes)
    if heap[M_DEBUG] != 0 and heap[heap[M_CLASS_SIZE] + c] > ALIGN:
        fill_words(mem, q + 4, (heap[heap[M_CLASS_SIZE] + c] - 2 * HEADER) >> 2, FREED_MARK)  # (the link takes q)
    store(mem, q, heap[r + R_LOCAL])
    heap[r + R_LOCAL] = q
    heap[r + R_USED] -= 1
    set_tag(heap, q, S_FREE)
    if heap[r + R_FULL] != 0:
        queue_push(heap, c, r)
    if heap[r + R_USED] == 0 and heap[heap[M_QUEUE] + c] != r:
        retire(heap, c, r)
    return HEAP_OK


@leaf_kernel
def heap_realloc(mem, heap, addr, nbytes):
    """Resize live block `addr` to `nbytes` keeping min(old, new) bytes; returns the (maybe
    moved) address, 0 if no room (block intact), -HEAP_INVALID_FREE / -HEAP_DOUBLE_FREE for
    a bad address.  A tlsf block is tlsf's realloc; a slot stays when its class does."""
    t = tag_at(heap, addr)
    if t & T_LIVE:
        return core.heap_realloc(mem, heap, addr, nbytes)
    if t != S_LIVE:
        return -heap_addr_status(heap, addr)
    if nbytes < 0 or nbytes > heap[M_SPAN]:
        heap[M_FAILED] += 1
        return np.int64(0)
    q = np.int64(addr)
    old = load(mem, q - HEADER)
    size = block_size(np.int64(nbytes))
    c = heap[rec_of(heap, q) + R_CLASS] - 1
    if size <= SMALL_MAX and heap[heap[M_CLASS_OF] + (size >> 3)] == c:
        store(mem, q - HEADER, nbytes)
        note_resize(heap, old, np.int64(nbytes))
        return q
    p = heap_malloc(mem, heap, nbytes)
    if p == 0:
        return np.int64(0)
    copy_words(mem, p, q, (min(old, np.int64(nbytes)) + 3) >> 2)
    heap_free(mem, heap, q)
    heap[core.M_REALLOCS] += 1
    return p


@leaf_kernel
def heap_block_bytes(heap, nbytes):
    """The bytes a live block of `nbytes` occupies: its slot's class size, or tlsf's block."""
    size = block_size(nbytes)
    if 0 <= size <= SMALL_MAX:
        return heap[heap[M_CLASS_SIZE] + heap[heap[M_CLASS_OF] + (size >> 3)]]
    return size


@leaf_kernel
def heap_footprint(heap):
    """Bytes of the range ever used: tlsf's high-water extent plus the arena."""
    return core.heap_footprint(heap) + heap[M_ARENA_TOP] - heap[M_ARENA_LOW]


@leaf_kernel
def page_free_slots(heap, r):
    """(free slots carved, bytes not yet carved) of the page of record r."""
    c = heap[r + R_CLASS] - 1
    size = heap[heap[M_CLASS_SIZE] + c]
    end = page_end_payload(heap, r, size)
    carved = ((heap[r + R_BUMP] if heap[r + R_BUMP] != 0 else end) - page_start(heap, r) - ALIGN) // size
    return carved - heap[r + R_USED], (end - heap[r + R_BUMP]) if heap[r + R_BUMP] != 0 else 0


@leaf_kernel
def heap_largest_free(mem, heap):
    """The largest block one malloc can get: tlsf's below the arena, or a slot."""
    best = core.heap_largest_free(mem, heap)
    if heap[M_EMPTY] != 0 or heap[M_ARENA_LOW] - PAGE >= max(heap[core.M_HIGH], heap[M_BASE] + ALIGN):
        return max(best, np.int64(SMALL_MAX))
    for c in range(CLASSES - 1, -1, -1):
        r = heap[heap[M_QUEUE] + c]
        while r != 0:
            slots, room = page_free_slots(heap, r)
            if slots > 0 or room > 0:
                return max(best, heap[heap[M_CLASS_SIZE] + c])
            r = heap[r + R_NEXT]
    return best


@leaf_kernel
def heap_stats(mem, heap, out):
    """Fill out[S_*] (vm32.heap.base): tlsf's, with the arena in the footprint and its free
    slots, uncarved room and empty pages among the holes."""
    core.heap_stats(mem, heap, out)
    out[S_FOOTPRINT] = heap_footprint(heap)
    holes = np.int64(0)
    listed = np.int64(0)
    largest = out[S_LARGEST_HOLE]
    for k in range(heap[M_PAGES]):
        r = heap[M_REC0] + k * REC
        if heap[r + R_CLASS] == 0:
            holes += PAGE
            largest = max(largest, np.int64(PAGE))
            continue
        size = heap[heap[M_CLASS_SIZE] + heap[r + R_CLASS] - 1]
        slots, room = page_free_slots(heap, r)
        holes += slots * size + room
        listed += slots
        if slots > 0:
            largest = max(largest, size)
        largest = max(largest, room)
    out[S_HOLE_BYTES] += holes
    out[S_LARGEST_HOLE] = largest
    out[S_FREE_LIST_LEN] += listed


@leaf_kernel
def slot_totals(mem, heap):
    """(bytes, number) of the live slots (a walk of the pages' tags)."""
    nbytes = np.int64(0)
    n = np.int64(0)
    for k in range(heap[M_PAGES]):
        r = heap[M_REC0] + k * REC
        if heap[r + R_CLASS] == 0:
            continue
        size = heap[heap[M_CLASS_SIZE] + heap[r + R_CLASS] - 1]
        stop = heap[r + R_BUMP] if heap[r + R_BUMP] != 0 else page_end_payload(heap, r, size)
        for q in range(page_start(heap, r) + ALIGN, stop, size):
            if tag_of(heap, q) == S_LIVE:
                nbytes += load(mem, q - HEADER)
                n += 1
    return nbytes, n


@leaf_kernel
def heap_check(mem, heap, out):
    """tlsf's check below the arena (with the slots taken out of the counters for it), then
    every page, queue and the empty-page stack; up to len(out) findings (code, address,
    value); returns their number (0: healthy)."""
    n = np.int64(0)
    if heap[M_LIMIT] != heap[M_ARENA_LOW] or heap[core.M_HIGH] > heap[M_ARENA_LOW]:
        n = add_finding(out, n, C_TLSF_LIMIT, heap[M_LIMIT], heap[M_ARENA_LOW])
    if heap[M_ARENA_LOW] != heap[M_ARENA_TOP] - heap[M_PAGES] * PAGE:
        n = add_finding(out, n, C_TLSF_LIMIT, heap[M_ARENA_LOW], heap[M_ARENA_TOP] - heap[M_PAGES] * PAGE)
    slot_bytes, slots = slot_totals(mem, heap)
    live, mallocs = heap[M_LIVE_BYTES], heap[M_MALLOCS]
    heap[M_LIVE_BYTES] = live - slot_bytes
    heap[M_MALLOCS] = mallocs - slots
    m = core.heap_check(mem, heap, out[min(n, out.shape[0]):])
    heap[M_LIVE_BYTES] = live
    heap[M_MALLOCS] = mallocs
    n += m
    empty = np.int64(0)
    for k in range(heap[M_PAGES]):
        r = heap[M_REC0] + k * REC
        if heap[r + R_CLASS] == 0:
            empty += 1
            start = page_start(heap, r)
            for a in range(start + ALIGN, start + PAGE, ALIGN):
                if tag_of(heap, a) != 0:
                    n = add_finding(out, n, C_EMPTY_PAGE, a, tag_of(heap, a))
                    break
        else:
            n = check_page(mem, heap, out, n, r)
    return check_stack(heap, out, n, empty)


@leaf_kernel
def check_page(mem, heap, out, n, r):
    """The invariants of one page in use (record r); findings from number n on."""
    c = heap[r + R_CLASS] - 1
    start = page_start(heap, r)
    if c < 0 or c >= CLASSES:
        return add_finding(out, n, C_SLOT_SIZE, start, c)
    size = heap[heap[M_CLASS_SIZE] + c]
    stop = heap[r + R_BUMP] if heap[r + R_BUMP] != 0 else page_end_payload(heap, r, size)
    lower = heap[heap[M_CLASS_SIZE] + c - 1] if c > 0 else np.int64(0)
    live = np.int64(0)
    free = np.int64(0)
    for a in range(start + ALIGN, start + PAGE, ALIGN):
        t = tag_of(heap, a)
        is_slot = a < stop and (a - start - ALIGN) % size == 0
        if (is_slot and t != S_LIVE and t != S_FREE) or (not is_slot and t != 0):
            n = add_finding(out, n, C_SLOT_TAG, a, t)
        elif t == S_LIVE:
            live += 1
            nb = load(mem, a - HEADER)
            bs = block_size(nb)
            if nb < 0 or bs > size or bs <= lower:
                n = add_finding(out, n, C_SLOT_SIZE, a, nb)
        elif t == S_FREE:
            free += 1
    if live != heap[r + R_USED]:
        n = add_finding(out, n, C_PAGE_USED, start, live)
    listed = np.int64(0)
    for head in (heap[r + R_FREE], heap[r + R_LOCAL]):
        q = head
        while q != 0 and listed <= free:
            if q < start or q >= stop or tag_of(heap, q) != S_FREE:
                listed = free + 1
                break
            listed += 1
            q = load(mem, q)
    if listed != free:
        n = add_finding(out, n, C_PAGE_LISTS, start, listed)
    if heap[r + R_FULL] != 0:
        if free != 0 or heap[r + R_BUMP] != 0:
            n = add_finding(out, n, C_PAGE_FULL, start, free)
    else:
        seen = np.int64(0)
        prev = np.int64(0)
        x = heap[heap[M_QUEUE] + c]
        ok = True
        while x != 0 and seen <= heap[M_PAGES]:
            if heap[x + R_PREV] != prev:
                ok = False
            seen += x == r
            prev = x
            x = heap[x + R_NEXT]
        if seen != 1 or not ok:
            n = add_finding(out, n, C_QUEUE, start, seen)
    return n


@leaf_kernel
def check_stack(heap, out, n, empty):
    """The empty-page stack holds exactly the `empty` pages whose class is 0."""
    found = np.int64(0)
    r = heap[M_EMPTY]
    while r != 0 and found <= empty:
        if heap[r + R_CLASS] != 0:
            break
        found += 1
        r = heap[r + R_NEXT]
    if found != empty or r != 0:
        n = add_finding(out, n, C_EMPTY_STACK, found, empty)
    return n


def picture_top(state: np.ndarray) -> int:
    """The address a heap map's top row stands for (vm32.heap.picture): the arena's top, so
    that the pages are drawn right above tlsf's part, as the footprint counts them."""
    return int(state[M_ARENA_TOP])


def new_state(base: int, limit: int, *, debug: bool = False, **params) -> np.ndarray:
    """A sharded state over [base, limit) ready for `heap_init` (the policy has no parameters)."""
    if params:
        raise InvalidArgument(f"the sharded policy takes no parameters, not {', '.join(sorted(params))}")
    prefix = core.new_state(base, limit, debug=debug)
    state = np.zeros(state_words(base, limit), dtype=np.int64)
    state[: core.META_WORDS] = prefix[: core.META_WORDS]
    state[M_POLICY] = ID
    return state
